"""FCN, SegNet, DeepLabV3(+), PSPNet and their blocks: shapes, paper sizes, weights conversion,
serialization, freezing and argument checks.

Heavy models are built once per module (``zoo``) at 64x96 inputs with random weights; the
ImageNet code paths run on randomly initialised keras.applications VGGs patched in for the
download.
"""
import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasseg
from kerasseg.layers import (AdaptiveAveragePooling2D, BilinearUpsampling, MaxPoolingWithArgmax,
                             MaxUnpooling, bilinear_kernel)
from kerasseg.models import fcn as fcn_module
from kerasseg.models import segnet as segnet_module

H, W = 64, 96
K = 5
PAPER_CLASSES = 21
ARCHS = ["fcn32s", "fcn16s", "fcn8s", "segnet", "deeplabv3", "deeplabv3plus", "pspnet"]
DEFAULT_BACKBONE = {"fcn32s": "vgg16", "fcn16s": "vgg16", "fcn8s": "vgg16", "segnet": "vgg16",
                    "deeplabv3": "resnet50", "deeplabv3plus": "resnet50", "pspnet": "resnet50"}
MULTIPLE = {"fcn32s": 32, "fcn16s": 32, "fcn8s": 32, "segnet": 32, "deeplabv3": 16,
            "deeplabv3plus": 16, "pspnet": 8}
# (arch, backbone) pairs the architecture refuses, with the message's valid choices.
REFUSED = {("segnet", "resnet50"), ("segnet", "mobilenetv2")}


def _images(n=2, h=H, w=W, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, h, w, 3)).astype("float32")


def _main(y):
    return keras.ops.convert_to_numpy(y[0] if isinstance(y, (list, tuple)) else y)


class _RandomVGG:
    """Stands in for keras.applications.VGG16 with ImageNet weights: randomly initialised,
    biases made non-zero (so a copy cannot pass by both being zero), built once per
    include_top setting."""

    def __init__(self):
        self.models = {}

    def __call__(self, include_top=True, weights=None, **kwargs):
        assert weights == "imagenet"  # the builders ask for the real thing
        if include_top not in self.models:
            vgg = keras.applications.VGG16(include_top=include_top, weights=None)
            vgg.set_weights([w if w.ndim > 1 else np.linspace(-0.1, 0.1, w.size, dtype=w.dtype)
                             for w in vgg.get_weights()])
            self.models[include_top] = vgg
        return self.models[include_top]


@pytest.fixture(scope="module")
def fake_vgg():
    fake = _RandomVGG()
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(fcn_module._VGG_CONSTRUCTORS, "vgg16", fake)
        mp.setitem(segnet_module._VGG_CONSTRUCTORS, "vgg16", fake)
        yield fake


@pytest.fixture(scope="module")
def zoo(fake_vgg):
    """Models by key, each built once. Keys: (arch, backbone)."""
    recipes = {
        # The paper configurations, through the ImageNet code paths (patched VGG).
        ("fcn8s", "vgg16"): dict(num_classes=PAPER_CLASSES, weights="imagenet"),
        ("segnet", "vgg16"): dict(num_classes=PAPER_CLASSES, weights="imagenet",
                                  activation=None, freeze_backbone=True),
        # Default backbones, logits (FCN's fc layers narrowed: the paper size is checked above).
        ("fcn32s", "vgg16"): dict(activation=None, fc_filters=64),
        ("fcn16s", "vgg16"): dict(activation=None, fc_filters=64),
        ("deeplabv3", "resnet50"): dict(activation=None),
        ("deeplabv3plus", "resnet50"): dict(activation=None),
        ("pspnet", "resnet50"): dict(activation=None),
        # The other required backbones; the MobileNetV2 builds double as the frozen,
        # serialized ones (PSPNet with its auxiliary head).
        ("fcn32s", "resnet50"): {}, ("fcn16s", "resnet50"): {}, ("fcn8s", "resnet50"): {},
        **{(arch, "mobilenetv2"): dict(freeze_backbone=True)
           for arch in ("fcn32s", "fcn16s", "fcn8s", "deeplabv3", "deeplabv3plus")},
        ("pspnet", "mobilenetv2"): dict(freeze_backbone=True, aux_head=True),
    }
    cache = {}

    def get(arch, backbone):
        key = (arch, backbone)
        if key not in cache:
            options = {"num_classes": K, "weights": None, **recipes[key]}
            cache[key] = kerasseg.build(arch, backbone=backbone, **options)
        return cache[key]

    return get


