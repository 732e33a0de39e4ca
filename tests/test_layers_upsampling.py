"""The upsampling layers of kerasseg.layers.upsampling: UpsampleConv2D against what it
stands for (nearest resize, concatenate, one 3x3 convolution) in values, gradients, graph and
under XLA; ResizeLike; and the harness's layer checks (config, saving, gradient) for both.
"""

import numpy as np
import pytest
import tensorflow as tf

from kerasseg.layers import ResizeLike, UpsampleConv2D
from tests.harness import assert_close as _assert_close
from tests.harness import gradients as _grads
from tests.harness import normal as _normal
from tests.harness import run_layer_test


@pytest.mark.parametrize(
    "source,target,merge",
    [((4, 4), (8, 8), True), ((4, 4), (8, 8), False), ((5, 5), (11, 9), True)],
)
def test_upsample_conv_layer_contract(source, target, merge):
    kwargs = dict(filters=5, merge=merge, use_bias=False)
    run_layer_test(
        UpsampleConv2D,
        kwargs,
        [(1, *source, 3), (1, *target, 2)],
        expected_output_shape=(1, *target, 5),
        expected_trainable_weights=1,
        # Without the merge the reference gives only its size: no gradient into it.
        grad_inputs=[0, 1] if merge else [0],
    )


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("source,target", [((4, 6), (8, 12)), ((8, 8), (8, 8))])
def test_resize_like_layer_contract(interpolation, source, target):
    _, (y,) = run_layer_test(
        ResizeLike,
        {"interpolation": interpolation},
        [(2, *source, 3), (2, *target, 1)],
        grad_inputs=[0],
        expected_output_shape=(2, *target, 3),
    )
    if source == target:
        np.testing.assert_array_equal(
            y, np.random.default_rng(0).normal(size=(2, *source, 3)).astype("float32")
        )


def test_resize_like_refuses_an_unknown_interpolation():
    with pytest.raises(ValueError, match="interpolation must be one of"):
        ResizeLike("cubic-ish")


def _upsample_reference(layer, x, reference):
    """What UpsampleConv2D stands for: nearest resize, concatenate, one 3x3 convolution."""
    y = tf.image.resize(x, tf.shape(reference)[1:3], "nearest")
    if layer.merge:
        y = tf.concat([y, reference], -1)
    y = tf.nn.conv2d(y, layer.kernel, 1, "SAME")
    return y + layer.bias if layer.use_bias else y


@pytest.mark.parametrize(
    "source,target,channels,filters,merge",
    [
        ((4, 5), (8, 10), 3, 8, True),  # exactly double: the phase form, in both modes
        ((16, 16), (32, 32), 6, 64, True),
        ((16, 16), (32, 32), 6, 64, False),  # no skip: the phases alone
        ((5, 5), (11, 9), 3, 4, True),  # not double: resize then convolve
    ],
)
@pytest.mark.parametrize("training", [False, True])
def test_upsample_conv_matches_resize_concat_conv(
    source, target, channels, filters, merge, training
):
    layer = UpsampleConv2D(filters, merge=merge, use_bias=True, bias_initializer="ones")
    x = _normal((2, *source, channels))
    reference = _normal((2, *target, 5), seed=(3, 4))
    got, got_grads = _grads(
        lambda x, r: layer(x, r, training=training), [x, reference], layer.trainable_weights
    )
    want, want_grads = _grads(
        lambda x, r: _upsample_reference(layer, x, r), [x, reference], layer.trainable_weights
    )
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
        _, grads = _grads(
            lambda a, b: layer(a, b, training=training), [x, reference], layer.trainable_weights
        )
        return grads

    graph = step.get_concrete_function(x, reference).graph
    return [op.get_attr("padding") for op in graph.get_operations() if op.type.startswith("Conv2D")]


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
        xla = tf.function(lambda a, b, t=training: layer(a, b, training=t), jit_compile=True)(
            x, reference
        )
        _assert_close([xla], [eager])
