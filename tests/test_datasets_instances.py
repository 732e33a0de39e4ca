"""Instance-segmentation datasets: the generated `shapes_instances` and `coco_instances` on a
tiny COCO fixture written in the official layout with pycocotools' own encoders.

Expected masks come from `pycocotools.mask` applied to the very annotations written, and
expected boxes from a tight-box computation written here.
"""

import json
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf
from pycocotools import mask as mask_utils

from kerasseg import datasets
from kerasseg.datasets import DataError, coco_instances, shapes_instances


def collect(ds):
    return [(x, y) for x, y in ds.as_numpy_iterator()]


def tight_boxes(masks):
    out = []
    for m in masks:
        ys, xs = np.nonzero(m)
        out.append([ys.min(), xs.min(), ys.max() + 1, xs.max() + 1])
    return np.asarray(out, np.float32).reshape(-1, 4)


def check_target(image, target, num_classes):
    m = len(target["classes"])
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert target["boxes"].dtype == np.float32 and target["boxes"].shape == (m, 4)
    assert target["classes"].dtype == np.int32
    assert target["masks"].dtype == np.uint8 and target["masks"].shape == (m, *image.shape[:2])
    assert set(np.unique(target["masks"])) <= {0, 1}
    assert ((0 <= target["classes"]) & (target["classes"] < num_classes)).all()
    np.testing.assert_array_equal(target["boxes"], tight_boxes(target["masks"]))


# ----------------------------------------------------------------------------- shapes_instances
def test_shapes_instances_registered_as_an_instance_set():
    assert "shapes_instances" in datasets.list_datasets()
    assert not datasets.needs_data_dir("shapes_instances")
    info = datasets.info("shapes_instances")
    assert info.task == "instance" and info.num_classes == 3
    assert info.class_names == ("circle", "square", "triangle") and info.palette.shape == (3, 3)
    ds = datasets.load("shapes_instances", num_images=2)
    image_spec, target_spec = ds.element_spec
    assert image_spec.shape.as_list() == [None, None, 3] and image_spec.dtype == tf.uint8
    assert target_spec["boxes"].shape.as_list() == [None, 4]
    assert target_spec["classes"].shape.as_list() == [None]
    assert target_spec["masks"].shape.as_list() == [None, None, None]
    assert (target_spec["masks"].dtype, target_spec["classes"].dtype) == (tf.uint8, tf.int32)
    assert int(ds.cardinality()) == 2


def test_shapes_instances_deterministic_and_splits_differ():
    a = collect(datasets.load("shapes_instances", split="train", seed=0, num_images=5))
    b = collect(datasets.load("shapes_instances", split="train", seed=0, num_images=3))
    for (xa, ya), (xb, yb) in zip(a, b):  # sample i does not depend on num_images
        np.testing.assert_array_equal(xa, xb)
        for key in ("boxes", "classes", "masks"):
            np.testing.assert_array_equal(ya[key], yb[key])
    val = collect(datasets.load("shapes_instances", split="val", seed=0, num_images=5))
    other = collect(datasets.load("shapes_instances", split="train", seed=1, num_images=5))
    for x, _ in a:
        assert not any(np.array_equal(x, v) for v, _ in val + other)


def test_shapes_instances_contract_on_many_samples():
    samples = collect(datasets.load("shapes_instances", num_images=40))
    counts, repeated = [], 0
    for image, target in samples:
        assert image.shape == (64, 64, 3)
        check_target(image, target, 3)
        counts.append(len(target["classes"]))
        # Occlusion leaves the visible masks disjoint, each with at least min_area pixels.
        assert target["masks"].sum(0).max() <= 1
        assert target["masks"].sum((1, 2)).min() >= 10
        repeated += len(set(target["classes"].tolist())) < len(target["classes"])
    assert min(counts) >= 2 and max(counts) <= 5 and len(set(counts)) > 1
    assert repeated > 0  # the same class several times in one image
    assert {c for _, t in samples for c in t["classes"].tolist()} == {0, 1, 2}