# ---------------------------------------------------------------- shapes and activations

SHAPE_CASES = [(arch, backbone) for arch in ARCHS
               for backbone in dict.fromkeys([DEFAULT_BACKBONE[arch], "resnet50", "mobilenetv2"])]


@pytest.mark.parametrize("arch,backbone", SHAPE_CASES)
def test_maps_images_to_class_maps_at_input_size(zoo, arch, backbone):
    if (arch, backbone) in REFUSED:
        with pytest.raises(ValueError) as info:
            kerasseg.build(arch, K, backbone=backbone, weights=None)
        assert backbone in str(info.value) and "vgg16" in str(info.value)
        return
    model = zoo(arch, backbone)
    classes = model.outputs[0].shape[-1]
    for h, w in ((H, W), (W, H)):  # non-square, both ways round
        y = _main(model(_images(h=h, w=w)))
        assert y.shape == (2, h, w, classes)
        assert np.all(np.isfinite(y))
    logits = model.get_layer("output").get_config()["activation"] == "linear"
    if logits:
        assert y.min() < 0 or y.max() > 1 or not np.allclose(y.sum(-1), 1, atol=1e-3)
    else:
        assert np.allclose(y.sum(-1), 1, atol=1e-4) and y.min() >= 0


def test_pspnet_auxiliary_head_is_the_second_output(zoo):
    model = zoo("pspnet", "mobilenetv2")
    assert model.output_names == ["output", "aux_output"]
    main, aux = model(_images())
    assert main.shape == aux.shape == (2, H, W, K)
    # The main head reads the last map (1280 channels), the auxiliary one stage 4's
    # (block_13_expand_relu, 576 channels), both at output stride 8 here.
    assert model.get_layer("ppm_pool1").input.shape[-1] == 1280
    assert model.get_layer("aux_conv").input.shape[-1] == 576


def test_feature_strides_of_the_dilated_decoders(zoo):
    # DeepLab at output stride 16 by default, PSPNet at 8: the deepest map says so.
    for arch, stride in (("deeplabv3", 16), ("pspnet", 8)):
        encoder = zoo(arch, "resnet50").get_layer("resnet50")
        assert encoder.tap_strides == (2, 4, 8) + (stride,) * 2
        assert encoder(_images(1))[-1].shape[1:3] == (H // stride, W // stride)


# ---------------------------------------------------------------- paper configurations

def _within(count, reference, tolerance=0.04):
    return abs(count - reference) / reference <= tolerance


def test_fcn8s_paper_size(zoo):
    count = zoo("fcn8s", "vgg16").count_params()
    assert _within(count, 134.49e6), count
    # The breakdown of REFERENCES.md: VGG16 convs + fc6 + fc7 + scores + upsampling.
    expected = (14_714_688 + 102_764_544 + 16_781_312 + (4096 + 512 + 256 + 3) * 21
                + (4 * 4 * 2 + 16 * 16) * 21 * 21)
    assert count == expected


def test_segnet_paper_size(zoo):
    count = zoo("segnet", "vgg16").count_params()
    assert _within(count, 29.5e6), count


def test_fcn_imagenet_path_converts_the_classifier_to_convolutions(zoo, fake_vgg):
    model, vgg = zoo("fcn8s", "vgg16"), fake_vgg(include_top=True, weights="imagenet")
    # Encoder convolutions: copied.
    encoder = model.get_layer("vgg16")
    for name in ("block1_conv1", "block3_conv2", "block5_conv3"):
        for a, b in zip(encoder.get_layer(name).get_weights(), vgg.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    # fc6 over a 7x7 pool5 is fc1 over the flattened pool5 (at the centre, where 'same'
    # padding does not reach); fc7 is fc2.
    pool5 = np.random.default_rng(3).normal(size=(2, 7, 7, 512)).astype("float32")
    fc6 = keras.ops.convert_to_numpy(model.get_layer("fc6")(pool5))[:, 3, 3]
    fc1 = keras.ops.convert_to_numpy(vgg.get_layer("fc1")(pool5.reshape(2, -1)))
    np.testing.assert_allclose(fc6, fc1, rtol=1e-4, atol=1e-4)
    hidden = np.random.default_rng(4).normal(size=(2, 4096)).astype("float32")
    fc7 = keras.ops.convert_to_numpy(model.get_layer("fc7")(hidden[:, None, None]))[:, 0, 0]
    fc2 = keras.ops.convert_to_numpy(vgg.get_layer("fc2")(hidden))
    np.testing.assert_allclose(fc7, fc2, rtol=1e-4, atol=1e-4)


def test_fc_conversion_refuses_a_narrowed_fc(zoo, fake_vgg):
    with pytest.raises(ValueError, match="fc_filters must be 4096"):
        fcn_module.fc_to_conv_weights(fake_vgg(include_top=True, weights="imagenet"),
                                      zoo("fcn32s", "vgg16"))


def test_fcn_upsampling_starts_bilinear(zoo):
    model = zoo("fcn8s", "vgg16")
    layer = model.get_layer("upscore8")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.kernel),
                                  bilinear_kernel(16, PAPER_CLASSES, PAPER_CLASSES))
    # The skip scores start at zero: FCN-8s begins as FCN-32s would.
    assert not np.any(keras.ops.convert_to_numpy(model.get_layer("score_pool3").kernel))


