"""``run_layer_test`` and ``run_block_test``: what every registered layer and every block
promises (output shape, config, serialization, a ``.keras`` round trip without custom_objects,
a finite gradient), under whatever ``TF_ENABLE_ONEDNN_OPTS`` the environment sets."""

import os

import keras
import numpy as np
import tensorflow as tf

from tests.harness.common import assert_same_outputs, outputs_of, tmp_dir, varied_sum


def _as_inputs(input_shapes, inputs, seed):
    if inputs is not None:
        return [np.asarray(a) for a in (inputs if isinstance(inputs, (list, tuple)) else [inputs])]
    shapes = [input_shapes] if isinstance(input_shapes[0], (int, type(None))) else input_shapes
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape).astype("float32") for shape in shapes]


def _is_float(array):
    return np.issubdtype(np.asarray(array).dtype, np.floating)


def _check_shapes(outputs, expected_output_shape):
    if expected_output_shape is None:
        return
    expected = (
        expected_output_shape
        if isinstance(expected_output_shape, list)
        else [expected_output_shape]
    )
    assert [tuple(y.shape) for y in outputs] == [tuple(s) for s in expected]


def check_layer_config(layer, layer_cls):
    """from_config(get_config()) and serialize/deserialize give the same layer config."""
    config = layer.get_config()
    assert layer_cls.from_config(config).get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is layer_cls
    assert restored.get_config() == config


def check_model_file(model, arrays, tmp_path=None):
    """A (tiny) functional model's ``.keras`` round trip without custom_objects: the same
    classes layer by layer, the same outputs."""
    path = os.path.join(tmp_dir(tmp_path), f"{model.name}.keras")
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert_same_outputs(outputs_of(loaded, arrays), outputs_of(model, arrays))
    return loaded


def check_gradient(fn, arrays, variables, grad_inputs):
    """Gradients of ``fn(*arrays)`` w.r.t. the chosen inputs and ``variables`` exist, are
    finite, and are not all zero."""
    tensors = [tf.constant(a) for a in arrays]
    watched = [tensors[i] for i in grad_inputs]
    with tf.GradientTape() as tape:
        tape.watch(watched)
        loss = varied_sum(keras.tree.flatten(fn(*tensors)))
    grads = tape.gradient(loss, watched + list(variables))
    for grad in grads:
        assert grad is not None
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(grad)))
    assert any(np.any(keras.ops.convert_to_numpy(g)) for g in grads)
    return grads


def _functional(arrays, fn, name):
    symbolic = [keras.Input(a.shape[1:], dtype=str(a.dtype)) for a in arrays]
    return keras.Model(symbolic, fn(*symbolic), name=name)


def run_layer_test(
    layer_cls,
    init_kwargs=None,
    input_shapes=None,
    *,
    inputs=None,
    call_kwargs=None,
    expected_output_shape=None,
    grad_inputs=None,
    expected_trainable_weights=None,
    tmp_path=None,
    seed=0,
):
    """Check a registered layer: output shape, config, serialization, saving, gradient.

    input_shapes: one shape or a list of shapes (batch included) of random float inputs
    (``np.random.default_rng(seed).normal``, in order); or ``inputs``: the arrays (e.g.
    integer indices). The layer is called as ``layer(*inputs, **call_kwargs)``.
    expected_output_shape: a shape, or a list of shapes for a layer with several outputs.
    grad_inputs: indices of the inputs the gradient must reach (default: every float input).
    The layer also goes into a tiny functional model saved to ``.keras`` and reloaded without
    custom_objects. Returns ``(layer, outputs)``, outputs a list of arrays.
    """
    init_kwargs, call_kwargs = dict(init_kwargs or {}), dict(call_kwargs or {})
    arrays = _as_inputs(input_shapes, inputs, seed)
    layer = layer_cls(**init_kwargs)
    outputs = [
        keras.ops.convert_to_numpy(y) for y in keras.tree.flatten(layer(*arrays, **call_kwargs))
    ]
    _check_shapes(outputs, expected_output_shape)
    if expected_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_trainable_weights
    assert all(not _is_float(y) or np.all(np.isfinite(y)) for y in outputs)
    check_layer_config(layer, layer_cls)
    model = _functional(arrays, layer, f"{layer.name}_model")
    loaded = check_model_file(model, arrays, tmp_path)
    assert type(loaded.get_layer(layer.name)) is layer_cls
    if grad_inputs is None:
        grad_inputs = [i for i, a in enumerate(arrays) if _is_float(a)]
    check_gradient(
        lambda *xs: layer(*xs, **call_kwargs), arrays, layer.trainable_weights, grad_inputs
    )
    return layer, outputs


def run_block_test(
    block,
    input_shapes=None,
    *,
    inputs=None,
    expected_output_shape=None,
    grad_inputs=None,
    tmp_path=None,
    seed=0,
    name="block",
):
    """The layer checks for a block function (``block(*symbolic_inputs) -> outputs``, e.g.
    ``lambda x: residual_conv_unit(x, "rcu")``): built into a functional model, its config
    rebuilds it, ``.keras`` round trip, gradient w.r.t. inputs and weights. Returns
    ``(model, outputs)``, outputs a list of arrays (inference mode).
    """
    arrays = _as_inputs(input_shapes, inputs, seed)
    model = _functional(arrays, block, name)
    outputs = outputs_of(model, arrays)
    _check_shapes(outputs, expected_output_shape)
    assert all(np.all(np.isfinite(y)) for y in outputs)
    clone = keras.Model.from_config(model.get_config())
    assert [layer.get_config() for layer in clone.layers] == [
        layer.get_config() for layer in model.layers
    ]
    check_model_file(model, arrays, tmp_path)
    if grad_inputs is None:
        grad_inputs = [i for i, a in enumerate(arrays) if _is_float(a)]
    check_gradient(
        lambda *xs: model(list(xs), training=True), arrays, model.trainable_weights, grad_inputs
    )
    return model, outputs
