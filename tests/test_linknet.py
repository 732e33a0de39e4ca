"""LinkNet: the builder contract (harness) on ResNet50 (the default backbone) and on
MobileNetV2 (frozen, saved, reloaded, rebuilt from its config), logits, and the decoder's
additions to the encoder maps.

Heavy builds are made once per module (``zoo``); inputs are tiny and non-square.
"""

import pytest

from tests.harness import ModelCache, assert_logits_of, images

H, W = 64, 96
SIZES = ((W, H), (H, W))  # portrait and landscape
LIGHT = dict(backbone="mobilenetv2")  # LinkNet's widths follow its encoder


@pytest.fixture(scope="module")
def zoo():
    return ModelCache()


def test_default_backbone_resnet50_maps_to_input_size(zoo):
    model = zoo.run(
        "linknet",
        num_classes=21,
        sizes=((H, W),),
        expected_multiple=32,
        freeze=False,
        save=False,
        config=False,
    )
    assert any(layer.name == "resnet50" for layer in model.layers)


def test_mobilenetv2_contract(zoo):
    zoo.run("linknet", LIGHT, num_classes=21, sizes=SIZES, expected_multiple=32)


def test_activation_none_gives_the_logits(zoo):
    assert_logits_of(
        zoo.get("linknet", 21, **LIGHT),
        zoo.get("linknet", 21, activation=None, **LIGHT),
        images(2, H, W),
    )


def test_linknet_decoder_adds_to_the_encoder_maps(zoo):
    model = zoo.get("linknet", 21)
    # resnet50 taps: 256, 512, 1024, 2048 channels at strides 4..32.
    for block, (m, n) in {
        "decoder32": (2048, 1024),
        "decoder16": (1024, 512),
        "decoder8": (512, 256),
        "decoder4": (256, 64),
    }.items():
        assert model.get_layer(f"{block}_reduce_conv").filters == m // 4
        assert model.get_layer(f"{block}_up_conv").strides == (2, 2)
        assert model.get_layer(f"{block}_expand_conv").filters == n
    adds = [layer.name for layer in model.layers if layer.name.endswith("_add")]
    assert adds == ["decoder32_add", "decoder16_add", "decoder8_add"]
