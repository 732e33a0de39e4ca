"""FCN-32s/16s/8s: the builder contract (harness) on VGG16, ResNet50 and MobileNetV2, the
paper's size, the ImageNet classifier converted to convolutions, bilinear upsampling, which
layers freeze, weights files.

Heavy models are built once per module (``zoo``) with random weights; the ImageNet code paths
run on a randomly initialised keras.applications VGG16 patched in for the download.
"""

import keras
import numpy as np
import pytest

import kerasseg
from kerasseg.layers import bilinear_kernel
from kerasseg.models.semantic import fcn as fcn_module
from tests.harness import ModelCache, assert_frozen_backbone, assert_trainable_backbone, images
from tests.shared_models import RandomVGG

K = 5
PAPER_CLASSES = 21
SIZES = ((64, 96), (96, 64))  # non-square, both ways round
ARCHS = ("fcn32s", "fcn16s", "fcn8s")
PAPER = dict(weights="imagenet")  # fcn8s on VGG16, 21 classes: the paper's configuration


@pytest.fixture(scope="module")
def fake_vgg():
    fake = RandomVGG()
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(fcn_module._VGG_CONSTRUCTORS, "vgg16", fake)
        yield fake


@pytest.fixture(scope="module")
def zoo(fake_vgg):
    return ModelCache()


@pytest.fixture(scope="module")
def paper_fcn8s(zoo):
    return zoo.get("fcn8s", PAPER_CLASSES, **PAPER)


# ---------------------------------------------------------------- the builder contract


@pytest.mark.parametrize("arch", ARCHS)
def test_mobilenetv2_fcn_contract(zoo, arch):
    # Frozen backbone, saved and reloaded, rebuilt from its config.
    zoo.run(
        arch,
        dict(backbone="mobilenetv2", freeze_backbone=True),
        num_classes=K,
        sizes=SIZES,
        expected_multiple=32,
    )


def test_vgg16_fcn32s_contract_with_logits(zoo):
    # FCN's fc layers narrowed here: the paper's size is checked on the paper build.
    zoo.run(
        "fcn32s",
        dict(activation=None, fc_filters=64),
        num_classes=K,
        sizes=SIZES,
        expected_multiple=32,
    )


@pytest.mark.parametrize(
    "arch,backbone,kwargs",
    [
        ("fcn16s", "vgg16", dict(activation=None, fc_filters=64)),
        *[(arch, "resnet50", {}) for arch in ARCHS],
    ],
)
def test_fcn_maps_images_to_class_maps_at_input_size(zoo, arch, backbone, kwargs):
    zoo.run(
        arch,
        dict(backbone=backbone, **kwargs),
        num_classes=K,
        sizes=SIZES,
        expected_multiple=32,
        freeze=False,
        save=False,
        config=False,
    )


def test_unfrozen_models_train_their_encoder(zoo):
    assert_trainable_backbone(zoo.get("fcn8s", K, backbone="resnet50"), "resnet50")


def test_fcn_vgg_freezes_the_convolutions_not_fc6_fc7():
    model = kerasseg.fcn32s(K, weights=None, fc_filters=8, freeze_backbone=True)
    assert_frozen_backbone(model, "vgg16")
    assert model.get_layer("vgg16").trainable_weights == []
    assert model.get_layer("fc6").trainable_weights and model.get_layer("fc7").trainable_weights


# ---------------------------------------------------------------- the paper configuration


def _within(count, reference, tolerance=0.04):
    return abs(count - reference) / reference <= tolerance


def test_fcn8s_paper_size(zoo, paper_fcn8s):
    # The breakdown of REFERENCES.md: VGG16 convs + fc6 + fc7 + scores + upsampling.
    expected = (
        14_714_688
        + 102_764_544
        + 16_781_312
        + (4096 + 512 + 256 + 3) * 21
        + (4 * 4 * 2 + 16 * 16) * 21 * 21
    )
    assert _within(expected, 134.49e6), expected
    # 134 M parameters: no file round trip, no second build.
    zoo.run(
        "fcn8s",
        PAPER,
        num_classes=PAPER_CLASSES,
        sizes=((64, 96),),
        expected_multiple=32,
        expected_params=expected,
        freeze=False,
        save=False,
        config=False,
    )


def test_fcn_imagenet_path_converts_the_classifier_to_convolutions(paper_fcn8s, fake_vgg):
    model, vgg = paper_fcn8s, fake_vgg(include_top=True, weights="imagenet")
    # Encoder convolutions: copied.
    encoder = model.get_layer("vgg16")
    for name in ("block1_conv1", "block3_conv2", "block5_conv3"):
        for a, b in zip(encoder.get_layer(name).get_weights(), vgg.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    # fc6 over a 7x7 pool5 is fc1 over the flattened pool5 (at the centre, where 'same'
    # padding does not reach); fc7 is fc2.
    pool5 = np.random.default_rng(3).normal(size=(2, 7, 7, 512)).astype("float32")
    fc6 = keras.ops.convert_to_numpy(model.get_layer("fc6")(pool5))[:, 3, 3]
    fc1 = keras.ops.convert_to_numpy(vgg.get_layer("fc1")(pool5.reshape(2, -1)))
    np.testing.assert_allclose(fc6, fc1, rtol=1e-4, atol=1e-4)
    hidden = np.random.default_rng(4).normal(size=(2, 4096)).astype("float32")
    fc7 = keras.ops.convert_to_numpy(model.get_layer("fc7")(hidden[:, None, None]))[:, 0, 0]
    fc2 = keras.ops.convert_to_numpy(vgg.get_layer("fc2")(hidden))
    np.testing.assert_allclose(fc7, fc2, rtol=1e-4, atol=1e-4)


def test_fc_conversion_refuses_a_narrowed_fc(zoo, fake_vgg):
    with pytest.raises(ValueError, match="fc_filters must be 4096"):
        fcn_module.fc_to_conv_weights(
            fake_vgg(include_top=True, weights="imagenet"),
            zoo.get("fcn32s", K, activation=None, fc_filters=64),
        )


def test_fcn_upsampling_starts_bilinear(paper_fcn8s):
    layer = paper_fcn8s.get_layer("upscore8")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(layer.kernel), bilinear_kernel(16, PAPER_CLASSES, PAPER_CLASSES)
    )
    # The skip scores start at zero: FCN-8s begins as FCN-32s would.
    assert not np.any(keras.ops.convert_to_numpy(paper_fcn8s.get_layer("score_pool3").kernel))


# ---------------------------------------------------------------- weights files


def test_whole_model_weights_file_loads_into_a_fresh_build(zoo, tmp_path):
    options = dict(activation=None, fc_filters=64)
    model = zoo.get("fcn32s", K, **options)
    path = str(tmp_path / "fcn32s.weights.h5")
    model.save_weights(path)
    fresh = kerasseg.build("fcn32s", K, backbone="vgg16", weights=path, **options)
    x = images(1, seed=6)
    for a, b in zip(keras.tree.flatten(model(x)), keras.tree.flatten(fresh(x))):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
