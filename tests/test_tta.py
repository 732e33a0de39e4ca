"""Test-time augmentation as a definition: flip TTA gives the mean of the model's
probabilities on the image and (mirrored back) on its mirror; multi-scale TTA the mean over
scales of the probabilities resized back. Checked on an untrained, left/right-asymmetric U-Net
and `shapes` images, with the model called directly for the expected values.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasseg
from kerasseg import datasets, inference

NUM_CLASSES = 4
SIZE = 64  # a multiple of 16 at every scale below: no padding enters the comparison


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    return kerasseg.unet(NUM_CLASSES, backbone=None, weights=None, filters=4, depth=2)


@pytest.fixture(scope="module")
def images():
    val = datasets.load("shapes", split="val", seed=0, num_images=3)
    return np.stack(
        [
            tf.image.resize_with_crop_or_pad(image, SIZE, SIZE).numpy()
            for image, _ in val.as_numpy_iterator()
        ]
    ).astype("uint8")


def _probs(model, x):
    return model(tf.constant(x, tf.float32), training=False).numpy()


def test_the_model_is_not_flip_symmetric(model, images):
    plain = _probs(model, images)
    mirrored = _probs(model, images[:, :, ::-1])[:, :, ::-1]
    assert np.abs(plain - mirrored).max() > 1e-3  # otherwise the next test proves nothing


def test_flip_tta_is_the_mean_over_the_image_and_its_mirror(model, images):
    want = 0.5 * (_probs(model, images) + _probs(model, images[:, :, ::-1])[:, :, ::-1])
    labels, got = inference.predict(model, images, flip=True, multiple=4, return_probabilities=True)
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_array_equal(labels, np.argmax(got, -1))


def test_flip_tta_commutes_with_mirroring_the_input(model, images):
    _, direct = inference.predict(model, images, flip=True, multiple=4, return_probabilities=True)
    _, of_mirror = inference.predict(
        model, images[:, :, ::-1], flip=True, multiple=4, return_probabilities=True
    )
    np.testing.assert_allclose(of_mirror[:, :, ::-1], direct, atol=1e-5)


def test_multi_scale_tta_is_the_mean_of_the_resized_back_probabilities(model, images):
    scales = (0.75, 1.0, 1.25)
    expected = []
    for scale in scales:
        side = int(round(SIZE * scale))
        x = tf.image.resize(tf.constant(images, tf.float32), (side, side), "bilinear")
        for flip in (False, True):
            probs = _probs(model, x.numpy()[:, :, ::-1] if flip else x.numpy())
            probs = probs[:, :, ::-1] if flip else probs
            expected.append(
                tf.image.resize(probs, (SIZE, SIZE), "bilinear").numpy() if side != SIZE else probs
            )
    want = np.mean(expected, axis=0)
    labels, got = inference.predict(
        model, images, flip=True, scales=scales, multiple=4, return_probabilities=True
    )
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_array_equal(labels, np.argmax(got, -1))
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)  # still a distribution
