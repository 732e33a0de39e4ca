"""PSPNet: the builder contract (harness) on ResNet50 and MobileNetV2 (with the auxiliary
head), the dilated backbone's strides, output strides 8/16, weights files, the backbones it
refuses. Heavy models are built once per module (``zoo``)."""

import keras
import numpy as np
import pytest

import kerasseg
from tests.harness import ModelCache, images

K = 5
H, W = 64, 96
SIZES = ((H, W), (W, H))
AUX = dict(backbone="mobilenetv2", freeze_backbone=True, aux_head=True)


@pytest.fixture(scope="module")
def zoo():
    return ModelCache()


def test_mobilenetv2_pspnet_with_auxiliary_head_contract(zoo):
    # Two outputs, frozen backbone, saved and reloaded, rebuilt from its config; stride 8.
    zoo.run("pspnet", AUX, num_classes=K, sizes=SIZES, expected_multiple=8)


def test_resnet50_pspnet_maps_images_to_logits_at_input_size(zoo):
    zoo.run(
        "pspnet",
        dict(activation=None),
        num_classes=K,
        sizes=SIZES,
        expected_multiple=8,
        freeze=False,
        save=False,
        config=False,
    )


def test_pspnet_auxiliary_head_is_the_second_output(zoo):
    model = zoo.get("pspnet", K, **AUX)
    assert model.output_names == ["output", "aux_output"]
    main, aux = model(images(2, H, W))
    assert main.shape == aux.shape == (2, H, W, K)
    # The main head reads the last map (1280 channels), the auxiliary one stage 4's
    # (block_13_expand_relu, 576 channels), both at output stride 8 here.
    assert model.get_layer("ppm_pool1").input.shape[-1] == 1280
    assert model.get_layer("aux_conv").input.shape[-1] == 576


def test_feature_strides_of_the_dilated_backbone(zoo):
    # PSPNet at output stride 8 by default: the deepest map says so.
    encoder = zoo.get("pspnet", K, activation=None).get_layer("resnet50")
    assert encoder.tap_strides == (2, 4, 8) + (8,) * 2
    assert encoder(images(1, H, W))[-1].shape[1:3] == (H // 8, W // 8)


@pytest.mark.parametrize("output_stride", [4, 64, 12])
def test_bad_output_stride_is_a_value_error(output_stride):
    with pytest.raises(ValueError, match=r"output_stride must be one of \(8, 16\)"):
        kerasseg.build("pspnet", K, weights=None, output_stride=output_stride)


def test_undilatable_backbone_is_a_value_error_naming_the_valid_ones():
    with pytest.raises(ValueError) as info:
        kerasseg.build("pspnet", K, weights=None, backbone="vgg16")
    assert "'vgg16'" in str(info.value) and "resnet50" in str(info.value)


def test_whole_model_weights_file_loads_into_a_fresh_build(zoo, tmp_path):
    model = zoo.get("pspnet", K, **AUX)
    path = str(tmp_path / "pspnet.weights.h5")
    model.save_weights(path)
    fresh = kerasseg.build("pspnet", K, weights=path, **AUX)
    x = images(1, H, W, seed=6)
    for a, b in zip(keras.tree.flatten(model(x)), keras.tree.flatten(fresh(x))):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
