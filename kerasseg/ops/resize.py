"""Resizing feature maps to a partner tensor's size, in every context (eager, graph, XLA)."""

import tensorflow as tf

__all__ = [
    "exactly_double",
    "in_xla_context",
    "nearest_resize_by_gather",
    "resize_to",
    "static_size",
]


def static_size(x):
    """``(height, width)`` of an NHWC tensor where both are known when tracing, else None."""
    size = tuple(x.shape[1:3])
    return None if None in size else size


def exactly_double(x, reference):
    """Whether ``reference`` is statically known to be twice the height and width of ``x``."""
    source, target = static_size(x), static_size(reference)
    return source is not None and target == (2 * source[0], 2 * source[1])


def in_xla_context():
    """Whether the op being traced is compiled by XLA (``jit_compile=True``)."""
    if tf.executing_eagerly():
        return False
    try:
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # TF internals moved: assume XLA, the form that works everywhere
        return True
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def _nearest_indices(in_size, out_size):
    """Source index of each output index, as tf.image.resize's nearest (half-pixel centres,
    float32 arithmetic, clipped to the last pixel) computes it."""
    scale = tf.cast(in_size, tf.float32) / tf.cast(out_size, tf.float32)
    centres = (tf.cast(tf.range(out_size), tf.float32) + 0.5) * scale
    return tf.minimum(tf.cast(tf.floor(centres), tf.int32), in_size - 1)


def nearest_resize_by_gather(x, size):
    """``tf.image.resize(x, size, "nearest")`` as two gathers: the same values, and a
    gradient XLA can compile."""
    shape = tf.shape(x)
    x = tf.gather(x, _nearest_indices(shape[1], size[0]), axis=1)
    return tf.gather(x, _nearest_indices(shape[2], size[1]), axis=2)


def resize_to(x, reference, method):
    """``x`` (NHWC) resized to the run-time height and width of ``reference``, in ``x``'s dtype;
    ``method`` "bilinear" or "nearest"."""
    size = tf.shape(reference)[1:3]
    if method == "nearest" and in_xla_context():
        # XLA has no kernel for ResizeNearestNeighbor's gradient op; gathers compile, and
        # their gradient is a segment sum.
        return nearest_resize_by_gather(x, size)
    # Elsewhere ResizeNearestNeighbor and its gradient op are faster on CPU than a gather
    # or a broadcast-and-reshape repeat (whose gradient is a strided reduction).
    return tf.cast(tf.image.resize(x, size, method=method), x.dtype)
