"""Context-pooling blocks: adaptive average pooling, PSPNet's pyramid pooling module, DeepLab's
image pooling and atrous spatial pyramid pooling (ASPP).

All of them take feature maps of any height and width (known only at run time).
"""

import keras
import tensorflow as tf
from keras import layers

from kerasseg.layers.conv import FusedBatchNormalization, conv_bn_act
from kerasseg.layers.upsampling import ResizeLike

__all__ = [
    "AdaptiveAveragePooling2D",
    "aspp",
    "image_pooling",
    "pyramid_pooling_module",
    "separable_conv_bn_act",
]


@keras.saving.register_keras_serializable(package="kerasseg")
class AdaptiveAveragePooling2D(layers.Layer):
    """Average pooling to a fixed ``bins x bins`` grid, whatever the input's size.

    Bin i along an axis of length n covers [floor(i*n/bins), ceil((i+1)*n/bins)), as in
    PyTorch's AdaptiveAvgPool2d (bins overlap when n is not a multiple, and when n < bins).
    The sums come from an integral image, so the windows may depend on the run-time size.
    """

    def __init__(self, bins, **kwargs):
        super().__init__(**kwargs)
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise ValueError(
                f"AdaptiveAveragePooling2D: bins must be an integer >= 1; got {bins!r}."
            )
        self.bins = bins

    def _edges(self, n):
        i = tf.range(self.bins, dtype=tf.int32)
        start = (i * n) // self.bins
        end = ((i + 1) * n + self.bins - 1) // self.bins  # ceil
        return start, end

    def call(self, x):
        dtype = x.dtype
        # The running sums are kept in float32 even under mixed precision: they grow with H*W.
        x = tf.cast(x, tf.float32)
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        integral = tf.cumsum(tf.cumsum(x, axis=1), axis=2)
        integral = tf.pad(integral, [[0, 0], [1, 0], [1, 0], [0, 0]])
        h0, h1 = self._edges(height)
        w0, w1 = self._edges(width)

        def corners(rows, cols):
            return tf.gather(tf.gather(integral, rows, axis=1), cols, axis=2)

        total = corners(h1, w1) - corners(h0, w1) - corners(h1, w0) + corners(h0, w0)
        area = tf.cast((h1 - h0)[:, None] * (w1 - w0)[None, :], tf.float32)
        return tf.cast(total / area[None, :, :, None], dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.bins, self.bins, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "bins": self.bins}


def separable_conv_bn_act(x, filters, kernel_size=3, *, dilation_rate=1, name=None):
    """Depthwise (dilated) convolution and pointwise convolution, each with BN and ReLU.

    The DeepLabV3+ paper's cheaper stand-in for a full 3x3 convolution in ASPP and decoder.
    """

    def sub(suffix):
        return f"{name}_{suffix}" if name else None

    x = layers.DepthwiseConv2D(
        kernel_size,
        padding="same",
        dilation_rate=dilation_rate,
        use_bias=False,
        name=sub("depthwise"),
    )(x)
    x = FusedBatchNormalization(name=sub("depthwise_bn"))(x)
    x = layers.Activation("relu", name=sub("depthwise_relu"))(x)
    return conv_bn_act(x, filters, 1, name=sub("pointwise"))


def image_pooling(x, filters, name="image_pooling"):
    """Global average, 1x1 conv-BN-ReLU, broadcast back over the map (DeepLabV3's image-level
    features)."""
    y = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    y = conv_bn_act(y, filters, 1, name=name)
    return ResizeLike("bilinear", name=f"{name}_resize")(y, x)


def aspp(x, filters=256, rates=(6, 12, 18), *, separable=False, dropout=0.1, name="aspp"):
    """Atrous spatial pyramid pooling (Chen et al. 2017).

    A 1x1 branch, one 3x3 branch per dilation rate and image pooling, concatenated and
    projected to ``filters`` channels by a 1x1 conv-BN-ReLU (then dropout).
    """
    branches = [conv_bn_act(x, filters, 1, name=f"{name}_1x1")]
    for rate in rates:
        branch_name = f"{name}_rate{rate}"
        if separable:
            branches.append(
                separable_conv_bn_act(x, filters, 3, dilation_rate=rate, name=branch_name)
            )
        else:
            branches.append(conv_bn_act(x, filters, 3, dilation_rate=rate, name=branch_name))
    branches.append(image_pooling(x, filters, name=f"{name}_pooling"))
    y = layers.Concatenate(name=f"{name}_concat")(branches)
    y = conv_bn_act(y, filters, 1, name=f"{name}_projection")
    if dropout:
        y = layers.Dropout(dropout, name=f"{name}_dropout")(y)
    return y


def pyramid_pooling_module(x, bins=(1, 2, 3, 6), filters=None, name="ppm"):
    """PSPNet's pyramid pooling (Zhao et al. 2017).

    Each branch average-pools the map to ``bin x bin``, reduces it with a 1x1 conv-BN-ReLU to
    ``filters`` channels (default: input channels / number of bins, the paper's 1/N) and
    resizes it back bilinearly; the input and the branches are concatenated.
    """
    if filters is None:
        filters = max(1, x.shape[-1] // len(bins))
    branches = [x]
    for b in bins:
        y = AdaptiveAveragePooling2D(b, name=f"{name}_pool{b}")(x)
        y = conv_bn_act(y, filters, 1, name=f"{name}_bin{b}")
        branches.append(ResizeLike("bilinear", name=f"{name}_resize{b}")(y, x))
    return layers.Concatenate(name=f"{name}_concat")(branches)
