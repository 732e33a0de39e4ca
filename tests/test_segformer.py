"""SegFormer and its MiT encoders: the builder contract, the paper's sizes B0-B5 at 150
classes, any input size through inference.predict, a training step, the transformer layers'
serialization, and the refused ImageNet weights. Each configuration is built once (``zoo``)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasseg
from kerasseg import backbones as bb
from kerasseg.layers import DropPath, EfficientAttention, MixFFN, MLPFusion
from kerasseg.ops.padding import pad_to_multiple
from tests.harness import ModelCache, check_layer_config, images, outputs_of, run_layer_test

ADE = 150
# Xie et al. 2021: parameters at 150 classes, and what this build counts (within 2%).
PAPER_M = {"b0": 3.8, "b1": 13.7, "b2": 27.5, "b3": 47.3, "b4": 64.1, "b5": 84.7}
COUNTS = {
    "b0": 3_753_206,
    "b1": 13_716_310,
    "b2": 27_463_510,
    "b3": 47_339_350,
    "b4": 64_109_910,
    "b5": 84_710_230,
}
DECODER = {"b0": 256, "b1": 256, "b2": 768, "b3": 768, "b4": 768, "b5": 768}


@pytest.fixture(scope="module")
def zoo():
    return ModelCache()


def test_segformer_b0_contract(zoo):
    # Non-square sizes; frozen build, .keras round trip with plain load_model, config,
    # static sizes off 32 refused, rebuilt from its description.
    # The backbone named, so the harness expects it in the description (the default, None,
    # builds the MiT of the variant and says which: test_paper_sizes_at_150_classes).
    zoo.run(
        "segformer",
        {"backbone": "mit_b0"},
        num_classes=ADE,
        sizes=((64, 96), (96, 64)),
        expected_multiple=32,
        expected_params=COUNTS["b0"],
        rebuild=True,
    )


@pytest.mark.parametrize("variant", sorted(PAPER_M))
def test_paper_sizes_at_150_classes(zoo, variant):
    options = {"backbone": "mit_b0"} if variant == "b0" else {"variant": variant}
    model = zoo.get("segformer", ADE, **options)
    assert model.describe()["backbone"] == f"mit_{variant}"
    count = model.count_params()
    assert count == COUNTS[variant]
    assert abs(count / 1e6 - PAPER_M[variant]) / PAPER_M[variant] < 0.02
    fusion = model.get_layer("decode_fusion")
    assert fusion.filters == DECODER[variant]
    assert fusion.fuse_kernel.shape == (1, 1, 4 * DECODER[variant], DECODER[variant])
    encoder = model.get_layer(f"mit_{variant}")
    assert encoder.tap_strides == (4, 8, 16, 32)
    dims, depths = bb.mit.VARIANTS[variant]
    assert [f.shape[-1] for f in encoder.outputs] == list(dims)
    blocks = [layer for layer in encoder.layers if isinstance(layer, EfficientAttention)]
    assert len(blocks) == sum(depths)
    assert (blocks[0].sr_ratio, blocks[-1].sr_ratio) == (8, 1)


def test_encoder_maps_sit_at_their_strides_for_any_size(zoo):
    encoder = zoo.get("segformer", ADE, backbone="mit_b0").get_layer("mit_b0")
    for h, w in ((64, 96), (70, 100)):
        feats = encoder(images(1, h, w))
        # Each patch embedding rounds up: ceil(side / stride).
        assert [tuple(f.shape[1:3]) for f in feats] == [
            (-(-h // s), -(-w // s)) for s in (4, 8, 16, 32)
        ]


def test_predict_at_non_square_sizes_off_the_multiple(zoo):
    model = zoo.get("segformer", ADE, backbone="mit_b0")
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (70, 100, 3), dtype=np.uint8)
    labels = kerasseg.inference.predict(model, image)
    assert labels.shape == (70, 100)
    # predict pads (edge replication) to the model's multiple, 32, and crops back.
    padded = keras.ops.convert_to_numpy(pad_to_multiple(image[None].astype("float32"), 32))
    assert padded.shape == (1, 96, 128, 3)
    expected = outputs_of(model, padded)[0][0, :70, :100].argmax(-1)
    np.testing.assert_array_equal(labels, expected)


def test_segformer_trains_a_step():
    keras.utils.set_random_seed(0)
    model = kerasseg.segformer(3, variant="b0", decoder_filters=32)
    x = images(2, 64, 64)
    y = np.random.default_rng(0).integers(0, 3, (2, 64, 64)).astype("int32")
    model.compile(keras.optimizers.SGD(1e-2), kerasseg.losses.CrossEntropy(), jit_compile=False)
    before = [w.numpy() for w in model.trainable_weights]
    loss = model.fit(x, y, batch_size=2, epochs=1, verbose=0).history["loss"]
    assert np.isfinite(loss[0])
    after = model.trainable_weights
    assert all(not np.array_equal(b, a.numpy()) for b, a in zip(before, after))


def test_imagenet_weights_are_refused_with_the_way_out():
    with pytest.raises(ValueError, match=r"mit_b0.*weights=None.*from_keras_hub"):
        kerasseg.segformer(5, weights="imagenet")
    with pytest.raises(ValueError, match="no published ImageNet weights"):
        bb.build_backbone("mit_b2")


def test_variant_and_backbone_choices():
    with pytest.raises(ValueError, match=r"variant must be one of b0, b1, b2, b3, b4, b5"):
        kerasseg.segformer(5, variant="b6")
    with pytest.raises(ValueError, match=r"Valid backbones:.*mit_b0"):
        kerasseg.segformer(5, backbone="mit_b9")
    # Another encoder under the all-MLP decoder.
    model = kerasseg.segformer(5, backbone="mobilenetv2", weights=None)
    assert model.describe()["backbone"] == "mobilenetv2"
    assert model(images(1, 64, 64)).shape == (1, 64, 64, 5)


def test_backbone_weights_file_loads(zoo, tmp_path):
    encoder = zoo.get("segformer", ADE, backbone="mit_b0").get_layer("mit_b0")
    path = str(tmp_path / "mit_b0.weights.h5")
    encoder.save_weights(path)
    model = kerasseg.segformer(4, weights=path)
    for a, b in zip(model.get_layer("mit_b0").get_weights(), encoder.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_attention_layer_contract():
    run_layer_test(EfficientAttention, dict(filters=16, num_heads=2, sr_ratio=2), [(2, 8, 12, 16)])
    run_layer_test(EfficientAttention, dict(filters=8, num_heads=1), [(1, 4, 6, 8)])


def test_attention_equals_a_plain_computation():
    layer = EfficientAttention(8, 2, sr_ratio=1)
    x = np.random.default_rng(0).normal(size=(1, 3, 5, 8)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    q, k, v = (
        keras.ops.convert_to_numpy(d(x)).reshape(15, 2, 4).transpose(1, 0, 2)
        for d in (layer.query, layer.key, layer.value)
    )
    scores = q @ k.transpose(0, 2, 1) / 2.0
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    heads = (weights @ v).transpose(1, 0, 2).reshape(1, 3, 5, 8)
    expected = keras.ops.convert_to_numpy(layer.projection(heads))
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_mix_ffn_and_drop_path_contracts():
    run_layer_test(MixFFN, dict(filters=8, hidden=32), [(2, 6, 4, 8)])
    run_layer_test(MixFFN, dict(filters=8, hidden=16, approximate_gelu=True), [(1, 5, 7, 8)])
    x = np.ones((64, 2, 2, 3), "float32")
    layer = DropPath(0.25, seed=1)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)  # inference
    kept = keras.ops.convert_to_numpy(layer(x, training=True))[:, 0, 0, 0]
    dropped = kept == 0
    np.testing.assert_allclose(kept[~dropped], 1 / 0.75, rtol=1e-6)  # the others rescaled
    assert 0 < dropped.sum() < 64


def test_mlp_fusion_equals_the_reference_decoder_layout():
    """Linear per map, bilinear resize to the finest, concatenation coarsest first, 1x1
    convolution: the reference computation, from the layer's own weights."""
    rng = np.random.default_rng(5)
    maps = [
        rng.normal(size=(2, 12 // s, 16 // s, c)).astype("float32")
        for s, c in ((1, 3), (2, 5), (4, 6), (8, 7))
    ]
    layer = MLPFusion(4)
    assert layer(maps).shape == (2, 12, 16, 4)
    check_layer_config(layer, MLPFusion)  # (its .keras round trip: the SegFormer contract)
    for bias in layer.linear_biases:  # non-zero biases: they go through the resize too
        bias.assign(rng.normal(size=4).astype("float32"))
    got = keras.ops.convert_to_numpy(layer(maps))
    projected = []
    for x, kernel, bias in zip(maps, layer.linear_kernels, layer.linear_biases):
        y = x @ kernel.numpy() + bias.numpy()
        projected.append(keras.ops.convert_to_numpy(tf.image.resize(y, (12, 16), "bilinear")))
    concat = np.concatenate(projected[::-1], axis=-1)
    expected = concat @ layer.fuse_kernel.numpy()[0, 0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
