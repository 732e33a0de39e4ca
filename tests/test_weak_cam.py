"""Class activation maps: a classifier whose weights are constructed so that class 0 responds to
red and class 1 to blue has CAMs that peak inside its objects, at every scale and flip; the CAM
labels and the CRF-refined pseudo-masks then recover the objects."""

import numpy as np
import pytest
import tensorflow as tf

from kerasseg import weak
from kerasseg.weak import cam


@pytest.fixture(scope="module")
def scene():
    image = np.zeros((64, 64, 3), np.uint8)
    truth = np.zeros((64, 64), np.int32)
    image[8:32, 12:40] = (255, 0, 0)  # red: class 0 (label 1)
    truth[8:32, 12:40] = 1
    image[40:60, 36:60] = (0, 0, 255)  # blue: class 1 (label 2)
    truth[40:60, 36:60] = 2
    return image, truth


@pytest.fixture(scope="module")
def net():
    """Every conv passes the red and blue channels through (centre tap 1, all else 0); the
    "cam" layer maps feature 0 to class 0 and feature 1 to class 1."""
    model = cam.classifier(2, backbone=None, filters=2)
    for layer in model.layers:
        if not layer.weights:
            continue
        kernel = np.zeros(layer.weights[0].shape, np.float32)
        centre = kernel.shape[0] // 2
        if layer.name == "conv1":
            kernel[centre, centre, 0, 0] = 1.0  # red
            kernel[centre, centre, 2, 1] = 1.0  # blue
        else:
            kernel[centre, centre, 0, 0] = kernel[centre, centre, 1, 1] = 1.0
        layer.set_weights([kernel] + [np.zeros(w.shape, np.float32) for w in layer.weights[1:]])
    return model


def test_the_classifier_scores_present_classes_higher(net, scene):
    image, _ = scene
    scores = net(image[None].astype(np.float32)).numpy()[0]
    only_red = image.copy()
    only_red[..., 2] = 0
    assert scores[0] > 0.5 and scores[1] > 0.5
    assert net(only_red[None].astype(np.float32)).numpy()[0, 1] == pytest.approx(0.5)


@pytest.mark.parametrize("scales, flip", [((1.0,), False), ((1.0, 0.5, 1.5), True)])
def test_cams_peak_inside_their_objects(net, scene, scales, flip):
    image, truth = scene
    maps = cam.cams(net, image, scales=scales, flip=flip).numpy()
    assert maps.shape == (64, 64, 2)
    for k in range(2):
        peak = np.unravel_index(np.argmax(maps[..., k]), truth.shape)
        assert truth[peak] == k + 1
        assert maps[..., k].max() == pytest.approx(1.0, abs=1e-4)  # max-normalised
        # the other object holds none of this class's activation
        assert np.all(maps[..., k][truth == 2 - k] == 0.0)


def test_cam_labels_and_pseudo_masks_recover_the_objects(net, scene):
    image, truth = scene
    maps = cam.cams(net, image)
    labels = cam.cam_labels(maps, tags=[1, 1], threshold=0.5).numpy()
    # deep inside each object the CAM label is the object's class
    assert np.all(labels[12:28, 16:36] == 1) and np.all(labels[44:56, 40:56] == 2)
    assert np.all(labels[truth == 0][:10] == 0)
    masks = cam.pseudo_masks(image, maps, [1, 1], threshold=0.5)
    np.testing.assert_array_equal(masks, truth)  # the CRF snaps the blobs to the colour edges
    # an absent class never appears
    only_red = cam.pseudo_masks(image, maps, [1, 0], threshold=0.5)
    assert 2 not in only_red and np.all(only_red[truth == 1] == 1)
    walked = cam.pseudo_masks(image, maps, [1, 1], threshold=0.5, walk=True)
    assert walked.shape == truth.shape
    batch = cam.pseudo_masks(image[None], tf.convert_to_tensor(maps)[None], [[1, 1]], 0.5)
    np.testing.assert_array_equal(batch[0], masks)


def test_random_walk_keeps_a_distribution_and_stays_inside_uniform_regions(scene):
    image, truth = scene
    probs = np.zeros((1, 64, 64, 2), np.float32)
    probs[..., 0] = 1.0
    probs[0, 20, 20] = [0.0, 1.0]  # a seed of class 1 inside the red object
    walked = cam.random_walk(image[None].astype(np.float32), probs, iterations=5).numpy()[0]
    np.testing.assert_allclose(walked.sum(-1), 1.0, rtol=1e-5)
    spread = walked[..., 1] > 1e-6
    assert spread.sum() > 1 and np.all(truth[spread] == 1)  # never across the colour edge


def test_a_registry_backbone_classifier_has_cam_maps():
    model = weak.cam.classifier(3, backbone="mobilenetv2", weights=None, input_shape=(64, 64, 3))
    maps = cam.cam_model(model)(np.zeros((1, 64, 64, 3), np.float32))
    assert maps.shape == (1, 4, 4, 3)  # the stride-16 map
    assert model.output_shape == (None, 3)