def test_segnet_imagenet_path_copies_vgg_kernels(zoo, fake_vgg):
    encoder = zoo("segnet", "vgg16").get_layer("vgg16_bn")
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


def test_segnet_decoder_unpools_with_the_encoder_indices(zoo):
    model = zoo("segnet", "vgg16")
    unpools = [l for l in model.layers if isinstance(l, MaxUnpooling)]
    assert len(unpools) == 5
    # Right after unpooling only one position per 2x2 window can be non-zero.
    probe = keras.Model(model.inputs, model.get_layer("decoder1_unpool").output)
    y = keras.ops.convert_to_numpy(probe(_images(1)))
    windows = (y != 0).reshape(1, H // 2, 2, W // 2, 2, y.shape[-1]).sum(axis=(2, 4))
    assert windows.max() == 1


# ---------------------------------------------------------------- save/load and freezing

SERIALIZED = [("fcn32s", "vgg16"), ("fcn32s", "mobilenetv2"), ("fcn16s", "mobilenetv2"),
              ("fcn8s", "mobilenetv2"), ("segnet", "vgg16"), ("deeplabv3", "mobilenetv2"),
              ("deeplabv3plus", "mobilenetv2"), ("pspnet", "mobilenetv2")]


def test_serialized_cases_cover_every_architecture():
    assert {arch for arch, _ in SERIALIZED} == set(ARCHS)


@pytest.mark.parametrize("arch,backbone", SERIALIZED)
def test_keras_file_round_trip_gives_identical_outputs(zoo, tmp_path, arch, backbone):
    model = zoo(arch, backbone)
    x = _images(1, seed=5)
    path = str(tmp_path / f"{arch}.keras")
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects: every layer is registered
    before, after = model(x), loaded(x)
    if not isinstance(before, (list, tuple)):
        before, after = [before], [after]
    assert len(before) == len(after)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    assert len(loaded.trainable_weights) == len(model.trainable_weights)


@pytest.mark.parametrize("arch,backbone,options", [
    ("pspnet", "mobilenetv2", dict(freeze_backbone=True, aux_head=True)),
    ("fcn32s", "vgg16", dict(activation=None, fc_filters=64))])
def test_whole_model_weights_file_loads_into_a_fresh_build(zoo, tmp_path, arch, backbone,
                                                           options):
    model = zoo(arch, backbone)
    path = str(tmp_path / f"{arch}.weights.h5")
    model.save_weights(path)
    fresh = kerasseg.build(arch, K, backbone=backbone, weights=path, **options)
    x = _images(1, seed=6)
    for a, b in zip(keras.tree.flatten(model(x)), keras.tree.flatten(fresh(x))):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


FROZEN = [("fcn8s", "mobilenetv2", "mobilenetv2"), ("segnet", "vgg16", "vgg16_bn"),
          ("deeplabv3", "mobilenetv2", "mobilenetv2"),
          ("deeplabv3plus", "mobilenetv2", "mobilenetv2"), ("pspnet", "mobilenetv2", "mobilenetv2")]


@pytest.mark.parametrize("arch,backbone,encoder_name", FROZEN)
def test_freeze_backbone_freezes_only_the_encoder(zoo, arch, backbone, encoder_name):
    model = zoo(arch, backbone)
    encoder = model.get_layer(encoder_name)
    assert isinstance(encoder, keras.Model)
    assert encoder.trainable_weights == [] and len(encoder.weights) > 0
    decoder = [l for l in model.layers if l is not encoder and l.weights]
    assert decoder and all(l.trainable and l.trainable_weights for l in decoder)
    frozen = {id(v) for v in encoder.weights}
    assert not any(id(v) in frozen for v in model.trainable_weights)


def test_unfrozen_models_train_their_encoder(zoo):
    model = zoo("fcn8s", "resnet50")
    assert len(model.get_layer("resnet50").trainable_weights) > 0


def test_fcn_vgg_freezes_the_convolutions_not_fc6_fc7():
    model = kerasseg.fcn32s(K, weights=None, fc_filters=8, freeze_backbone=True)
    assert model.get_layer("vgg16").trainable_weights == []
    assert model.get_layer("fc6").trainable_weights and model.get_layer("fc7").trainable_weights


# ---------------------------------------------------------------- argument checks

@pytest.mark.parametrize("arch", ARCHS)
def test_static_size_off_the_multiple_is_a_value_error(arch):
    multiple = MULTIPLE[arch]
    with pytest.raises(ValueError, match=f"multiple of {multiple}"):
        kerasseg.build(arch, K, weights=None, input_shape=(multiple * 3 + 4, 96, 3))


@pytest.mark.parametrize("arch,valid", [("deeplabv3", r"\(8, 16, 32\)"),
                                        ("deeplabv3plus", r"\(8, 16, 32\)"),
                                        ("pspnet", r"\(8, 16\)")])
@pytest.mark.parametrize("output_stride", [4, 64, 12])
def test_bad_output_stride_is_a_value_error(arch, valid, output_stride):
    with pytest.raises(ValueError, match=r"output_stride must be one of " + valid):
        kerasseg.build(arch, K, weights=None, output_stride=output_stride)


def test_deeplab_at_output_stride_32_keeps_the_backbone_undilated():
    model = kerasseg.deeplabv3plus(K, backbone="resnet50", weights=None, output_stride=32,
                                   atrous_rates=(6, 12, 18))
    encoder = model.get_layer(next(l.name for l in model.layers if isinstance(l, keras.Model)))
    assert all(max(getattr(l, "dilation_rate", (1, 1))) == 1 for l in encoder.layers)
    features = encoder(np.zeros((1, H, W, 3), "float32"))
    assert features[-1].shape[1:3] == (H // 32, W // 32)
    rates = sorted(max(l.dilation_rate) for l in model.layers
                   if isinstance(l, keras.layers.Conv2D) and max(l.dilation_rate) > 1)
    assert rates == [6, 12, 18]
    assert model(_images(1)).shape == (1, H, W, K)
    with pytest.raises(ValueError, match="multiple of 32"):
        kerasseg.deeplabv3(K, weights=None, output_stride=32, input_shape=(48, 48, 3))


def test_deeplabv3plus_decoder_options():
    """keras-hub's preset decoder (one 1x1 of 256) against the paper's (two 3x3 of 256)."""
    def build(**options):
        return kerasseg.deeplabv3plus(K, backbone="mobilenetv2", weights=None, **options)

    paper, light = build(), build(decoder_convs=1, decoder_kernel_size=1)
    assert [l.name for l in light.layers if l.name.startswith("decoder_conv")] == [
        "decoder_conv1_conv", "decoder_conv1_bn", "decoder_conv1_relu"]
    assert light.get_layer("decoder_conv1_conv").kernel.shape == (1, 1, 256 + 48, 256)
    # Exactly the two 3x3 kernels (no biases: batch norm follows) less the 1x1 one.
    assert paper.count_params() - light.count_params() == (
        9 * 304 * 256 + 9 * 256 * 256 + 4 * 256 - 304 * 256)
    assert light(_images(1)).shape == (1, H, W, K)
    with pytest.raises(ValueError, match="decoder_convs must be an integer >= 1"):
        build(decoder_convs=0)


@pytest.mark.parametrize("arch", ["deeplabv3", "pspnet"])
def test_undilatable_backbone_is_a_value_error_naming_the_valid_ones(arch):
    with pytest.raises(ValueError) as info:
        kerasseg.build(arch, K, weights=None, backbone="vgg16")
    assert "'vgg16'" in str(info.value) and "resnet50" in str(info.value)


def test_unknown_backbone_is_a_value_error():
    with pytest.raises(ValueError, match="Valid backbones"):
        kerasseg.fcn8s(K, weights=None, backbone="resnet5")


def test_missing_weights_file_is_a_file_not_found_error(tmp_path):
    missing = str(tmp_path / "nope.weights.h5")
    for arch in ("segnet", "fcn32s"):
        with pytest.raises(FileNotFoundError, match="nope.weights.h5"):
            kerasseg.build(arch, K, weights=missing)


def test_all_architectures_are_registered():
    assert set(ARCHS) <= set(kerasseg.list_models())


# ---------------------------------------------------------------- blocks

def _adaptive_pool_reference(x, bins):
    n, h, w, c = x.shape
    out = np.zeros((n, bins, bins, c), x.dtype)
    for i in range(bins):
        h0, h1 = (i * h) // bins, -(-((i + 1) * h) // bins)
        for j in range(bins):
            w0, w1 = (j * w) // bins, -(-((j + 1) * w) // bins)
            out[:, i, j] = x[:, h0:h1, w0:w1].mean(axis=(1, 2))
    return out


@pytest.mark.parametrize("bins", [1, 2, 3, 6])
def test_adaptive_average_pooling_matches_windows_at_runtime_sizes(bins):
    inputs = keras.Input((None, None, 4))
    model = keras.Model(inputs, AdaptiveAveragePooling2D(bins)(inputs))
    rng = np.random.default_rng(bins)
    for h, w in ((8, 12), (7, 5), (3, 2), (13, 13)):
        x = rng.normal(size=(2, h, w, 4)).astype("float32")
        np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)),
                                   _adaptive_pool_reference(x, bins), rtol=1e-5, atol=1e-5)


