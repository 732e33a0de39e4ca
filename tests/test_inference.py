"""kerasseg.inference.predict: input forms, padding, sliding windows and test-time augmentation.

Exactness comes from per-pixel models: a 1x1-convolution network's output at a pixel depends on
that pixel alone, so tiling, padding and flipping cannot change it, and the test images are made
of a few colours the model separates by a wide margin (no near-ties for float rounding to flip).
"""

import keras
import numpy as np
import pytest

from kerasseg import inference
from tests.shared_models import K, random_blocks, trained_unet

# Each colour is the clear winner of one class under PIXEL_KERNEL below.
COLOURS = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
PIXEL_KERNEL = np.array(
    [[0.0, 8.0, -4.0, -4.0], [0.0, -4.0, 8.0, -4.0], [0.0, -4.0, -4.0, 8.0]], np.float32
)  # rows R, G, B -> 4 class scores
PIXEL_BIAS = np.array([2.0, -1.0, -1.0, -1.0], np.float32)


def pixel_model(
    activation="softmax", input_shape=(None, None, 3), kernel=PIXEL_KERNEL, bias=PIXEL_BIAS
):
    inputs = keras.Input(input_shape)
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    conv = keras.layers.Conv2D(kernel.shape[1], 1, activation=activation)
    outputs = conv(x)
    conv.set_weights([kernel.reshape(1, 1, *kernel.shape), bias])
    return keras.Model(inputs, outputs)


