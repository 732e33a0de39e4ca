"""UPerNet: the builder contract (on AlexNet, a small graph; auxiliary head), the ConvNeXt
sizes of Liu et al. 2022 at 150 classes with the auxiliary head, ConvNeXt's per-tap layer
norms, any input size through inference.predict and a training step. Each configuration is
built once."""

import keras
import numpy as np
import pytest

import kerasseg
from kerasseg.ops.padding import pad_to_multiple
from tests.harness import ModelCache, images, outputs_of

ADE = 150
LIGHT = dict(backbone="alexnet", filters=32, aux_head=True, aux_filters=16)
# Liu et al. 2022 (ADE20K, UPerNet with the auxiliary head): 60 / 82 / 122 M parameters.
PAPER_M = {"convnext_tiny": 60, "convnext_small": 82, "convnext_base": 122}
COUNTS = {
    "convnext_tiny": 60_256_972,
    "convnext_small": 81_891_532,
    "convnext_base": 122_117_804,
}


@pytest.fixture(scope="module")
def zoo():
    return ModelCache()


def test_upernet_contract_with_auxiliary_head(zoo):
    # Two outputs; frozen build, .keras round trip, config, static sizes, rebuild.
    model = zoo.run(
        "upernet",
        LIGHT,
        num_classes=5,
        sizes=((64, 96), (96, 64)),
        expected_multiple=32,
        rebuild=True,
    )
    assert model.output_names == ["output", "aux_output"]
    # The auxiliary head reads stage 3 (stride 16: AlexNet's conv5, 256 channels).
    assert model.get_layer("aux_conv").input.shape[-1] == 256
    assert not any(layer.name.startswith("tap_norm") for layer in model.layers)


@pytest.mark.parametrize("backbone", sorted(PAPER_M))
def test_convnext_paper_sizes(zoo, backbone):
    model = zoo.get("upernet", ADE, backbone=backbone, aux_head=True)
    count = model.count_params()
    assert count == COUNTS[backbone]
    assert abs(count / 1e6 - PAPER_M[backbone]) / PAPER_M[backbone] < 0.02
    # A layer norm on each of the four taps (the official ConvNeXt code).
    norms = [model.get_layer(f"tap_norm{s}") for s in (4, 8, 16, 32)]
    widths = {"convnext_tiny": 96, "convnext_small": 96, "convnext_base": 128}[backbone]
    assert [n.input.shape[-1] for n in norms] == [widths * 2**i for i in range(4)]
    assert model.get_layer("uper_fpn_bottleneck_conv").filters == 512
    assert model.get_layer("uper_fpn_bottleneck_conv").input.shape[-1] == 4 * 512


def test_predict_at_non_square_sizes_off_the_multiple(zoo):
    model = zoo.get("upernet", 5, **LIGHT)
    image = np.random.default_rng(4).integers(0, 256, (50, 90, 3), dtype=np.uint8)
    labels = kerasseg.inference.predict(model, image)
    assert labels.shape == (50, 90)
    padded = keras.ops.convert_to_numpy(pad_to_multiple(image[None].astype("float32"), 32))
    assert padded.shape == (1, 64, 96, 3)
    expected = outputs_of(model, padded)[0][0, :50, :90].argmax(-1)
    np.testing.assert_array_equal(labels, expected)


def test_upernet_trains_a_step(zoo):
    keras.utils.set_random_seed(0)
    model = kerasseg.upernet(3, weights=None, **LIGHT)
    x = images(2, 64, 64)
    y = np.random.default_rng(0).integers(0, 3, (2, 64, 64)).astype("int32")
    loss = kerasseg.losses.CrossEntropy()
    model.compile(
        keras.optimizers.SGD(1e-2), [loss, loss], loss_weights=[1.0, 0.4], jit_compile=False
    )
    head = model.get_layer("head_logits").kernel.numpy()
    aux = model.get_layer("aux_logits").kernel.numpy()
    history = model.fit(x, [y, y], batch_size=2, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
    assert not np.array_equal(head, model.get_layer("head_logits").kernel.numpy())
    assert not np.array_equal(aux, model.get_layer("aux_logits").kernel.numpy())


def test_bad_bins_and_backbones_are_value_errors():
    with pytest.raises(ValueError, match="bins must be positive integers"):
        kerasseg.upernet(3, weights=None, backbone="mobilenetv2", bins=(1, 0))
    with pytest.raises(ValueError, match=r"Valid backbones:.*convnext_tiny"):
        kerasseg.upernet(3, weights=None, backbone="convnext_huge")