def _unpool_reference(x):
    """Numpy 2x2 max pool + unpool: keep each window's maximum in place, zero the rest."""
    out = np.zeros_like(x)
    n, h, w, c = x.shape
    for b in range(n):
        for ch in range(c):
            for i in range(0, h, 2):
                for j in range(0, w, 2):
                    window = x[b, i:i + 2, j:j + 2, ch]
                    di, dj = np.unravel_index(np.argmax(window), window.shape)
                    out[b, i + di, j + dj, ch] = window[di, dj]
    return out


def test_max_unpooling_restores_maxima_in_place_for_any_size(tmp_path):
    inputs = keras.Input((None, None, 3))
    pooled, indices = MaxPoolingWithArgmax(2)(inputs)
    model = keras.Model(inputs, [pooled, MaxUnpooling()(pooled, indices, inputs)])
    assert indices.dtype == "int64"
    path = str(tmp_path / "unpool.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    rng = np.random.default_rng(0)
    for shape in ((2, 6, 8, 3), (3, 5, 7, 3)):  # odd sizes unpool back to themselves
        x = rng.normal(size=shape).astype("float32")
        for m in (model, loaded):
            p, u = (keras.ops.convert_to_numpy(t) for t in m(x))
            assert p.shape == (shape[0], -(-shape[1] // 2), -(-shape[2] // 2), 3)
            np.testing.assert_array_equal(u, _unpool_reference(x))
    # The gradient reaches exactly the positions of the maxima.
    x = tf.constant(rng.normal(size=(2, 6, 8, 3)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(model(x)[1])
    grad = tape.gradient(total, x).numpy()
    np.testing.assert_array_equal(grad, (_unpool_reference(x.numpy()) != 0).astype("float32"))


@pytest.mark.parametrize("factor", [2, 8])
def test_bilinear_initializer_upsamples_like_bilinear_resize(factor):
    layer = keras.layers.Conv2DTranspose(3, 2 * factor, strides=factor, padding="same",
                                         use_bias=False, kernel_initializer=BilinearUpsampling())
    x = np.random.default_rng(factor).normal(size=(1, 6, 8, 3)).astype("float32")
    up = keras.ops.convert_to_numpy(layer(x))
    ref = tf.image.resize(x, (6 * factor, 8 * factor), "bilinear").numpy()
    border = factor  # interpolation needs a neighbour on each side
    np.testing.assert_allclose(up[:, border:-border, border:-border],
                               ref[:, border:-border, border:-border], atol=1e-5)
    assert keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(BilinearUpsampling())).__class__ is BilinearUpsampling
