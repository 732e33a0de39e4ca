"""Conversion of keras-hub's SegFormer and DeepLabV3+ (``kerasseg.from_keras_hub``): built from
their preset configurations with random weights (nothing downloaded: the tests never touch the
network), the converted models give keras-hub's own scores at two input sizes; presets name
their dataset's classes; offline a preset fails naming it; ``import kerasseg`` never imports
keras_hub; the example's offline path runs."""

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import kerasseg
from kerasseg.models import keras_hub as conversion
from tests.harness import images

keras_hub = pytest.importorskip("keras_hub")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "pretrained_from_keras_hub.py")


def _example():
    spec = importlib.util.spec_from_file_location("pretrained_from_keras_hub", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = _example()


def _perturbed_hub(size, num_classes, seed):
    """keras-hub's SegFormer B0, every weight moved off its initial value (norm scales and
    biases included), batch-norm variances kept positive."""
    hub = example.random_hub_segformer(size, num_classes, seed=seed)
    rng = np.random.default_rng(seed)
    for w in hub.weights:
        value = keras.ops.convert_to_numpy(w)
        noise = rng.normal(0, 0.05, value.shape).astype(value.dtype)
        w.assign(np.abs(value + noise) if "variance" in w.path else value + noise)
    return hub


@pytest.mark.parametrize(
    ("size", "num_classes", "dataset"), [(64, 150, "ade20k"), (96, 19, "cityscapes")]
)
def test_converted_segformer_b0_gives_keras_hubs_scores(size, num_classes, dataset):
    hub = _perturbed_hub(size, num_classes, seed=size)
    model = kerasseg.from_keras_hub(hub, dataset=dataset, activation=None)
    assert model.count_params() == hub.count_params()
    x = images(2, size, size, seed=size)
    got = keras.ops.convert_to_numpy(model(x, training=False))
    want = example.hub_scores(hub, x)
    assert got.shape == want.shape == (2, size, size, num_classes)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)
    info = kerasseg.datasets.info(dataset)
    described = model.describe()
    assert described["class_names"] == list(info.class_names)
    assert described["palette"] == np.asarray(info.palette)[:num_classes].tolist()
    assert described["builder"] == "segformer" and described["backbone"] == "mit_b0"
    assert described["builder_args"]["approximate_gelu"] is True


