"""Mask R-CNN's heads, each a small functional model so training can call it on sampled ROIs
with the very weights the inference graph uses.

Initialisation follows torchvision: RPN and classifier weights N(0, 0.01), box regressors
N(0, 0.001), zero biases; the mask head's convolutions He-normal.
"""

import keras
from keras import layers


def _normal(std):
    return keras.initializers.RandomNormal(stddev=std)


def rpn_head(channels, anchors_per_location, name="rpn_head"):
    """3x3 conv + ReLU, then per anchor an objectness logit and 4 box deltas (shared by all
    pyramid levels): ``[B, H, W, C] -> ([B, H, W, A], [B, H, W, 4A])``."""
    x = inputs = keras.Input((None, None, channels), name=f"{name}_input")
    x = layers.Conv2D(
        channels,
        3,
        padding="same",
        activation="relu",
        kernel_initializer=_normal(0.01),
        name=f"{name}_conv",
    )(x)
    scores = layers.Conv2D(
        anchors_per_location, 1, kernel_initializer=_normal(0.01), name=f"{name}_objectness"
    )(x)
    deltas = layers.Conv2D(
        4 * anchors_per_location, 1, kernel_initializer=_normal(0.01), name=f"{name}_deltas"
    )(x)
    return keras.Model(inputs, [scores, deltas], name=name)


def box_head(channels, pool_size, units, num_classes, name="box_head"):
    """Two fully connected layers (TwoMLPHead), then class logits (background + K) and
    class-specific box deltas: ``[R, P, P, C] -> ([R, K + 1], [R, 4 (K + 1)])``."""
    x = inputs = keras.Input((pool_size, pool_size, channels), name=f"{name}_input")
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(units, activation="relu", name=f"{name}_fc6")(x)
    x = layers.Dense(units, activation="relu", name=f"{name}_fc7")(x)
    logits = layers.Dense(
        num_classes + 1, kernel_initializer=_normal(0.01), name=f"{name}_class_logits"
    )(x)
    deltas = layers.Dense(
        4 * (num_classes + 1), kernel_initializer=_normal(0.001), name=f"{name}_box_deltas"
    )(x)
    return keras.Model(inputs, [logits, deltas], name=name)


def mask_head(channels, pool_size, filters, num_classes, convs=4, name="mask_head"):
    """``convs`` 3x3 convs + ReLU, a 2x transposed conv + ReLU, a 1x1 conv with one mask logit
    map per class (background's channel included, as torchvision's predictor has):
    ``[R, P, P, C] -> [R, 2P, 2P, K + 1]``."""
    x = inputs = keras.Input((pool_size, pool_size, channels), name=f"{name}_input")
    for k in range(convs):
        x = layers.Conv2D(
            filters,
            3,
            padding="same",
            activation="relu",
            kernel_initializer="he_normal",
            name=f"{name}_conv{k + 1}",
        )(x)
    x = layers.Conv2DTranspose(
        filters,
        2,
        strides=2,
        activation="relu",
        kernel_initializer="he_normal",
        name=f"{name}_upsample",
    )(x)
    logits = layers.Conv2D(
        num_classes + 1, 1, kernel_initializer="he_normal", name=f"{name}_logits"
    )(x)
    return keras.Model(inputs, logits, name=name)