def test_shapes_instances_later_objects_occlude_earlier_ones():
    samples = shapes_instances.generate("val", seed=3, num_images=30, with_drawn=True)
    overlapping = 0
    for image, target, drawn in samples:
        masks = target["masks"].astype(bool)
        assert drawn.shape == masks.shape
        for i in range(len(masks)):
            later = drawn[i + 1 :].any(0)
            np.testing.assert_array_equal(masks[i], drawn[i] & ~later)
            overlapping += bool((drawn[i] & later).any())
        # Each object is painted in one colour (noise aside): its pixels are far from the
        # background's (the pixels of no object).
        background = image[~masks.any(0)].astype(np.float32).mean(0)
        for m in masks:
            assert np.linalg.norm(image[m].astype(np.float32).mean(0) - background) > 30
    assert overlapping >= 5


def test_shapes_instances_options():
    ((image, target),) = collect(
        datasets.load("shapes_instances", num_images=1, image_size=(40, 56), max_objects=2)
    )
    assert image.shape == (40, 56, 3) and target["masks"].shape[1:] == (40, 56)
    assert len(target["classes"]) == 2
    with pytest.raises(ValueError, match="valid splits: train, val"):
        datasets.load("shapes_instances", split="test")
    with pytest.raises(ValueError, match="image_size"):
        datasets.load("shapes_instances", image_size=8)
    with pytest.raises(ValueError, match="min_objects"):
        datasets.load("shapes_instances", min_objects=4, max_objects=2)


# ----------------------------------------------------------------------------- COCO fixture
CATEGORIES = [  # written out of id order; ids with gaps, as in COCO
    {"id": 90, "name": "toothbrush", "supercategory": "indoor"},
    {"id": 1, "name": "person", "supercategory": "person"},
    {"id": 3, "name": "car", "supercategory": "vehicle"},
]
INDEX = {1: 0, 3: 1, 90: 2}  # sorted by id


def uncompressed_rle(mask):
    """COCO's uncompressed RLE (column-major runs, starting with a run of zeros)."""
    flat = np.asarray(mask, np.uint8).flatten(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0] == 1:
        counts = [0] + counts
    return {"counts": counts, "size": list(mask.shape)}


def box_mask(h, w, y1, x1, y2, x2):
    m = np.zeros((h, w), np.uint8)
    m[y1:y2, x1:x2] = 1
    return m


