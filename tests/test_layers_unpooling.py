"""SegNet's argmax pooling and unpooling and FCN's bilinear initializer
(kerasseg.layers.unpooling): maxima back in place for any size, the gradient at the maxima
only, bilinear upsampling; and the harness's layer checks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasseg.layers import BilinearUpsampling, MaxPoolingWithArgmax, MaxUnpooling
from tests.harness import run_layer_test


def _unpool_reference(x):
    """Numpy 2x2 max pool + unpool: keep each window's maximum in place, zero the rest."""
    out = np.zeros_like(x)
    n, h, w, c = x.shape
    for b in range(n):
        for ch in range(c):
            for i in range(0, h, 2):
                for j in range(0, w, 2):
                    window = x[b, i : i + 2, j : j + 2, ch]
                    di, dj = np.unravel_index(np.argmax(window), window.shape)
                    out[b, i + di, j + dj, ch] = window[di, dj]
    return out


def test_max_unpooling_restores_maxima_in_place_for_any_size(tmp_path):
    inputs = keras.Input((None, None, 3))
    pooled, indices = MaxPoolingWithArgmax(2)(inputs)
    model = keras.Model(inputs, [pooled, MaxUnpooling()(pooled, indices, inputs)])
    assert indices.dtype == "int64"
    path = str(tmp_path / "unpool.keras")
    model.save(path)
    loaded = keras.models.load_model(path)  # dynamic sizes survive the file
    rng = np.random.default_rng(0)
    for shape in ((2, 6, 8, 3), (3, 5, 7, 3)):  # odd sizes unpool back to themselves
        x = rng.normal(size=shape).astype("float32")
        for m in (model, loaded):
            p, u = (keras.ops.convert_to_numpy(t) for t in m(x))
            assert p.shape == (shape[0], -(-shape[1] // 2), -(-shape[2] // 2), 3)
            np.testing.assert_array_equal(u, _unpool_reference(x))
    # The gradient reaches exactly the positions of the maxima.
    x = tf.constant(rng.normal(size=(2, 6, 8, 3)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(model(x)[1])
    grad = tape.gradient(total, x).numpy()
    np.testing.assert_array_equal(grad, (_unpool_reference(x.numpy()) != 0).astype("float32"))


@pytest.mark.parametrize(
    "kwargs,size,pooled",
    [
        ({}, (6, 8), (3, 4)),
        ({"padding": "same"}, (5, 7), (3, 4)),
        ({"pool_size": 3, "strides": 2, "padding": "valid"}, (7, 9), (3, 4)),
    ],
)
def test_max_pooling_with_argmax_layer_contract(kwargs, size, pooled):
    _, (values, indices) = run_layer_test(
        MaxPoolingWithArgmax,
        kwargs,
        (2, *size, 3),
        expected_output_shape=[(2, *pooled, 3), (2, *pooled, 3)],
    )
    assert indices.dtype == np.int64
    x = np.random.default_rng(0).normal(size=(2, *size, 3)).astype("float32")
    np.testing.assert_array_equal(
        values,
        x.reshape(2, -1)[np.arange(2)[:, None], indices.reshape(2, -1)].reshape(values.shape),
    )


@pytest.mark.parametrize("size", [(6, 8), (5, 7)])
def test_max_unpooling_layer_contract(size):
    x = np.random.default_rng(1).normal(size=(2, *size, 3)).astype("float32")
    pooled, indices = (keras.ops.convert_to_numpy(t) for t in MaxPoolingWithArgmax(2)(x))
    # The reference gives only its size: the gradient goes to the pooled values.
    _, (y,) = run_layer_test(
        MaxUnpooling,
        {},
        inputs=[pooled, indices, x],
        grad_inputs=[0],
        expected_output_shape=(2, *size, 3),
        expected_trainable_weights=0,
    )
    np.testing.assert_array_equal(y, _unpool_reference(x))


@pytest.mark.parametrize("factor", [2, 8])
def test_bilinear_initializer_upsamples_like_bilinear_resize(factor):
    layer = keras.layers.Conv2DTranspose(
        3,
        2 * factor,
        strides=factor,
        padding="same",
        use_bias=False,
        kernel_initializer=BilinearUpsampling(),
    )
    x = np.random.default_rng(factor).normal(size=(1, 6, 8, 3)).astype("float32")
    up = keras.ops.convert_to_numpy(layer(x))
    ref = tf.image.resize(x, (6 * factor, 8 * factor), "bilinear").numpy()
    border = factor  # interpolation needs a neighbour on each side
    np.testing.assert_allclose(
        up[:, border:-border, border:-border], ref[:, border:-border, border:-border], atol=1e-5
    )
    assert (
        keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(BilinearUpsampling())
        ).__class__
        is BilinearUpsampling
    )
