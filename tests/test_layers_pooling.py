"""The context-pooling layers of kerasseg.layers.pooling: AdaptiveAveragePooling2D against
PyTorch's windows at run-time sizes; the harness's layer checks for it and its block checks
for ASPP and the pyramid pooling module."""

import keras
import numpy as np
import pytest

from kerasseg.layers import AdaptiveAveragePooling2D, aspp, pyramid_pooling_module
from tests.harness import run_block_test, run_layer_test


def _adaptive_pool_reference(x, bins):
    n, h, w, c = x.shape
    out = np.zeros((n, bins, bins, c), x.dtype)
    for i in range(bins):
        h0, h1 = (i * h) // bins, -(-((i + 1) * h) // bins)
        for j in range(bins):
            w0, w1 = (j * w) // bins, -(-((j + 1) * w) // bins)
            out[:, i, j] = x[:, h0:h1, w0:w1].mean(axis=(1, 2))
    return out


@pytest.mark.parametrize("bins", [1, 2, 3, 6])
def test_adaptive_average_pooling_matches_windows_at_runtime_sizes(bins):
    inputs = keras.Input((None, None, 4))
    model = keras.Model(inputs, AdaptiveAveragePooling2D(bins)(inputs))
    rng = np.random.default_rng(bins)
    for h, w in ((8, 12), (7, 5), (3, 2), (13, 13)):
        x = rng.normal(size=(2, h, w, 4)).astype("float32")
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(model(x)),
            _adaptive_pool_reference(x, bins),
            rtol=1e-5,
            atol=1e-5,
        )


@pytest.mark.parametrize("bins", [1, 6])
def test_adaptive_average_pooling_layer_contract(bins):
    _, (y,) = run_layer_test(
        AdaptiveAveragePooling2D,
        {"bins": bins},
        (2, 7, 9, 3),
        expected_output_shape=(2, bins, bins, 3),
        expected_trainable_weights=0,
    )
    x = np.random.default_rng(0).normal(size=(2, 7, 9, 3)).astype("float32")
    np.testing.assert_allclose(y, _adaptive_pool_reference(x, bins), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bins", [0, 2.0, True])
def test_adaptive_average_pooling_refuses_bad_bins(bins):
    with pytest.raises(ValueError, match="bins must be an integer >= 1"):
        AdaptiveAveragePooling2D(bins)


@pytest.mark.parametrize("separable", [False, True])
def test_aspp_block_contract(separable):
    model, _ = run_block_test(
        lambda x: aspp(x, 8, (2, 3), separable=separable, name="aspp"),
        (2, 6, 10, 4),
        expected_output_shape=(2, 6, 10, 8),
        name="aspp",
    )
    rates = sorted(
        max(layer.dilation_rate)
        for layer in model.layers
        if hasattr(layer, "dilation_rate") and max(layer.dilation_rate) > 1
    )
    assert rates == [2, 3]


def test_pyramid_pooling_module_block_contract():
    # The input and one 8 / 4 = 2-channel branch per bin, at the input's size.
    run_block_test(
        lambda x: pyramid_pooling_module(x, (1, 2, 3, 6), name="ppm"),
        (2, 5, 7, 8),
        expected_output_shape=(2, 5, 7, 8 + 4 * 2),
        name="ppm",
    )
