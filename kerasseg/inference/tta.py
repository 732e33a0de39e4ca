"""Test-time augmentation: probabilities averaged over scales and horizontal flips."""

import numpy as np
import tensorflow as tf

__all__ = ["check_scales", "with_tta"]


def check_scales(scales):
    """``scales`` as a tuple of positive floats (a ValueError otherwise)."""
    scales = tuple(float(s) for s in np.atleast_1d(scales))
    if not scales or any(s <= 0 for s in scales):
        raise ValueError(f"scales must be positive numbers; got {scales!r}.")
    return scales


def with_tta(batch, scales, flip, at_size):
    """Probabilities of ``batch`` [N, H, W, C] averaged over ``scales`` and (with ``flip``)
    horizontal flips; ``at_size(x)`` gives the probabilities of a batch at its own size.
    Each view's probabilities are mapped back (unflipped, resized bilinearly) before averaging."""
    height, width = int(batch.shape[1]), int(batch.shape[2])
    total, count = None, 0
    for scale in scales:
        size = (max(int(round(height * scale)), 1), max(int(round(width * scale)), 1))
        scaled = batch if size == (height, width) else tf.image.resize(batch, size, "bilinear")
        for flipped in (False, True) if flip else (False,):
            x = tf.reverse(scaled, axis=[2]) if flipped else scaled
            probs = at_size(x)
            if flipped:
                probs = tf.reverse(probs, axis=[2])
            if size != (height, width):
                probs = tf.image.resize(probs, (height, width), "bilinear")
            total = probs if total is None else total + probs
            count += 1
    return total if count == 1 else total / count
