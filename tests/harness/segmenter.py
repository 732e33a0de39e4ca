"""``run_segmenter_test``: what every kerasseg builder promises (DESIGN.md, "Models" and "The
Segmenter task class"), checked on one builder and its options; ``ModelCache`` builds each
configuration once per test module."""

import inspect
import os

import keras
import numpy as np
import pytest

import kerasseg
from kerasseg.models.segmenter import Segmenter, default_class_names
from tests.harness.common import assert_same_outputs, images, outputs_of, tmp_dir

SOFTMAX_ATOL = 1e-4
SIZES = ((64, 64), (96, 96))


def _resolve(builder):
    """(builder function, registered name) for a builder or its registered name."""
    fn = getattr(kerasseg, builder) if isinstance(builder, str) else builder
    name = builder if isinstance(builder, str) else fn.__name__
    assert name in kerasseg.list_models(), f"{name!r} is not a registered builder"
    assert getattr(kerasseg, name) is fn, f"kerasseg.{name} is not the builder tested"
    return fn, name


def _default(fn, option):
    parameter = inspect.signature(fn).parameters.get(option)
    return None if parameter is None else parameter.default


def assert_activation(y, activation):
    """``y`` is what ``activation`` ("softmax", "sigmoid" or None for logits) gives."""
    assert np.all(np.isfinite(y))
    if activation == "softmax":
        np.testing.assert_allclose(y.sum(-1), 1.0, atol=SOFTMAX_ATOL)
        assert y.min() >= 0
    elif activation == "sigmoid":
        assert y.min() >= 0 and y.max() <= 1
        if y.shape[-1] > 2:  # independent scores, not a distribution
            assert not np.allclose(y.sum(-1), 1.0, atol=1e-2)
    else:
        assert activation is None, activation
        assert y.min() < 0 or y.max() > 1 or not np.allclose(y.sum(-1), 1.0, atol=1e-3)


def check_outputs(model, sizes, num_classes, activation, channels=3):
    """Every output is ``(N, H, W, num_classes)`` at each size, with the activation's values."""
    assert model.input_shape == (None, None, None, channels)
    for index, (h, w) in enumerate(sizes):
        ys = outputs_of(model, images(2 if index == 0 else 1, h, w, channels, seed=index))
        assert len(ys) == len(model.outputs)
        for y in ys:
            assert y.shape == (2 if index == 0 else 1, h, w, num_classes), (y.shape, (h, w))
            assert_activation(y, activation)


def check_description(model, fn, name, kwargs, num_classes, expected_multiple):
    """The Segmenter's description: what the builder was asked for, and its multiple."""
    assert isinstance(model, Segmenter), type(model)
    info = model.describe()
    assert set(info) == {
        "task",
        "num_classes",
        "class_names",
        "palette",
        "input_multiple",
        "backbone",
        "builder",
        "builder_args",
    }
    assert info["task"] == "semantic"
    assert info["num_classes"] == num_classes
    expected_names = kwargs.get("class_names") or default_class_names(num_classes)
    assert info["class_names"] == [str(n) for n in expected_names]
    palette = np.asarray(info["palette"])
    assert palette.shape == (num_classes, 3) and palette.min() >= 0 and palette.max() <= 255
    if expected_multiple is not None:
        assert info["input_multiple"] == expected_multiple, info["input_multiple"]
    assert info["backbone"] == kwargs.get("backbone", _default(fn, "backbone"))
    assert info["builder"] == name
    recorded = info["builder_args"]
    for key, value in kwargs.items():
        if key != "weights":  # a weights file is the builder's to record or not
            assert key in recorded, (key, sorted(recorded))
            assert recorded[key] == _plain(value), (key, recorded[key], value)
    return info


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


def find_encoder(model, encoder_name=None):
    """The backbone: the model's one nested model (or the one named ``encoder_name``)."""
    if encoder_name is not None:
        encoder = model.get_layer(encoder_name)
        assert isinstance(encoder, keras.Model)
        return encoder
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    assert len(nested) == 1, [layer.name for layer in nested]
    return nested[0]