def coco_fixture(root, rng):
    """Four val images: id 7 with a polygon, a compressed RLE, an uncompressed RLE and a crowd
    region; id 3 with a two-part polygon and a degenerate one; id 5 without annotations; id 9
    with a crowd region only."""
    h, w = 24, 32
    ring = box_mask(h, w, 2, 3, 12, 14)
    compressed = mask_utils.encode(np.asfortranarray(ring))
    compressed["counts"] = compressed["counts"].decode("ascii")
    blob = np.zeros((h, w), np.uint8)
    cv2.circle(blob, (22, 15), 6, 1, -1)
    crowd = box_mask(h, w, 16, 0, 24, 10)
    anns = [
        (101, 7, 3, 0, [[18.0, 1.5, 30.0, 2.0, 29.0, 11.0, 20.0, 9.5]]),
        (102, 7, 90, 0, compressed),
        (103, 7, 1, 0, uncompressed_rle(blob)),
        (104, 7, 1, 1, uncompressed_rle(crowd)),
        (105, 3, 3, 0, [[1, 1, 8, 1, 8, 6], [10, 10, 14, 10, 14, 15, 10, 15]]),
        (106, 3, 1, 0, [[2, 2, 5, 5]]),  # two points: not a polygon, skipped
        (107, 9, 1, 1, uncompressed_rle(box_mask(20, 16, 0, 0, 5, 5))),
    ]
    sizes = {7: (h, w), 3: (20, 16), 5: (18, 22), 9: (20, 16)}
    images = []
    for image_id, (ih, iw) in sizes.items():
        name = f"{image_id:012d}.jpg"
        path = os.path.join(root, "val2017", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        assert cv2.imwrite(path, rng.integers(0, 256, (ih, iw, 3), dtype=np.uint8))
        images.append({"id": image_id, "file_name": name, "height": ih, "width": iw})
    data = {
        "images": images,
        "categories": CATEGORIES,
        "annotations": [
            {"id": a, "image_id": i, "category_id": c, "iscrowd": z, "segmentation": s}
            for a, i, c, z, s in anns
        ],
    }
    write_json(root, "val", data)
    return data


def write_json(root, split, data):
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    with open(os.path.join(root, "annotations", f"instances_{split}2017.json"), "w") as f:
        json.dump(data, f)


def expected_mask(ann, h, w):
    """pycocotools' own decoding of one annotation (COCO.annToMask's steps)."""
    seg = ann["segmentation"]
    if isinstance(seg, list):
        seg = [p for p in seg if len(p) >= 6]
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
    elif isinstance(seg["counts"], list):
        rle = mask_utils.frPyObjects(seg, h, w)
    else:
        rle = seg
    return mask_utils.decode(rle)


@pytest.fixture
def coco(tmp_path):
    root = str(tmp_path / "coco")
    return root, coco_fixture(root, np.random.default_rng(0))


def by_image(data, image_id, crowd=False):
    return [
        a for a in data["annotations"] if a["image_id"] == image_id and (crowd or not a["iscrowd"])
    ]


def test_coco_masks_match_pycocotools_pixel_for_pixel(coco):
    root, data = coco
    ds = datasets.load("coco_instances", data_dir=root, split="val")
    assert ds.element_spec[1]["masks"].shape.as_list() == [None, None, None]
    assert set(ds.element_spec[1]) == {"boxes", "classes", "masks"}
    samples = collect(ds)
    assert len(samples) == 4  # val keeps every image, in image id order: 3, 5, 7, 9
    shapes = [x.shape[:2] for x, _ in samples]
    assert shapes == [(20, 16), (18, 22), (24, 32), (20, 16)]
    for (image, target), image_id in zip(samples, (3, 5, 7, 9)):
        check_target(image, target, 3)
        anns = [a for a in by_image(data, image_id) if a["id"] != 106]
        h, w = image.shape[:2]
        assert len(target["masks"]) == len(anns)
        for mask, cls, ann in zip(target["masks"], target["classes"], anns):
            np.testing.assert_array_equal(mask, expected_mask(ann, h, w))
            assert cls == INDEX[ann["category_id"]]
    # The encoders round-trip: the RLE masks are the arrays they were made from.
    _, t7 = samples[2]
    np.testing.assert_array_equal(t7["masks"][1], box_mask(24, 32, 2, 3, 12, 14))
    np.testing.assert_array_equal(t7["boxes"][1], [2, 3, 12, 14])
    assert t7["classes"].tolist() == [1, 2, 0]
    # An image without annotations gives empty arrays of the right shapes.
    _, t5 = samples[1]
    assert t5["boxes"].shape == (0, 4) and t5["masks"].shape == (0, 18, 22)


def test_coco_crowd_keep_flags_crowd_regions(coco):
    root, data = coco
    samples = collect(datasets.load("coco_instances", data_dir=root, split="val", crowd="keep"))
    image, target = samples[2]  # image id 7
    assert target["iscrowd"].tolist() == [0, 0, 0, 1]
    crowd = by_image(data, 7, crowd=True)[3]
    np.testing.assert_array_equal(target["masks"][3], expected_mask(crowd, 24, 32))
    np.testing.assert_array_equal(target["masks"][3], box_mask(24, 32, 16, 0, 24, 10))
    assert samples[3][1]["iscrowd"].tolist() == [1]
    with pytest.raises(ValueError, match="drop, keep"):
        datasets.load("coco_instances", data_dir=root, split="val", crowd="ignore")


def test_coco_train_skips_images_without_instances(coco):
    root, data = coco
    write_json(root, "train", data)
    os.rename(os.path.join(root, "val2017"), os.path.join(root, "train2017"))
    kept = collect(datasets.load("coco_instances", data_dir=root, split="train"))
    # Images 5 (no annotations) and 9 (a crowd region only) are left out.
    assert [x.shape[:2] for x, _ in kept] == [(20, 16), (24, 32)]
    every = datasets.load("coco_instances", data_dir=root, split="train2017", skip_empty=False)
    assert int(every.cardinality()) == 4
    shuffled = datasets.load("coco_instances", data_dir=root, split="train", shuffle_files=True)
    assert sorted(len(t["classes"]) for _, t in collect(shuffled)) == [1, 3]


def test_coco_category_mapping_both_ways(coco):
    root, _ = coco
    assert coco_instances.category_ids(root, "val") == (1, 3, 90)
    assert coco_instances.category_index(root, "val") == INDEX
    assert coco_instances.category_ids(root) == (1, 3, 90)  # split None: val's file
    info = datasets.info("coco_instances", data_dir=root)
    assert info.task == "instance" and info.num_classes == 3
    assert info.class_names == ("person", "car", "toothbrush") and info.palette.shape == (3, 3)
    # Without files: the official COCO 2017 mapping, 80 classes with ids 1..90.
    ids = coco_instances.category_ids()
    assert len(ids) == 80 and ids[:12] == tuple(range(1, 12)) + (13,) and ids[-1] == 90
    assert coco_instances.category_index()[90] == 79
    official = datasets.info("coco_instances")
    assert official.num_classes == 80 and official.class_names[0] == "person"
    assert official.class_names[79] == "toothbrush"


def test_coco_registered_with_the_official_archives():
    found = datasets.entry("coco_instances")
    urls = sorted(r.url for r in found.resources)
    assert urls == [
        "http://images.cocodataset.org/annotations/annotations_trainval2017.zip",
        "http://images.cocodataset.org/zips/train2017.zip",
        "http://images.cocodataset.org/zips/val2017.zip",
    ]
    assert datasets.needs_data_dir("coco_instances")


def test_coco_annotation_without_segmentation_is_a_data_error(coco):
    root, data = coco
    del data["annotations"][2]["segmentation"]  # annotation id 103
    write_json(root, "val", data)
    path = os.path.join(root, "annotations", "instances_val2017.json")
    with pytest.raises(DataError) as error:
        datasets.load("coco_instances", data_dir=root, split="val")
    message = str(error.value)
    assert path in message and "annotation id 103" in message and "segmentation" in message


@pytest.mark.parametrize(
    "change, words",
    [
        (
            lambda d: d["annotations"][0].update(category_id=2),
            ["101", "category_id 2", "[1, 3, 90]"],
        ),
        (lambda d: d["annotations"][0].update(image_id=42), ["101", "image_id 42"]),
        (lambda d: d["annotations"][2]["segmentation"].update(size=[5, 5]), ["103", "RLE size"]),
        (lambda d: d["annotations"][0].update(segmentation="x"), ["101", "polygons"]),
        (lambda d: d.pop("categories"), ["categories"]),
    ],
)
def test_coco_broken_annotations_name_the_file_and_the_annotation(coco, change, words):
    root, data = coco
    change(data)
    write_json(root, "val", data)
    with pytest.raises(DataError) as error:
        datasets.load("coco_instances", data_dir=root, split="val")
    message = str(error.value)
    assert "instances_val2017.json" in message
    for word in words:
        assert word in message


def test_coco_missing_files_are_named(coco, tmp_path):
    root, data = coco
    with pytest.raises(FileNotFoundError, match="instances_train2017.json"):
        datasets.load("coco_instances", data_dir=root, split="train")
    with pytest.raises(ValueError, match="valid splits"):
        datasets.load("coco_instances", data_dir=root, split="test")
    os.remove(os.path.join(root, "val2017", "000000000005.jpg"))
    with pytest.raises(FileNotFoundError, match="000000000005.jpg"):
        datasets.load("coco_instances", data_dir=root, split="val")


def test_coco_image_of_another_size_than_the_json_says(coco):
    root, data = coco
    data["images"][0]["width"] = 40  # image id 7 is 32 wide
    for a in data["annotations"][1:4]:
        a["segmentation"]["size"] = [24, 40]
    data["annotations"][2]["segmentation"] = uncompressed_rle(np.zeros((24, 40), np.uint8))
    data["annotations"][3]["segmentation"] = uncompressed_rle(np.zeros((24, 40), np.uint8))
    data["annotations"][1]["segmentation"] = data["annotations"][2]["segmentation"]
    write_json(root, "val", data)
    ds = datasets.load("coco_instances", data_dir=root, split="val")
    with pytest.raises(tf.errors.OpError) as error:
        collect(ds)
    message = datasets.pipeline_error_message(error.value)
    assert "000000000007.jpg" in message and "32x24" in message and "40x24" in message
    assert datasets.files_of(ds) is None  # no label files for the pre-training checks to read


def test_coco_undecodable_polygon_names_the_annotation(coco):
    root, data = coco
    data["annotations"][0]["segmentation"] = [[1, 2, "a", 4, 5, 6]]  # annotation id 101
    write_json(root, "val", data)
    with pytest.raises(tf.errors.OpError) as error:
        collect(datasets.load("coco_instances", data_dir=root, split="val"))
    message = datasets.pipeline_error_message(error.value)
    assert "instances_val2017.json" in message and "annotation id 101" in message
