"""FC-DenseNet 56 / 67 / 103 (Jégou et al. 2017, "The One Hundred Layers Tiramisu").

A 3x3 convolution of 48 maps, five dense blocks each followed by a transition down, a bottleneck
dense block, then five transitions up (a 3x3 stride-2 transposed convolution of the previous
block's *new* maps only, growth * layers of them) each concatenated with its skip and followed
by a dense block; the last block's whole stack goes to a 1x1 classifier.

The network has its own encoder and is trained from scratch (the paper uses no pretraining):
``backbone`` must stay None and ``weights`` is None, "imagenet" (accepted for the common
signature, nothing to load) or a whole-model weights file. Inputs: sides a multiple of 32.
At 11 classes (CamVid) they have 1.40 M, 3.50 M and 9.43 M parameters; the paper's Table 2
prints 1.5 M, 3.5 M and 9.4 M (its rules, counted by hand, give 1.40 M for FC-DenseNet56 too).
"""

import os

import keras

from kerasseg.backbones import ImagePreprocessing
from kerasseg.layers import dense_block, transition_down, transition_up
from kerasseg.models import base
from kerasseg.models.registry import BN_MOMENTUM, register_model

NUM_POOLINGS = 5
MULTIPLE = 2**NUM_POOLINGS
# name: (growth rate, layers per block: 5 down, bottleneck, 5 up), Table 2 of the paper.
CONFIGS = {
    "fc_densenet56": (12, (4,) * 11),
    "fc_densenet67": (16, (5,) * 11),
    "fc_densenet103": (16, (4, 5, 7, 10, 12, 15, 12, 10, 7, 5, 4)),
}


def _fc_densenet(
    arch,
    num_classes,
    *,
    backbone,
    weights,
    input_shape,
    activation,
    freeze_backbone,
    first_filters,
    dropout,
    name,
):
    if backbone is not None:
        raise ValueError(
            f"{arch}: FC-DenseNet has its own encoder and takes no registry "
            f"backbone; backbone must be None, got {backbone!r}."
        )
    if freeze_backbone:
        raise ValueError(
            f"{arch}: freeze_backbone needs a pretrained backbone; FC-DenseNet has "
            "its own encoder, trained from scratch."
        )
    growth_rate, layers_per_block = CONFIGS[arch]
    input_shape = base.check_args(arch, num_classes, activation, input_shape, MULTIPLE)
    if base.is_file(weights) and not os.path.exists(weights):
        raise FileNotFoundError(f"{arch}: weights file not found: {os.fspath(weights)!r}.")
    inputs = base.model_input(input_shape)
    x = ImagePreprocessing("unit", name="preprocess")(inputs)
    x = keras.layers.Conv2D(
        first_filters, 3, padding="same", kernel_initializer="he_uniform", name="first_conv"
    )(x)

    skips = []
    for i in range(NUM_POOLINGS):
        x, _ = dense_block(x, layers_per_block[i], growth_rate, dropout, name=f"down{i + 1}")
        skips.append(x)
        x = transition_down(x, dropout, name=f"td{i + 1}")

    _, new = dense_block(x, layers_per_block[NUM_POOLINGS], growth_rate, dropout, name="bottleneck")
    for i in range(NUM_POOLINGS):
        block = NUM_POOLINGS + 1 + i
        # Only the previous block's new maps are upsampled, growth * its layers of them.
        filters = growth_rate * layers_per_block[block - 1]
        x = transition_up(new, skips[-(i + 1)], filters, name=f"tu{i + 1}")
        x, new = dense_block(x, layers_per_block[block], growth_rate, dropout, name=f"up{i + 1}")

    outputs = base.head(x, inputs, num_classes, activation, resize=False)
    model = base.segmenter(inputs, outputs, name=name or arch, multiple=MULTIPLE)
    return base.load_weights(model, None, weights, arch)


@register_model("fc_densenet56")
def fc_densenet56(
    num_classes,
    *,
    backbone=None,
    weights="imagenet",
    input_shape=(None, None, 3),
    activation="softmax",
    freeze_backbone=False,
    first_filters=48,
    dropout=0.2,
    class_names=None,
    palette=None,
    bn_momentum=BN_MOMENTUM,
    name=None,
):
    """FC-DenseNet56: growth rate 12, 4 layers per block; see ``fc_densenet103``."""
    return _fc_densenet(
        "fc_densenet56",
        num_classes,
        backbone=backbone,
        weights=weights,
        input_shape=input_shape,
        activation=activation,
        freeze_backbone=freeze_backbone,
        first_filters=first_filters,
        dropout=dropout,
        name=name,
    )


@register_model("fc_densenet67")
def fc_densenet67(
    num_classes,
    *,
    backbone=None,
    weights="imagenet",
    input_shape=(None, None, 3),
    activation="softmax",
    freeze_backbone=False,
    first_filters=48,
    dropout=0.2,
    class_names=None,
    palette=None,
    bn_momentum=BN_MOMENTUM,
    name=None,
):
    """FC-DenseNet67: growth rate 16, 5 layers per block; see ``fc_densenet103``."""
    return _fc_densenet(
        "fc_densenet67",
        num_classes,
        backbone=backbone,
        weights=weights,
        input_shape=input_shape,
        activation=activation,
        freeze_backbone=freeze_backbone,
        first_filters=first_filters,
        dropout=dropout,
        name=name,
    )


@register_model("fc_densenet103")
def fc_densenet103(
    num_classes,
    *,
    backbone=None,
    weights="imagenet",
    input_shape=(None, None, 3),
    activation="softmax",
    freeze_backbone=False,
    first_filters=48,
    dropout=0.2,
    class_names=None,
    palette=None,
    bn_momentum=BN_MOMENTUM,
    name=None,
):
    """FC-DenseNet103: growth rate 16, blocks of 4, 5, 7, 10, 12 layers down, 15 in the
    bottleneck, and the mirror up.

    backbone must be None (FC-DenseNet has its own encoder); freeze_backbone must be False.
    first_filters: the first convolution's width (48); dropout: after every convolution (0.2).
    Input sides a multiple of 32.
    """
    return _fc_densenet(
        "fc_densenet103",
        num_classes,
        backbone=backbone,
        weights=weights,
        input_shape=input_shape,
        activation=activation,
        freeze_backbone=freeze_backbone,
        first_filters=first_filters,
        dropout=dropout,
        name=name,
    )
