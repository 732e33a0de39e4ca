"""U-Net: the paper's size, shapes at the input's resolution, weights, saving, errors."""
import keras
import numpy as np
import pytest

import kerasseg


@pytest.fixture(scope="module")
def paper_unet():
    return kerasseg.unet(num_classes=2, backbone=None, batch_norm=False)


def test_paper_unet_has_the_papers_parameter_count(paper_unet):
    # REFERENCES.md: 64 base filters, transposed-conv upsampling, 2 classes: 31.03 M.
    assert paper_unet.count_params() == pytest.approx(31.03e6, rel=0.01)
    assert paper_unet.count_params() == 31_031_810


def test_paper_unet_keeps_input_size_with_softmax(paper_unet):
    x = np.random.default_rng(0).integers(0, 256, (2, 48, 80, 3)).astype("uint8")
    y = keras.ops.convert_to_numpy(paper_unet(x.astype("float32")))
    assert y.shape == (2, 48, 80, 2)
    np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-5)
    assert (y >= 0).all()


@pytest.fixture(scope="module")
def resnet_unet():
    return kerasseg.unet(num_classes=5, backbone="resnet50", weights=None)


@pytest.mark.parametrize("size", [(64, 96), (96, 64), (128, 128)])
def test_backbone_unet_output_at_input_size(resnet_unet, size):
    x = np.random.default_rng(1).uniform(0, 255, (2, *size, 3)).astype("float32")
    y = keras.ops.convert_to_numpy(resnet_unet(x))
    assert y.shape == (2, *size, 5)
    np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-5)


def test_default_num_classes_example_from_the_readme():
    model = kerasseg.unet(num_classes=21, backbone="mobilenetv2", weights=None)
    assert model.output_shape == (None, None, None, 21)


@pytest.mark.parametrize("backbone", ["convnext_tiny", "xception", "inceptionv3"])
def test_unet_on_backbones_without_stride2_or_with_valid_padding(backbone):
    model = kerasseg.unet(3, backbone=backbone, weights=None,
                          decoder_filters=(32, 16, 16, 8, 8))
    y = model(np.zeros((1, 64, 96, 3), "float32"))
    assert tuple(y.shape) == (1, 64, 96, 3)


def test_logits_and_sigmoid_activations():
    x = np.random.default_rng(2).uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    logits = kerasseg.unet(3, backbone=None, filters=4, depth=2, activation=None)(x)
    logits = keras.ops.convert_to_numpy(logits)
    assert not np.allclose(logits.sum(-1), 1.0)
    sig = keras.ops.convert_to_numpy(
        kerasseg.unet(1, backbone=None, filters=4, depth=2, activation="sigmoid")(x))
    assert sig.shape == (1, 32, 32, 1) and ((sig > 0) & (sig < 1)).all()


def test_build_by_name_and_registry():
    assert "unet" in kerasseg.list_models()
    model = kerasseg.build("unet", 4, backbone=None, filters=4, depth=2)
    assert model.output_shape[-1] == 4


def test_saved_keras_model_loads_without_custom_objects(tmp_path):
    model = kerasseg.unet(3, backbone="mobilenetv2", weights=None,
                          decoder_filters=(32, 16, 16, 8, 8))
    x = np.random.default_rng(3).uniform(0, 255, (1, 64, 96, 3)).astype("float32")
    path = str(tmp_path / "unet.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(restored(x), model(x), rtol=1e-5, atol=1e-6)


def test_freeze_backbone_freezes_only_the_encoder():
    model = kerasseg.unet(3, backbone="mobilenetv2", weights=None, freeze_backbone=True,
                          decoder_filters=(32, 16, 16, 8, 8))
    encoder = model.get_layer("mobilenetv2")
    assert encoder.trainable_weights == []
    encoder_ids = {id(v) for v in encoder.weights}
    decoder_trainable = [v for v in model.trainable_weights if id(v) not in encoder_ids]
    assert decoder_trainable and len(decoder_trainable) == len(model.trainable_weights)


def test_whole_model_and_backbone_weight_files(tmp_path):
    kw = dict(backbone="mobilenetv2", decoder_filters=(32, 16, 16, 8, 8))
    source = kerasseg.unet(3, weights=None, **kw)
    source.set_weights([w + np.float32(0.25) for w in source.get_weights()])
    whole = str(tmp_path / "whole.weights.h5")
    source.save_weights(whole)
    loaded = kerasseg.unet(3, weights=whole, **kw)
    for a, b in zip(source.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)

    encoder_file = str(tmp_path / "encoder.weights.h5")
    source.get_layer("mobilenetv2").save_weights(encoder_file)
    partly = kerasseg.unet(3, weights=encoder_file, **kw)
    for a, b in zip(source.get_layer("mobilenetv2").get_weights(),
                    partly.get_layer("mobilenetv2").get_weights()):
        np.testing.assert_array_equal(a, b)


def test_grayscale_input_builds_with_adapted_first_layer():
    model = kerasseg.unet(2, backbone="resnet50", weights=None, input_shape=(None, None, 1),
                          decoder_filters=(32, 16, 16, 8, 8))
    assert model(np.zeros((1, 64, 64, 1), "float32")).shape == (1, 64, 64, 2)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_classes=0), "num_classes must be an integer >= 1"),
    (dict(num_classes=2.5), "num_classes must be an integer >= 1"),
    (dict(num_classes=3, backbone="resnet34"), "Valid backbones:.*resnet50"),
    (dict(num_classes=3, input_shape=(100, 96, 3), backbone="resnet50"),
     "height 100 is not a multiple of 32"),
    (dict(num_classes=3, input_shape=(64, 62, 3), backbone=None, depth=2),
     "width 62 is not a multiple of 4"),
    (dict(num_classes=3, activation="relu"), "activation must be one of"),
])
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
