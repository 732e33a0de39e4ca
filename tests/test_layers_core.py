"""The fast layers in kerasseg.layers.core against the stock Keras computation they replace:
same weights, same outputs, same gradients, same moving statistics, and a .keras round trip.
"""
import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from kerasseg.layers import (DilatedConv2D, FusedBatchNormalization, UpsampleConv2D,
                             use_fast_kernels)
from kerasseg.ops import conv as core

RNG_SEED = (11, 12)


def _normal(shape, seed=RNG_SEED, scale=1.0):
    return tf.random.stateless_normal(shape, seed=seed) * scale


def _grads(fn, inputs, variables):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        out = fn(*inputs)
        # Varied per-pixel weights, so that no gradient is trivially uniform.
        weights = tf.reshape(tf.cos(tf.range(tf.size(out), dtype=out.dtype)), tf.shape(out))
        loss = tf.reduce_sum(tf.sin(out) * weights)
    return out, tape.gradient(loss, list(inputs) + list(variables))


def _assert_close(got, want, atol=1e-4, rtol=1e-4):
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=atol, rtol=rtol)


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
    want, want_grads = _grads(lambda x: stock(x, training=training), [x],
                              stock.trainable_weights)
    got, got_grads = _grads(lambda x: fused(x, training=training), [x],
                            fused.trainable_weights)
    _assert_close([got], [want])
    _assert_close(got_grads, want_grads)
    # The moving statistics moved the same way (Keras averages the biased batch variance).
    _assert_close([v.numpy() for v in fused.non_trainable_weights],
                  [v.numpy() for v in stock.non_trainable_weights], atol=1e-5)
    if training:
        assert not np.allclose(stock.moving_mean.numpy(), _bn_pair()[0].moving_mean.numpy())


@pytest.mark.parametrize("kwargs,shape", [
    ({"axis": 1}, (4, 8, 6, 5)),                      # channels first
    ({}, (4, 7, 8)),                                  # rank 3
    ({"epsilon": 1e-6}, (4, 6, 5, 8)),                # below the fused kernel's minimum
    ({"center": False, "scale": False}, (4, 6, 5, 8)),
])
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


@pytest.mark.parametrize("kernel_size,rate,padding,size", [
    ((3, 3), (2, 2), "SAME", (9, 11)), ((3, 3), (18, 18), "SAME", (16, 16)),
    ((2, 3), (3, 2), "SAME", (10, 9)), ((3, 3), (2, 3), "VALID", (12, 13)),
])
def test_generic_dilated_gradient_matches_keras(kernel_size, rate, padding, size):
    """The gradient used where TensorFlow has no dilated gradient kernel (oneDNN off), run
    here whatever this machine has, against Keras's space-to-batch computation."""
    stock = layers.Conv2D(5, kernel_size, padding=padding.lower(), dilation_rate=rate,
                          use_bias=False)
    x = _normal((2, *size, 4))
    stock.build(x.shape)
    kernel = stock.kernel
    want, want_grads = _grads(stock, [x], [kernel])
    got, got_grads = _grads(
        lambda x: core.generic_dilated_conv2d(x, tf.convert_to_tensor(kernel), list(rate),
                                               padding), [x], [kernel])
    _assert_close([got], [want])
    _assert_close(got_grads, want_grads)


def test_native_dilated_gradient_is_asked_of_tensorflow():
    # Whatever the answer, DilatedConv2D trains: the answer picks the kernel, never breaks it.
    assert core.native_dilated_gradient() in (True, False)
    fast = DilatedConv2D(3, 3, padding="same", dilation_rate=4)
    x = _normal((1, 12, 12, 2))
    _, grads = _grads(fast, [x], [])
    assert np.all(np.isfinite(grads[0].numpy()))


# ------------------------------------------------------------------------ UpsampleConv2D


def _upsample_reference(layer, x, reference):
    """What UpsampleConv2D stands for: nearest resize, concatenate, one 3x3 convolution."""
    y = tf.image.resize(x, tf.shape(reference)[1:3], "nearest")
    if layer.merge:
        y = tf.concat([y, reference], -1)
    y = tf.nn.conv2d(y, layer.kernel, 1, "SAME")
    return y + layer.bias if layer.use_bias else y


