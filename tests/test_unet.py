"""U-Net: the builder contract (harness) on the paper's encoder (its size), ResNet50,
MobileNetV2 and backbones with odd strides or 'valid' padding; logits and sigmoid; class
names; weights files; grayscale input; argument errors."""

import numpy as np
import pytest

import kerasseg
from tests.harness import ModelCache, images, outputs_of

LIGHT = dict(backbone="mobilenetv2", decoder_filters=(32, 16, 16, 8, 8))
SIZES = ((64, 96), (96, 64))
TINY = dict(backbone=None, filters=4, depth=2)  # the paper's encoder, two poolings: multiple 4


@pytest.fixture(scope="module")
def zoo():
    return ModelCache()


def test_paper_unet_has_the_papers_parameter_count(zoo):
    # REFERENCES.md: 64 base filters, transposed-conv upsampling, 2 classes: 31.03 M.
    model = zoo.run(
        "unet",
        dict(backbone=None, batch_norm=False),
        num_classes=2,
        sizes=((48, 80), (80, 48)),
        expected_multiple=16,
        expected_params=31_031_810,
        save=False,
        config=False,
    )
    assert model.count_params() == pytest.approx(31.03e6, rel=0.01)


def test_paper_unet_keeps_input_size_with_softmax(zoo):
    model = zoo.get("unet", 2, backbone=None, batch_norm=False)
    x = np.random.default_rng(0).integers(0, 256, (2, 48, 80, 3)).astype("uint8")
    y = outputs_of(model, x.astype("float32"))[0]
    assert y.shape == (2, 48, 80, 2)
    np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-5)
    assert (y >= 0).all()


def test_backbone_unet_output_at_input_size(zoo):
    zoo.run(
        "unet",
        dict(backbone="resnet50"),
        num_classes=5,
        sizes=((64, 96), (96, 64), (128, 128)),
        expected_multiple=32,
        freeze=False,
        save=False,
        config=False,
    )


def test_mobilenetv2_unet_contract(zoo):
    # Frozen backbone, saved and loaded without custom_objects, rebuilt from its config.
    zoo.run("unet", LIGHT, num_classes=3, sizes=SIZES, expected_multiple=32)


def test_default_num_classes_example_from_the_readme():
    model = kerasseg.unet(num_classes=21, backbone="mobilenetv2", weights=None)
    assert model.output_shape == (None, None, None, 21)


@pytest.mark.parametrize("backbone", ["convnext_tiny", "xception", "inceptionv3"])
def test_unet_on_backbones_without_stride2_or_with_valid_padding(zoo, backbone):
    # InceptionV3 and Xception need more than 32 pixels a side ('valid' stems).
    zoo.run(
        "unet",
        dict(backbone=backbone, decoder_filters=(32, 16, 16, 8, 8)),
        num_classes=3,
        sizes=((64, 96),),
        expected_multiple=32,
        freeze=False,
        save=False,
        config=False,
        at_multiple=backbone == "convnext_tiny",
    )


def test_logits_and_names_of_the_tiny_paper_unet(zoo):
    # Logits, the classes named by the caller, the true multiple 2**2, and the description
    # rebuilds the model.
    model = zoo.run(
        "unet",
        dict(activation=None, class_names=["sky", "road", "car"], **TINY),
        num_classes=3,
        sizes=((32, 32), (20, 12)),
        expected_multiple=4,
        rebuild=True,
    )
    assert model.describe()["class_names"] == ["sky", "road", "car"]
    logits = outputs_of(model, images(1, 32, 32))[0]
    assert not np.allclose(logits.sum(-1), 1.0)


def test_sigmoid_one_class(zoo):
    model = zoo.run(
        "unet",
        dict(activation="sigmoid", **TINY),
        num_classes=1,
        sizes=((32, 32), (12, 20)),
        expected_multiple=4,
        rebuild=True,
    )
    sig = outputs_of(model, images(1, 32, 32))[0]
    assert sig.shape == (1, 32, 32, 1) and ((sig > 0) & (sig < 1)).all()


def test_build_by_name_and_registry():
    assert "unet" in kerasseg.list_models()
    model = kerasseg.build("unet", 4, backbone=None, filters=4, depth=2)
    assert model.output_shape[-1] == 4
    assert model.describe()["builder"] == "unet"


def test_whole_model_and_backbone_weight_files(tmp_path):
    source = kerasseg.unet(3, weights=None, **LIGHT)
    source.set_weights([w + np.float32(0.25) for w in source.get_weights()])
    whole = str(tmp_path / "whole.weights.h5")
    source.save_weights(whole)
    loaded = kerasseg.unet(3, weights=whole, **LIGHT)
    for a, b in zip(source.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)

    encoder_file = str(tmp_path / "encoder.weights.h5")
    source.get_layer("mobilenetv2").save_weights(encoder_file)
    partly = kerasseg.unet(3, weights=encoder_file, **LIGHT)
    for a, b in zip(
        source.get_layer("mobilenetv2").get_weights(), partly.get_layer("mobilenetv2").get_weights()
    ):
        np.testing.assert_array_equal(a, b)


def test_grayscale_input_builds_with_adapted_first_layer(zoo):
    model = zoo.run(
        "unet",
        dict(backbone="resnet50", input_shape=(None, None, 1), decoder_filters=(32, 16, 16, 8, 8)),
        num_classes=2,
        sizes=((64, 64),),
        expected_multiple=32,
        freeze=False,
        save=False,
        config=False,
    )
    assert model(np.zeros((1, 64, 64, 1), "float32")).shape == (1, 64, 64, 2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_classes=0), "num_classes must be an integer >= 1"),
        (dict(num_classes=2.5), "num_classes must be an integer >= 1"),
        (dict(num_classes=3, backbone="resnet34"), "Valid backbones:.*resnet50"),
        (
            dict(num_classes=3, input_shape=(100, 96, 3), backbone="resnet50"),
            "height 100 is not a multiple of 32",
        ),
        (
            dict(num_classes=3, input_shape=(64, 62, 3), backbone=None, depth=2),
            "width 62 is not a multiple of 4",
        ),
        (dict(num_classes=3, activation="relu"), "activation must be one of"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    kwargs.setdefault("weights", None)
    with pytest.raises(ValueError, match=message):
        kerasseg.unet(**kwargs)


def test_unknown_model_name_lists_valid_ones():
    with pytest.raises(ValueError, match="Unknown model 'unett'.*Did you mean 'unet'.*Valid"):
        kerasseg.build("unett", 3)


def test_missing_weights_file_names_the_path(tmp_path):
    missing = str(tmp_path / "missing.weights.h5")
    with pytest.raises(FileNotFoundError, match="missing.weights.h5"):
        kerasseg.unet(3, backbone="resnet50", weights=missing)
