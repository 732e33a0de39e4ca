"""Fully convolutional networks (Long, Shelhamer & Darrell 2015): FCN-32s, FCN-16s, FCN-8s.

On VGG the classifier's fully connected layers are kept as convolutions: fc6 becomes a 7x7
convolution with 4096 filters over pool5, fc7 a 1x1 convolution with 4096, each followed by
dropout; with ``weights="imagenet"`` their kernels are the ImageNet classifier's ``fc1``/``fc2``
weights reshaped (which needs keras.applications' include-top VGG weights, a ~530 MB download).
A 1x1 score layer on fc7 predicts at stride 32; FCN-16s and FCN-8s add 1x1 score layers on
pool4 (stride 16) and pool3 (stride 8), each fused by addition after a learned 2x upsampling.
Every upsampling is a transposed convolution initialised to bilinear interpolation.

Departures from the paper, on purpose: 'same' padding everywhere instead of padding the input
by 100 pixels and cropping (so the maps line up at exact strides and the crop layers go away),
and all three variants are built directly rather than trained in stages. The score layers of
the skips start at zero, as the paper's staged training had them, so FCN-16s/8s begin as
FCN-32s.

AlexNet (``backbone="alexnet"``, Table 1's FCN-AlexNet): fc6 is a 6x6 convolution over pool5
(AlexNet's fc6 sees a 6x6 grid) and fc7 a 1x1, 4096 each, as on VGG; its stride-8 and 16 maps
(conv2, conv5) play pool3 and pool4. FCN-32s sizes (21 classes, upsampling fixed as the paper's
Table 1 counts): FCN-AlexNet 57.1 M, FCN-VGG16 134.3 M, FCN-GoogLeNet 6.0 M parameters.

Other backbones: their stride-8, 16 and 32 feature maps play pool3, pool4 and fc7 (there is no
fc6/fc7 to convert); every registry backbone with those three maps is accepted (GoogLeNet:
scores on inception 5b, as the paper's FCN-GoogLeNet).

Input height and width must be multiples of 32.
"""

import keras
import numpy as np
from keras import layers

from kerasseg import backbones as bb
from kerasseg.layers import BilinearUpsampling, ResizeLike
from kerasseg.models import base
from kerasseg.models.registry import BN_MOMENTUM, register_model

MULTIPLE = 32
VGG_BACKBONES = ("vgg16", "vgg19")
FC6_KERNEL = 7  # VGG's fc1 sees pool5 as a 7x7 grid (224 / 32)
# Backbones whose classifier's fully connected layers FCN keeps as convolutions: fc6's kernel.
FC6_KERNELS = {"vgg16": FC6_KERNEL, "vgg19": FC6_KERNEL, "alexnet": 6}
FC_FILTERS = 4096
_VGG_CONSTRUCTORS = {"vgg16": keras.applications.VGG16, "vgg19": keras.applications.VGG19}


def fcn_backbones():
    """Backbones FCN takes: those with feature maps at strides 8, 16 and 32 (all, today)."""
    return sorted(name for name, spec in bb.BACKBONES.items() if None not in spec.taps[2:])


def _vgg_pools(encoder):
    """The VGG encoder re-tapped at pool3, pool4 and pool5 (the paper's skips).

    The registry taps VGG's last convolutions of each block; FCN fuses the pooled maps. The
    result shares the encoder's layers (and so its weights and frozen state).
    """
    outputs = [encoder.get_layer(f"block{b}_pool").output for b in (3, 4, 5)]
    pools = keras.Model(encoder.inputs, outputs, name=encoder.name)
    pools.trainable = encoder.trainable
    return pools


def _upsample(x, factor, num_classes, trainable, name):
    """Learned x``factor`` upsampling: a 2*factor transposed convolution, bilinear at start."""
    return layers.Conv2DTranspose(
        num_classes,
        2 * factor,
        strides=factor,
        padding="same",
        use_bias=False,
        kernel_initializer=BilinearUpsampling(),
        trainable=trainable,
        name=name,
    )(x)


