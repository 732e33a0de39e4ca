"""Convolution blocks and the fast-kernel layers.

``conv_bn_act`` builds a few stock Keras layers into the graph. ``FusedBatchNormalization`` and
``DilatedConv2D`` are drop-in subclasses of the Keras layers (same arguments, same weights, same
results) that run TensorFlow's fast kernels, registered so saved models load without
``custom_objects``; see ``use_fast_kernels`` for putting them into networks built elsewhere
(keras.applications).
"""

import keras
import tensorflow as tf
from keras import layers

from kerasseg.ops.conv import dilated_conv2d

__all__ = ["DilatedConv2D", "FusedBatchNormalization", "bn_act", "conv_bn_act", "use_fast_kernels"]

# The smallest epsilon cuDNN's fused batch norm accepts; below it the stock layer runs.
_FUSED_MIN_EPSILON = 1.001e-5


@keras.saving.register_keras_serializable(package="kerasseg")
class FusedBatchNormalization(layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` computed by TensorFlow's fused kernel.

    Keras 3 normalizes with separate moment, subtract, multiply and add ops (and as many in
    the gradient); ``FusedBatchNormV3`` does it in one pass, and after a convolution at
    inference TensorFlow folds it (and a following ReLU) into the convolution itself. Same
    weights, same moving-statistics update (biased batch variance, as Keras uses), same
    results to float rounding. Masks, renorm, synchronized statistics, a non-channels-last
    axis or a non-4D input fall back to the stock computation.
    """

    def _can_fuse(self, inputs, mask):
        rank = len(inputs.shape)
        return (
            keras.backend.backend() == "tensorflow"
            and rank == 4
            and mask is None
            and self.axis in (-1, 3)
            and not self.renorm
            and not self.synchronized
            and self.epsilon >= _FUSED_MIN_EPSILON
            and inputs.dtype in (tf.float32, tf.float16, tf.bfloat16)
        )

    def call(self, inputs, training=None, mask=None):
        if not self._can_fuse(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        ones = tf.ones_like(self.moving_mean)
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else ones
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros_like(ones)
        if training and self.trainable:
            empty = tf.constant([], tf.float32)
            y, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                x=inputs,
                scale=gamma,
                offset=beta,
                mean=empty,
                variance=empty,
                epsilon=self.epsilon,
                exponential_avg_factor=1.0,
                data_format="NHWC",
                is_training=True,
            )
            # The kernel reports the unbiased (n - 1) variance; Keras averages the biased one.
            n = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), tf.float32)
            variance = variance * tf.math.divide_no_nan(n - 1.0, n)
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(
                self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
            )
        else:
            y, _, _, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                x=inputs,
                scale=gamma,
                offset=beta,
                mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32),
                epsilon=self.epsilon,
                exponential_avg_factor=1.0,
                data_format="NHWC",
                is_training=False,
            )
        return tf.cast(y, self.compute_dtype)


@keras.saving.register_keras_serializable(package="kerasseg")
class DilatedConv2D(layers.Conv2D):
    """``keras.layers.Conv2D`` whose dilated (atrous) convolution runs as one native op.

    Keras calls ``tf.nn.convolution``, which turns a dilated convolution into space-to-batch,
    an undilated convolution and batch-to-space, padding the map up to a multiple of the rate
    on the way: at rate 18 on a 16x16 map (DeepLab's ASPP at 256 px) the convolution then
    runs over 36x36, mostly zeros, ten times slower than the native dilated ``Conv2D``
    kernel, which skips the padding (and without oneDNN its gradient is some 30x slower
    still). Same weights and results; trains on every device (``dilated_conv2d``).
    """

    def convolution_op(self, inputs, kernel):
        if (
            keras.backend.backend() != "tensorflow"
            or self.data_format != "channels_last"
            or self.groups != 1
            or max(self.strides) > 1
            or max(self.dilation_rate) == 1
        ):
            return super().convolution_op(inputs, kernel)
        return dilated_conv2d(inputs, kernel, self.dilation_rate, self.padding.upper())


def use_fast_kernels(model):
    """Switch a built model's stock BatchNormalization and dilated Conv2D layers to the
    subclasses above, in place; returns the model.

    For networks this package does not build layer by layer (keras.applications backbones).
    The subclasses add no state, so the layers keep their weights, names and graph
    connections; saved models record the kerasseg classes.
    """
    for layer in model.layers:
        if type(layer) is layers.BatchNormalization:
            layer.__class__ = FusedBatchNormalization
        elif type(layer) is layers.Conv2D and max(layer.dilation_rate) > 1:
            layer.__class__ = DilatedConv2D
        elif isinstance(layer, keras.Model):
            use_fast_kernels(layer)
    return model


def conv_bn_act(
    x,
    filters,
    kernel_size=3,
    *,
    strides=1,
    dilation_rate=1,
    activation="relu",
    batch_norm=True,
    name=None,
):
    """Convolution, batch norm (bias dropped: BN's beta replaces it) and activation."""
    conv = DilatedConv2D if dilation_rate not in (1, (1, 1)) else layers.Conv2D
    x = conv(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        dilation_rate=dilation_rate,
        use_bias=not batch_norm,
        kernel_initializer="he_normal",
        name=f"{name}_conv" if name else None,
    )(x)
    return bn_act(x, batch_norm=batch_norm, activation=activation, name=name)


def bn_act(x, *, batch_norm=True, activation="relu", name=None):
    """Batch norm (``{name}_bn``) and activation (``{name}_{activation}``), each optional."""
    if batch_norm:
        x = FusedBatchNormalization(name=f"{name}_bn" if name else None)(x)
    if activation:
        x = layers.Activation(activation, name=f"{name}_{activation}" if name else None)(x)
    return x
