"""The panoptic models' fixed parts on hand-made cases: the training targets derived in the
graph, Panoptic FPN's merge, Panoptic-DeepLab's grouping, and `prepare` on panoptic examples."""

import numpy as np
import pytest
import tensorflow as tf

import kerasseg
from kerasseg.layers import CenterGrouping, PanopticMerge
from kerasseg.ops.panoptic_targets import (
    center_targets,
    class_lookup,
    instance_targets,
    stuff_targets,
)

# --------------------------------------------------------------------------- targets


def _scene():
    """One 8x8 image, classes 0/1 stuff, 2/3 things: instances (2, 1) of 10 px, (2, 2) of
    6 px, (3, 1) of 4 px (same number, other class: another instance), (3, 2) of 2 px, a crowd
    region of class 2 (number 0) and a void pixel."""
    semantic = np.zeros((8, 8), np.int32)
    ids = np.zeros((8, 8), np.int32)
    semantic[0:2, 0:5], ids[0:2, 0:5] = 2, 1  # 10 px
    semantic[3:5, 0:3], ids[3:5, 0:3] = 2, 2  # 6 px
    semantic[6:8, 6:8], ids[6:8, 6:8] = 3, 1  # 4 px
    semantic[7, 0:2], ids[7, 0:2] = 3, 2  # 2 px
    semantic[5, 5:8] = 2  # crowd: a thing class, instance 0
    semantic[4, 7] = 1
    semantic[0, 7] = 255
    return semantic, ids


def test_instance_targets_keep_the_largest_instances_in_area_order():
    semantic, ids = _scene()
    table = class_lookup(4, (2, 3))
    out = instance_targets(semantic[None], ids[None], table, max_instances=3)
    expected = [(2, 1), (2, 2), (3, 1)]
    masks = out["masks"].numpy()[0]
    assert masks.dtype == np.uint8 and masks.shape == (3, 8, 8)
    for slot, (cls, number) in enumerate(expected):
        truth = (semantic == cls) & (ids == number)
        np.testing.assert_array_equal(masks[slot], truth.astype(np.uint8))
        rows, cols = np.nonzero(truth)
        box = [rows.min(), cols.min(), rows.max() + 1, cols.max() + 1]
        np.testing.assert_array_equal(out["boxes"].numpy()[0, slot], box)
    np.testing.assert_array_equal(out["classes"].numpy()[0], [0, 0, 1])


def test_instance_targets_pad_empty_slots():
    semantic, ids = _scene()
    out = instance_targets(semantic[None], ids[None], class_lookup(4, (2, 3)), max_instances=6)
    np.testing.assert_array_equal(out["classes"].numpy()[0], [0, 0, 1, 1, -1, -1])
    assert out["masks"].numpy()[0, 4:].sum() == 0
    assert out["boxes"].numpy()[0, 4:].sum() == 0


def test_center_targets_match_numpy():
    semantic, ids = _scene()
    out = instance_targets(semantic[None], ids[None], class_lookup(4, (2, 3)), max_instances=5)
    heat, offsets = center_targets(out["masks"], out["classes"] >= 0, sigma=2.0)
    ys, xs = np.mgrid[0:8, 0:8].astype(np.float64)
    want_heat = np.zeros((8, 8))
    want_offsets = np.zeros((8, 8, 2))
    for mask in out["masks"].numpy()[0]:
        if not mask.any():
            continue
        cy, cx = ys[mask > 0].mean(), xs[mask > 0].mean()
        want_heat = np.maximum(want_heat, np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / 8.0))
        want_offsets[mask > 0] = np.stack([cy - ys, cx - xs], -1)[mask > 0]
    np.testing.assert_allclose(heat.numpy()[0], want_heat, atol=1e-5)
    np.testing.assert_allclose(offsets.numpy()[0], want_offsets, atol=1e-5)


def test_stuff_targets_number_stuff_after_one_things_class():
    semantic, _ = _scene()
    labels = stuff_targets(semantic[None], class_lookup(4, (0, 1)), 255).numpy()[0]
    want = np.select([semantic == 0, semantic == 1, semantic == 255], [1, 2, 255], 0)
    np.testing.assert_array_equal(labels, want)


# --------------------------------------------------------------------------- the merge


def test_panoptic_fpn_merge_on_a_hand_made_case():
    """Classes 0, 1 stuff and 2, 3 things; the semantic branch: stuff 0 on the top half
    (512 px), stuff 1 on a 64 px strip (below stuff_area 100: dropped), things elsewhere.
    Detections (out of score order): C (class 3, 0.7) overlapping A by 25%: kept, on its free
    pixels; A (class 2, 0.9); B (0.8) over A by 75%: dropped; E (0.4): under the score
    threshold; a fifth slot past num_detections (0.95): not a detection."""
    size = 32
    semantic = np.zeros((1, size, size, 3), np.float32)
    semantic[0, :16, :, 1] = 1  # stuff class 0
    semantic[0, 16:, :4, 2] = 1  # stuff class 1
    semantic[0, 16:, 4:, 0] = 1  # things
    boxes = np.array(
        [[[20, 16, 28, 32], [16, 4, 32, 20], [16, 8, 32, 24], [0, 0, 8, 8], [0, 0, 32, 32]]],
        np.float32,
    )
    scores = np.array([[0.7, 0.9, 0.8, 0.4, 0.95]], np.float32)
    classes = np.array([[1, 0, 1, 0, 0]], np.int32)
    masks = np.ones((1, 5, 28, 28), np.float32)
    merge = PanopticMerge((2, 3), (0, 1), stuff_area=100)
    panoptic, instance_scores = merge(
        boxes, scores, classes, np.array([4], np.int32), masks, semantic
    )
    want = np.full((size, size), -1, np.int32)
    want[:16] = 0
    want[16:32, 4:20] = 2001  # A, the first placed
    want[20:28, 20:32] = 3002  # C's free pixels
    np.testing.assert_array_equal(panoptic.numpy()[0], want)
    np.testing.assert_allclose(instance_scores.numpy()[0], [0.9, 0.7, 0, 0, 0], atol=1e-6)