def colour_image(rng, height, width, block=1):
    """uint8 image of COLOURS in square blocks; also returns the class of each pixel."""
    small = rng.integers(0, K, (-(-height // block), -(-width // block)))
    classes = small.repeat(block, 0).repeat(block, 1)[:height, :width]
    return COLOURS[classes], classes.astype(np.int32)


@pytest.fixture(scope="module")
def softmax_model():
    return pixel_model()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ----------------------------------------------------------------------------- input forms


def test_pixel_model_truth(softmax_model, rng):
    image, classes = colour_image(rng, 37, 53)
    np.testing.assert_array_equal(inference.predict(softmax_model, image), classes)


def test_output_shapes_and_dtypes_for_every_input_form(softmax_model, rng):
    image, classes = colour_image(rng, 37, 53)
    batch = np.stack([image, image[::-1]])
    single = inference.predict(softmax_model, image)
    assert single.shape == (37, 53) and single.dtype == np.int32

    labels = inference.predict(softmax_model, batch, batch_size=1)
    assert labels.shape == (2, 37, 53) and labels.dtype == np.int32
    np.testing.assert_array_equal(labels[1], classes[::-1])

    small, small_classes = colour_image(rng, 9, 70)
    out = inference.predict(softmax_model, [image, small, image[:20]])
    assert isinstance(out, list) and [o.shape for o in out] == [(37, 53), (9, 70), (20, 53)]
    assert all(o.dtype == np.int32 for o in out)
    np.testing.assert_array_equal(out[1], small_classes)

    labels, probs = inference.predict(softmax_model, batch, return_probabilities=True)
    assert probs.shape == (2, 37, 53, K) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(probs.argmax(-1), labels)

    # Float images in [0, 255] are as good as uint8.
    np.testing.assert_array_equal(
        inference.predict(softmax_model, image.astype(np.float32)), classes
    )
    assert inference.predict(softmax_model, []) == []


def test_grayscale_inputs_are_repeated_to_rgb(softmax_model, rng):
    grey = rng.integers(0, 256, (2, 21, 34), dtype=np.uint8)
    as_rgb = inference.predict(softmax_model, np.repeat(grey[..., None], 3, axis=-1))
    np.testing.assert_array_equal(inference.predict(softmax_model, grey), as_rgb)  # (N,H,W)
    np.testing.assert_array_equal(inference.predict(softmax_model, grey[..., None]), as_rgb)
    np.testing.assert_array_equal(inference.predict(softmax_model, grey[0]), as_rgb[0])  # (H,W)
    np.testing.assert_array_equal(inference.predict(softmax_model, grey[0, ..., None]), as_rgb[0])


def test_bad_inputs_and_options_are_value_errors(softmax_model):
    image = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="2 channels"):
        inference.predict(softmax_model, np.zeros((16, 16, 2), np.uint8)[None])
    with pytest.raises(ValueError, match="overlap"):
        inference.predict(softmax_model, image, tile=8, overlap=1.0)
    with pytest.raises(ValueError, match="multiple"):
        inference.predict(softmax_model, image, multiple=0)
    with pytest.raises(ValueError, match="tile"):
        inference.predict(softmax_model, image, tile=(8, "x"))
    with pytest.raises(ValueError, match="batch_size"):
        inference.predict(softmax_model, image, batch_size=0)
    with pytest.raises(ValueError, match="shape"):
        inference.predict(softmax_model, np.zeros((1, 2, 8, 8, 3), np.uint8))


# ----------------------------------------------------------------------------- output kinds


def test_logits_model_gives_softmax_probabilities(softmax_model, rng):
    image, classes = colour_image(rng, 24, 40)
    logits = pixel_model(activation=None)
    labels, probs = inference.predict(logits, image, return_probabilities=True)
    np.testing.assert_array_equal(labels, classes)
    _, reference = inference.predict(softmax_model, image, return_probabilities=True)
    np.testing.assert_allclose(probs, reference, atol=1e-6)


def test_binary_sigmoid_and_logit_models_threshold_at_half(rng):
    kernel = np.array([[1.0], [-0.5], [0.25]], np.float32)
    bias = np.array([-0.2], np.float32)
    image = rng.integers(0, 256, (19, 27, 3), dtype=np.uint8)
    score = image.astype(np.float64) / 255 @ kernel[:, 0] + bias[0]
    expected = (1 / (1 + np.exp(-score)) > 0.5).astype(np.int32)
    for activation in ("sigmoid", None):
        model = pixel_model(activation, kernel=kernel, bias=bias)
        labels, probs = inference.predict(model, image, return_probabilities=True, tile=8)
        assert probs.shape == (19, 27, 1)
        np.testing.assert_allclose(probs[..., 0], 1 / (1 + np.exp(-score)), atol=1e-5)
        np.testing.assert_array_equal(labels, expected)


# ----------------------------------------------------------------------------- padding


def test_pads_with_edge_pixels_and_crops_back(rng):
    """A 3x3 mean filter sees the padding: compare with numpy's edge padding to the multiple."""
    inputs = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(2, 3, padding="same")
    outputs = keras.layers.Softmax()(conv(inputs))
    kernel = np.zeros((3, 3, 3, 2), np.float32)
    kernel[:, :, 0, 0] = 1 / (9 * 32.0)  # class 0 score: red mean / 32; class 1 score: 4
    conv.set_weights([kernel, np.array([0.0, 4.0], np.float32)])
    model = keras.Model(inputs, outputs)

    image = rng.integers(0, 256, (13, 21, 3), dtype=np.uint8)
    _, probs = inference.predict(model, image, multiple=8, return_probabilities=True)

    red = np.pad(image[..., 0].astype(np.float64), ((0, 3), (0, 3)), mode="edge")  # to 16x24
    red = np.pad(red, 1)  # the convolution's own 'same' zero padding
    mean = sum(red[dy : dy + 16, dx : dx + 24] for dy in range(3) for dx in range(3)) / 9
    score = mean[:13, :21] / 32.0
    expected = np.exp(score) / (np.exp(score) + np.exp(4.0))
    np.testing.assert_allclose(probs[..., 0], expected, atol=1e-5)


def test_the_multiple_comes_from_the_model():
    """A Segmenter's input_multiple is what predict pads to (a plain model gets 32)."""
    from kerasseg.models.segmenter import Segmenter

    inputs = keras.Input((None, None, 3))
    # Every output pixel holds the mean of the whole padded input: it tells the padded size.
    red = keras.layers.Rescaling(1.0 / 255)(inputs[..., :1])
    mean = keras.layers.GlobalAveragePooling2D(keepdims=True)(red)
    scores = keras.layers.Concatenate()([keras.ops.zeros_like(red) + mean, red * 0])
    outputs = keras.layers.Softmax()(scores)
    plain = keras.Model(inputs, outputs)
    wide = Segmenter(inputs, outputs, input_multiple=64)
    assert inference.model_multiple(plain) == 32 and inference.model_multiple(wide) == 64
    assert inference.model_multiple(wide, 8) == 8
    image = np.zeros((30, 30, 3), np.uint8)
    image[-1, -1, 0] = 255  # the corner pixel, repeated by the edge padding
    for model, side in ((wide, 64), (plain, 32)):
        _, probs = inference.predict(model, image, return_probabilities=True)
        corner = (side - 29) ** 2 / side**2  # the corner's share of the padded image
        np.testing.assert_allclose(np.log(probs[0, 0, 0] / probs[0, 0, 1]), corner, rtol=1e-4)


# ----------------------------------------------------------------------------- sliding window


def test_window_starts_follow_the_slide_formula():
    assert inference.window_starts(300, 64, 48) == [0, 48, 96, 144, 192, 236]
    assert inference.window_starts(64, 64, 48) == [0]
    assert inference.window_starts(40, 64, 48) == [0]
    for length, tile, stride in [(300, 64, 48), (2000, 512, 384), (97, 32, 1)]:
        starts = inference.window_starts(length, tile, stride)
        assert len(starts) == max(length - tile + stride - 1, 0) // stride + 1
        assert starts[-1] == length - tile
        assert all(b - a <= stride for a, b in zip(starts, starts[1:]))


@pytest.mark.parametrize("tile,overlap", [(64, 0.25), ((48, 80), 0.5), (32, 0.0)])
def test_tiled_equals_whole_image_for_a_per_pixel_model(softmax_model, rng, tile, overlap):
    image, classes = colour_image(rng, 300, 200)
    whole, whole_probs = inference.predict(softmax_model, image, return_probabilities=True)
    tiled, tiled_probs = inference.predict(
        softmax_model, image, tile=tile, overlap=overlap, return_probabilities=True
    )
    np.testing.assert_array_equal(tiled, classes)
    np.testing.assert_array_equal(tiled, whole)
    np.testing.assert_allclose(tiled_probs, whole_probs, atol=1e-6)


def test_large_2000x1500_image_tiled(softmax_model, rng):
    image, classes = colour_image(rng, 2000, 1500, block=3)
    labels = inference.predict(softmax_model, image, tile=512, overlap=0.25, batch_size=8)
    np.testing.assert_array_equal(labels, classes)


def test_tiled_unet_agrees_with_whole_image(rng):
    model = trained_unet()
    image = random_blocks(rng, 1, 300, 200)[0][0]
    whole = inference.predict(model, image)
    counts = np.bincount(whole.ravel(), minlength=K)
    assert (counts > 0.05 * whole.size).sum() >= 2, f"prediction nearly constant: {counts}"
    tiled = inference.predict(model, image, tile=96, overlap=0.5)
    assert (tiled == whole).mean() >= 0.99


def test_fixed_size_model_slides_its_own_window(rng):
    image, classes = colour_image(rng, 50, 70)
    fixed = pixel_model(input_shape=(32, 32, 3))
    np.testing.assert_array_equal(inference.predict(fixed, image), classes)
    with pytest.raises(ValueError, match="32x32"):
        inference.predict(fixed, image, tile=16)


def test_varied_sizes_do_not_retrace_each_time(rng):
    model = pixel_model()
    for size in [(20, 30), (33, 41), (50, 17), (64, 64), (70, 90), (15, 15)]:
        inference.predict(model, colour_image(rng, *size)[0])
    assert inference.runner(model).experimental_get_tracing_count() <= 3


# ----------------------------------------------------------------------------- TTA


def test_flip_tta_on_a_flip_symmetric_model_changes_nothing(softmax_model, rng):
    image, classes = colour_image(rng, 45, 61)
    plain, plain_probs = inference.predict(softmax_model, image, return_probabilities=True)
    flipped, flipped_probs = inference.predict(
        softmax_model, image, flip=True, return_probabilities=True
    )
    np.testing.assert_array_equal(flipped, classes)
    np.testing.assert_array_equal(flipped, plain)
    np.testing.assert_allclose(flipped_probs, plain_probs, atol=1e-6)


def test_flip_tta_unflips_before_averaging(rng):
    """A model that sees left/right: its flip-TTA probabilities are the mean of the plain
    prediction and the mirrored prediction of the mirrored image, computed by hand."""
    inputs = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(2, (1, 3), padding="same")
    model = keras.Model(inputs, keras.layers.Softmax()(conv(inputs)))
    kernel = np.zeros((1, 3, 3, 2), np.float32)
    kernel[0, 2, 0, 0] = 1 / 64.0  # class 0 reads the red value of the right neighbour
    conv.set_weights([kernel, np.array([0.0, 2.0], np.float32)])
    image = rng.integers(0, 256, (8, 16, 3), dtype=np.uint8)

    _, tta = inference.predict(model, image, flip=True, multiple=8, return_probabilities=True)
    plain = model.predict_on_batch(image[None].astype(np.float32))[0]
    mirrored = model.predict_on_batch(image[None, :, ::-1].astype(np.float32))[0, :, ::-1]
    np.testing.assert_allclose(tta, (plain + mirrored) / 2, atol=1e-6)
    assert np.abs(plain - mirrored).max() > 0.1  # the check above is not vacuous


def test_multiscale_tta_keeps_size_and_mostly_agrees(softmax_model, rng):
    image, classes = colour_image(rng, 61, 45, block=8)
    labels, probs = inference.predict(
        softmax_model, image, scales=(0.5, 1.0, 1.5), flip=True, return_probabilities=True
    )
    assert labels.shape == (61, 45) and probs.shape == (61, 45, K)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert (labels == classes).mean() >= 0.85  # only block borders are blurred by resizing
    multi = inference.predict(trained_unet(), [image, image[:33]], scales=(0.75, 1.25), tile=32)
    assert [m.shape for m in multi] == [(61, 45), (33, 45)]
