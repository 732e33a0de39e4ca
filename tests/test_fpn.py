"""The semantic FPN (Kirillov et al. 2019): the builder contract (harness) on ResNet50 (the
default backbone) and on MobileNetV2 with narrow widths (frozen, saved, reloaded, rebuilt from
its config), logits, sigmoid scores, the pyramid and head structure, the norm option.

Heavy builds are made once per module (``zoo``); inputs are tiny and non-square.
"""

import keras
import pytest

import kerasseg
from tests.harness import ModelCache, assert_logits_of, images

H, W = 64, 96
SIZES = ((W, H), (H, W))  # portrait and landscape
# The structure is the architecture's, only the widths shrink.
LIGHT = dict(backbone="mobilenetv2", pyramid_filters=32, head_filters=16, groups=8)


@pytest.fixture(scope="module")
def zoo():
    return ModelCache()


def test_default_backbone_resnet50_maps_to_input_size(zoo):
    model = zoo.run(
        "fpn",
        num_classes=21,
        sizes=((H, W),),
        expected_multiple=32,
        freeze=False,
        save=False,
        config=False,
    )
    assert any(layer.name == "resnet50" for layer in model.layers)


def test_mobilenetv2_contract(zoo):
    zoo.run("fpn", LIGHT, num_classes=21, sizes=SIZES, expected_multiple=32)


def test_activation_none_gives_the_logits(zoo):
    assert_logits_of(
        zoo.get("fpn", 21, **LIGHT), zoo.get("fpn", 21, activation=None, **LIGHT), images(2, H, W)
    )


def test_sigmoid_activation(zoo):
    model = zoo.run(
        "fpn",
        dict(activation="sigmoid", **LIGHT),
        num_classes=21,
        sizes=((H, W),),
        expected_multiple=32,
        freeze=False,
        save=False,
        config=False,
        static_size=False,
    )
    probs = model(images(2, H, W)).numpy()
    assert probs.shape == (2, H, W, 21)
    assert probs.min() > 0 and probs.max() < 1


def test_fpn_structure(zoo):
    model = zoo.get("fpn", 21)
    for stride in (4, 8, 16, 32):
        assert model.get_layer(f"fpn_lateral{stride}").filters == 256
        assert model.get_layer(f"fpn_smooth{stride}").kernel_size == (3, 3)
    stages = {
        s: sum(
            layer.name.startswith(f"seg{s}_stage") and layer.name.endswith("_conv")
            for layer in model.layers
        )
        for s in (4, 8, 16, 32)
    }
    assert stages == {4: 1, 8: 1, 16: 2, 32: 3}
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.GroupNormalization)]
    assert len(norms) == 7 and all(n.groups == 32 for n in norms)
    assert model.get_layer("seg_sum").output.shape[-1] == 128


def test_fpn_rejects_bad_norm():
    with pytest.raises(ValueError, match="norm must be one of"):
        kerasseg.fpn(2, norm="layer", weights=None)