def test_panoptic_fpn_merge_round_trips_its_config():
    merge = PanopticMerge((2,), (0, 1), stuff_area=7, overlap_threshold=0.3, score_threshold=0.2)
    again = PanopticMerge.from_config(merge.get_config())
    assert again.get_config() == merge.get_config()


# --------------------------------------------------------------------------- the grouping


def test_panoptic_deeplab_grouping_on_a_hand_made_case():
    """Classes 0, 1 stuff and 2, 3 things on 16x16. Stuff 0 on the top half, stuff 1 on a
    16 px strip (below stuff_area 20: void), things below. Two centres (0.9 at (11, 5), 0.8 at
    (11, 12)) and one under the threshold; every thing pixel's offset points at the centre of
    its half. Three pixels of the left instance are class 3: the majority (class 2) wins."""
    semantic = np.zeros((16, 16), np.int32)
    semantic[8:, :2] = 1
    semantic[8:, 2:] = 2
    semantic[9, 3:6] = 3
    probabilities = np.eye(4, dtype=np.float32)[semantic][None]
    heat = np.zeros((1, 16, 16, 1), np.float32)
    heat[0, 11, 5], heat[0, 11, 12], heat[0, 2, 2] = 0.9, 0.8, 0.05
    ys, xs = np.mgrid[0:16, 0:16].astype(np.float32)
    centre_x = np.where(xs < 9, 5.0, 12.0)
    offsets = np.stack([11.0 - ys, centre_x - xs], -1)[None]
    grouping = CenterGrouping((2, 3), (0, 1), stuff_area=20, top_k=4)
    panoptic, scores = grouping(probabilities, heat, offsets)
    thing = (semantic == 2) | (semantic == 3)
    want = np.full((16, 16), -1, np.int32)
    want[:8] = 0
    want[thing & (xs < 9)] = 2001
    want[thing & (xs >= 9)] = 2002
    np.testing.assert_array_equal(panoptic.numpy()[0], want)
    left = thing & (xs < 9)
    np.testing.assert_allclose(
        scores.numpy()[0], [0.9 * (left.sum() - 3) / left.sum(), 0.8, 0, 0], atol=1e-6
    )


def test_grouping_without_centres_leaves_things_void():
    semantic = np.full((1, 8, 8), 2, np.int32)
    semantic[0, :4] = 0
    probabilities = np.eye(3, dtype=np.float32)[semantic]
    grouping = CenterGrouping((2,), (0, 1), stuff_area=1, top_k=3)
    panoptic, scores = grouping(
        probabilities, np.zeros((1, 8, 8, 1), np.float32), np.zeros((1, 8, 8, 2), np.float32)
    )
    want = np.where(semantic[0] == 0, 0, -1)
    np.testing.assert_array_equal(panoptic.numpy()[0], want)
    assert not scores.numpy().any()


# --------------------------------------------------------------------------- prepare


@pytest.fixture(scope="module")
def panoptic_raw():
    return kerasseg.datasets.load(
        "shapes_panoptic", split="train", num_images=3, image_size=(40, 56)
    )


def test_prepare_keeps_panoptic_examples_exact_in_evaluation(panoptic_raw):
    batches = kerasseg.data.prepare(panoptic_raw, batch_size=1, training=False)
    for (image, target), (raw_image, raw_target) in zip(batches, panoptic_raw):
        np.testing.assert_array_equal(image[0].numpy(), raw_image.numpy().astype(np.float32))
        for key in ("semantic", "instance_ids"):
            assert target[key].dtype == tf.int32
            np.testing.assert_array_equal(target[key][0].numpy(), raw_target[key].numpy())


def test_prepare_moves_semantic_and_instance_ids_together(panoptic_raw):
    pairs = set()
    for _, target in panoptic_raw:
        pairs |= set(
            zip(target["semantic"].numpy().ravel(), target["instance_ids"].numpy().ravel())
        )
    batches = kerasseg.data.prepare(
        panoptic_raw, batch_size=3, crop_size=64, seed=1, scale_range=(0.5, 1.5)
    )
    images, target = next(iter(batches))
    assert images.shape == (3, 64, 64, 3)
    semantic, ids = target["semantic"].numpy(), target["instance_ids"].numpy()
    assert semantic.shape == ids.shape == (3, 64, 64)
    padded = semantic == 255
    assert padded.any()  # 40x56 images at most 1.5x: the 64 px crop has padding
    assert not ids[padded].any()
    assert set(zip(semantic[~padded].ravel(), ids[~padded].ravel())) <= pairs


def test_prepare_names_an_instance_number_too_large():
    image = tf.zeros((4, 4, 3), tf.uint8)
    target = {"semantic": tf.fill((4, 4), 2), "instance_ids": tf.fill((4, 4), 1000)}
    ds = tf.data.Dataset.from_tensors((image, target))
    with pytest.raises(tf.errors.InvalidArgumentError, match="instance number"):
        next(iter(kerasseg.data.prepare(ds, batch_size=1, training=False)))
