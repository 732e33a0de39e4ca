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


@pytest.mark.parametrize("pooling, layer", [("max", "gmp"), ("avg", "gap")])
def test_the_small_classifier_takes_a_pooling_and_batch_norm(pooling, layer):
    model = cam.classifier(3, filters=4, pooling=pooling, batch_norm=True)
    names = [x.name for x in model.layers]
    assert layer in names and [n for n in names if n.startswith("bn")] == [
        f"bn{i}" for i in (1, 2, 3, 4)
    ]
    assert model(np.zeros((2, 32, 32, 3), np.float32)).shape == (2, 3)
    assert cam.cam_model(model)(np.zeros((1, 32, 32, 3), np.float32)).shape == (1, 8, 8, 3)
    plain = cam.classifier(3, filters=4)
    assert "gap" in [x.name for x in plain.layers] and not any(
        x.name.startswith("bn") for x in plain.layers
    )
    with pytest.raises(ValueError, match="pooling must be 'avg' or 'max'"):
        cam.classifier(3, pooling="sum")


def test_max_pooling_scores_the_strongest_location():
    model = cam.classifier(1, filters=1, pooling="max")
    for layer in model.layers:
        if layer.weights:  # each layer passes its first channel's positive part through
            kernel = np.zeros(layer.weights[0].shape, np.float32)
            kernel[kernel.shape[0] // 2, kernel.shape[1] // 2, 0, 0] = 1.0
            layer.set_weights([kernel] + [np.zeros(w.shape, np.float32) for w in layer.weights[1:]])
    image = np.zeros((1, 16, 16, 3), np.float32)
    image[0, 4:8, 4:8, 0] = 255.0  # one bright 4x4 patch: red 1 after the rescaling
    assert float(model(image)[0, 0]) == pytest.approx(1 / (1 + np.exp(-1.0)), abs=1e-6)


def test_boundary_saliency_is_the_distance_to_the_border_colours():
    image = np.full((20, 24, 3), 100, np.uint8)
    image[6:14, 8:16] = (100, 140, 130)  # colour difference (0, 40, 30): length 50
    score = weak.saliency.boundary_saliency(image, regularisation=16.0)
    assert score.shape == (20, 24) and score.dtype == np.float32
    assert np.all(score[image[..., 1] == 100] == 0.0)
    np.testing.assert_allclose(score[6:14, 8:16], 50.0 / 4.0, rtol=1e-5)  # sqrt(50^2 / 16)
    # an object crossing the border is trimmed out of the background model
    image[0:2, 0:3] = (255, 0, 0)
    assert np.all(weak.saliency.boundary_saliency(image)[10:, 10:][image[10:, 10:, 1] == 100] < 1)


def test_region_pseudo_masks_take_the_tags_and_the_cams(scene):
    image, truth = scene
    maps = np.zeros((64, 64, 2), np.float32)
    maps[..., 0] = truth == 1  # class 0 on the red object, class 1 on the blue one
    maps[..., 1] = 0.5 * (truth == 2) + 0.1 * (truth == 1)
    np.testing.assert_array_equal(weak.saliency.region_pseudo_masks(image, maps, [1, 1]), truth)
    # a single tag labels every salient region with it, whatever the CAMs say
    only = weak.saliency.region_pseudo_masks(image, maps, [0, 1])
    np.testing.assert_array_equal(only, np.where(truth > 0, 2, 0))
    # a region without a clear lead leaves the whole image out (or unlabelled only itself)
    maps[..., 1] = 0.95 * (truth == 1) + 1.0 * (truth == 2)
    dropped = weak.saliency.region_pseudo_masks(image, maps, [1, 1], min_margin=0.5)
    assert np.all(dropped == 255)
    kept = weak.saliency.region_pseudo_masks(
        image, maps, [1, 1], min_margin=0.5, drop_incomplete=False
    )
    np.testing.assert_array_equal(kept, np.where(truth == 1, 255, truth))
    assert np.all(weak.saliency.region_pseudo_masks(image, maps, [0, 0]) == 0)
