"""SegNet (Badrinarayanan, Kendall & Cipolla 2017).

Encoder: VGG16's thirteen 3x3 convolutions, each followed by batch normalization and ReLU,
with 2x2 max pooling that remembers where each maximum came from. Decoder: the mirror image;
each stage first max-unpools with the indices of the matching encoder pooling (no learned
upsampling, no copied feature maps), then convolves. A 1x1 classifier follows the last
decoder stage. VGG16 at 21 classes: 29.5 M parameters, as in the paper.

keras.applications' VGG has no batch normalization, so the encoder is built here; with
``weights="imagenet"`` the ImageNet convolution kernels and biases are copied into it (the new
BN layers start as the identity). The encoder is the nested model named ``<backbone>_bn``.

Input height and width must be multiples of 32.
"""

import keras
from keras import layers

from kerasseg import backbones as bb
from kerasseg.backbones import ImagePreprocessing
from kerasseg.layers import FusedBatchNormalization, MaxPoolingWithArgmax, MaxUnpooling, conv_bn_act
from kerasseg.models import base
from kerasseg.models.registry import BN_MOMENTUM, register_model

MULTIPLE = 32
WIDTHS = (64, 128, 256, 512, 512)
BLOCK_DEPTHS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
_VGG_CONSTRUCTORS = {"vgg16": keras.applications.VGG16, "vgg19": keras.applications.VGG19}


def _encoder(input_shape, depths, name):
    """VGG with BN; outputs [pool5, (pre-pool map, pool indices) for blocks 1..5]."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = ImagePreprocessing("caffe", name="preprocess")(inputs)  # what VGG's weights expect
    outputs = []
    for block, (depth, width) in enumerate(zip(depths, WIDTHS), start=1):
        for k in range(1, depth + 1):
            # Conv bias kept (unlike conv_bn_act) so VGG's kernels and biases copy one to one.
            x = layers.Conv2D(width, 3, padding="same", name=f"block{block}_conv{k}")(x)
            x = FusedBatchNormalization(name=f"block{block}_bn{k}")(x)
            x = layers.Activation("relu", name=f"block{block}_relu{k}")(x)
        pre_pool = x
        x, indices = MaxPoolingWithArgmax(2, name=f"block{block}_pool")(x)
        outputs += [pre_pool, indices]
    return keras.Model(inputs, [x] + outputs, name=name)


def _decoder(x, skips, depths):
    """Mirror of the encoder: unpool, then the block's convolutions in reverse.

    A block of n convolutions at width w decodes with n - 1 at w and a last one at the width
    of the block before it (64 for the first block), as the paper's decoder narrows.
    """
    for block in range(len(depths), 0, -1):
        pre_pool, indices = skips[block - 1]
        x = MaxUnpooling(name=f"decoder{block}_unpool")(x, indices, pre_pool)
        depth, width = depths[block - 1], WIDTHS[block - 1]
        for k in range(depth, 0, -1):
            out = WIDTHS[max(block - 2, 0)] if k == 1 else width
            x = conv_bn_act(x, out, 3, name=f"decoder{block}_conv{k}")
    return x


def copy_vgg_weights(vgg, encoder):
    """Copy a keras.applications VGG's convolution weights into a SegNet encoder, by name.

    Where the encoder takes other than 3 input channels, the first kernel is adapted the way
    the backbone registry adapts it (averaged over RGB and repeated).
    """
    for layer in encoder.layers:
        if isinstance(layer, layers.Conv2D):
            values = []
            for source, target in zip(vgg.get_layer(layer.name).get_weights(), layer.get_weights()):
                values.append(
                    source
                    if source.shape == target.shape
                    else bb.adapt_channels(source, target.shape)
                )
            layer.set_weights(values)


@register_model("segnet")
def segnet(
    num_classes,
    *,
    backbone="vgg16",
    weights="imagenet",
    input_shape=(None, None, 3),
    activation="softmax",
    freeze_backbone=False,
    class_names=None,
    palette=None,
    bn_momentum=BN_MOMENTUM,
    name=None,
):
    """SegNet; see the module docstring.

    backbone: "vgg16" (the paper's) or "vgg19" (16 convolutions, decoder mirrored likewise).
    weights: "imagenet" (VGG's ImageNet kernels in the encoder), None, or a path to a weights
        file of the whole model or of its encoder. Input sides: multiples of 32.
    """
    input_shape = base.check_args("segnet", num_classes, activation, input_shape, MULTIPLE)
    bb.check_backbone(backbone, tuple(BLOCK_DEPTHS), "segnet")
    bb.check_weights_arg(weights)  # a missing file fails before anything is built
    depths = BLOCK_DEPTHS[backbone]
    encoder = _encoder(input_shape, depths, name=f"{backbone}_bn")
    if weights == "imagenet":
        copy_vgg_weights(
            _VGG_CONSTRUCTORS[backbone](include_top=False, weights="imagenet"), encoder
        )
    if freeze_backbone:
        encoder.trainable = False

    inputs = base.model_input(input_shape)
    x, *flat = encoder(inputs)
    skips = list(zip(flat[0::2], flat[1::2]))
    x = _decoder(x, skips, depths)
    # The decoder ends at the input's size: no final resize.
    outputs = base.head(x, inputs, num_classes, activation, resize=False)
    model = base.segmenter(inputs, outputs, name=name or f"segnet_{backbone}", multiple=MULTIPLE)
    return base.load_weights(model, encoder, weights, "segnet")
