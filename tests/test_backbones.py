"""The backbone registry: every encoder builds, taps sit at their strides, preprocessing and
weights behave as keras.applications' own."""

import importlib

import keras
import numpy as np
import pytest

from kerasseg import backbones as bb

SIZES = [(64, 64), (96, 128)]

# keras.applications module whose preprocess_input each family mirrors.
FAMILY_MODULES = {
    "vgg": "vgg16",
    "resnet": "resnet",
    "resnet_v2": "resnet_v2",
    "mobilenet_v2": "mobilenet_v2",
    "mobilenet_v3": "mobilenet_v3",
    "efficientnet": "efficientnet",
    "efficientnet_v2": "efficientnet_v2",
    "densenet": "densenet",
    "xception": "xception",
    "inception_v3": "inception_v3",
    "convnext": "convnext",
}


def test_registry_lists_every_design_backbone():
    expected = (
        "vgg16 vgg19 resnet50 resnet101 resnet152 resnet50v2 resnet101v2 resnet152v2 "
        "mobilenetv2 mobilenetv3small mobilenetv3large densenet121 densenet169 densenet201 "
        "xception inceptionv3 convnext_tiny convnext_small convnext_base "
        "efficientnetv2s efficientnetv2m efficientnetv2l alexnet googlenet resnet50_v1_5"
    ).split()
    expected += [f"efficientnetb{i}" for i in range(8)]
    expected += [f"efficientnetv2b{i}" for i in range(4)]
    expected += [f"mit_b{i}" for i in range(6)]
    assert sorted(expected) == bb.list_backbones()


# MiT-B2..B5 are B1 with more blocks per stage (same code, 4-9 s a build): their taps are
# checked once, with the paper sizes, in test_segformer.py. EfficientNet B5-B7 and V2-M/L tap
# the same layer names as their smaller siblings (keras.applications names the blocks alike;
# only the repeats differ), at 30-45 s a build twice over: B0-B4 and V2-B0..B3/S stand for them.
SIBLINGS = ("mit_b2", "mit_b3", "mit_b4", "mit_b5", "efficientnetb5", "efficientnetb6")
SIBLINGS += ("efficientnetb7", "efficientnetv2m", "efficientnetv2l")
TAPPED = [n for n in bb.list_backbones() if n not in SIBLINGS]


@pytest.mark.parametrize("name", TAPPED)
def test_backbone_builds_and_taps_have_claimed_strides(name):
    model = bb.build_backbone(name, weights=None)
    # No stride-2 map: ConvNeXt's and MiT's stride-4 patchify stems, AlexNet's stride-4 conv1.
    no_stride2 = name.startswith(("convnext", "mit_")) or name == "alexnet"
    expected = (4, 8, 16, 32) if no_stride2 else (2, 4, 8, 16, 32)
    assert model.tap_strides == expected
    for h, w in SIZES:
        feats = model(np.random.uniform(0, 255, (1, h, w, 3)).astype("float32"))
        assert len(feats) == len(expected)
        for stride, feat in zip(expected, feats):
            assert tuple(feat.shape[:3]) == (1, h // stride, w // stride), (name, stride)
            assert np.all(np.isfinite(keras.ops.convert_to_numpy(feat)))


def _reference_preprocess(family, x):
    module = importlib.import_module(f"keras.applications.{FAMILY_MODULES[family]}")
    return module.preprocess_input(x.copy())


@pytest.mark.parametrize("family", sorted(FAMILY_MODULES))
def test_in_graph_preprocessing_matches_keras_applications(family):
    spec = next(s for s in bb.BACKBONES.values() if s.family == family)
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    ours = keras.ops.convert_to_numpy(bb.ImagePreprocessing(spec.preprocess)(x))
    np.testing.assert_allclose(ours, _reference_preprocess(family, x), rtol=1e-5, atol=1e-4)


def test_internal_preprocessing_families_normalize_inside_the_network():
    # preprocess_input is the identity for these: the network itself must rescale.
    model = bb.build_backbone("mobilenetv3small", weights=None)
    assert any(isinstance(layer, keras.layers.Rescaling) for layer in model.layers)


def _assert_same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb) > 0
    for x, y in zip(wa, wb):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name", ["resnet50", "mobilenetv3small", "efficientnetb0"])
def test_weights_file_loads_weight_for_weight(tmp_path, name):
    source = bb.build_backbone(name, weights=None)
    # Perturb so the file cannot match a fresh random init by chance.
    source.set_weights([w + np.float32(0.5) for w in source.get_weights()])
    path = str(tmp_path / f"{name}.weights.h5")
    source.save_weights(path)
    loaded = bb.build_backbone(name, weights=path)
    _assert_same_weights(source, loaded)


