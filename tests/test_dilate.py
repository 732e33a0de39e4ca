"""Dilated backbones: the claimed strides, the same weights, and (where the network allows it
exactly) the same function evaluated densely."""

import keras
import numpy as np
import pytest

from kerasseg import backbones as bb
from kerasseg.backbones import DILATABLE_FAMILIES, dilatable_backbones, dilate_backbone

# One backbone per dilatable family.
FAMILY_REPRESENTATIVES = [
    "resnet50",
    "resnet50v2",
    "xception",
    "mobilenetv2",
    "mobilenetv3small",
    "efficientnetb0",
    "efficientnetv2b0",
]
SIZES = [(64, 64), (96, 128)]
NOMINAL = (2, 4, 8, 16, 32)


def _images(h, w, n=1, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, h, w, 3)).astype("float32")


def _numpy(feats):
    return [keras.ops.convert_to_numpy(f) for f in feats]


@pytest.fixture(scope="module")
def plain():
    """Undilated registry backbones, built once per name."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = bb.build_backbone(name, weights=None)
        return cache[name]

    return get


def test_representatives_cover_every_dilatable_family():
    families = {bb.BACKBONES[name].family for name in FAMILY_REPRESENTATIVES}
    assert families == set(DILATABLE_FAMILIES)


@pytest.mark.parametrize("name", FAMILY_REPRESENTATIVES)
def test_dilated_maps_have_claimed_strides_and_same_weights(plain, name):
    model = plain(name)
    strided_by_size = {size: _numpy(model(_images(*size))) for size in SIZES}
    for output_stride in (16, 8):
        dilated = dilate_backbone(model, name, output_stride)
        expected = tuple(min(s, output_stride) for s in NOMINAL)
        assert dilated.tap_strides == expected
        assert dilated.name == model.name == name
        # Weight for weight: same layers in the same order, identical values.
        assert [l.name for l in dilated.layers] == [l.name for l in model.layers]
        original, copied = model.get_weights(), dilated.get_weights()
        assert len(copied) == len(original) > 0
        for a, b in zip(original, copied):
            np.testing.assert_array_equal(a, b)
        for h, w in SIZES:
            dense, strided = _numpy(dilated(_images(h, w))), strided_by_size[(h, w)]
            for stride, feat in zip(expected, dense):
                assert feat.shape[1:3] == (h // stride, w // stride), (name, output_stride, stride)
            # Up to the first dropped stride the network is untouched.
            for nominal, feat_d, feat_s in zip(NOMINAL, dense, strided):
                if nominal <= output_stride:
                    np.testing.assert_allclose(feat_d, feat_s, rtol=1e-5, atol=1e-5)


def _max_rel_error(a, b):
    return float(np.abs(a - b).max() / (np.abs(b).max() + 1e-12))


# Where the strided layers sample the even positions (ResNet's 1x1 stride-2 convs and pools)
# the dense map at positions 0, r, 2r, ... is the strided network's map; where they centre on
# odd positions ('same'/asymmetric padding of 3x3 kernels, MobileNet) it sits at r-1, 2r-1, ...
# BN in inference mode and ReLU are pointwise, so the match is exact up to float rounding.
@pytest.mark.parametrize(
    "name,odd", [("resnet50", False), ("resnet50v2", False), ("mobilenetv2", True)]
)
@pytest.mark.parametrize("output_stride", [16, 8])
def test_dilated_network_computes_the_strided_one_densely(plain, name, odd, output_stride):
    model = plain(name)
    dilated = dilate_backbone(model, name, output_stride)
    x = _images(64, 96, n=2, seed=1)
    dense, strided = _numpy(dilated(x)), _numpy(model(x))
    for nominal, feat_d, feat_s in zip(NOMINAL, dense, strided):
        r = max(nominal // output_stride, 1)
        start = r - 1 if odd else 0
        sampled = feat_d[:, start::r, start::r]
        assert sampled.shape == feat_s.shape
        assert _max_rel_error(sampled, feat_s) < 1e-4, (name, nominal)
        if r > 1:  # and the dense map holds more than the samples
            assert feat_d.shape[1] == r * feat_s.shape[1]


def test_build_backbone_output_stride_and_static_shapes():
    model = bb.build_backbone("mobilenetv2", weights=None, input_shape=(64, 96, 3), output_stride=8)
    assert model.tap_strides == (2, 4, 8, 8, 8)
    feats = model(_images(64, 96))
    assert [tuple(f.shape[1:3]) for f in feats] == [(32, 48), (16, 24), (8, 12), (8, 12), (8, 12)]


def test_frozen_backbone_stays_frozen_when_dilated():
    model = bb.build_backbone("mobilenetv2", weights=None, freeze=True, output_stride=16)
    assert model.trainable_weights == [] and len(model.weights) > 0


def test_output_stride_32_is_the_model_itself(plain):
    model = plain("mobilenetv2")
    assert dilate_backbone(model, "mobilenetv2", 32) is model


@pytest.mark.parametrize("output_stride", [4, 12, 64, "16"])
def test_bad_output_stride_is_a_value_error(plain, output_stride):
    with pytest.raises(ValueError, match="output_stride must be one of"):
        dilate_backbone(plain("mobilenetv2"), "mobilenetv2", output_stride)


@pytest.mark.parametrize("name", ["vgg16", "densenet121", "convnext_tiny", "inceptionv3"])
def test_undilatable_family_is_a_value_error_naming_the_valid_ones(plain, name):
    with pytest.raises(ValueError) as info:
        dilate_backbone(plain("mobilenetv2"), name, 16)  # refused by name, before the model
    message = str(info.value)
    assert name in message and "resnet50" in message and "xception" in message
    assert name not in dilatable_backbones()
