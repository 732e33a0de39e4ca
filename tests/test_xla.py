"""XLA (``jit_compile=True``): the forms kerasseg switches to where XLA has no kernel give the
values of the native ops, and models that use them train under XLA on the CPU.

XLA has no kernel for ResizeNearestNeighbor's gradient nor for MaxPoolWithArgmax; inside an
XLA-compiled function the nearest resize runs as gathers and SegNet's pooling indices come
from strided slices.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasseg
from kerasseg.layers.unpooling import MaxPoolingWithArgmax
from kerasseg.ops.resize import in_xla_context, nearest_resize_by_gather


def test_xla_context_is_detected_only_under_jit_compile():
    seen = {}

    def probe(x):
        seen["now"] = in_xla_context()
        return x

    tf.function(probe, jit_compile=True)(tf.ones(2))
    assert seen["now"] is True
    tf.function(probe, jit_compile=False)(tf.ones(2))
    assert seen["now"] is False
    assert in_xla_context() is False  # eager


@pytest.mark.parametrize(
    "source,target",
    [
        ((5, 7), (10, 14)),
        ((7, 5), (15, 11)),
        ((33, 31), (32, 32)),
        ((8, 9), (3, 4)),
        ((1, 1), (4, 5)),
        ((24, 16), (96, 64)),
        ((13, 10), (77, 20)),
    ],
)
def test_nearest_resize_by_gather_equals_tf_image_resize(source, target):
    x = tf.random.stateless_normal((2, *source, 3), seed=(1, 2))
    want = tf.image.resize(x, target, "nearest")
    got = nearest_resize_by_gather(x, tf.constant(target))
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    jitted = tf.function(nearest_resize_by_gather, jit_compile=True)(x, tf.constant(target))
    np.testing.assert_array_equal(jitted.numpy(), want.numpy())


def test_nearest_resize_gradient_under_xla_equals_native():
    x = tf.random.stateless_normal((2, 6, 5, 3), seed=(3, 4))
    weights = tf.random.stateless_normal((2, 12, 11, 3), seed=(5, 6))

    def grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            reference = tf.zeros((1, 12, 11, 1))
            from kerasseg.layers import upsample_like

            loss = tf.reduce_sum(upsample_like(x, reference, "nearest") * weights)
        return tape.gradient(loss, x)

    native = tf.function(grad, jit_compile=False)(x)
    xla = tf.function(grad, jit_compile=True)(x)
    np.testing.assert_allclose(xla.numpy(), native.numpy(), rtol=1e-5, atol=1e-5)
    # Independent check: each source pixel collects the weights of the pixels copied from it.
    rows = np.minimum(((np.arange(12) + 0.5) * 6 / 12).astype(int), 5)
    cols = np.minimum(((np.arange(11) + 0.5) * 5 / 11).astype(int), 4)
    want = np.zeros((2, 6, 5, 3), np.float32)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            want[:, r, c] += weights.numpy()[:, i, j]
    np.testing.assert_allclose(xla.numpy(), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 8, 8, 3), (2, 7, 9, 4), (1, 5, 5, 2)])
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("pool,stride", [(2, 2), (3, 2), (3, 3)])
def test_max_pool_argmax_under_xla_equals_native(shape, padding, pool, stride):
    rng = np.random.default_rng(sum(shape) + pool + stride)
    x = rng.normal(size=shape).astype("float32")
    # Ties (zeros after a ReLU) must resolve to the same position; all-negative windows must
    # never pick 'same' padding.
    x = np.maximum(x, 0) if pool == 2 else x - 3.0
    layer = MaxPoolingWithArgmax(pool, stride, padding)
    native_pooled, native_index = layer(tf.constant(x))
    pooled, index = tf.function(layer, jit_compile=True)(tf.constant(x))
    np.testing.assert_array_equal(pooled.numpy(), native_pooled.numpy())
    np.testing.assert_array_equal(index.numpy(), native_index.numpy())


def _segnet_blocks():
    """Two SegNet blocks down (conv-BN-ReLU, argmax pooling) and two up (unpooling with the
    indices, conv-BN-ReLU), then a 3-class softmax."""
    from kerasseg.layers import MaxPoolingWithArgmax, MaxUnpooling, conv_bn_act

    inputs = keras.Input((32, 32, 3))
    x, skips = inputs, []
    for block, filters in enumerate((8, 16)):
        x = conv_bn_act(x, filters, 3, name=f"down{block}")
        pre_pool = x
        x, indices = MaxPoolingWithArgmax(2, name=f"pool{block}")(x)
        skips.append((indices, pre_pool))
    for block, (indices, pre_pool) in reversed(list(enumerate(skips))):
        x = MaxUnpooling(name=f"unpool{block}")(x, indices, pre_pool)
        x = conv_bn_act(x, 8, 3, name=f"up{block}")
    outputs = keras.layers.Conv2D(3, 1, activation="softmax")(x)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize(
    "name,options",
    [
        # the nearest-resize decoder (UpsampleConv2D) on the paper encoder: the same decoder
        # layers as on a backbone, a fraction of the graph for XLA to compile
        ("unet", {"backbone": None, "filters": 8, "depth": 3, "upsampling": "nearest"}),
        # SegNet's pooling indices, on a two-block encoder-decoder of SegNet's own layers:
        # the whole VGG16 SegNet took three minutes of XLA compilation for the same check.
        ("segnet_blocks", {}),
    ],
)
def test_models_train_under_xla(name, options):
    """XLA compiles the training step, computes the graph's loss and predictions, and the
    loss falls. (Whole-network gradients are not compared: in a random deep network with
    batch norm over tiny maps, XLA's different float rounding flips ReLUs and moves them by a
    few per cent, with or without these layers.)"""
    tf.keras.utils.set_random_seed(0)
    if name == "segnet_blocks":
        model = _segnet_blocks()
    else:
        model = kerasseg.build(name, 3, weights=None, input_shape=(32, 32, 3), **options)
    x = tf.random.stateless_uniform((2, 32, 32, 3), seed=(7, 8), maxval=255.0)
    y = tf.random.stateless_uniform((2, 32, 32), seed=(9, 10), maxval=3, dtype=tf.int32)

    predict = tf.function(lambda x: model(x, training=False))
    native = predict(x).numpy()
    xla = tf.function(lambda x: model(x, training=False), jit_compile=True)(x).numpy()
    np.testing.assert_allclose(xla, native, atol=1e-4)

    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    # The training-mode loss, compiled by XLA too: natively (oneDNN or TensorFlow's generic
    # kernels) batch norm over SegNet's 1x1 deepest maps amplifies rounding differences to
    # a few tenths of a per cent.
    train_forward = tf.function(lambda x: model(x, training=True), jit_compile=True)
    first = float(loss_fn(y, train_forward(x)))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss_fn, jit_compile=True)
    losses = [float(model.train_on_batch(x, y)) for _ in range(5)]
    assert losses[0] == pytest.approx(first, rel=1e-4)
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
