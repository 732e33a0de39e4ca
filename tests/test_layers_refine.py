"""RefineNet's blocks (kerasseg.layers.refine) against NumPy: chained residual pooling,
residual conv units, multi-resolution fusion; and the harness's block checks."""

import keras
import numpy as np
from scipy import ndimage

from kerasseg import layers as kl
from tests.harness import outputs_of, run_block_test


def _identity_kernel(channels):
    kernel = np.zeros((3, 3, channels, channels), "float32")
    kernel[1, 1] = np.eye(channels)
    return kernel


def test_chained_residual_pooling_matches_numpy():
    inp = keras.Input((10, 14, 3))
    model = keras.Model(inp, kl.chained_residual_pooling(inp, stages=4, name="crp"))
    for i in range(1, 5):
        model.get_layer(f"crp_conv{i}").set_weights([_identity_kernel(3)])
    x = np.random.default_rng(2).normal(size=(1, 10, 14, 3)).astype("float32")
    total = path = np.maximum(x, 0)
    for _ in range(4):
        # 'same' max pooling ignores the padding; edge replication gives the same maxima.
        path = ndimage.maximum_filter(path, size=(1, 5, 5, 1), mode="nearest")
        total = total + path
    np.testing.assert_allclose(outputs_of(model, x)[0], total, atol=1e-5)


def test_residual_conv_unit_and_fusion_match_numpy():
    fine, coarse = keras.Input((8, 8, 2)), keras.Input((4, 4, 2))
    model = keras.Model(
        [fine, coarse],
        [kl.residual_conv_unit(fine, "rcu"), kl.multi_resolution_fusion([fine, coarse], 2, "mrf")],
    )
    for name in ("rcu_conv1", "rcu_conv2"):
        model.get_layer(name).set_weights([_identity_kernel(2), np.zeros(2, "float32")])
    for name in ("mrf_conv1", "mrf_conv2"):
        model.get_layer(name).set_weights([_identity_kernel(2)])
    rng = np.random.default_rng(3)
    a = rng.normal(size=(1, 8, 8, 2)).astype("float32")
    b = np.broadcast_to(rng.normal(size=(1, 1, 1, 2)), (1, 4, 4, 2)).astype("float32")
    rcu, fused = outputs_of(model, [a, b])
    np.testing.assert_allclose(rcu, a + np.maximum(a, 0), atol=1e-5)
    # A constant coarse map upsamples to the same constant.
    np.testing.assert_allclose(fused, a + b[:, :1, :1, :], atol=1e-5)


def test_refine_blocks_contract():
    run_block_test(
        lambda x: kl.chained_residual_pooling(x, stages=2, name="crp"),
        (1, 10, 14, 3),
        expected_output_shape=(1, 10, 14, 3),
        name="crp",
    )
    run_block_test(
        lambda x: kl.residual_conv_unit(x, "rcu"),
        (1, 8, 8, 2),
        expected_output_shape=(1, 8, 8, 2),
        name="rcu",
    )
    run_block_test(
        lambda fine, coarse: kl.refinenet_block([fine, coarse], 4, "refine"),
        [(1, 8, 8, 2), (1, 4, 4, 3)],
        expected_output_shape=(1, 8, 8, 4),
        name="refine",
    )