def test_rgb_weights_adapt_to_other_channel_counts(tmp_path):
    source = bb.build_backbone("vgg16", weights=None)
    path = str(tmp_path / "vgg16.weights.h5")
    source.save_weights(path)
    rgbd = bb.build_backbone("vgg16", weights=path, input_shape=(None, None, 4))
    src_kernel = source.get_layer("block1_conv1").get_weights()[0]
    kernel = rgbd.get_layer("block1_conv1").get_weights()[0]
    assert kernel.shape == (3, 3, 4, 64)
    expected = np.repeat(src_kernel.mean(axis=2, keepdims=True) * 3 / 4, 4, axis=2)
    np.testing.assert_allclose(kernel, expected, rtol=1e-6)
    # A grey image repeated over the channels gives the RGB network's response.
    grey = np.random.default_rng(1).uniform(0, 255, (1, 32, 32, 1)).astype("float32")
    src_first = keras.Model(source.input, source.get_layer("block1_conv1").output)
    dst_first = keras.Model(rgbd.input, rgbd.get_layer("block1_conv1").output)
    np.testing.assert_allclose(
        dst_first(np.repeat(grey, 4, -1)), src_first(_mean_rgb(grey)), rtol=1e-4, atol=1e-2
    )
    # Every later layer is copied unchanged.
    np.testing.assert_array_equal(
        rgbd.get_layer("block5_conv3").get_weights()[0],
        source.get_layer("block5_conv3").get_weights()[0],
    )


def _mean_rgb(grey):
    """The RGB image that, after caffe preprocessing (BGR, per-channel mean), equals the grey
    image after the 4-channel build's preprocessing (averaged mean): grey + (mean_c - mean)."""
    return np.repeat(grey, 3, -1) + (
        np.array([123.68, 116.779, 103.939], "float32")
        - np.float32(sum((103.939, 116.779, 123.68)) / 3)
    )


def test_freeze_makes_every_backbone_weight_non_trainable():
    model = bb.build_backbone("mobilenetv2", weights=None, freeze=True)
    assert model.trainable_weights == []
    assert len(model.non_trainable_weights) > 0


def test_unknown_backbone_lists_valid_choices():
    with pytest.raises(ValueError, match="resnet5O.*Valid backbones:.*resnet50"):
        bb.build_backbone("resnet5O", weights=None)


def test_missing_weights_file_names_the_path(tmp_path):
    missing = str(tmp_path / "nope.weights.h5")
    with pytest.raises(FileNotFoundError, match="nope.weights.h5"):
        bb.build_backbone("resnet50", weights=missing)


def test_weights_argument_must_be_known():
    with pytest.raises(ValueError, match="weights must be"):
        bb.build_backbone("resnet50", weights=123)


def _randomized(net, seed=0):
    """Random weights with non-trivial conv biases and batch-norm statistics."""
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            size = layer.moving_mean.shape
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.0, size),
                    rng.normal(0, 0.1, size),
                    rng.normal(0, 0.5, size),
                    rng.uniform(0.5, 2.0, size),
                ]
            )
        elif isinstance(layer, keras.layers.Conv2D) and layer.use_bias:
            layer.bias.assign(rng.normal(0, 0.5, layer.bias.shape))
    return net


def test_conv_biases_before_batch_norm_fold_exactly():
    net = _randomized(
        keras.applications.ResNet50(include_top=False, weights=None, input_shape=(64, 64, 3))
    )
    biased = [l for l in net.layers if isinstance(l, keras.layers.Conv2D) and l.use_bias]
    folded = bb.fold_conv_biases(net)
    assert [l.name for l in folded.layers] == [l.name for l in net.layers]
    assert not any(isinstance(l, keras.layers.Conv2D) and l.use_bias for l in folded.layers)
    assert net.count_params() - folded.count_params() == sum(l.filters for l in biased) > 0

    x = np.random.default_rng(1).normal(0, 50, (2, 64, 64, 3)).astype("float32")
    scale = np.abs(keras.ops.convert_to_numpy(net(x))).max()
    np.testing.assert_allclose(folded(x), net(x), atol=1e-5 * scale)
    # Training mode: the batch mean absorbs the bias, and the moving means keep the offset.
    # (Looser: the last stage normalizes over 8 values per channel, which magnifies rounding.)
    np.testing.assert_allclose(folded(x, training=True), net(x, training=True), atol=1e-3 * scale)
    for conv in biased:
        norm = net.get_layer(conv.name.replace("_conv", "_bn"))
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(folded.get_layer(norm.name).moving_mean),
            keras.ops.convert_to_numpy(norm.moving_mean - conv.bias),
            rtol=1e-4,
            atol=1e-3,
        )


