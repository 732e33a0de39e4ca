"""RefineNet: the builder contract (harness) on ResNet50 (the default backbone) and on
MobileNetV2 with narrow widths (frozen, saved, reloaded, rebuilt from its config), logits, and
the multi-path refinement structure.

Heavy builds are made once per module (``zoo``); inputs are tiny and non-square.
"""

import keras
import pytest

from tests.harness import ModelCache, assert_logits_of, images

H, W = 64, 96
SIZES = ((W, H), (H, W))  # portrait and landscape
# The structure is the architecture's, only the widths shrink.
LIGHT = dict(backbone="mobilenetv2", widths=(32, 16, 16, 16))


@pytest.fixture(scope="module")
def zoo():
    return ModelCache()


def test_default_backbone_resnet50_maps_to_input_size(zoo):
    model = zoo.run(
        "refinenet",
        num_classes=21,
        sizes=((H, W),),
        expected_multiple=32,
        freeze=False,
        save=False,
        config=False,
    )
    assert any(layer.name == "resnet50" for layer in model.layers)


def test_mobilenetv2_contract(zoo):
    zoo.run("refinenet", LIGHT, num_classes=21, sizes=SIZES, expected_multiple=32)


def test_activation_none_gives_the_logits(zoo):
    assert_logits_of(
        zoo.get("refinenet", 21, **LIGHT),
        zoo.get("refinenet", 21, activation=None, **LIGHT),
        images(2, H, W),
    )


def test_refinenet_structure(zoo):
    model = zoo.get("refinenet", 21)
    assert model.get_layer("refine4_adapt").filters == 512
    for index in (3, 2, 1):
        assert model.get_layer(f"refine{index}_adapt").filters == 256
        assert model.get_layer(f"refine{index}_crp_conv1").filters == 256
    assert model.get_layer("refine4_crp_conv4").filters == 512
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert len(pools) == 16
    assert all(p.pool_size == (5, 5) and p.strides == (1, 1) for p in pools)
    rcus = [
        layer
        for layer in model.layers
        if layer.name.endswith("rcu1_add")
        or layer.name.endswith("rcu2_add")
        or layer.name.endswith("out_rcu_add")
    ]
    # RefineNet-4: 2 + 1; RefineNet-3..1: 2 paths x 2 + 1; two final units.
    assert len(rcus) == 3 + 3 * 5 + 2