def _score(x, num_classes, name, zero=False):
    init = "zeros" if zero else "glorot_uniform"
    return layers.Conv2D(num_classes, 1, kernel_initializer=init, name=name)(x)


def _fuse(coarse, skip, num_classes, trainable, name):
    """Double ``coarse``, add the skip's class scores."""
    up = _upsample(coarse, 2, num_classes, trainable, f"upscore_{name}_up")
    score = _score(skip, num_classes, f"score_{name}", zero=True)
    # Equal sizes when the input is a multiple of 32; otherwise the floor-rounded pools are a
    # pixel off the doubled map, so snap to the skip (the paper's crop layers did this).
    up = ResizeLike("bilinear", name=f"upscore_{name}_align")(up, score)
    return layers.Add(name=f"fuse_{name}")([up, score])


def _fc_layers(x, filters, dropout, kernel=FC6_KERNEL):
    x = layers.Conv2D(filters, kernel, padding="same", activation="relu", name="fc6")(x)
    x = layers.Dropout(dropout, name="drop6")(x)
    x = layers.Conv2D(filters, 1, activation="relu", name="fc7")(x)
    return layers.Dropout(dropout, name="drop7")(x)


def fc_to_conv_weights(vgg_with_top, fcn_model):
    """Copy a VGG classifier's fc1/fc2 Dense weights into an FCN's fc6/fc7 convolutions.

    ``vgg_with_top``: keras.applications VGG16/VGG19 built with ``include_top=True``. A Dense
    layer over the flattened 7x7x512 pool5 is the same map as a 7x7 'valid' convolution whose
    kernel is the Dense kernel reshaped (Flatten keeps row-major height, width, channel order).
    """
    for dense_name, conv_name in (("fc1", "fc6"), ("fc2", "fc7")):
        kernel, bias = vgg_with_top.get_layer(dense_name).get_weights()
        conv = fcn_model.get_layer(conv_name)
        shape = tuple(conv.kernel.shape)
        if kernel.size != np.prod(shape):
            raise ValueError(
                f"Cannot convert {dense_name} {kernel.shape} into {conv_name} {shape}: "
                f"fc_filters must be {FC_FILTERS} to use the ImageNet classifier weights."
            )
        conv.set_weights([kernel.reshape(shape), bias])


def _load_vgg_imagenet(backbone, encoder, model):
    """ImageNet weights for convolutions and fc layers from one include-top download."""
    full = _VGG_CONSTRUCTORS[backbone](include_top=True, weights="imagenet")
    convs = keras.Model(full.inputs, full.get_layer("block5_pool").output)
    bb.transfer_weights(convs, encoder)  # adapts the first kernel for non-RGB inputs
    fc_to_conv_weights(full, model)


def _build_fcn(
    variant,
    num_classes,
    backbone,
    weights,
    input_shape,
    activation,
    freeze_backbone,
    fc_filters,
    dropout,
    learn_upsampling,
    name,
):
    arch = f"fcn{variant}s"
    input_shape = base.check_args(arch, num_classes, activation, input_shape, MULTIPLE)
    is_vgg = backbone in VGG_BACKBONES
    convert = is_vgg and weights == "imagenet" and fc_filters == FC_FILTERS
    encoder = base.encoder(
        arch,
        backbone,
        input_shape,
        None if convert else weights,
        freeze_backbone,
        allowed=fcn_backbones(),
    )
    inputs = base.model_input(input_shape)
    if is_vgg:
        pool3, pool4, x = _vgg_pools(encoder)(inputs)
        x = _fc_layers(x, fc_filters, dropout)
    else:
        feats = base.features_by_stride(encoder, inputs)
        pool3, pool4, x = feats[8], feats[16], feats[32]
        if backbone in FC6_KERNELS:  # AlexNet
            x = _fc_layers(x, fc_filters, dropout, FC6_KERNELS[backbone])
    x = _score(x, num_classes, "score_fr")
    if variant == 32:
        x = _upsample(x, 32, num_classes, learn_upsampling, "upscore32")
    elif variant == 16:
        x = _fuse(x, pool4, num_classes, learn_upsampling, "pool4")
        x = _upsample(x, 16, num_classes, learn_upsampling, "upscore16")
    else:
        x = _fuse(x, pool4, num_classes, learn_upsampling, "pool4")
        x = _fuse(x, pool3, num_classes, learn_upsampling, "pool3")
        x = _upsample(x, 8, num_classes, learn_upsampling, "upscore8")
    # The last upsampling already gives class scores: only align and activate.
    outputs = base.head(x, inputs, num_classes, activation, classifier=False)
    model = base.segmenter(inputs, outputs, name=name or f"{arch}_{backbone}", multiple=MULTIPLE)
    if convert:
        _load_vgg_imagenet(backbone, encoder, model)
    return base.load_weights(model, encoder, weights, arch)


