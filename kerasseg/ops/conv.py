"""Convolutions TensorFlow's stock ops do slowly or not at all: a stride-1 dilated convolution
with a gradient on every device, and a 3x3 convolution over a 2x nearest upsampling computed
at the source resolution."""

import functools

import numpy as np
import tensorflow as tf

__all__ = [
    "dilated_conv2d",
    "generic_dilated_conv2d",
    "native_dilated_gradient",
    "phase_kernels",
    "upsampled_conv3x3",
]


@functools.lru_cache(maxsize=None)
def native_dilated_gradient():
    """Whether the running TensorFlow has kernels for the gradient of a dilated ``conv2d``.

    oneDNN and cuDNN have them; TensorFlow's generic CPU kernels (what runs where oneDNN is
    off, e.g. on the AMD EPYC machines without AVX-512) refuse dilation rates above 1 in
    ``Conv2DBackpropInput``/``Filter``. Asked of TensorFlow once, on a tiny case, instead of
    guessed from the CPU or the environment.
    """
    # The backprop ops themselves: init_scope (eager, even when first asked while a graph is
    # being traced) also pauses gradient tapes.
    with tf.init_scope():
        x, kernel = tf.ones((1, 6, 6, 2)), tf.ones((3, 3, 2, 2))
        options = dict(strides=[1, 1, 1, 1], padding="SAME", dilations=[1, 2, 2, 1])
        try:
            tf.raw_ops.Conv2DBackpropInput(
                input_sizes=tf.shape(x), filter=kernel, out_backprop=x, **options
            )
            tf.raw_ops.Conv2DBackpropFilter(
                input=x, filter_sizes=tf.shape(kernel), out_backprop=x, **options
            )
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
            return False
    return True


def _dilated_padding(kernel_size, rates, padding):
    """Zero padding (before, after) per spatial axis of a stride-1 dilated convolution, and
    that of its transpose (the input gradient): together they span the kernel's extent."""
    forward, transposed = [], []
    for size, rate in zip(kernel_size, rates):
        extent = rate * (size - 1)
        before = extent // 2 if padding == "SAME" else 0  # TensorFlow pads the odd pixel after
        after = extent - before if padding == "SAME" else 0
        forward.append((before, after))
        transposed.append((extent - before, extent - after))
    return forward, transposed


def dilated_conv2d(x, kernel, rates, padding):
    """Stride-1 dilated ``tf.nn.conv2d`` (NHWC) with a gradient on every device.

    Where TensorFlow has no dilated gradient kernel (``native_dilated_gradient``), the
    gradient is that of ``generic_dilated_conv2d``. Exact (float rounding aside), and far
    faster than the space-to-batch form Keras falls back to.
    """
    rates = [int(r) for r in rates]
    if native_dilated_gradient():
        return tf.nn.conv2d(x, kernel, 1, padding, dilations=rates)
    return generic_dilated_conv2d(x, tf.convert_to_tensor(kernel), rates, padding)


def generic_dilated_conv2d(x, kernel, rates, padding):
    """``dilated_conv2d`` whose gradient is computed with forward dilated convolutions, which
    every kernel supports: the input gradient is the dilated convolution of the output gradient
    with the flipped, transposed kernel; the kernel gradient correlates the padded input with
    the output gradient, batch and channels swapped, sampled every ``rate`` pixels."""
    pads, transposed_pads = _dilated_padding(kernel.shape[:2], rates, padding)

    @tf.custom_gradient
    def conv(x, kernel):
        y = tf.nn.conv2d(x, kernel, 1, padding, dilations=rates)

        def grad(dy):
            transposed = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])
            dy_padded = tf.pad(dy, [[0, 0], *transposed_pads, [0, 0]])
            dx = tf.nn.conv2d(dy_padded, transposed, 1, "VALID", dilations=rates)
            x_padded = tf.pad(x, [[0, 0], *pads, [0, 0]])
            dk = tf.nn.conv2d(
                tf.transpose(x_padded, [3, 1, 2, 0]),
                tf.transpose(dy, [1, 2, 0, 3]),
                strides=rates,
                padding="VALID",
            )
            return dx, tf.transpose(dk, [1, 2, 0, 3])

        return y, grad

    return conv(x, kernel)


# A 3-tap kernel row as the two output phases of a 2x nearest upsampling see it: phase 0
# reads source pixels (i - 1, i) with taps (k0, k1 + k2), phase 1 reads (i, i + 1) with
# (k0 + k1, k2). Indexed [phase, tap, original tap].
_PHASE_TAPS = np.array([[[1, 0, 0], [0, 1, 1]], [[1, 1, 0], [0, 0, 1]]], "float32")
# The same for rows and columns at once: (row phase, column phase, 2x2 tap) x (3x3 tap).
_PHASE_MATRIX = np.einsum("aik,bjl->abijkl", _PHASE_TAPS, _PHASE_TAPS).reshape(16, 9)


def phase_kernels(kernel):
    """The four 2x2 kernels, indexed 2a + b, of a 3x3 kernel over a 2x nearest upsampling.

    One small matmul over the nine taps: building them by slicing and stacking took as long
    as a quarter of the convolutions themselves on the deepest U-Net stage.
    """
    _, _, channels, filters = kernel.shape
    taps = tf.reshape(kernel, (9, channels * filters))
    phases = tf.matmul(tf.constant(_PHASE_MATRIX, kernel.dtype), taps)
    return tf.unstack(tf.reshape(phases, (4, 2, 2, channels, filters)))


def upsampled_conv3x3(x, kernel, pad_inside=True):
    """``conv3x3_same(nearest_upsample_2x(x))`` computed from ``x``, by output phase.

    Each of the four output phases (row and column parity) reads only a 2x2 neighbourhood of
    ``x``, with the taps that fall on the same source pixel summed (``phase_kernels``): four
    2x2 convolutions at ``x``'s resolution, interleaved by depth-to-space, with 4 instead of 9
    multiply-adds per output pixel and channel of ``x``.
    """
    kernels = phase_kernels(kernel)
    phases = []
    for a in range(2):
        for b in range(2):
            # Phase (a, b) reads rows (i - 1 + a, i + a) and likewise columns: one pixel of
            # zero padding before (a = 0) or after (a = 1). Padding inside the convolution is
            # the faster forward pass, but TensorFlow has no oneDNN gradient for explicitly
            # padded convolutions: the generic kernels it falls back to are slow in float32
            # and ~30x slower in bfloat16, so training pads first and convolves 'VALID'.
            padding = [[0, 0], [1 - a, a], [1 - b, b], [0, 0]]
            taps = kernels[2 * a + b]
            if pad_inside:
                phases.append(tf.nn.conv2d(x, taps, 1, padding))
            else:
                phases.append(tf.nn.conv2d(tf.pad(x, padding), taps, 1, "VALID"))
    # depth_to_space puts channel block (2a + b) at output pixel (2i + a, 2j + b).
    return tf.nn.depth_to_space(tf.concat(phases, axis=-1), 2)
