"""Blocks shared by the architectures.

Functions build a few stock Keras layers into the graph (``conv_bn_act``); classes are custom
layers, each registered so saved models load without ``custom_objects``.
"""
import keras
import tensorflow as tf
from keras import layers

_INTERPOLATIONS = ("bilinear", "nearest")


def conv_bn_act(x, filters, kernel_size=3, *, strides=1, dilation_rate=1, activation="relu",
                batch_norm=True, name=None):
    """Convolution, batch norm (bias dropped: BN's beta replaces it) and activation."""
    def sub(suffix):
        return f"{name}_{suffix}" if name else None

    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                      dilation_rate=dilation_rate, use_bias=not batch_norm,
                      kernel_initializer="he_normal", name=sub("conv"))(x)
    if batch_norm:
        x = layers.BatchNormalization(name=sub("bn"))(x)
    if activation:
        x = layers.Activation(activation, name=sub(activation))(x)
    return x


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
            raise ValueError(f"interpolation must be one of {_INTERPOLATIONS}; got {interpolation!r}")
        self.interpolation = interpolation

    def call(self, x, reference):
        size = tf.shape(reference)[1:3]
        method = "nearest" if self.interpolation == "nearest" else "bilinear"
        resized = tf.image.resize(x, size, method=method)
        return tf.cast(resized, x.dtype)

    def compute_output_shape(self, x_shape, reference_shape):
        return (x_shape[0], reference_shape[1], reference_shape[2], x_shape[3])

    def get_config(self):
        return {**super().get_config(), "interpolation": self.interpolation}


def upsample_like(x, reference, interpolation="bilinear", name=None):
    return ResizeLike(interpolation, name=name)(x, reference)