@pytest.mark.parametrize("source,target,channels,filters,merge", [
    ((4, 5), (8, 10), 3, 8, True),      # exactly double: the phase form, in both modes
    ((16, 16), (32, 32), 6, 64, True),
    ((16, 16), (32, 32), 6, 64, False),  # no skip: the phases alone
    ((5, 5), (11, 9), 3, 4, True),      # not double: resize then convolve
])
@pytest.mark.parametrize("training", [False, True])
def test_upsample_conv_matches_resize_concat_conv(source, target, channels, filters, merge,
                                                   training):
    layer = UpsampleConv2D(filters, merge=merge, use_bias=True, bias_initializer="ones")
    x = _normal((2, *source, channels))
    reference = _normal((2, *target, 5), seed=(3, 4))
    got, got_grads = _grads(lambda x, r: layer(x, r, training=training), [x, reference],
                            layer.trainable_weights)
    want, want_grads = _grads(lambda x, r: _upsample_reference(layer, x, r), [x, reference],
                              layer.trainable_weights)
    assert got.shape == (2, *target, filters)
    assert layer.kernel.shape == (3, 3, channels + (5 if merge else 0), filters)
    _assert_close([got], [want], atol=1e-4)
    if not merge:  # the reference gives only its size: no gradient flows into it
        got_grads, want_grads = got_grads[:1] + got_grads[2:], want_grads[:1] + want_grads[2:]
    _assert_close(got_grads, want_grads, atol=1e-3)


def _conv_paddings(layer, x, reference, training):
    """The padding attribute of every convolution in the traced call and its gradient."""
    @tf.function
    def step(x, reference):
        _, grads = _grads(lambda a, b: layer(a, b, training=training), [x, reference],
                          layer.trainable_weights)
        return grads

    graph = step.get_concrete_function(x, reference).graph
    return [op.get_attr("padding") for op in graph.get_operations()
            if op.type.startswith("Conv2D")]


def test_upsample_conv_trains_without_explicitly_padded_convolutions():
    # TensorFlow runs the gradients of EXPLICIT-padded convolutions on its generic kernels
    # instead of oneDNN's (30x slower in bfloat16), so the training graph must have none.
    layer = UpsampleConv2D(64)
    x, reference = _normal((1, 16, 16, 4)), _normal((1, 32, 32, 3), seed=(5, 6))
    training = _conv_paddings(layer, x, reference, training=True)
    inference = _conv_paddings(layer, x, reference, training=False)
    assert b"EXPLICIT" not in training and b"VALID" in training  # the four phases
    assert inference.count(b"EXPLICIT") >= 4  # the faster forward form is kept at inference


def test_upsample_conv_under_xla_matches():
    layer = UpsampleConv2D(8)
    x, reference = _normal((2, 6, 6, 4)), _normal((2, 12, 12, 3), seed=(5, 6))
    for training in (False, True):
        eager = layer(x, reference, training=training)
        xla = tf.function(lambda a, b: layer(a, b, training=training), jit_compile=True)(
            x, reference)
        _assert_close([xla], [eager])


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
    assert kinds == [layers.Conv2D, FusedBatchNormalization, DilatedConv2D,
                     FusedBatchNormalization]
    _assert_close([model(x, training=t) for t in (False, True)], want)

    path = tmp_path / "fast.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects: the classes are registered
    assert type(loaded.layers[-1]) is FusedBatchNormalization
    _assert_close([loaded(x, training=False)], [model(x, training=False)])


def test_upsample_conv_config_round_trip(tmp_path):
    x_in, ref_in = keras.Input((4, 4, 3)), keras.Input((8, 8, 2))
    model = keras.Model([x_in, ref_in], UpsampleConv2D(5, merge=True, use_bias=False,
                                                       name="up")(x_in, ref_in))
    layer = model.get_layer("up")
    assert UpsampleConv2D.from_config(layer.get_config()).get_config() == layer.get_config()
    path = tmp_path / "up.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x, ref = _normal((1, 4, 4, 3)), _normal((1, 8, 8, 2), seed=(8, 9))
    _assert_close([loaded([x, ref])], [model([x, ref])])