@register_model("fcn32s")
def fcn32s(
    num_classes,
    *,
    backbone="vgg16",
    weights="imagenet",
    input_shape=(None, None, 3),
    activation="softmax",
    freeze_backbone=False,
    fc_filters=FC_FILTERS,
    dropout=0.5,
    learn_upsampling=True,
    class_names=None,
    palette=None,
    bn_momentum=BN_MOMENTUM,
    name=None,
):
    """FCN-32s (Long et al. 2015): fc7 alone, upsampled 32x; options as ``fcn8s``."""
    return _build_fcn(
        32,
        num_classes,
        backbone,
        weights,
        input_shape,
        activation,
        freeze_backbone,
        fc_filters,
        dropout,
        learn_upsampling,
        name,
    )


@register_model("fcn16s")
def fcn16s(
    num_classes,
    *,
    backbone="vgg16",
    weights="imagenet",
    input_shape=(None, None, 3),
    activation="softmax",
    freeze_backbone=False,
    fc_filters=FC_FILTERS,
    dropout=0.5,
    learn_upsampling=True,
    class_names=None,
    palette=None,
    bn_momentum=BN_MOMENTUM,
    name=None,
):
    """FCN-16s (Long et al. 2015): fc7 and pool4 fused, upsampled 16x; options as ``fcn8s``."""
    return _build_fcn(
        16,
        num_classes,
        backbone,
        weights,
        input_shape,
        activation,
        freeze_backbone,
        fc_filters,
        dropout,
        learn_upsampling,
        name,
    )


@register_model("fcn8s")
def fcn8s(
    num_classes,
    *,
    backbone="vgg16",
    weights="imagenet",
    input_shape=(None, None, 3),
    activation="softmax",
    freeze_backbone=False,
    fc_filters=FC_FILTERS,
    dropout=0.5,
    learn_upsampling=True,
    class_names=None,
    palette=None,
    bn_momentum=BN_MOMENTUM,
    name=None,
):
    """FCN-8s (Long et al. 2015): scores of fc7, pool4 and pool3 fused; see the module
    docstring.

    backbone: "vgg16" (the paper's), "vgg19", or any registry backbone with stride-8/16/32
        maps (no fc6/fc7 then). Input sides: multiples of 32.
    weights: "imagenet" (on VGG: convolutions and fc6/fc7 from the include-top ImageNet
        classifier), None, or a path to a weights file of the model or of its backbone.
    fc_filters, dropout: width of fc6/fc7 (4096, the paper's) and the dropout after each
        (VGG and AlexNet only). Only at 4096 do VGG's fc6/fc7 get ImageNet weights; at other
        widths they start random and the convolutions still load ImageNet's.
    learn_upsampling: False fixes the bilinear transposed convolutions.
    freeze_backbone freezes the convolutional encoder; fc6/fc7 stay trainable.
    """
    return _build_fcn(
        8,
        num_classes,
        backbone,
        weights,
        input_shape,
        activation,
        freeze_backbone,
        fc_filters,
        dropout,
        learn_upsampling,
        name,
    )
