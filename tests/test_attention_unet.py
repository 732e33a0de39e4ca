"""Attention U-Net: the builder contract (harness) on ResNet50 (the default backbone),
MobileNetV2 with narrow widths and the paper's encoder, logits, the attention gate's
coefficients, a gate on every skip.

Heavy builds are made once per module (``zoo``); inputs are tiny and non-square.
"""

import keras
import numpy as np
import pytest

import kerasseg
from kerasseg.models.semantic.attention_unet import attention_gate
from tests.harness import ModelCache, assert_logits_of, images

H, W = 64, 96
SIZES = ((W, H), (H, W))
LIGHT = dict(backbone="mobilenetv2", decoder_filters=(32, 16, 16, 8, 8))
PAPER = dict(backbone=None, filters=8)  # the paper's encoder, narrow


@pytest.fixture(scope="module")
def zoo():
    return ModelCache()


def test_default_backbone_resnet50_maps_to_input_size(zoo):
    model = zoo.run(
        "attention_unet",
        num_classes=21,
        sizes=((H, W),),
        expected_multiple=32,
        freeze=False,
        save=False,
        config=False,
    )
    assert any(layer.name == "resnet50" for layer in model.layers)


def test_mobilenetv2_contract(zoo):
    zoo.run("attention_unet", LIGHT, num_classes=21, sizes=SIZES, expected_multiple=32)


def test_paper_encoder_contract(zoo):
    # Sides a multiple of 2**depth = 16 suffice without a backbone.
    model = zoo.run(
        "attention_unet", PAPER, num_classes=3, sizes=((48, 80), (80, 48)), expected_multiple=16
    )
    assert model.get_layer("enc1_1_conv").filters == 8
    assert model.get_layer("bottleneck_1_conv").filters == 8 * 16


def test_paper_encoder_needs_multiple_of_two_to_the_depth():
    with pytest.raises(ValueError, match="width 40 is not a multiple of 16"):
        kerasseg.attention_unet(2, backbone=None, input_shape=(48, 40, 3), weights=None)
    with pytest.raises(ValueError, match="multiple of 8"):
        kerasseg.attention_unet(2, backbone=None, depth=3, input_shape=(36, 40, 3), weights=None)


def test_activation_none_gives_the_logits(zoo):
    assert_logits_of(
        zoo.get("attention_unet", 21, **LIGHT),
        zoo.get("attention_unet", 21, activation=None, **LIGHT),
        images(2, H, W),
    )


def _gate_model(skip_shape=(8, 12, 6), gating_shape=(4, 6, 5)):
    skip, gating = keras.Input(skip_shape), keras.Input(gating_shape)
    out = attention_gate(skip, gating, "gate")
    return keras.Model([skip, gating], out)


def test_attention_gate_weights_the_skip():
    model = _gate_model()
    psi = model.get_layer("gate_psi")
    # psi = 0 everywhere: every coefficient is sigmoid(0) = 0.5.
    psi.set_weights([np.zeros_like(w) for w in psi.get_weights()])
    probe = keras.Model(
        model.inputs,
        [model.get_layer("gate_resample").output, model.get_layer("gate_multiply").output],
    )
    rng = np.random.default_rng(0)
    skip, gating = rng.normal(size=(2, 8, 12, 6)), rng.normal(size=(2, 4, 6, 5))
    alpha, gated = probe([skip, gating])
    np.testing.assert_allclose(alpha, 0.5, atol=1e-6)
    np.testing.assert_allclose(gated, 0.5 * skip, atol=1e-5)
    # With a non-zero psi the coefficients vary but stay in (0, 1), one per pixel.
    psi.set_weights([np.full_like(w, 0.7) for w in psi.get_weights()])
    alpha, _ = probe([skip, gating])
    alpha = np.asarray(alpha)
    assert alpha.shape == (2, 8, 12, 1) and 0 < alpha.min() and alpha.max() < 1
    assert alpha.std() > 0.01


def test_attention_unet_gates_every_skip(zoo):
    model = zoo.get("attention_unet", 3, **PAPER)
    for level in range(1, 5):
        skip_channels = 8 * 2 ** (level - 1)
        assert model.get_layer(f"dec{level}_gate_theta").filters == skip_channels // 2
        assert model.get_layer(f"dec{level}_gate_out_conv").filters == skip_channels
    light = zoo.get("attention_unet", 21, **LIGHT)
    assert sum(layer.name.endswith("_gate_psi") for layer in light.layers) == 4
