"""DeepLabV3 (Chen et al. 2017) and DeepLabV3+ (Chen et al. 2018).

Both run a dilated backbone (``output_stride`` 16, or 8 for denser and slower features; see
kerasseg.backbones.dilation; 32 keeps the backbone undilated, as keras-hub's DeepLabV3 presets
do, at half the FLOPs of 16) into atrous spatial pyramid pooling: a 1x1 branch, three 3x3
branches at rates 6, 12, 18 (doubled at output stride 8) and an image-pooling branch, 256
filters each, projected to 256 by a 1x1 convolution.

DeepLabV3 classifies that map and resizes the scores to the input (the paper's head: no extra
3x3 convolution). DeepLabV3+ adds the decoder: the ASPP output is upsampled to the stride-4
features, concatenated with a 48-channel 1x1 projection of them, refined by two 3x3
convolutions of 256 and classified. ``separable=True`` uses depthwise-separable convolutions
in ASPP and decoder, as the V3+ paper does with Xception.

The paper's V3+ encoder is Xception-65; the registry's ``xception`` (keras.applications,
Xception-71-like entry/middle flow, 'same' padding) is the closest available. Backbones: those
``kerasseg.backbones.dilation`` can dilate. Input sides: multiples of ``output_stride``.
"""

from keras import layers

from kerasseg.backbones import check_output_stride, dilatable_backbones
from kerasseg.layers import ResizeLike, aspp, conv_bn_act, separable_conv_bn_act
from kerasseg.models import base
from kerasseg.models.registry import BN_MOMENTUM, register_model

BASE_RATES = (6, 12, 18)  # at output stride 16


def atrous_rates_for(atrous_rates, output_stride):
    """The three ASPP rates: ``atrous_rates``, or the paper's (6, 12, 18) scaled to the stride."""
    if atrous_rates is None:
        return tuple(r * 16 // output_stride for r in BASE_RATES)
    return tuple(atrous_rates)


def dilated_features(arch, backbone, input_shape, weights, freeze_backbone, output_stride, inputs):
    """Build the dilated encoder and call it; returns (encoder, {nominal stride: feature}).

    Nominal strides are the undilated network's: at output stride 8 the "32" map is at 8.
    """
    encoder = base.encoder(
        arch,
        backbone,
        input_shape,
        weights,
        freeze_backbone,
        allowed=None if output_stride == 32 else dilatable_backbones(),
        output_stride=output_stride,
    )
    feats = encoder(inputs)
    return encoder, dict(zip((2, 4, 8, 16, 32), feats))


def _conv(x, filters, separable, name, kernel_size=3):
    if separable and kernel_size > 1:
        return separable_conv_bn_act(x, filters, kernel_size, name=name)
    return conv_bn_act(x, filters, kernel_size, name=name)


def _build(
    arch,
    num_classes,
    backbone,
    weights,
    input_shape,
    activation,
    freeze_backbone,
    output_stride,
    atrous_rates,
    filters,
    separable,
    dropout,
    decoder,
    name,
):
    check_output_stride(arch, output_stride, valid=(8, 16, 32))
    input_shape = base.check_args(arch, num_classes, activation, input_shape, output_stride)
    inputs = base.model_input(input_shape)
    encoder, feats = dilated_features(
        arch, backbone, input_shape, weights, freeze_backbone, output_stride, inputs
    )
    x = aspp(
        feats[32],
        filters,
        atrous_rates_for(atrous_rates, output_stride),
        separable=separable,
        dropout=dropout,
        name="aspp",
    )
    if decoder:
        low = conv_bn_act(feats[4], decoder["low_level_filters"], 1, name="decoder_low_level")
        x = ResizeLike("bilinear", name="decoder_upsample")(x, low)
        x = layers.Concatenate(name="decoder_concat")([x, low])
        for i in range(1, decoder["convs"] + 1):
            x = _conv(
                x,
                decoder["filters"],
                separable,
                name=f"decoder_conv{i}",
                kernel_size=decoder["kernel_size"],
            )
    outputs = base.head(x, inputs, num_classes, activation)
    model = base.segmenter(
        inputs, outputs, name=name or f"{arch}_{backbone}", multiple=output_stride
    )
    return base.load_weights(model, encoder, weights, arch)


@register_model("deeplabv3")
def deeplabv3(
    num_classes,
    *,
    backbone="resnet50",
    weights="imagenet",
    input_shape=(None, None, 3),
    activation="softmax",
    freeze_backbone=False,
    output_stride=16,
    atrous_rates=None,
    filters=256,
    separable=False,
    dropout=0.1,
    class_names=None,
    palette=None,
    bn_momentum=BN_MOMENTUM,
    name=None,
):
    """DeepLabV3; see the module docstring.

    output_stride: 16, 8 or 32 (undilated backbone); input sides must be multiples of it.
    atrous_rates: the three ASPP rates; default (6, 12, 18) at stride 16, (12, 24, 36) at 8,
        (3, 6, 9) at 32.
    filters: width of every ASPP branch and of the projection (256).
    dropout: after the ASPP projection.
    """
    return _build(
        "deeplabv3",
        num_classes,
        backbone,
        weights,
        input_shape,
        activation,
        freeze_backbone,
        output_stride,
        atrous_rates,
        filters,
        separable,
        dropout,
        None,
        name,
    )


@register_model("deeplabv3plus")
def deeplabv3plus(
    num_classes,
    *,
    backbone="resnet50",
    weights="imagenet",
    input_shape=(None, None, 3),
    activation="softmax",
    freeze_backbone=False,
    output_stride=16,
    atrous_rates=None,
    filters=256,
    separable=False,
    dropout=0.1,
    low_level_filters=48,
    decoder_filters=256,
    decoder_convs=2,
    decoder_kernel_size=3,
    class_names=None,
    palette=None,
    bn_momentum=BN_MOMENTUM,
    name=None,
):
    """DeepLabV3+; see the module docstring.

    As deeplabv3, plus low_level_filters (the 1x1 projection of the stride-4 features, 48),
    decoder_filters, decoder_convs and decoder_kernel_size: the decoder's convolutions, the
    paper's two 3x3 of 256 by default (keras-hub's DeepLabV3 presets have one 1x1 of 256, with
    output_stride=32: ``decoder_convs=1, decoder_kernel_size=1``).
    """
    for option, value in (
        ("decoder_convs", decoder_convs),
        ("decoder_kernel_size", decoder_kernel_size),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"deeplabv3plus: {option} must be an integer >= 1; got {value!r}.")
    decoder = {
        "low_level_filters": low_level_filters,
        "filters": decoder_filters,
        "convs": decoder_convs,
        "kernel_size": decoder_kernel_size,
    }
    return _build(
        "deeplabv3plus",
        num_classes,
        backbone,
        weights,
        input_shape,
        activation,
        freeze_backbone,
        output_stride,
        atrous_rates,
        filters,
        separable,
        dropout,
        decoder,
        name,
    )
