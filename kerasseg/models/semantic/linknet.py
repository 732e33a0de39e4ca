"""LinkNet (Chaurasia & Culurciello 2017, "LinkNet: Exploiting Encoder Representations for
Efficient Semantic Segmentation").

Four encoder stages (the backbone's maps at strides 4, 8, 16 and 32). Each decoder block maps
m channels to n: 1x1 convolution to m/4, 3x3 transposed convolution with stride 2, 1x1
convolution to n (each with batch norm and ReLU). Its output is *added* to the encoder map one
level finer, whose width is n, so the decoder stays thin. The block on the stride-4 map ends
at stride 2 with 64 maps; the final block is a 3x3 stride-2 transposed convolution to 32 maps
and a 3x3 convolution, then the 1x1 classifier at the input's size.

Deviation from the paper: its encoder is ResNet18 (11.5 M parameters in all), which
keras.applications lacks. The default here is resnet50 (about 29 M at 21 classes, heavier and
more accurate); ``backbone="mobilenetv2"`` is the light choice (about 4.2 M). The paper's last
layer is a 2x2 transposed convolution to the classes; with the stride-4 first stage of the
keras.applications ResNets the feature map is already at full size there, so it is a 1x1
convolution. Inputs: sides a multiple of 32.
"""

from keras import layers

from kerasseg.layers import FusedBatchNormalization, conv_bn_act, upsample_like
from kerasseg.models import base
from kerasseg.models.registry import BN_MOMENTUM, register_model


def _upsample_bn_relu(x, filters, upsampling, name, target=None):
    if upsampling == "transpose":
        x = layers.Conv2DTranspose(
            filters,
            3,
            strides=2,
            padding="same",
            use_bias=False,
            kernel_initializer="he_normal",
            name=f"{name}_conv",
        )(x)
        if target is not None:
            x = upsample_like(x, target, "nearest", name=f"{name}_align")
        x = FusedBatchNormalization(name=f"{name}_bn")(x)
        return layers.Activation("relu", name=f"{name}_relu")(x)
    if target is None:
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_resize")(x)
    else:
        x = upsample_like(x, target, "nearest", name=f"{name}_resize")
    return conv_bn_act(x, filters, 3, name=name)


def decoder_block(x, out_filters, upsampling, name, skip=None):
    """m -> m/4 (1x1) -> m/4 (3x3, 2x up) -> out_filters (1x1); plus ``skip`` when given."""
    inner = max(x.shape[-1] // 4, 1)
    x = conv_bn_act(x, inner, 1, name=f"{name}_reduce")
    x = _upsample_bn_relu(x, inner, upsampling, f"{name}_up", target=skip)
    x = conv_bn_act(x, out_filters, 1, name=f"{name}_expand")
    if skip is None:
        return x
    return layers.Add(name=f"{name}_add")([x, skip])


@register_model("linknet")
def linknet(
    num_classes,
    *,
    backbone="resnet50",
    weights="imagenet",
    input_shape=(None, None, 3),
    activation="softmax",
    freeze_backbone=False,
    final_filters=(64, 32),
    upsampling="transpose",
    class_names=None,
    palette=None,
    bn_momentum=BN_MOMENTUM,
    name=None,
):
    """LinkNet.

    backbone: a registry name (default "resnet50"; the paper's ResNet18 is not available).
    final_filters: widths of the last decoder block (64, at stride 2) and of the final block
        (32, at stride 1), as in the paper.
    upsampling: "transpose" (3x3 transposed convolutions, the paper's) or "nearest"
        (nearest-neighbour resize followed by a 3x3 convolution).
    """
    arch = "linknet"
    if upsampling not in ("transpose", "nearest"):
        raise ValueError(
            f"{arch}: upsampling must be 'transpose' or 'nearest'; got {upsampling!r}."
        )
    if len(final_filters) != 2:
        raise ValueError(f"{arch}: final_filters needs 2 widths; got {final_filters}.")
    input_shape = base.check_args(arch, num_classes, activation, input_shape, 32)
    inputs = base.model_input(input_shape)
    encoder = base.encoder(arch, backbone, input_shape, weights, freeze_backbone)
    feats = base.features_by_stride(encoder, inputs)

    x = feats[32]
    for stride in (16, 8, 4):
        skip = feats[stride]
        x = decoder_block(x, skip.shape[-1], upsampling, f"decoder{stride * 2}", skip=skip)
    x = decoder_block(x, final_filters[0], upsampling, "decoder4")
    x = _upsample_bn_relu(x, final_filters[1], upsampling, "final_up", target=inputs)
    x = conv_bn_act(x, final_filters[1], 3, name="final_conv")
    outputs = base.head(x, inputs, num_classes, activation, resize=False)
    model = base.segmenter(inputs, outputs, name=name or f"{arch}_{backbone}", multiple=32)
    return base.load_weights(model, encoder, weights, arch)
