"""SegNet: the builder contract (harness) on the paper configuration (VGG16 with batch norm,
ImageNet kernels copied), the paper's size, the copy of VGG's kernels (other channel counts
included), the decoder's unpooling with the encoder's indices, the backbones it refuses.

The ImageNet code path runs on a randomly initialised keras.applications VGG16 patched in
for the download; the paper build is made once per module.
"""

import keras
import numpy as np
import pytest

import kerasseg
from kerasseg.layers import MaxUnpooling
from kerasseg.models.semantic import segnet as segnet_module
from tests.harness import ModelCache, images
from tests.shared_models import RandomVGG

K = 5
PAPER_CLASSES = 21
H, W = 64, 96
PAPER = dict(weights="imagenet", activation=None, freeze_backbone=True)


@pytest.fixture(scope="module")
def fake_vgg():
    fake = RandomVGG()
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(segnet_module._VGG_CONSTRUCTORS, "vgg16", fake)
        yield fake


@pytest.fixture(scope="module")
def zoo(fake_vgg):
    return ModelCache()


@pytest.fixture(scope="module")
def paper_segnet(zoo):
    return zoo.get("segnet", PAPER_CLASSES, **PAPER)


def test_paper_segnet_contract_and_size(zoo, paper_segnet):
    # Logits, frozen encoder (vgg16_bn), saved and reloaded, rebuilt from its config.
    zoo.run(
        "segnet",
        PAPER,
        num_classes=PAPER_CLASSES,
        sizes=((H, W), (W, H)),
        expected_multiple=32,
        encoder_name="vgg16_bn",
        expected_params=pytest.approx(29.5e6, rel=0.04),
    )


@pytest.mark.parametrize("backbone", ["resnet50", "mobilenetv2"])
def test_segnet_refuses_backbones_without_vgg_blocks(backbone):
    with pytest.raises(ValueError) as info:
        kerasseg.build("segnet", K, backbone=backbone, weights=None)
    assert backbone in str(info.value) and "vgg16" in str(info.value)


def test_segnet_imagenet_path_copies_vgg_kernels(paper_segnet, fake_vgg):
    encoder = paper_segnet.get_layer("vgg16_bn")
    vgg = fake_vgg(include_top=False, weights="imagenet")
    convs = [l for l in encoder.layers if isinstance(l, keras.layers.Conv2D)]
    assert len(convs) == 13
    for layer in convs:
        for a, b in zip(layer.get_weights(), vgg.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)


def test_segnet_copy_adapts_the_first_kernel_to_other_channel_counts(fake_vgg):
    encoder = segnet_module._encoder((None, None, 4), segnet_module.BLOCK_DEPTHS["vgg16"], "e")
    vgg = fake_vgg(include_top=False, weights="imagenet")
    segnet_module.copy_vgg_weights(vgg, encoder)
    rgb = vgg.get_layer("block1_conv1").get_weights()[0]
    kernel = encoder.get_layer("block1_conv1").get_weights()[0]
    assert kernel.shape == (3, 3, 4, 64)
    for c in range(4):
        np.testing.assert_allclose(kernel[:, :, c], rgb.mean(axis=2) * 3 / 4, rtol=1e-6)


def test_segnet_decoder_unpools_with_the_encoder_indices(paper_segnet):
    model = paper_segnet
    unpools = [l for l in model.layers if isinstance(l, MaxUnpooling)]
    assert len(unpools) == 5
    # Right after unpooling only one position per 2x2 window can be non-zero.
    probe = keras.Model(model.inputs, model.get_layer("decoder1_unpool").output)
    y = keras.ops.convert_to_numpy(probe(images(1, H, W)))
    windows = (y != 0).reshape(1, H // 2, 2, W // 2, 2, y.shape[-1]).sum(axis=(2, 4))
    assert windows.max() == 1
