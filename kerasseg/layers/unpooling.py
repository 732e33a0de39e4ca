"""Upsampling blocks: SegNet's index-based max-unpooling and the bilinear kernel that FCN's
learned (transposed-convolution) upsampling starts from."""

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from kerasseg.ops.resize import in_xla_context

__all__ = ["BilinearUpsampling", "MaxPoolingWithArgmax", "MaxUnpooling", "bilinear_kernel"]


def _pair(value, what):
    pair = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair):
        raise ValueError(f"{what} must be a positive integer or a pair of them; got {value!r}.")
    return pair


@keras.saving.register_keras_serializable(package="kerasseg")
class MaxPoolingWithArgmax(layers.Layer):
    """Max pooling that also returns where each maximum came from.

    Returns ``(pooled, indices)``: ``indices`` (int64, the pooled shape) holds each maximum's
    flat position ``(y * W + x) * C + c`` inside its own image of the input, ready for
    ``MaxUnpooling``.
    """

    def __init__(self, pool_size=2, strides=None, padding="same", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _pair(pool_size, "pool_size")
        self.strides = _pair(strides, "strides") if strides is not None else self.pool_size
        if padding not in ("same", "valid"):
            raise ValueError(f"padding must be 'same' or 'valid'; got {padding!r}.")
        self.padding = padding

    def call(self, x):
        if in_xla_context():
            # XLA has no MaxPoolWithArgmax kernel.
            return self._pool_and_argmax_by_patches(x)
        # Indices per image (include_batch_in_index=False): every TF device kernel supports it.
        pooled, argmax = tf.nn.max_pool_with_argmax(
            x,
            ksize=(1, *self.pool_size, 1),
            strides=(1, *self.strides, 1),
            padding=self.padding.upper(),
            include_batch_in_index=False,
        )
        return pooled, tf.stop_gradient(tf.cast(argmax, tf.int64))

    def _pool_and_argmax_by_patches(self, x):
        """The same pooled values and indices from max pooling and an argmax over each
        window's values (the first maximum wins, as in the native kernel)."""
        (kh, kw), (sh, sw) = self.pool_size, self.strides
        pooled = tf.nn.max_pool2d(x, self.pool_size, self.strides, self.padding.upper())
        shape = tf.shape(x)
        height, width, channels = shape[1], shape[2], x.shape[-1]
        out_h, out_w = tf.shape(pooled)[1], tf.shape(pooled)[2]
        # Max pooling's 'same' never picks padding: pad explicitly with the lowest value
        # rather than extract_patches' zeros.
        top = tf.maximum((out_h - 1) * sh + kh - height, 0) // 2
        left = tf.maximum((out_w - 1) * sw + kw - width, 0) // 2
        if self.padding == "same":
            bottom = tf.maximum((out_h - 1) * sh + kh - height - top, 0)
            right = tf.maximum((out_w - 1) * sw + kw - width - left, 0)
            x = tf.pad(
                x, [[0, 0], [top, bottom], [left, right], [0, 0]], constant_values=x.dtype.min
            )
        # Strided slices rather than extract_patches, which XLA computes as a convolution
        # (TF32 on recent GPUs would round the values compared).
        windows = tf.stack(
            [
                x[:, dy : dy + (out_h - 1) * sh + 1 : sh, dx : dx + (out_w - 1) * sw + 1 : sw]
                for dy in range(kh)
                for dx in range(kw)
            ],
            axis=3,
        )
        position = tf.argmax(windows, axis=3, output_type=tf.int32)
        rows = tf.range(out_h)[None, :, None, None] * sh - top + position // kw
        cols = tf.range(out_w)[None, None, :, None] * sw - left + position % kw
        flat = (rows * width + cols) * channels + tf.range(channels)
        return pooled, tf.stop_gradient(tf.cast(flat, tf.int64))

    def _pooled_side(self, n, k, s):
        if n is None:
            return None
        return -(-n // s) if self.padding == "same" else (n - k) // s + 1

    def compute_output_shape(self, input_shape):
        h = self._pooled_side(input_shape[1], self.pool_size[0], self.strides[0])
        w = self._pooled_side(input_shape[2], self.pool_size[1], self.strides[1])
        shape = (input_shape[0], h, w, input_shape[3])
        return shape, shape

    def compute_output_spec(self, x):
        shape, _ = self.compute_output_shape(x.shape)
        return (
            keras.KerasTensor(shape, dtype=self.compute_dtype),
            keras.KerasTensor(shape, dtype="int64"),
        )

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "strides": self.strides,
            "padding": self.padding,
        }


@keras.saving.register_keras_serializable(package="kerasseg")
class MaxUnpooling(layers.Layer):
    """Place each value back where ``MaxPoolingWithArgmax`` found its maximum; zeros elsewhere.

    ``call(x, indices, reference)``: ``x`` and ``indices`` have the pooled shape, ``reference``
    is the tensor that was pooled (only its run-time height and width are used), so odd sizes
    unpool back to exactly the size they had.
    """

    def call(self, x, indices, reference):
        shape = tf.shape(x, out_type=tf.int64)
        ref = tf.shape(reference, out_type=tf.int64)
        batch, channels = shape[0], shape[3]
        per_image = ref[1] * ref[2] * channels
        offsets = tf.range(batch, dtype=tf.int64)[:, None, None, None] * per_image
        flat_index = tf.reshape(indices + offsets, [-1, 1])
        out = tf.scatter_nd(flat_index, tf.reshape(x, [-1]), [batch * per_image])
        return tf.reshape(out, tf.stack([batch, ref[1], ref[2], channels]))

    def compute_output_shape(self, x_shape, indices_shape, reference_shape):
        return (x_shape[0], reference_shape[1], reference_shape[2], x_shape[3])


def bilinear_kernel(size, channels_out, channels_in, dtype="float32"):
    """A transposed-convolution kernel (size, size, out, in) that upsamples bilinearly.

    Channel i maps to channel i (up to the smaller count); for ``strides = size // 2`` and
    'same' padding it reproduces bilinear interpolation away from the borders.
    """
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    ramp = 1 - np.abs(np.arange(size) - center) / factor
    kernel = np.zeros((size, size, channels_out, channels_in), dtype=dtype)
    for c in range(min(channels_out, channels_in)):
        kernel[:, :, c, c] = np.outer(ramp, ramp)
    return kernel


@keras.saving.register_keras_serializable(package="kerasseg")
class BilinearUpsampling(keras.initializers.Initializer):
    """Initializer for ``Conv2DTranspose`` kernels: start as bilinear upsampling (FCN)."""

    def __call__(self, shape, dtype=None):
        kh, kw, channels_out, channels_in = shape
        if kh != kw:
            raise ValueError(f"BilinearUpsampling needs a square kernel; got {kh}x{kw}.")
        kernel = bilinear_kernel(kh, channels_out, channels_in)
        return keras.ops.convert_to_tensor(kernel, dtype=dtype or "float32")

    def get_config(self):
        return {}