def assert_frozen_backbone(model, encoder_name=None):
    """The backbone's weights are all frozen; every decoder layer with weights trains."""
    encoder = find_encoder(model, encoder_name)
    assert not encoder.trainable and encoder.trainable_weights == []
    assert len(encoder.weights) > 0
    frozen = {id(v) for v in encoder.weights}
    trainable = {id(v) for v in model.trainable_weights}
    assert trainable and not trainable & frozen
    decoder = [layer for layer in model.layers if layer is not encoder and layer.weights]
    assert decoder and all(layer.trainable and layer.trainable_weights for layer in decoder)
    # Every decoder kernel trains: frozen are only the backbone and batch-norm statistics.
    kernels = [v for v in model.weights if id(v) not in frozen and "kernel" in v.path]
    assert kernels and all(id(v) in trainable for v in kernels)
    return encoder


def assert_trainable_backbone(model, encoder_name=None):
    encoder = find_encoder(model, encoder_name)
    assert encoder.trainable and len(encoder.trainable_weights) > 0
    return encoder


def check_freeze(model, build, kwargs, num_classes, encoder_name=None):
    """``freeze_backbone=True`` freezes exactly the backbone (a model without one refuses it).

    The frozen build also names its classes: ``class_names=`` reaches the description.
    """
    if model.describe()["backbone"] is None:
        with pytest.raises(ValueError, match="freeze_backbone"):
            build(**{**kwargs, "freeze_backbone": True})
        return None
    if kwargs.get("freeze_backbone"):
        assert_frozen_backbone(model, encoder_name)
        return model
    assert_trainable_backbone(model, encoder_name)
    names = [f"name_{index}" for index in range(num_classes)]
    frozen = build(**{**kwargs, "freeze_backbone": True, "class_names": names})
    assert frozen.describe()["class_names"] == names
    assert_frozen_backbone(frozen, encoder_name)
    return frozen


def check_keras_file(model, x, tmp_path=None):
    """``.keras`` round trip with plain ``load_model``: same class, description, outputs."""
    path = os.path.join(tmp_dir(tmp_path), f"{model.name}.keras")
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects: every object is registered
    assert type(loaded) is type(model)
    assert loaded.describe() == model.describe()
    assert loaded.output_names == model.output_names
    assert len(loaded.weights) == len(model.weights)
    assert len(loaded.trainable_weights) == len(model.trainable_weights)
    assert_same_outputs(outputs_of(loaded, x), outputs_of(model, x))
    return loaded


def check_config(model):
    """``get_config`` -> ``from_config`` rebuilds the same model (weights aside)."""
    config = model.get_config()
    clone = type(model).from_config(config)
    assert type(clone) is type(model)
    assert clone.describe() == model.describe()
    assert len(clone.weights) == len(model.weights)
    assert clone.count_params() == model.count_params()
    assert [tuple(o.shape) for o in clone.outputs] == [tuple(o.shape) for o in model.outputs]
    assert clone.output_names == model.output_names
    return clone


def check_static_sizes(build, kwargs, size, multiple, channels=3):
    """A static size off the multiple is a ValueError naming the side and the multiple."""
    h, w = size
    for side, shape in (("height", (h + 1, w, channels)), ("width", (h, w + 1, channels))):
        with pytest.raises(
            ValueError,
            match=rf"{side} {shape[0 if side == 'height' else 1]}"
            rf"\b.*multiple of {multiple}\b",
        ):
            build(**{**kwargs, "input_shape": shape})


def check_rebuild(model):
    """The description rebuilds the architecture: ``kerasseg.build(builder, num_classes,
    **builder_args)`` (``weights=None``)."""
    info = model.describe()
    args = {key: value for key, value in info["builder_args"].items() if key != "num_classes"}
    rebuilt = kerasseg.build(info["builder"], info["num_classes"], **{**args, "weights": None})
    assert rebuilt.count_params() == model.count_params()
    assert rebuilt.describe() == info | {"builder_args": rebuilt.describe()["builder_args"]}
    return rebuilt


