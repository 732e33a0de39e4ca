"""ResNet-50 v1.5 (torchvision's layout, keras-hub's ``ResNetBackbone`` "resnet_50"), written
here for keras-hub's DeepLabV3+ preset.

It differs from keras.applications' ResNet50 (v1) where that matters for weights: a block
downsamples in its 3x3 convolution (padded by one pixel on each side, as PyTorch pads) rather
than in its first 1x1, the convolutions have no biases, and the batch norms use epsilon 1e-5.
The stem pads by 3 before its 7x7 stride-2 convolution and by 1 before the 3x3 stride-2 max
pooling. Layer names are keras-hub's (``conv2_block1_1_conv`` ...), so its weights copy by
name. Maps: conv1 at stride 2, the four stages at 4, 8, 16 and 32.

keras.applications has no such network; ``weights="imagenet"`` is refused (keras-hub's
ImageNet ResNet presets are the source: ``kerasseg.from_keras_hub`` converts its DeepLabV3+).
Inputs: RGB in [0, 255], normalized in the graph with ImageNet mean and std ("torch" mode).
"""

import keras
from keras import layers

from kerasseg.backbones.registry import BackboneSpec, register_backbone
from kerasseg.backbones.weights import refuse_imagenet

DEPTHS = (3, 4, 6, 3)
EPSILON = 1e-5
TAPS = (
    "conv1_relu",
    "conv2_block3_out",
    "conv3_block4_out",
    "conv4_block6_out",
    "conv5_block3_out",
)


def _bn(x, name):
    return layers.BatchNormalization(epsilon=EPSILON, momentum=0.9, name=name)(x)


def bottleneck(x, filters, stride, shortcut_conv, name):
    """A v1.5 bottleneck block: 1x1, 3x3 (strided), 1x1 (4 x filters), added to the shortcut."""
    shortcut = x
    if shortcut_conv:
        shortcut = layers.Conv2D(
            4 * filters, 1, strides=stride, use_bias=False, name=f"{name}_0_conv"
        )(x)
        shortcut = _bn(shortcut, f"{name}_0_bn")
    y = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_1_conv")(x)
    y = layers.Activation("relu", name=f"{name}_1_relu")(_bn(y, f"{name}_1_bn"))
    if stride > 1:
        y = layers.ZeroPadding2D(1, name=f"{name}_2_pad")(y)
    y = layers.Conv2D(
        filters,
        3,
        strides=stride,
        padding="valid" if stride > 1 else "same",
        use_bias=False,
        name=f"{name}_2_conv",
    )(y)
    y = layers.Activation("relu", name=f"{name}_2_relu")(_bn(y, f"{name}_2_bn"))
    y = _bn(layers.Conv2D(4 * filters, 1, use_bias=False, name=f"{name}_3_conv")(y), f"{name}_3_bn")
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def resnet50_v1_5(include_top=False, weights=None, input_tensor=None, name="resnet50_v1_5"):
    """ResNet-50 v1.5's convolutional part over ``input_tensor`` (keras.applications'
    signature)."""
    if include_top:
        raise ValueError("ResNet-50 v1.5: include_top is not supported (a segmentation encoder).")
    if weights == "imagenet":
        refuse_imagenet(
            "resnet50_v1_5",
            "ResNet-50 v1.5",
            "; keras-hub's DeepLabV3+ preset converts with kerasseg.from_keras_hub("
            "'deeplab_v3_plus_resnet50_pascalvoc')",
        )
    inputs = keras.utils.get_source_inputs(input_tensor)[0]
    x = layers.ZeroPadding2D(3, name="conv1_pad")(input_tensor)
    x = layers.Conv2D(64, 7, strides=2, use_bias=False, name="conv1_conv")(x)
    x = layers.Activation("relu", name="conv1_relu")(_bn(x, "conv1_bn"))
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, (filters, depth) in enumerate(zip((64, 128, 256, 512), DEPTHS), 2):
        for block in range(1, depth + 1):
            stride = 2 if block == 1 and stage > 2 else 1
            x = bottleneck(x, filters, stride, block == 1, f"conv{stage}_block{block}")
    return keras.Model(inputs, x, name=name)


register_backbone("resnet50_v1_5", BackboneSpec(resnet50_v1_5, "torch", TAPS, "resnet_v1_5"))
