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


# --------------------------------------------------------------------------- coco_panoptic


CATEGORIES = [
    {"id": 100, "name": "road", "isthing": 0},
    {"id": 1, "name": "person", "isthing": 1},
    {"id": 5, "name": "car", "isthing": 1},
]


def write_coco_panoptic(root, split="val", stray=False):
    """Two images in panopticapi's layout; -> the expected (semantic, instance_ids) maps."""
    import json

    import cv2

    from kerasseg.ops.panoptic_ids import id_to_rgb

    rng = np.random.default_rng(0)
    (root / "annotations" / f"panoptic_{split}2017").mkdir(parents=True)
    (root / f"{split}2017").mkdir()
    images, annotations, expected = [], [], []
    for n in range(2):
        ids = np.zeros((20, 30), np.int64)  # 0: void
        ids[10:, :] = 7 + n * 1000  # road (stuff)
        ids[2:8, 2:10] = 31  # a person
        ids[2:8, 12:20] = 300000  # another person (an id needing all three bytes)
        ids[12:18, 22:28] = 42  # a crowd of cars
        if stray and n == 1:
            ids[0, 0] = 99
        segments = [
            {"id": 7 + n * 1000, "category_id": 100, "iscrowd": 0},
            {"id": 31, "category_id": 1, "iscrowd": 0},
            {"id": 300000, "category_id": 1, "iscrowd": 0},
            {"id": 42, "category_id": 5, "iscrowd": 1},
        ]
        name = f"{n:012d}"
        cv2.imwrite(str(root / f"{split}2017" / f"{name}.jpg"), rng.integers(0, 255, (20, 30, 3)))
        png = id_to_rgb(ids)[..., ::-1]
        cv2.imwrite(str(root / "annotations" / f"panoptic_{split}2017" / f"{name}.png"), png)
        images.append({"id": n + 1, "file_name": f"{name}.jpg", "height": 20, "width": 30})
        annotations.append(
            {"image_id": n + 1, "file_name": f"{name}.png", "segments_info": segments}
        )
        semantic = np.full((20, 30), 255, np.int32)
        semantic[10:, :] = 2  # classes by category id: person 0, car 1, road 2
        semantic[2:8, 2:10] = semantic[2:8, 12:20] = 0
        semantic[12:18, 22:28] = 1
        instance = np.zeros((20, 30), np.int32)
        instance[2:8, 2:10], instance[2:8, 12:20] = 1, 2  # the crowd and the stuff: 0
        expected.append((semantic, instance))
    record = {"images": images, "annotations": annotations, "categories": CATEGORIES}
    (root / "annotations" / f"panoptic_{split}2017.json").write_text(json.dumps(record))
    return expected


def test_coco_panoptic_reads_panopticapi_folders(tmp_path):
    from kerasseg.datasets import coco_panoptic

    expected = write_coco_panoptic(tmp_path)
    out = list(datasets.load("coco_panoptic", data_dir=tmp_path, split="val").as_numpy_iterator())
    assert len(out) == 2
    for (image, target), (semantic, instance) in zip(out, expected):
        assert image.shape == (20, 30, 3)
        np.testing.assert_array_equal(target["semantic"], semantic)
        np.testing.assert_array_equal(target["instance_ids"], instance)
    info = datasets.info("coco_panoptic", data_dir=tmp_path)
    assert info.class_names == ("person", "car", "road") and info.task == "panoptic"
    assert info.splits == {"val": 2}
    assert coco_panoptic.thing_classes(tmp_path) == (0, 1)
    assert coco_panoptic.stuff_classes(tmp_path) == (2,)


def test_coco_panoptic_names_a_png_with_unlisted_segments(tmp_path):
    write_coco_panoptic(tmp_path, stray=True)
    ds = datasets.load("coco_panoptic", data_dir=tmp_path, split="val")
    with pytest.raises(Exception, match=r"000000000001\.png.* segment id\(s\) \[99\]"):
        list(ds.as_numpy_iterator())
    with pytest.raises(FileNotFoundError, match="panoptic_train2017.json"):
        datasets.load("coco_panoptic", data_dir=tmp_path, split="train")