def run_segmenter_test(
    builder,
    kwargs=None,
    *,
    num_classes,
    sizes=SIZES,
    expected_multiple=None,
    expected_params=None,
    model=None,
    encoder_name=None,
    freeze=True,
    save=True,
    config=True,
    static_size=True,
    at_multiple=True,
    rebuild=False,
    tmp_path=None,
):
    """Check a builder's model against the builder contract; returns the model.

    builder: a builder (``kerasseg.unet``) or its registered name. kwargs: its options
    (``weights`` defaults to None here); the harness builds with dynamic sides
    (``input_shape=(None, None, C)``, C from ``kwargs["input_shape"]`` when given).
    model: a model already built from exactly these arguments (a module's fixture), so that
    a heavy configuration is built once.

    Checks, each but the first two optional for heavy builds:
    - the output at every size of ``sizes`` (and at ``(m, 3m)``, m the input multiple:
      ``at_multiple``) is ``(N, H, W, num_classes)`` per output, with the activation's values
      (softmax sums to 1, sigmoid in [0, 1], logits not probabilities);
    - the model is a Segmenter whose ``describe()`` says task "semantic", the classes and
      their names (``class_0..`` by default), palette, ``expected_multiple``, the backbone,
      the registered builder name and its arguments; ``expected_params`` (an int or a
      ``pytest.approx``) is ``count_params()``;
    - ``freeze``: freeze_backbone=True freezes the backbone only (refused without one), and
      that build's ``class_names=`` reaches its description;
    - ``save``: ``.keras`` round trip; ``config``: ``from_config(get_config())``;
    - ``static_size``: ``input_shape=(H + 1, W, C)`` and ``(H, W + 1, C)`` are ValueErrors
      naming the multiple; ``rebuild``: ``build(describe()["builder"], ...)`` rebuilds it.
    """
    fn, name = _resolve(builder)
    kwargs = {"weights": None, **(kwargs or {})}
    channels = tuple(kwargs.get("input_shape", (None, None, 3)))[-1]
    kwargs["input_shape"] = (None, None, channels)

    def build(**options):
        return fn(num_classes, **options)

    model = model if model is not None else build(**kwargs)
    activation = kwargs.get("activation", _default(fn, "activation"))
    info = check_description(model, fn, name, kwargs, num_classes, expected_multiple)
    multiple = info["input_multiple"]
    if expected_params is not None:
        assert model.count_params() == expected_params, model.count_params()
    extra = ((multiple, 3 * multiple),) if at_multiple else ()
    check_outputs(model, tuple(sizes) + extra, num_classes, activation, channels)
    if freeze:
        check_freeze(model, build, kwargs, num_classes, encoder_name)
    if save:
        check_keras_file(model, images(1, *sizes[0], channels, seed=7), tmp_path)
    if config:
        check_config(model)
    if static_size:
        check_static_sizes(build, kwargs, sizes[0], multiple, channels)
    if rebuild:
        check_rebuild(model)
    return model


class ModelCache:
    """Builds each configuration once (a module's fixture holds one): ``get`` builds as
    ``run_segmenter_test`` does (``weights=None`` and dynamic sides unless given), ``run``
    runs the harness on the cached model."""

    def __init__(self):
        self.models = {}

    def get(self, builder, num_classes, **kwargs):
        fn, name = _resolve(builder)
        kwargs = {"weights": None, "input_shape": (None, None, 3), **kwargs}
        key = (name, num_classes, repr(sorted(kwargs.items())))
        if key not in self.models:
            self.models[key] = fn(num_classes, **kwargs)
        return self.models[key]

    def run(self, builder, kwargs=None, *, num_classes, **options):
        model = self.get(builder, num_classes, **(kwargs or {}))
        return run_segmenter_test(builder, kwargs, num_classes=num_classes, model=model, **options)


def assert_logits_of(probabilities_model, logits_model, x):
    """``activation=None`` gives the logits of the softmax model (same weights)."""
    logits_model.set_weights(probabilities_model.get_weights())
    logits, probabilities = outputs_of(logits_model, x)[0], outputs_of(probabilities_model, x)[0]
    assert logits.min() < 0 or logits.max() > 1  # not probabilities
    e = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(e / e.sum(-1, keepdims=True), probabilities, atol=1e-5)
