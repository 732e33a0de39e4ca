"""What the harness's checks share: inputs, outputs, gradients, and the one tolerance."""

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

TOLERANCE = dict(rtol=1e-5, atol=1e-5)


def images(n=2, h=64, w=96, channels=3, seed=0):
    """Random images with values in [0, 255], as the models take them."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (n, h, w, channels)).astype("float32")


def outputs_of(model, x):
    """The model's outputs as a list of NumPy arrays (one per output), inference mode."""
    return [keras.ops.convert_to_numpy(y) for y in keras.tree.flatten(model(x, training=False))]


def assert_same_outputs(got, want):
    """``got`` and ``want`` (lists of arrays) agree within the harness's one tolerance."""
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), **TOLERANCE)


def normal(shape, seed=(11, 12), scale=1.0):
    """A stateless random normal tensor (the same values on every run)."""
    return tf.random.stateless_normal(shape, seed=seed) * scale


def gradients(fn, inputs, variables=()):
    """``fn(*inputs)`` and the gradients of a varied sum of it w.r.t. inputs and variables."""
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        out = fn(*inputs)
        loss = varied_sum([out])
    return out, tape.gradient(loss, list(inputs) + list(variables))


def assert_close(got, want, atol=1e-4, rtol=1e-4):
    """Two computations of the same thing (a fast kernel and the stock one) agree."""
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=atol, rtol=rtol)


def tmp_dir(tmp_path):
    """``tmp_path`` as a string, or a fresh temporary folder where the caller has none."""
    return os.fspath(tmp_path) if tmp_path is not None else tempfile.mkdtemp(prefix="kerasseg_")


def varied_sum(outputs):
    """A scalar with a different weight per element, so that no gradient is uniform."""
    total = 0.0
    for y in outputs:
        if y.dtype.is_floating:
            weights = tf.reshape(tf.cos(tf.range(tf.size(y), dtype=y.dtype)), tf.shape(y))
            total += tf.reduce_sum(tf.sin(y) * weights)
    return total
