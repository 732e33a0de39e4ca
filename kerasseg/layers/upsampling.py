"""Upsampling layers: resizing to a partner tensor's size, and the U-Net decoder's 3x3
convolution over a nearest upsampling (optionally with its skip), fused.

Both layers are registered so saved models load without ``custom_objects``.
"""

import keras
import tensorflow as tf
from keras import layers

from kerasseg.layers.conv import bn_act
from kerasseg.ops.conv import upsampled_conv3x3
from kerasseg.ops.resize import exactly_double, resize_to, static_size

__all__ = ["ResizeLike", "UpsampleConv2D", "upsample_conv_bn_act", "upsample_like"]

_INTERPOLATIONS = ("bilinear", "nearest")


@keras.saving.register_keras_serializable(package="kerasseg")
class UpsampleConv2D(layers.Layer):
    """A 3x3 'same' convolution of ``x`` upsampled (nearest) to the size of ``reference``,
    and of ``reference`` itself, concatenated after ``x``, when ``merge`` (a U-Net skip).

    The layer holds exactly that convolution's kernel, ``(3, 3, channels(x) +
    channels(reference) if merge, filters)``, and computes the same values. When
    ``reference`` is exactly twice the size of ``x``, the upsampled map is never built
    (``kerasseg.ops.conv.upsampled_conv3x3``: four 2x2 convolutions at ``x``'s resolution,
    4 instead of 9 multiply-adds per output pixel and channel of ``x``). Other sizes resize,
    concatenate and convolve.
    """

    def __init__(
        self,
        filters,
        merge=True,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.merge = bool(merge)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, x_shape, reference_shape):
        channels = x_shape[-1] + (reference_shape[-1] if self.merge else 0)
        self.kernel = self.add_weight(
            name="kernel", shape=(3, 3, channels, self.filters), initializer=self.kernel_initializer
        )
        self.bias = (
            self.add_weight(name="bias", shape=(self.filters,), initializer=self.bias_initializer)
            if self.use_bias
            else None
        )

    def call(self, x, reference, training=None):
        kernel = tf.cast(self.kernel, self.compute_dtype)
        x = tf.cast(x, self.compute_dtype)
        if exactly_double(x, reference):
            channels = x.shape[-1]
            if self.merge:
                # Split, not sliced: the gradient of two slices of a big kernel is two
                # zero-padded full-size copies and their sum; that of a split is one concat.
                kernel, skip_kernel = tf.split(kernel, [channels, -1], axis=2)
            y = upsampled_conv3x3(x, kernel, pad_inside=not training)
            if self.merge:
                y = y + tf.nn.conv2d(tf.cast(reference, y.dtype), skip_kernel, 1, "SAME")
        else:
            y = resize_to(x, reference, "nearest")
            if self.merge:
                y = tf.concat([y, tf.cast(reference, y.dtype)], axis=-1)
            y = tf.nn.conv2d(y, kernel, 1, "SAME")
        if self.use_bias:
            y = tf.nn.bias_add(y, tf.cast(self.bias, y.dtype))
        return y

    def compute_output_shape(self, x_shape, reference_shape):
        return (x_shape[0], reference_shape[1], reference_shape[2], self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "merge": self.merge,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }


@keras.saving.register_keras_serializable(package="kerasseg")
class ResizeLike(layers.Layer):
    """Resize ``x`` to the height and width of ``reference`` (known only at run time).

    Encoders with 'valid' padding (Xception, InceptionV3) give maps a pixel or two off the
    nominal stride, and inputs may have any size; resizing to the partner tensor's actual
    size keeps skips and outputs aligned in every case.
    """

    def __init__(self, interpolation="bilinear", **kwargs):
        super().__init__(**kwargs)
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {_INTERPOLATIONS}; got {interpolation!r}"
            )
        self.interpolation = interpolation

    def call(self, x, reference):
        if static_size(x) is not None and static_size(x) == static_size(reference):
            return x  # already aligned (the usual case): no resize op, no gradient op
        return resize_to(x, reference, self.interpolation)

    def compute_output_shape(self, x_shape, reference_shape):
        return (x_shape[0], reference_shape[1], reference_shape[2], x_shape[3])

    def get_config(self):
        return {**super().get_config(), "interpolation": self.interpolation}


def upsample_like(x, reference, interpolation="bilinear", name=None):
    """``x`` resized to ``reference``'s height and width (a ``ResizeLike`` layer)."""
    return ResizeLike(interpolation, name=name)(x, reference)


def upsample_conv_bn_act(
    x, reference, filters, *, merge, activation="relu", batch_norm=True, name=None
):
    """``conv_bn_act`` (3x3) over ``x`` upsampled (nearest) to ``reference``'s size, and over
    ``reference`` itself concatenated after it when ``merge``: a U-Net decoder step."""
    x = UpsampleConv2D(
        filters,
        merge=merge,
        use_bias=not batch_norm,
        kernel_initializer="he_normal",
        name=f"{name}_conv" if name else None,
    )(x, reference)
    return bn_act(x, batch_norm=batch_norm, activation=activation, name=name)
