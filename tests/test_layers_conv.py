"""The fast-kernel layers of kerasseg.layers.conv (FusedBatchNormalization, DilatedConv2D,
use_fast_kernels) against the stock Keras computation they replace: same weights, same
outputs, same gradients, same moving statistics; and the harness's layer checks (config,
saving, gradient).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from kerasseg.layers import DilatedConv2D, FusedBatchNormalization, use_fast_kernels
from kerasseg.ops import conv as core
from tests.harness import assert_close as _assert_close
from tests.harness import gradients as _grads
from tests.harness import normal as _normal
from tests.harness import run_layer_test


@pytest.mark.parametrize("training", [True, False])
def test_fused_batch_norm_layer_contract(training):
    run_layer_test(
        FusedBatchNormalization,
        dict(momentum=0.9, epsilon=1e-3),
        (2, 6, 5, 8),
        call_kwargs={"training": training},
        expected_output_shape=(2, 6, 5, 8),
        expected_trainable_weights=2,
    )


@pytest.mark.parametrize("rate", [1, 2, 6])
def test_dilated_conv_layer_contract(rate):
    run_layer_test(
        DilatedConv2D,
        dict(filters=5, kernel_size=3, padding="same", dilation_rate=rate),
        (2, 16, 16, 4),
        expected_output_shape=(2, 16, 16, 5),
        expected_trainable_weights=2,
    )


# ------------------------------------------------------------------ FusedBatchNormalization


def _bn_pair(**kwargs):
    stock, fused = layers.BatchNormalization(**kwargs), FusedBatchNormalization(**kwargs)
    shape = (None, 6, 5, 8)
    stock.build(shape)
    fused.build(shape)
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=w.shape).astype("float32") for w in stock.weights]
    for i, w in enumerate(stock.weights):  # a positive moving variance
        if "variance" in w.path:
            weights[i] = np.abs(weights[i]) + 0.5
    stock.set_weights(weights)
    fused.set_weights(weights)
    return stock, fused


@pytest.mark.parametrize("training", [True, False])
def test_fused_batch_norm_matches_keras(training):
    stock, fused = _bn_pair(momentum=0.9, epsilon=1e-3)
    x = _normal((4, 6, 5, 8), scale=3.0) + 2.0
    want, want_grads = _grads(lambda x: stock(x, training=training), [x], stock.trainable_weights)
    got, got_grads = _grads(lambda x: fused(x, training=training), [x], fused.trainable_weights)
    _assert_close([got], [want])
    _assert_close(got_grads, want_grads)
    # The moving statistics moved the same way (Keras averages the biased batch variance).
    _assert_close(
        [v.numpy() for v in fused.non_trainable_weights],
        [v.numpy() for v in stock.non_trainable_weights],
        atol=1e-5,
    )
    if training:
        assert not np.allclose(stock.moving_mean.numpy(), _bn_pair()[0].moving_mean.numpy())


@pytest.mark.parametrize(
    "kwargs,shape",
    [
        ({"axis": 1}, (4, 8, 6, 5)),  # channels first
        ({}, (4, 7, 8)),  # rank 3
        ({"epsilon": 1e-6}, (4, 6, 5, 8)),  # below the fused kernel's minimum
        ({"center": False, "scale": False}, (4, 6, 5, 8)),
    ],
)
def test_fused_batch_norm_fallbacks_and_options_match_keras(kwargs, shape):
    stock = layers.BatchNormalization(**kwargs)
    fused = FusedBatchNormalization(**kwargs)
    x = _normal(shape) * 2.0 + 1.0
    stock.build(shape)
    fused.build(shape)
    fused.set_weights(stock.get_weights())
    for training in (True, False):
        _assert_close([fused(x, training=training)], [stock(x, training=training)])


# ------------------------------------------------------------------------- DilatedConv2D


@pytest.mark.parametrize("rate,size", [(2, 9), (6, 16), (18, 16)])
def test_dilated_conv_matches_keras(rate, size):
    stock = layers.Conv2D(5, 3, padding="same", dilation_rate=rate)
    fast = DilatedConv2D(5, 3, padding="same", dilation_rate=rate)
    x = _normal((2, size, size, 4))
    stock.build(x.shape)
    fast.build(x.shape)
    fast.set_weights([w + 0.1 for w in stock.get_weights()])
    stock.set_weights(fast.get_weights())
    want, want_grads = _grads(stock, [x], stock.trainable_weights)
    got, got_grads = _grads(fast, [x], fast.trainable_weights)
    _assert_close([got], [want])
    _assert_close(got_grads, want_grads)


@pytest.mark.parametrize(
    "kernel_size,rate,padding,size",
    [
        ((3, 3), (2, 2), "SAME", (9, 11)),
        ((3, 3), (18, 18), "SAME", (16, 16)),
        ((2, 3), (3, 2), "SAME", (10, 9)),
        ((3, 3), (2, 3), "VALID", (12, 13)),
    ],
)
def test_generic_dilated_gradient_matches_keras(kernel_size, rate, padding, size):
    """The gradient used where TensorFlow has no dilated gradient kernel (oneDNN off), run
    here whatever this machine has, against Keras's space-to-batch computation."""
    stock = layers.Conv2D(
        5, kernel_size, padding=padding.lower(), dilation_rate=rate, use_bias=False
    )
    x = _normal((2, *size, 4))
    stock.build(x.shape)
    kernel = stock.kernel
    want, want_grads = _grads(stock, [x], [kernel])
    got, got_grads = _grads(
        lambda x: core.generic_dilated_conv2d(x, tf.convert_to_tensor(kernel), list(rate), padding),
        [x],
        [kernel],
    )
    _assert_close([got], [want])
    _assert_close(got_grads, want_grads)


def test_native_dilated_gradient_is_asked_of_tensorflow():
    # Whatever the answer, DilatedConv2D trains: the answer picks the kernel, never breaks it.
    assert core.native_dilated_gradient() in (True, False)
    fast = DilatedConv2D(3, 3, padding="same", dilation_rate=4)
    x = _normal((1, 12, 12, 2))
    _, grads = _grads(fast, [x], [])
    assert np.all(np.isfinite(grads[0].numpy()))


# --------------------------------------------------------------- use_fast_kernels, saving


def _stock_model():
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(8, 3, padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Conv2D(8, 3, padding="same", dilation_rate=4)(x)
    inner = keras.Model(inputs, x, name="inner")
    outer_in = keras.Input((16, 16, 3))
    y = layers.BatchNormalization()(inner(outer_in))
    return keras.Model(outer_in, y)


def test_use_fast_kernels_switches_in_place_and_keeps_results(tmp_path):
    model = _stock_model()
    x = _normal((2, 16, 16, 3))
    before_weights = [w.numpy() for w in model.weights]
    want = [model(x, training=t).numpy() for t in (False, True)]
    model = _stock_model()
    model.set_weights(before_weights)
    assert use_fast_kernels(model) is model
    inner = model.get_layer("inner")
    kinds = [type(layer) for layer in inner.layers[1:]] + [type(model.layers[-1])]
    assert kinds == [layers.Conv2D, FusedBatchNormalization, DilatedConv2D, FusedBatchNormalization]
    _assert_close([model(x, training=t) for t in (False, True)], want)

    path = tmp_path / "fast.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects: the classes are registered
    assert type(loaded.layers[-1]) is FusedBatchNormalization
    _assert_close([loaded(x, training=False)], [model(x, training=False)])
