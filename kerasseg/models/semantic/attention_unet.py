"""Attention U-Net (Oktay et al. 2018, "Attention U-Net: Learning Where to Look for the Pancreas").

A U-Net whose skips pass through additive attention gates before they are merged. The gate of
a skip x is driven by g, the decoder feature one level coarser (the one about to be upsampled
and merged with x): theta(x) is a 2x2 stride-2 convolution that brings x to g's grid, phi(g) a
1x1 convolution; relu(theta + phi) goes through a 1x1 convolution psi to one channel and a
sigmoid, the coefficients are resampled (bilinear) to x's size and multiply x, and a 1x1
convolution with batch norm recombines the gated maps.

``backbone=None`` gives the U-Net paper encoder (``filters`` 64 doubling over four poolings,
sides a multiple of 2**depth); a registry backbone (default resnet50) gives gates on its taps,
sides a multiple of 32. The decoder is U-Net's (kerasseg.models.unet).
"""

from keras import layers

from kerasseg.layers import conv_bn_act, upsample_like
from kerasseg.models.registry import BN_MOMENTUM, register_model
from kerasseg.models.semantic.unet import DEFAULT_DECODER_FILTERS, build_unet


def attention_gate(skip, gating, name, inter_channels=None):
    """Additive attention gate; returns ``skip`` weighted by coefficients in (0, 1).

    inter_channels: width of the theta/phi space (half the skip's channels, as the paper).
    """
    channels = skip.shape[-1]
    inter = inter_channels or max(channels // 2, 1)
    theta = layers.Conv2D(
        inter, 2, strides=2, padding="same", use_bias=False, name=f"{name}_theta"
    )(skip)
    phi = layers.Conv2D(inter, 1, name=f"{name}_phi")(gating)
    # Equal sizes for inputs at the model's multiple; snapping keeps odd encoders aligned.
    phi = upsample_like(phi, theta, "nearest", name=f"{name}_phi_align")
    f = layers.Add(name=f"{name}_add")([theta, phi])
    f = layers.Activation("relu", name=f"{name}_relu")(f)
    alpha = layers.Conv2D(1, 1, name=f"{name}_psi")(f)
    alpha = layers.Activation("sigmoid", name=f"{name}_sigmoid")(alpha)
    alpha = upsample_like(alpha, skip, "bilinear", name=f"{name}_resample")
    gated = layers.Multiply(name=f"{name}_multiply")([skip, alpha])
    return conv_bn_act(gated, channels, 1, activation=None, name=f"{name}_out")


@register_model("attention_unet")
def attention_unet(
    num_classes,
    *,
    backbone="resnet50",
    weights="imagenet",
    input_shape=(None, None, 3),
    activation="softmax",
    freeze_backbone=False,
    filters=64,
    depth=4,
    batch_norm=True,
    decoder_filters=DEFAULT_DECODER_FILTERS,
    upsampling=None,
    class_names=None,
    palette=None,
    bn_momentum=BN_MOMENTUM,
    name=None,
):
    """Attention U-Net.

    backbone: a registry name (default "resnet50"; sides a multiple of 32) or None for the
        paper encoder (sides a multiple of 2**depth).
    filters, depth, decoder_filters, upsampling: as for ``unet``.
    """
    return build_unet(
        "attention_unet",
        num_classes,
        backbone=backbone,
        weights=weights,
        input_shape=input_shape,
        activation=activation,
        freeze_backbone=freeze_backbone,
        filters=filters,
        depth=depth,
        batch_norm=batch_norm,
        decoder_filters=decoder_filters,
        upsampling=upsampling,
        name=name,
        gate=attention_gate,
    )
