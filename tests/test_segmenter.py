"""The Segmenter task class and the registry that makes every builder return one."""

import inspect

import keras
import numpy as np
import pytest

import kerasseg
from kerasseg.models import Segmenter, describe, register_model
from kerasseg.models.registry import SHARED_OPTIONS


def tiny_unet(**options):
    return kerasseg.unet(3, backbone=None, weights=None, filters=4, depth=2, **options)


def test_every_builder_declares_the_shared_options_in_its_signature():
    for name in kerasseg.list_models(task="semantic"):
        builder = kerasseg.MODELS[name]
        params = inspect.signature(builder).parameters
        assert list(params)[0] == "num_classes", name
        for option in (
            "backbone",
            "weights",
            "input_shape",
            "activation",
            "freeze_backbone",
            *SHARED_OPTIONS,
            "name",
        ):
            assert params[option].kind is inspect.Parameter.KEYWORD_ONLY, (name, option)
        assert getattr(kerasseg, name) is builder


def test_builder_returns_a_segmenter_that_describes_itself():
    model = tiny_unet(class_names=["sky", "road", "car"], palette=[[1, 2, 3]] * 3)
    assert isinstance(model, Segmenter)
    info = model.describe()
    assert info == {
        "task": "semantic",
        "num_classes": 3,
        "class_names": ["sky", "road", "car"],
        "palette": [[1, 2, 3]] * 3,
        "input_multiple": 4,
        "backbone": None,
        "builder": "unet",
        "builder_args": {**info["builder_args"]},
    }
    args = info["builder_args"]
    assert args["filters"] == 4 and args["depth"] == 2 and args["weights"] is None
    assert args["input_shape"] == [None, None, 3] and args["bn_momentum"] == 0.9
    assert "num_classes" not in args


def test_defaults_and_checks_of_class_names_and_palette():
    model = tiny_unet()
    assert model.class_names == ["class_0", "class_1", "class_2"]
    assert model.palette == [[0, 0, 0], [128, 0, 0], [0, 128, 0]]
    with pytest.raises(ValueError, match="class_names has 2 names; the model predicts 3"):
        tiny_unet(class_names=["a", "b"])
    with pytest.raises(ValueError, match=r"palette must be 3 RGB colours"):
        tiny_unet(palette=[[0, 0, 0]] * 2)


def test_builder_args_rebuild_the_same_model():
    model = tiny_unet(class_names=["a", "b", "c"])
    again = kerasseg.build(model.builder, model.num_classes, **model.builder_args)
    assert again.describe() == model.describe()
    assert again.count_params() == model.count_params()


@pytest.mark.parametrize("depth, multiple", [(2, 4), (6, 64)])
def test_input_multiple_is_the_architectures_own(depth, multiple):
    model = kerasseg.unet(2, backbone=None, weights=None, filters=2, depth=depth)
    assert model.input_multiple == multiple
    # inference pads to it: a 70x70 image reaches the depth-6 U-Net as 128x128
    from kerasseg import inference

    labels = inference.predict(model, np.zeros((70, 70, 3), np.uint8))
    assert labels.shape == (70, 70)


def test_multiples_of_other_families():
    assert (
        kerasseg.deeplabv3(2, backbone="mobilenetv2", weights=None, output_stride=8).input_multiple
        == 8
    )
    assert kerasseg.fc_densenet56(2, weights=None).input_multiple == 32


def test_description_survives_dot_keras(tmp_path):
    model = tiny_unet(class_names=["a", "b", "c"])
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is Segmenter and loaded.describe() == model.describe()


def test_describe_reads_a_plain_keras_model():
    image = keras.Input((None, None, 3))
    plain = keras.Model(image, keras.layers.Conv2D(5, 1, activation="softmax")(image))
    info = describe(plain)
    assert info["num_classes"] == 5 and info["task"] == "semantic"
    assert info["input_multiple"] == 32 and info["class_names"][4] == "class_4"


def test_registry_refuses_a_builder_without_the_shared_options():
    def builder(num_classes, *, backbone=None, name=None):
        return None

    with pytest.raises(TypeError, match="must declare class_names, palette, bn_momentum"):
        register_model("not_registered")(builder)
    assert "not_registered" not in kerasseg.MODELS


def test_public_names_resolve():
    for name in kerasseg.__all__:
        assert getattr(kerasseg, name) is not None, name


def test_build_takes_num_classes_by_keyword_as_the_contract_shows():
    model = kerasseg.build(
        "unet", num_classes=2, backbone=None, weights=None, filters=2, depth=1, name="tiny"
    )
    assert model.name == "tiny" and model.num_classes == 2
