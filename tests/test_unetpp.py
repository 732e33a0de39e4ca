"""U-Net++: the builder contract (harness) on ResNet50 (the default backbone), MobileNetV2
with narrow widths and the paper's encoder, logits, the nested grid, the paper's size, deep
supervision (outputs, training with one loss, predict on the main output).

Heavy builds are made once per module (``zoo``); inputs are tiny and non-square.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasseg
from kerasseg.models.semantic import unetpp as unetpp_module
from tests.harness import ModelCache, assert_logits_of, check_keras_file, images, outputs_of

H, W = 64, 96
SIZES = ((W, H), (H, W))
LIGHT = dict(backbone="mobilenetv2", decoder_filters=(32, 16, 16, 8, 8))
PAPER = dict(backbone=None, filters=8)  # the paper's encoder, narrow


@pytest.fixture(scope="module")
def zoo():
    return ModelCache()


def test_default_backbone_resnet50_maps_to_input_size(zoo):
    model = zoo.run(
        "unetpp",
        num_classes=21,
        sizes=((H, W),),
        expected_multiple=32,
        freeze=False,
        save=False,
        config=False,
    )
    assert any(layer.name == "resnet50" for layer in model.layers)


def test_mobilenetv2_contract(zoo):
    zoo.run("unetpp", LIGHT, num_classes=21, sizes=SIZES, expected_multiple=32)


def test_paper_encoder_contract(zoo):
    # Sides a multiple of 2**depth = 16 suffice without a backbone; freezing is refused.
    model = zoo.run(
        "unetpp", PAPER, num_classes=3, sizes=((48, 80), (80, 48)), expected_multiple=16
    )
    assert model.get_layer("enc1_1_conv").filters == 8
    assert model.get_layer("bottleneck_1_conv").filters == 8 * 16


def test_paper_encoder_needs_multiple_of_two_to_the_depth():
    with pytest.raises(ValueError, match="width 40 is not a multiple of 16"):
        kerasseg.unetpp(2, backbone=None, input_shape=(48, 40, 3), weights=None)
    with pytest.raises(ValueError, match="multiple of 8"):
        kerasseg.unetpp(2, backbone=None, depth=3, input_shape=(36, 40, 3), weights=None)
    assert (
        kerasseg.unetpp(2, backbone=None, depth=3, filters=4, weights=None).describe()[
            "input_multiple"
        ]
        == 8
    )


def test_activation_none_gives_the_logits(zoo):
    assert_logits_of(
        zoo.get("unetpp", 21, **LIGHT),
        zoo.get("unetpp", 21, activation=None, **LIGHT),
        images(2, H, W),
    )


def test_unetpp_nested_grid(zoo):
    model = zoo.get("unetpp", 3, **PAPER)
    names = {layer.name for layer in model.layers}
    nodes = {(i, j) for i in range(5) for j in range(1, 5) if f"x{i}_{j}_1_conv" in names}
    assert nodes == {(i, j) for i in range(4) for j in range(1, 5 - i)}  # 10 nested nodes
    # X(0,3) sees X(0,0), X(0,1), X(0,2) and the upsampled X(1,2): 8 + 8 + 8 + 8 channels.
    assert model.get_layer("x0_3_1_conv").input.shape[-1] == 32
    assert model.get_layer("x1_2_1_conv").input.shape[-1] == 16 * 3


def test_unetpp_paper_size():
    # Zhou et al. 2018, Table 1: UNet++ 9.04 M (32 base filters, no batch norm, one class).
    kerasseg_kwargs = dict(backbone=None, batch_norm=False)
    ModelCache().run(
        "unetpp",
        kerasseg_kwargs,
        num_classes=1,
        sizes=((48, 80),),
        expected_multiple=16,
        expected_params=pytest.approx(9.04e6, rel=0.01),
        save=False,
        config=False,
    )


def _check_deep_supervision(model, x, classes):
    assert model.output_names == ["output", "output_ds1", "output_ds2", "output_ds3"]
    outputs = outputs_of(model, x)
    assert len(outputs) == 4
    for y in outputs:
        assert y.shape == x.shape[:3] + (classes,)
        np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-4)
    # The heads are separate: the side outputs are not copies of the main one.
    assert not np.allclose(outputs[0], outputs[1])


def test_unetpp_deep_supervision_outputs(zoo):
    x = images(1, H, W)
    paper = zoo.run(
        "unetpp",
        dict(deep_supervision=True, **PAPER),
        num_classes=3,
        sizes=((H, W),),
        expected_multiple=16,
        save=False,
        config=False,
    )
    _check_deep_supervision(paper, x, 3)
    light = zoo.run(
        "unetpp",
        dict(deep_supervision=True, **LIGHT),
        num_classes=21,
        sizes=((H, W),),
        expected_multiple=32,
        freeze=False,
        save=False,
    )
    _check_deep_supervision(light, x, 21)


def test_unetpp_deep_supervision_trains_with_one_loss(tmp_path):
    model = kerasseg.unetpp(3, backbone=None, filters=4, deep_supervision=True, weights=None)
    model.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(), jit_compile=False
    )  # XLA compilation would dominate a one-step test
    x = images(2, 32, 32)
    masks = np.random.default_rng(1).integers(0, 3, (2, 32, 32)).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((x, masks)).batch(2)
    history = model.fit(ds.map(unetpp_module.replicate_labels(model)), epochs=1, verbose=0)
    logs = history.history
    assert {"output_loss", "output_ds1_loss", "output_ds2_loss", "output_ds3_loss"} <= set(logs)
    parts = sum(logs[f"{n}_loss"][0] for n in model.output_names)
    assert np.isfinite(logs["loss"][0]) and logs["loss"][0] == pytest.approx(parts, rel=1e-4)
    restored = check_keras_file(model, x, tmp_path)  # compiled and trained
    assert restored.output_names == model.output_names


def test_replicate_labels_leaves_single_output_pairs(zoo):
    fn = unetpp_module.replicate_labels(zoo.get("unetpp", 3, **PAPER))
    assert fn("img", "mask") == ("img", "mask")


def test_predict_uses_the_main_output_of_deep_supervision():
    model = kerasseg.unetpp(3, backbone=None, filters=4, deep_supervision=True, weights=None)
    image = np.random.default_rng(4).integers(0, 256, (64, 96, 3)).astype("uint8")  # no padding
    main = outputs_of(model, image[None].astype("float32"))[0]
    labels = kerasseg.inference.predict(model, image)
    np.testing.assert_array_equal(labels, main[0].argmax(-1))
