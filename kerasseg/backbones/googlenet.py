"""GoogLeNet (Inception v1, Szegedy et al. 2015) as a segmentation encoder, written here.

The paper's network without its classifier and auxiliary heads: 7x7/2 convolution (64),
3x3/2 max pooling, 1x1 (64) and 3x3 (192) convolutions, 3x3/2 pooling, inception 3a-3b,
pooling, 4a-4e, pooling, 5a-5b. An inception module concatenates a 1x1 convolution, 1x1 then
3x3, 1x1 then 5x5, and 3x3 max pooling then 1x1 (every convolution with bias and ReLU, as the
paper; no local response normalization, no batch norm). Every layer pads 'same', so the maps
sit at exact strides: conv1 at 2, conv2 at 4, inception 3b at 8, 4e at 16 and 5b at 32.
FCN-GoogLeNet (``fcn32s(..., backbone="googlenet")``, scores on 5b as Long et al.) has 6 M
parameters.

keras.applications has no GoogLeNet and no Keras ImageNet weights are published:
``weights="imagenet"`` is refused; ``weights=None`` or a weights file work. Inputs: RGB in
[0, 255], normalized in the graph with ImageNet mean and std ("torch" mode).
"""

import keras
from keras import layers

from kerasseg.backbones.registry import BackboneSpec, register_backbone
from kerasseg.backbones.weights import refuse_imagenet

TAPS = ("conv1", "conv2", "inception3b", "inception4e", "inception5b")

# (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection) per module (the paper's Table 1).
MODULES = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def _conv(x, filters, kernel, name, strides=1):
    return layers.Conv2D(
        filters, kernel, strides=strides, padding="same", activation="relu", name=name
    )(x)


def inception_module(x, widths, name):
    """The four branches of an inception module, concatenated (layer ``name``)."""
    c1, r3, c3, r5, c5, pool = widths
    b1 = _conv(x, c1, 1, f"{name}_1x1")
    b3 = _conv(_conv(x, r3, 1, f"{name}_3x3_reduce"), c3, 3, f"{name}_3x3")
    b5 = _conv(_conv(x, r5, 1, f"{name}_5x5_reduce"), c5, 5, f"{name}_5x5")
    bp = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    bp = _conv(bp, pool, 1, f"{name}_pool_proj")
    return layers.Concatenate(name=name)([b1, b3, b5, bp])


def googlenet(include_top=False, weights=None, input_tensor=None, name="googlenet"):
    """GoogLeNet's convolutional part over ``input_tensor`` (keras.applications' signature)."""
    if include_top:
        raise ValueError("GoogLeNet: include_top is not supported (a segmentation encoder).")
    if weights == "imagenet":
        refuse_imagenet("googlenet", "GoogLeNet (Inception v1)")
    inputs = keras.utils.get_source_inputs(input_tensor)[0]
    x = _conv(input_tensor, 64, 7, "conv1", strides=2)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = _conv(x, 64, 1, "conv2_reduce")
    x = _conv(x, 192, 3, "conv2")
    for module, widths in MODULES.items():
        if module.endswith("a"):  # 3a, 4a, 5a: halve first (pool2, pool3, pool4)
            pool = f"pool{int(module[0]) - 1}"
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=pool)(x)
        x = inception_module(x, widths, f"inception{module}")
    return keras.Model(inputs, x, name=name)


register_backbone("googlenet", BackboneSpec(googlenet, "torch", TAPS, "googlenet"))
