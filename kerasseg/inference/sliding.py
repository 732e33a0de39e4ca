"""Sliding-window inference (mmsegmentation's slide mode) with Hann-weighted blending.

``n = max(L - t + s - 1, 0) // s + 1`` windows per axis with stride ``s = t * (1 - overlap)``,
the last one moved back to the image edge. Where windows overlap their probabilities are blended
with a separable Hann weight (``sin^2``, highest in the window centre): pixels near a window's
border see less context and predict worse, so centre-weighted blending removes the seams a flat
average leaves. Pixels only one window covers get that window's probabilities exactly.
"""

import math

import numpy as np
import tensorflow as tf

__all__ = ["window_starts", "hann", "tiled_probabilities"]

# A tiny floor under the Hann weight keeps the blend well conditioned at window corners.
_MIN_WEIGHT = 1e-3


def window_starts(length, tile, stride):
    """Window offsets along one axis; the last window is moved back to end at the edge."""
    count = max(length - tile + stride - 1, 0) // stride + 1
    return [min(i * stride, max(length - tile, 0)) for i in range(count)]


def hann(length):
    """The 1-D blending weight of a window of ``length`` pixels (floored at 1e-3)."""
    i = np.arange(length, dtype=np.float64)
    return np.maximum(np.sin(math.pi * (i + 0.5) / length) ** 2, _MIN_WEIGHT).astype(np.float32)


def _weight_sum(length, window, starts):
    total = np.zeros(length, np.float32)
    for start in starts:
        total[start : start + window] += hann(window)
    return total


def tiled_probabilities(image, tile, overlap, batch_size, run_windows):
    """Sliding-window probabilities for one (H, W, C) image.

    ``run_windows(batch)`` maps a batch of equal-size windows to their probabilities (padded to
    the model's multiple and cropped back); ``batch_size`` windows go through it at a time.
    """
    height, width = int(image.shape[0]), int(image.shape[1])
    th, tw = min(tile[0], height), min(tile[1], width)
    ys = window_starts(height, tile[0], max(int(tile[0] * (1 - overlap)), 1))
    xs = window_starts(width, tile[1], max(int(tile[1] * (1 - overlap)), 1))
    boxes = [(y, x) for y in ys for x in xs]
    weight = tf.constant(hann(th)[:, None] * hann(tw)[None, :])[..., None]
    accumulator = None
    for start in range(0, len(boxes), batch_size):
        group = boxes[start : start + batch_size]
        windows = tf.stack([image[y : y + th, x : x + tw] for y, x in group])
        probs = run_windows(windows) * weight
        if accumulator is None:
            accumulator = tf.Variable(
                tf.zeros((height, width, probs.shape[-1]), tf.float32), trainable=False
            )
        for (y, x), p in zip(group, tf.unstack(probs)):
            accumulator[y : y + th, x : x + tw].assign(accumulator[y : y + th, x : x + tw] + p)
    # The windows form a full grid and the weight is separable, so the per-pixel weight sum
    # is the outer product of the per-axis sums.
    total = _weight_sum(height, th, ys)[:, None] * _weight_sum(width, tw, xs)[None, :]
    return tf.convert_to_tensor(accumulator) / tf.constant(total)[..., None]
