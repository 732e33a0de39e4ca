"""AlexNet and GoogLeNet, the encoders written here for FCN (Long et al. 2015, Table 1): taps
at the strides claimed, FCN-AlexNet 57 M and FCN-GoogLeNet 6 M parameters, ImageNet weights
refused with the way out (resnet50_v1_5's too), weights files, and a training step of each
FCN."""

import keras
import numpy as np
import pytest

import kerasseg
from kerasseg import backbones as bb
from tests.harness import images

# (strides, channels) of each encoder's taps.
TAPS = {
    "alexnet": ((4, 8, 16, 32), (64, 192, 256, 256)),
    "googlenet": ((2, 4, 8, 16, 32), (64, 192, 480, 832, 1024)),
}
# FCN-32s at 21 classes, the upsampling fixed (the paper counts no upsampling weights):
# trainable parameters, and Long et al.'s Table 1 figure.
FCN_COUNTS = {"alexnet": (57_089_877, 57e6), "googlenet": (5_995_077, 6e6)}


@pytest.fixture(scope="module")
def encoders():
    return {name: bb.build_backbone(name, weights=None) for name in TAPS}


@pytest.mark.parametrize("name", sorted(TAPS))
def test_taps_sit_at_the_claimed_strides(encoders, name):
    model = encoders[name]
    strides, channels = TAPS[name]
    assert model.tap_strides == strides
    for h, w in ((64, 96), (96, 160)):
        feats = model(images(1, h, w))
        assert [tuple(f.shape[1:]) for f in feats] == [
            (h // s, w // s, c) for s, c in zip(strides, channels)
        ]


@pytest.mark.parametrize("name", sorted(TAPS))
def test_fcn32s_paper_sizes(name):
    model = kerasseg.fcn32s(21, backbone=name, weights=None, learn_upsampling=False)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    count, paper = FCN_COUNTS[name]
    assert trainable == count
    assert abs(trainable - paper) / paper < 0.01
    if name == "alexnet":  # fc6 a 6x6 convolution over pool5, fc7 1x1, 4096 each
        assert model.get_layer("fc6").kernel.shape == (6, 6, 256, 4096)
        assert model.get_layer("fc7").kernel.shape == (1, 1, 4096, 4096)
    else:  # scores straight on inception 5b
        assert model.get_layer("score_fr").kernel.shape == (1, 1, 1024, 21)


@pytest.mark.parametrize("name", [*sorted(TAPS), "resnet50_v1_5"])
def test_imagenet_weights_are_refused_naming_the_way_out(name):
    with pytest.raises(
        ValueError,
        match=rf"{name}: there are no published ImageNet weights.*"
        r"weights=None.*weights file",
    ):
        kerasseg.fcn8s(3, backbone=name)


@pytest.mark.parametrize("name", sorted(TAPS))
def test_weights_file_loads_also_into_a_grey_build(encoders, name, tmp_path):
    path = str(tmp_path / f"{name}.weights.h5")
    encoders[name].save_weights(path)
    rgb = bb.build_backbone(name, weights=path)
    for a, b in zip(rgb.get_weights(), encoders[name].get_weights()):
        np.testing.assert_array_equal(a, b)
    grey = bb.build_backbone(name, input_shape=(None, None, 1), weights=path)
    first = encoders[name].get_layer("conv1").kernel.numpy()
    np.testing.assert_allclose(
        grey.get_layer("conv1").kernel.numpy(), first.mean(axis=2, keepdims=True) * 3, rtol=1e-6
    )


@pytest.mark.parametrize(("name", "builder"), [("alexnet", "fcn16s"), ("googlenet", "fcn8s")])
def test_fcn_on_the_encoder_trains_a_step(name, builder):
    keras.utils.set_random_seed(0)
    model = kerasseg.build(builder, 3, backbone=name, weights=None, fc_filters=16)
    x = images(2, 64, 64)
    y = np.random.default_rng(0).integers(0, 3, (2, 64, 64)).astype("int32")
    model.compile(keras.optimizers.SGD(1e-2), kerasseg.losses.CrossEntropy(), jit_compile=False)
    first = model.get_layer(name).get_layer("conv1").kernel.numpy()
    loss = model.fit(x, y, batch_size=2, epochs=1, verbose=0).history["loss"]
    assert np.isfinite(loss[0])
    assert not np.array_equal(first, model.get_layer(name).get_layer("conv1").kernel.numpy())
    assert model(images(1, 96, 64)).shape == (1, 96, 64, 3)
