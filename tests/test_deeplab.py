"""DeepLabV3 and DeepLabV3+: the builder contract (harness) on ResNet50 and MobileNetV2, the
dilated backbone's strides, output strides 8/16/32, the decoder options, the backbones they
refuse. Heavy models are built once per module (``zoo``)."""

import keras
import numpy as np
import pytest

import kerasseg
from tests.harness import ModelCache, images

K = 5
H, W = 64, 96
SIZES = ((H, W), (W, H))
ARCHS = ("deeplabv3", "deeplabv3plus")


@pytest.fixture(scope="module")
def zoo():
    return ModelCache()


@pytest.mark.parametrize("arch", ARCHS)
def test_mobilenetv2_deeplab_contract(zoo, arch):
    # Frozen backbone, saved and reloaded, rebuilt from its config; output stride 16.
    zoo.run(
        arch,
        dict(backbone="mobilenetv2", freeze_backbone=True),
        num_classes=K,
        sizes=SIZES,
        expected_multiple=16,
    )


@pytest.mark.parametrize("arch", ARCHS)
def test_resnet50_deeplab_maps_images_to_logits_at_input_size(zoo, arch):
    zoo.run(
        arch,
        dict(activation=None),
        num_classes=K,
        sizes=SIZES,
        expected_multiple=16,
        freeze=False,
        save=False,
        config=False,
    )


def test_feature_strides_of_the_dilated_backbone(zoo):
    # DeepLab at output stride 16 by default: the deepest map says so.
    encoder = zoo.get("deeplabv3", K, activation=None).get_layer("resnet50")
    assert encoder.tap_strides == (2, 4, 8) + (16,) * 2
    assert encoder(images(1, H, W))[-1].shape[1:3] == (H // 16, W // 16)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("output_stride", [4, 64, 12])
def test_bad_output_stride_is_a_value_error(arch, output_stride):
    with pytest.raises(ValueError, match=r"output_stride must be one of \(8, 16, 32\)"):
        kerasseg.build(arch, K, weights=None, output_stride=output_stride)


def test_deeplab_at_output_stride_32_keeps_the_backbone_undilated():
    model = kerasseg.deeplabv3plus(
        K, backbone="resnet50", weights=None, output_stride=32, atrous_rates=(6, 12, 18)
    )
    encoder = model.get_layer(next(l.name for l in model.layers if isinstance(l, keras.Model)))
    assert all(max(getattr(l, "dilation_rate", (1, 1))) == 1 for l in encoder.layers)
    features = encoder(np.zeros((1, H, W, 3), "float32"))
    assert features[-1].shape[1:3] == (H // 32, W // 32)
    rates = sorted(
        max(l.dilation_rate)
        for l in model.layers
        if isinstance(l, keras.layers.Conv2D) and max(l.dilation_rate) > 1
    )
    assert rates == [6, 12, 18]
    assert model(images(1, H, W)).shape == (1, H, W, K)
    assert model.describe()["input_multiple"] == 32
    with pytest.raises(ValueError, match="multiple of 32"):
        kerasseg.deeplabv3(K, weights=None, output_stride=32, input_shape=(48, 48, 3))


def test_deeplabv3plus_decoder_options(zoo):
    """keras-hub's preset decoder (one 1x1 of 256) against the paper's (two 3x3 of 256)."""
    options = dict(backbone="mobilenetv2", decoder_convs=1, decoder_kernel_size=1)
    light = zoo.run(
        "deeplabv3plus",
        options,
        num_classes=K,
        sizes=((H, W),),
        expected_multiple=16,
        freeze=False,
        save=False,
        config=False,
    )
    paper = kerasseg.deeplabv3plus(K, backbone="mobilenetv2", weights=None)
    assert [l.name for l in light.layers if l.name.startswith("decoder_conv")] == [
        "decoder_conv1_conv",
        "decoder_conv1_bn",
        "decoder_conv1_relu",
    ]
    assert light.get_layer("decoder_conv1_conv").kernel.shape == (1, 1, 256 + 48, 256)
    # Exactly the two 3x3 kernels (no biases: batch norm follows) less the 1x1 one.
    assert paper.count_params() - light.count_params() == (
        9 * 304 * 256 + 9 * 256 * 256 + 4 * 256 - 304 * 256
    )
    with pytest.raises(ValueError, match="decoder_convs must be an integer >= 1"):
        kerasseg.deeplabv3plus(K, backbone="mobilenetv2", weights=None, decoder_convs=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_undilatable_backbone_is_a_value_error_naming_the_valid_ones(arch):
    with pytest.raises(ValueError) as info:
        kerasseg.build(arch, K, weights=None, backbone="vgg16")
    assert "'vgg16'" in str(info.value) and "resnet50" in str(info.value)
