"""The backbone table: what each registered encoder is, how to build it, where its features are.

The bottom of ``kerasseg.backbones``: plain data and the name check, nothing built here. A
backbone name is validated once per call path, by ``check_backbone`` at the entry
(``build_backbone``, ``dilate_backbone``); what those call trusts the spec it is given.
"""

import difflib
from dataclasses import dataclass, field

import keras

A = keras.applications
STRIDES = (2, 4, 8, 16, 32)


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one network and where its features are.

    constructor: a callable with keras.applications' signature,
    ``constructor(include_top=False, weights=..., input_tensor=x, **kwargs)``, returning a
    functional model from ``input_tensor``'s source input (``keras.utils.get_source_inputs``,
    as keras.applications do) through ``input_tensor``; encoders written here (AlexNet,
    GoogLeNet, MiT, ...) register one the same way (``register_backbone``).
    preprocess: the ``ImagePreprocessing`` mode applied to [0, 255] pixels before it.
    taps: one entry per stride in STRIDES. An entry is a layer name (that layer's output),
    "name:input" (that layer's input), "@output" (the network's output), "Class#k" (the
    output of the k-th layer of that class, for networks whose layers are auto-named) or None.
    family: the network family (dilation and the tests group backbones by it).
    """

    constructor: object
    preprocess: str
    taps: tuple
    family: str
    kwargs: dict = field(default_factory=dict)
    # Rebuild with 'same' padding where the original pads 'valid' (Xception, InceptionV3):
    # their maps then sit at exact strides and small inputs (64 px) no longer shrink to nothing.
    same_padding: bool = False


def _resnet_taps(c3, c4):
    return (
        "conv1_relu",
        "conv2_block3_out",
        f"conv3_block{c3}_out",
        f"conv4_block{c4}_out",
        "conv5_block3_out",
    )


def _resnetv2_taps(c3, c4):
    return (
        "conv1_conv",
        "conv2_block3_preact_relu",
        f"conv3_block{c3}_preact_relu",
        f"conv4_block{c4}_preact_relu",
        "post_relu",
    )


def _vgg_taps(last):
    return (
        "block2_conv2",
        f"block3_conv{last}",
        f"block4_conv{last}",
        f"block5_conv{last}",
        "block5_pool",
    )


def _convnext_taps(size, stage3_depth):
    p = f"convnext_{size}_stage"
    return (
        None,
        f"{p}_0_block_2_identity",
        f"{p}_1_block_2_identity",
        f"{p}_2_block_{stage3_depth - 1}_identity",
        "@output",
    )


_EFFNET_TAPS = (
    "block2a_expand_activation",
    "block3a_expand_activation",
    "block4a_expand_activation",
    "block6a_expand_activation",
    "top_activation",
)
_EFFNETV2_TAPS = (
    "block2a_expand_conv:input",
    "block3a_expand_conv:input",
    "block4a_expand_activation",
    "block6a_expand_activation",
    "top_activation",
)
_DENSENET_TAPS = ("conv1_relu", "pool2_relu", "pool3_relu", "pool4_relu", "relu")
_MOBILENETV3_SMALL_TAPS = (
    "expanded_conv_depthwise_pad:input",
    "expanded_conv_1_depthwise_pad:input",
    "expanded_conv_3_depthwise_pad:input",
    "expanded_conv_8_depthwise_pad:input",
    "@output",
)
_MOBILENETV3_LARGE_TAPS = (
    "expanded_conv_1_depthwise_pad:input",
    "expanded_conv_3_depthwise_pad:input",
    "expanded_conv_6_depthwise_pad:input",
    "expanded_conv_12_depthwise_pad:input",
    "@output",
)
_INTERNAL = {"include_preprocessing": True}

BACKBONES = {
    "vgg16": BackboneSpec(A.VGG16, "caffe", _vgg_taps(3), "vgg"),
    "vgg19": BackboneSpec(A.VGG19, "caffe", _vgg_taps(4), "vgg"),
    "resnet50": BackboneSpec(A.ResNet50, "caffe", _resnet_taps(4, 6), "resnet"),
    "resnet101": BackboneSpec(A.ResNet101, "caffe", _resnet_taps(4, 23), "resnet"),
    "resnet152": BackboneSpec(A.ResNet152, "caffe", _resnet_taps(8, 36), "resnet"),
    "resnet50v2": BackboneSpec(A.ResNet50V2, "tf", _resnetv2_taps(4, 6), "resnet_v2"),
    "resnet101v2": BackboneSpec(A.ResNet101V2, "tf", _resnetv2_taps(4, 23), "resnet_v2"),
    "resnet152v2": BackboneSpec(A.ResNet152V2, "tf", _resnetv2_taps(8, 36), "resnet_v2"),
    "mobilenetv2": BackboneSpec(
        A.MobileNetV2,
        "tf",
        (
            "block_1_expand_relu",
            "block_3_expand_relu",
            "block_6_expand_relu",
            "block_13_expand_relu",
            "out_relu",
        ),
        "mobilenet_v2",
    ),
    "mobilenetv3small": BackboneSpec(
        A.MobileNetV3Small, "none", _MOBILENETV3_SMALL_TAPS, "mobilenet_v3", _INTERNAL
    ),
    "mobilenetv3large": BackboneSpec(
        A.MobileNetV3Large, "none", _MOBILENETV3_LARGE_TAPS, "mobilenet_v3", _INTERNAL
    ),
    **{
        f"efficientnetb{i}": BackboneSpec(
            getattr(A, f"EfficientNetB{i}"), "none", _EFFNET_TAPS, "efficientnet"
        )
        for i in range(8)
    },
    **{
        f"efficientnetv2{v.lower()}": BackboneSpec(
            getattr(A, f"EfficientNetV2{v}"), "none", _EFFNETV2_TAPS, "efficientnet_v2", _INTERNAL
        )
        for v in ("B0", "B1", "B2", "B3", "S", "M", "L")
    },
    "densenet121": BackboneSpec(A.DenseNet121, "torch", _DENSENET_TAPS, "densenet"),
    "densenet169": BackboneSpec(A.DenseNet169, "torch", _DENSENET_TAPS, "densenet"),
    "densenet201": BackboneSpec(A.DenseNet201, "torch", _DENSENET_TAPS, "densenet"),
    "xception": BackboneSpec(
        A.Xception,
        "tf",
        (
            "block1_conv2_act",
            "block3_sepconv1_act",
            "block4_sepconv1_act",
            "block13_sepconv1_act",
            "block14_sepconv2_act",
        ),
        "xception",
        same_padding=True,
    ),
    "inceptionv3": BackboneSpec(
        A.InceptionV3,
        "tf",
        ("Activation#2", "Activation#4", "mixed2", "mixed7", "mixed10"),
        "inception_v3",
        same_padding=True,
    ),
    "convnext_tiny": BackboneSpec(
        A.ConvNeXtTiny, "none", _convnext_taps("tiny", 9), "convnext", _INTERNAL
    ),
    "convnext_small": BackboneSpec(
        A.ConvNeXtSmall, "none", _convnext_taps("small", 27), "convnext", _INTERNAL
    ),
    "convnext_base": BackboneSpec(
        A.ConvNeXtBase, "none", _convnext_taps("base", 27), "convnext", _INTERNAL
    ),
}


def register_backbone(name, spec):
    """Add an encoder to the table (for encoders written in this package); returns ``spec``."""
    if name in BACKBONES:
        raise ValueError(f"Backbone {name!r} is already registered.")
    if len(spec.taps) != len(STRIDES):
        raise ValueError(f"Backbone {name!r}: taps must give one entry per stride {STRIDES}.")
    BACKBONES[name] = spec
    return spec


def list_backbones():
    return sorted(BACKBONES)


def check_backbone(name, allowed=None, arch=None):
    """Return the spec of ``name``; a ValueError names the valid choices otherwise.

    ``allowed``: the names valid here (default: every registered one); ``arch`` names the
    architecture asking, for the message.
    """
    valid = list(allowed) if allowed is not None else list_backbones()
    if name not in valid:
        who = f" for {arch}" if arch else ""
        hint = difflib.get_close_matches(str(name), valid, n=1)
        extra = f" Did you mean {hint[0]!r}?" if hint else ""
        raise ValueError(
            f"Unknown or unsupported backbone {name!r}{who}.{extra} "
            f"Valid backbones: {', '.join(valid)}."
        )
    return BACKBONES[name]
