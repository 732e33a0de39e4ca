"""`shapes_panoptic`: its examples' structure and the panoptic rules they keep (issue 16's first
loader)."""

import numpy as np
import pytest

from kerasseg import datasets
from kerasseg.datasets import shapes_instances, shapes_panoptic
from kerasseg.metrics import PanopticQuality


def examples(split="val", n=6, **options):
    ds = datasets.load("shapes_panoptic", split=split, num_images=n, **options)
    return list(ds.as_numpy_iterator())


def test_info_names_stuff_then_things():
    info = datasets.info("shapes_panoptic")
    assert info.task == "panoptic" and info.num_classes == 5
    assert info.class_names == ("sky", "ground", "circle", "square", "triangle")
    assert shapes_panoptic.STUFF_CLASSES == (0, 1) and shapes_panoptic.THING_CLASSES == (2, 3, 4)
    assert info.palette.shape == (5, 3)


def test_examples_keep_the_panoptic_rules():
    for image, target in examples(image_size=(48, 64)):
        semantic, ids = target["semantic"], target["instance_ids"]
        assert image.shape == (48, 64, 3) and image.dtype == np.uint8
        assert semantic.shape == ids.shape == (48, 64)
        assert semantic.dtype == ids.dtype == np.int32
        assert set(np.unique(semantic)) <= {0, 1, 2, 3, 4}
        stuff = semantic < 2
        assert np.all(ids[stuff] == 0) and np.all(ids[~stuff] >= 1)
        numbers = np.unique(ids[~stuff])
        np.testing.assert_array_equal(numbers, np.arange(1, len(numbers) + 1))
        for number in numbers:  # one class per instance
            assert len(np.unique(semantic[ids == number])) == 1
        # Sky lies above ground in every column showing both.
        for column in range(semantic.shape[1]):
            rows_sky = np.flatnonzero(semantic[:, column] == 0)
            rows_ground = np.flatnonzero(semantic[:, column] == 1)
            if rows_sky.size and rows_ground.size:
                assert rows_sky.max() < rows_ground.min()


def test_things_are_the_instances_of_shapes_instances_over_new_stuff():
    """The same generator stream draws the same objects: masks equal ``shapes_instances``'s
    rendered with the panoptic background."""
    rng = np.random.default_rng([0, 21, 0])
    image, target = shapes_panoptic.render_sample(rng)
    rng = np.random.default_rng([0, 21, 0])
    stuff = np.zeros((64, 64), np.int32)
    again, objects, _ = shapes_instances.render_sample(
        rng, background=lambda r, h, w: shapes_panoptic._sky_and_ground(r, h, w, stuff)
    )
    np.testing.assert_array_equal(image, again)
    for number, (cls, mask) in enumerate(zip(objects["classes"], objects["masks"]), start=1):
        np.testing.assert_array_equal(target["instance_ids"] == number, mask > 0)
        assert np.all(target["semantic"][mask > 0] == 2 + cls)


def test_deterministic_and_splits_differ():
    a, b = examples("train", 3), examples("train", 3)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya["semantic"], yb["semantic"])
    val = examples("val", 3)
    assert not np.array_equal(a[0][0], val[0][0])
    with pytest.raises(ValueError, match="valid splits: train, val"):
        datasets.load("shapes_panoptic", split="test")


def test_ground_truth_scores_a_perfect_panoptic_quality():
    metric = PanopticQuality(shapes_panoptic.THING_CLASSES, shapes_panoptic.STUFF_CLASSES)
    for _, target in examples(n=4):
        panoptic = target["semantic"] * shapes_panoptic.LABEL_DIVISOR + target["instance_ids"]
        metric.update_state(panoptic, panoptic)
    report = metric.report()
    for part in ("all", "things", "stuff"):
        assert report[part]["pq"] == pytest.approx(1.0)
    assert float(metric.result()) == pytest.approx(1.0)