def test_conv_bias_stays_where_the_conv_output_is_used_elsewhere():
    inputs = keras.Input((8, 8, 3))
    shared = keras.layers.Conv2D(4, 3, padding="same", name="shared")(inputs)
    normed = keras.layers.BatchNormalization(name="shared_bn")(shared)
    single = keras.layers.Conv2D(4, 3, padding="same", name="single")(normed)
    outputs = keras.layers.BatchNormalization(name="single_bn")(single)
    net = _randomized(keras.Model(inputs, [outputs, shared]))
    folded = bb.fold_conv_biases(net)
    assert folded.get_layer("shared").use_bias and not folded.get_layer("single").use_bias
    x = np.random.default_rng(2).normal(size=(2, 8, 8, 3)).astype("float32")
    for ours, theirs in zip(folded(x), net(x)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


# Each module of the package imports only those before it here (no cycle, nothing upward).
LAYERS = ("registry", "graph", "preprocessing", "weights", "applications", "dilation", "build")


def test_package_modules_import_only_downward():
    import ast
    import os

    folder = os.path.dirname(bb.__file__)
    for i, module in enumerate(LAYERS):
        with open(os.path.join(folder, f"{module}.py")) as f:
            tree = ast.parse(f.read())
        imported = {
            node.module.rsplit(".", 1)[-1]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("kerasseg.backbones.")
        }
        assert imported <= set(LAYERS[:i]), (module, imported - set(LAYERS[:i]))


def test_a_backbone_name_is_checked_once_per_build(monkeypatch):
    from kerasseg.backbones import build, dilation, registry

    calls = []

    def counting(name, allowed=None, arch=None):
        calls.append(name)
        return registry.check_backbone(name, allowed, arch)

    for module in (build, dilation):
        monkeypatch.setattr(module, "check_backbone", counting)
    model = bb.build_backbone(
        "mobilenetv2",
        weights=None,
        output_stride=16,
        allowed=bb.dilatable_backbones(),
        arch="deeplabv3",
    )
    assert model.tap_strides == (2, 4, 8, 16, 16)
    assert calls == ["mobilenetv2"]


def test_build_backbone_names_the_architecture_and_its_choices():
    with pytest.raises(ValueError, match="'vgg16' for deeplabv3.*Valid backbones: .*resnet50"):
        bb.build_backbone("vgg16", weights=None, allowed=bb.dilatable_backbones(), arch="deeplabv3")
    with pytest.raises(ValueError, match="'vgg16' cannot be dilated to output_stride 16"):
        bb.build_backbone("vgg16", weights=None, output_stride=16)
    with pytest.raises(ValueError, match="output_stride must be one of"):
        bb.build_backbone("resnet50", weights=None, output_stride=12)


@pytest.mark.parametrize("channels", [3, 4])
def test_backbone_file_loads_into_a_fast_kernel_build(tmp_path, channels):
    # Builders switch their encoder's layers to kerasseg.layers' fast subclasses, which
    # changes the layout a weights file is read with; the file still loads.
    from kerasseg.layers import use_fast_kernels

    source = bb.build_backbone("mobilenetv2", weights=None)
    source.set_weights([w + np.float32(0.5) for w in source.get_weights()])
    path = str(tmp_path / "mobilenetv2.weights.h5")
    source.save_weights(path)
    model = use_fast_kernels(
        bb.build_backbone(
            "mobilenetv2", weights=None, input_shape=(None, None, channels), output_stride=16
        )
    )
    bb.load_backbone_file(model, path)
    same = [np.array_equal(a, b) for a, b in zip(source.get_weights(), model.get_weights())]
    assert all(same[1:]) and same[0] == (channels == 3)


def test_load_backbone_file_refuses_a_model_outside_the_registry(tmp_path):
    path = tmp_path / "x.weights.h5"
    path.write_bytes(b"")
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs), name="mine")
    with pytest.raises(ValueError, match="'mine' is not a registry backbone"):
        bb.load_backbone_file(model, path)


def test_registered_encoder_builds_like_the_others():
    def tiny(include_top=False, weights=None, input_tensor=None):
        x = input_tensor
        for i, filters in enumerate((8, 8, 16, 16, 16)):
            x = keras.layers.Conv2D(
                filters, 3, strides=2, padding="same", activation="relu", name=f"stage{i}"
            )(x)
        # As keras.applications do: the model starts at input_tensor's source input.
        return keras.Model(keras.utils.get_source_inputs(input_tensor), x)

    spec = bb.BackboneSpec(tiny, "unit", tuple(f"stage{i}" for i in range(5)), "tiny")
    try:
        bb.register_backbone("tiny", spec)
        assert "tiny" in bb.list_backbones()
        with pytest.raises(ValueError, match="already registered"):
            bb.register_backbone("tiny", spec)
        model = bb.build_backbone("tiny", weights=None)
    finally:
        bb.BACKBONES.pop("tiny", None)
    feats = model(np.zeros((1, 64, 64, 3), "float32"))
    assert model.tap_strides == bb.STRIDES
    assert [tuple(f.shape[1:3]) for f in feats] == [(64 // s,) * 2 for s in bb.STRIDES]
