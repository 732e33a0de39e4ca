"""FC-DenseNet blocks (Jégou et al. 2017, "The One Hundred Layers Tiramisu").

A dense layer is BN-ReLU-3x3 conv(growth)-dropout; a dense block stacks them, each layer seeing
the concatenation of the block's input and every earlier layer's maps. The up path upsamples
only the maps a block *created* (not its input): that is what keeps the model linear in size
instead of quadratic.
"""

from keras import layers

from kerasseg.layers.conv import FusedBatchNormalization

__all__ = ["dense_block", "transition_down", "transition_up"]


def _bn_relu_conv(x, filters, kernel_size, dropout, name):
    # Pre-activation, with a bias as in the authors' Lasagne code (their parameter counts
    # include it); He-uniform as they initialize.
    x = FusedBatchNormalization(name=f"{name}_bn")(x)
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    x = layers.Conv2D(
        filters, kernel_size, padding="same", kernel_initializer="he_uniform", name=f"{name}_conv"
    )(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


def dense_block(x, num_layers, growth_rate, dropout=0.2, name="dense"):
    """``num_layers`` dense layers of ``growth_rate`` maps each.

    Returns ``(stack, new)``: ``stack`` is the input concatenated with every new map
    (channels + num_layers * growth_rate), ``new`` the new maps alone (num_layers * growth_rate),
    which is what the up path's transition upsamples.
    """
    if num_layers < 1:
        raise ValueError(f"dense_block {name!r}: num_layers must be >= 1; got {num_layers}.")
    new = []
    for i in range(num_layers):
        y = _bn_relu_conv(x, growth_rate, 3, dropout, f"{name}_layer{i + 1}")
        new.append(y)
        x = layers.Concatenate(name=f"{name}_concat{i + 1}")([x, y])
    if len(new) == 1:
        return x, new[0]
    return x, layers.Concatenate(name=f"{name}_new")(new)


def transition_down(x, dropout=0.2, name="td"):
    """BN-ReLU-1x1 conv keeping the channel count, dropout, 2x2 max pooling."""
    x = _bn_relu_conv(x, x.shape[-1], 1, dropout, name)
    return layers.MaxPooling2D(2, name=f"{name}_pool")(x)


def transition_up(new_maps, skip, filters, name="tu"):
    """3x3 transposed convolution, stride 2, of the block's new maps; concatenated with ``skip``.

    ``skip`` must be exactly twice the size of ``new_maps`` (true for inputs a multiple of
    2**number_of_poolings).
    """
    x = layers.Conv2DTranspose(
        filters,
        3,
        strides=2,
        padding="same",
        kernel_initializer="he_uniform",
        name=f"{name}_deconv",
    )(new_maps)
    return layers.Concatenate(name=f"{name}_concat")([x, skip])
