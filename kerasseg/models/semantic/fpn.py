"""Semantic FPN (Kirillov et al. 2019, "Panoptic Feature Pyramid Networks", semantic branch).

The feature pyramid is kerasseg.necks.fpn's, ``pyramid_filters`` (256) wide, on the backbone's
maps at strides 4, 8, 16 and 32.
Semantic head: each level goes through stages of 3x3 conv (``head_filters``, 128) - group norm -
ReLU - 2x bilinear upsampling until it reaches stride 4 (the stride-4 level has one stage and no
upsampling); the four are summed, classified by a 1x1 convolution and upsampled 4x to the
input's size. Inputs: sides a multiple of 32.
"""

from keras import layers

from kerasseg.models import base
from kerasseg.models.registry import BN_MOMENTUM, register_model
from kerasseg.necks import NORMS, feature_pyramid, semantic_head


@register_model("fpn")
def fpn(
    num_classes,
    *,
    backbone="resnet50",
    weights="imagenet",
    input_shape=(None, None, 3),
    activation="softmax",
    freeze_backbone=False,
    pyramid_filters=256,
    head_filters=128,
    norm="group",
    groups=32,
    dropout=0.0,
    class_names=None,
    palette=None,
    bn_momentum=BN_MOMENTUM,
    name=None,
):
    """Semantic FPN.

    backbone: a registry name (default "resnet50").
    pyramid_filters, head_filters: pyramid (256) and segmentation-head (128) widths.
    norm: "group" (group norm with ``groups`` groups, the paper's) or "batch".
    dropout: rate before the classifier (0; smp uses 0.2).
    """
    arch = "fpn"
    if norm not in NORMS:
        raise ValueError(f"{arch}: norm must be one of {NORMS}; got {norm!r}.")
    if norm == "group" and head_filters % groups:
        raise ValueError(
            f"{arch}: head_filters {head_filters} is not divisible by groups {groups}."
        )
    input_shape = base.check_args(arch, num_classes, activation, input_shape, 32)
    inputs = base.model_input(input_shape)
    encoder = base.encoder(arch, backbone, input_shape, weights, freeze_backbone)
    feats = base.features_by_stride(encoder, inputs)
    pyramid = feature_pyramid(feats, pyramid_filters)
    x = semantic_head(pyramid, head_filters, norm, groups)
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = base.head(x, inputs, num_classes, activation, resize=True)
    model = base.segmenter(inputs, outputs, name=name or f"{arch}_{backbone}", multiple=32)
    return base.load_weights(model, encoder, weights, arch)
