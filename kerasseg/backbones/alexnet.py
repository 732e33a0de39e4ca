"""AlexNet (Krizhevsky et al. 2012) as a segmentation encoder, written here.

The single-tower network of torchvision's ``alexnet`` (Krizhevsky 2014, "One weird trick"):
convolutions of 64 (11x11, stride 4), 192 (5x5), 384, 256 and 256 (3x3) channels with ReLU,
3x3 stride-2 max pooling after the first, second and fifth; no local response normalization
(torchvision dropped it too) and no grouped convolutions, whose CPU kernels TensorFlow lacks
without oneDNN. Every layer pads 'same', so the maps sit at exact strides: conv1 at 4, conv2 at
8, conv5 at 16 and pool5 at 32 (there is no stride-2 map). FCN-AlexNet (``fcn32s(...,
backbone="alexnet")``) adds fc6 as a 6x6 convolution over pool5 and fc7 as a 1x1, 4096 each,
as Long et al. did: 57 M parameters.

keras.applications has no AlexNet and no Keras ImageNet weights are published:
``weights="imagenet"`` is refused; ``weights=None`` or a weights file (``save_weights`` of this
backbone) work. Inputs: RGB in [0, 255], normalized in the graph with ImageNet mean and std
("torch" mode, torchvision's).
"""

import keras
from keras import layers

from kerasseg.backbones.registry import BackboneSpec, register_backbone
from kerasseg.backbones.weights import refuse_imagenet

TAPS = (None, "conv1", "conv2", "conv5", "pool5")
FILTERS = (64, 192, 384, 256, 256)
KERNELS = (11, 5, 3, 3, 3)


def alexnet(include_top=False, weights=None, input_tensor=None, name="alexnet"):
    """The AlexNet convolutional layers over ``input_tensor`` (keras.applications' signature)."""
    if include_top:
        raise ValueError("AlexNet: include_top is not supported (a segmentation encoder).")
    if weights == "imagenet":
        refuse_imagenet("alexnet", "AlexNet")
    inputs = keras.utils.get_source_inputs(input_tensor)[0]
    x = input_tensor
    for i, (filters, kernel) in enumerate(zip(FILTERS, KERNELS), 1):
        x = layers.Conv2D(
            filters,
            kernel,
            strides=4 if i == 1 else 1,
            padding="same",
            activation="relu",
            name=f"conv{i}",
        )(x)
        if i in (1, 2, 5):
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{i}")(x)
    return keras.Model(inputs, x, name=name)


register_backbone("alexnet", BackboneSpec(alexnet, "torch", TAPS, "alexnet"))