def _hub_deeplab(num_classes):
    """keras-hub's DeepLabV3+ preset network ("deeplab_v3_plus_resnet50_pascalvoc": ResNet-50,
    ASPP on P5 at rates 6/12/18, P2 decoder), random weights moved off their initial values,
    batch-norm statistics those of a real batch (so the scores stay O(100), not O(1e5))."""
    encoder = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[3, 4, 6, 3],
        stackwise_num_strides=[1, 2, 2, 2],
        block_type="bottleneck_block",
        use_pre_activation=False,
    )
    backbone = keras_hub.models.DeepLabV3Backbone(
        image_encoder=encoder,
        projection_filters=48,
        low_level_feature_key="P2",
        spatial_pyramid_pooling_key="P5",
        upsampling_size=8,
        dilation_rates=[6, 12, 18],
    )
    hub = keras_hub.models.DeepLabV3ImageSegmenter(backbone=backbone, num_classes=num_classes)
    rng = np.random.default_rng(2)
    for w in hub.weights:
        value = keras.ops.convert_to_numpy(w)
        w.assign(value + rng.normal(0, 0.05, value.shape).astype(value.dtype))
    norms = [
        layer
        for layer in hub._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert len(norms) == 53 + 8
    for norm in norms:
        norm.momentum = 0.0  # one training-mode call: moving statistics = the batch's
    x = (images(2, 64, 64, seed=9) / 255.0 - example.MEAN) / example.STD
    hub(x.astype("float32"), training=True)
    return hub


def test_converted_deeplabv3plus_gives_keras_hubs_scores():
    hub = _hub_deeplab(21)
    model = kerasseg.from_keras_hub(hub, dataset="voc2012", activation=None)
    # keras-hub's classifier has no bias; kerasseg's has one, set to zero.
    assert model.count_params() == hub.count_params() + 21
    info = model.describe()
    assert info["builder"] == "deeplabv3plus" and info["backbone"] == "resnet50_v1_5"
    assert info["class_names"] == list(kerasseg.datasets.info("voc2012").class_names)
    for h, w in ((64, 64), (96, 128)):  # keras-hub's DeepLab takes any size too
        x = images(2, h, w, seed=h)
        got = keras.ops.convert_to_numpy(model(x, training=False))
        want = example.hub_scores(hub, x)
        assert got.shape == want.shape == (2, h, w, 21)
        # 50 layers of float32 at scores of O(100): equal to 1e-4 of their scale.
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
        assert (got.argmax(-1) == want.argmax(-1)).mean() > 0.999


def test_a_preset_name_loads_through_keras_hub_with_its_dataset(monkeypatch):
    asked = []

    def from_preset(preset, **kwargs):
        asked.append(preset)
        return example.random_hub_segformer(64, 19, seed=1)

    monkeypatch.setattr(keras_hub.models.SegFormerImageSegmenter, "from_preset", from_preset)
    model = kerasseg.from_keras_hub("segformer_b0_cityscapes_1024")
    assert asked == ["segformer_b0_cityscapes_1024"]
    assert model.class_names == list(kerasseg.datasets.info("cityscapes").class_names)
    assert model.name == "segformer_b0_cityscapes"
    # Any size, not only keras-hub's static one.
    assert model(images(1, 64, 96)).shape == (1, 64, 96, 19)


@pytest.mark.parametrize(
    ("preset", "cls"),
    [
        ("segformer_b2_ade20k_512", "SegFormerImageSegmenter"),
        ("deeplab_v3_plus_resnet50_pascalvoc", "DeepLabV3ImageSegmenter"),
    ],
)
def test_offline_a_preset_fails_naming_it_and_the_cache(monkeypatch, preset, cls):
    def from_preset(preset, **kwargs):
        raise OSError("Failed to resolve 'www.kaggle.com'")

    monkeypatch.setattr(getattr(keras_hub.models, cls), "from_preset", from_preset)
    with pytest.raises(conversion.PresetUnavailableError) as info:
        kerasseg.from_keras_hub(preset)
    message = str(info.value)
    assert f"'{preset}'" in message and "network" in message
    assert "kagglehub cache" in message and "kaggle.com" in message
    assert isinstance(info.value, ConnectionError)


def test_unknown_presets_and_models_name_the_choices():
    with pytest.raises(ValueError, match=r"unknown preset 'segformer_b9'.*segformer_b0_ade20k_512"):
        kerasseg.from_keras_hub("segformer_b9")
    with pytest.raises(ValueError, match="DeepLabV3ImageSegmenter; got Sequential"):
        kerasseg.from_keras_hub(keras.Sequential([keras.layers.Dense(1)]))
    assert len(conversion.CONVERTIBLE_PRESETS) == 13


def test_import_kerasseg_does_not_import_keras_hub():
    code = "import sys, kerasseg; print('keras_hub' in sys.modules, 'keras_hub' in str(dir()))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2] == "False"


def test_example_offline_path(tmp_path, capsys):
    result = example.main(["--random-weights", "--size", "64", "--output", str(tmp_path)])
    assert result["difference"] < 1e-4
    assert result["labels"].shape == (150, 200)
    assert os.path.exists(result["path"])
    assert "largest difference to keras-hub's scores" in capsys.readouterr().out


def test_a_preset_preprocessor_must_normalize_as_the_converted_model_does():
    class Preset:  # what conversion reads of a loaded preset: preprocessor.image_converter
        def __init__(self, converter):
            self.preprocessor = type("Preprocessor", (), {"image_converter": converter})()

    imagenet = keras_hub.layers.SegFormerImageConverter(
        scale=list(1 / (255 * example.STD)), offset=list(-example.MEAN / example.STD)
    )
    conversion._check_normalization(Preset(imagenet))  # keras-hub's presets: accepted
    unit = keras_hub.layers.SegFormerImageConverter(scale=1 / 255.0)
    with pytest.raises(ValueError, match="not ImageNet mean/std of pixels / 255"):
        conversion._check_normalization(Preset(unit))
