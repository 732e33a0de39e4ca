"""`cityscapes` with task="panoptic": the official gtFine labelIds + instanceIds files and the
createPanopticImgs form (COCO-style JSON + segment-id PNGs), on tiny fixtures written here.

The expected semantic and instance maps are written out region by region here, with an explicit
labelId -> trainId table, never with the loader's tables; the panoptic-form fixture is made from
the instanceIds the way cityscapesScripts' createPanopticImgs makes it.
"""

import json
import os
import shutil

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kerasseg import datasets
from kerasseg.datasets import DataError, cityscapes
from kerasseg.metrics import PanopticQuality

H, W = 16, 24
# labelId -> trainId of the evaluated labels (the official cityscapesScripts table).
TRAIN_ID = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10}
TRAIN_ID.update({24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18})
# Cityscapes labels with instances (hasInstances), and those ignored in evaluation.
HAS_INSTANCES = {24, 25, 26, 27, 28, 29, 30, 31, 32, 33}
IGNORED_IN_EVAL = {0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30, -1}
CATEGORIES = [  # the evaluated labels, as createPanopticImgs lists them
    (7, "road", 0),
    (8, "sidewalk", 0),
    (11, "building", 0),
    (12, "wall", 0),
    (13, "fence", 0),
    (17, "pole", 0),
    (19, "traffic light", 0),
    (20, "traffic sign", 0),
    (21, "vegetation", 0),
    (22, "terrain", 0),
    (23, "sky", 0),
    (24, "person", 1),
    (25, "rider", 1),
    (26, "car", 1),
    (27, "truck", 1),
    (28, "bus", 1),
    (31, "train", 1),
    (32, "motorcycle", 1),
    (33, "bicycle", 1),
]
STEMS = (("aachen", "aachen_000000_000019"), ("bochum", "bochum_000000_000313"))


def scene_a():
    """instanceIds of the first image and the expected (semantic, instance_ids)."""
    ids = np.full((H, W), 7, np.int64)  # road
    ids[:4] = 23  # sky
    ids[4:7, 8:15] = 11  # building
    ids[4:8, 0:6] = 26  # "car group": crowd, no instance
    ids[8:12, 6:12] = 26000  # car
    ids[8:13, 12:18] = 26001  # car touching the first
    ids[5:11, 19:22] = 24002  # person
    ids[12:16, 0:5] = 0  # unlabeled: void
    ids[13:16, 20:24] = 29000  # caravan: not evaluated, void
    semantic = np.zeros((H, W), np.int32)  # road
    semantic[:4] = 10
    semantic[4:7, 8:15] = 2
    semantic[4:8, 0:6] = 13
    semantic[8:12, 6:12] = 13
    semantic[8:13, 12:18] = 13
    semantic[5:11, 19:22] = 11
    semantic[12:16, 0:5] = 255
    semantic[13:16, 20:24] = 255
    instances = np.zeros((H, W), np.int32)
    instances[5:11, 19:22] = 1  # 24002 < 26000 < 26001
    instances[8:12, 6:12] = 2
    instances[8:13, 12:18] = 3
    return ids, semantic, instances


def scene_b():
    ids = np.full((H, W), 23, np.int64)  # sky
    ids[8:] = 7  # road
    ids[9:14, 1:7] = 24  # a person group: crowd
    ids[10:15, 10:14] = 33000  # bicycle
    ids[6:12, 16:19] = 25003  # rider
    ids[15, :] = 0  # void, the last row
    semantic = np.full((H, W), 10, np.int32)
    semantic[8:] = 0
    semantic[9:14, 1:7] = 11
    semantic[10:15, 10:14] = 18
    semantic[6:12, 16:19] = 12
    semantic[15, :] = 255
    instances = np.zeros((H, W), np.int32)
    instances[6:12, 16:19] = 1  # 25003 < 33000
    instances[10:15, 10:14] = 2
    return ids, semantic, instances


def write_rgb(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)), path


def write_grey(path, array, dtype):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array.astype(dtype)).save(path)


def create_panoptic(ids):
    """createPanopticImgs on one instanceIds map: (RGB PNG array, segments_info)."""
    png = np.zeros((*ids.shape, 3), np.uint8)
    segments = []
    for segment_id in np.unique(ids):
        segment_id = int(segment_id)
        label_id, crowd = (segment_id, 1) if segment_id < 1000 else (segment_id // 1000, 0)
        if label_id in IGNORED_IN_EVAL:
            continue
        if label_id not in HAS_INSTANCES:
            crowd = 0
        mask = ids == segment_id
        png[mask] = [segment_id % 256, segment_id // 256, segment_id // 256 // 256]
        ys, xs = np.nonzero(mask)
        segments.append(
            {
                "id": segment_id,
                "category_id": label_id,
                "area": int(mask.sum()),
                "bbox": [int(xs.min()), int(ys.min()), int(np.ptp(xs) + 1), int(np.ptp(ys) + 1)],
                "iscrowd": crowd,
            }
        )
    return png, segments


def make_cityscapes(root, split="val", labels=True, panoptic=True, train_ids=False):
    """Both scenes in the official layouts; -> [(image, semantic, instances)] in stem order."""
    rng = np.random.default_rng(3)
    out, images, annotations = [], [], []
    suffix = "_trainId" if train_ids else ""
    png_dir = os.path.join(root, "gtFine", f"cityscapes_panoptic_{split}{suffix}")
    for (city, stem), scene in zip(STEMS, (scene_a, scene_b)):
        ids, semantic, instances = scene()
        image = rng.integers(0, 256, (H, W, 3)).astype(np.uint8)
        write_rgb(os.path.join(root, "leftImg8bit", split, city, f"{stem}_leftImg8bit.png"), image)
        if labels:
            gt = os.path.join(root, "gtFine", split, city)
            write_grey(os.path.join(gt, f"{stem}_gtFine_instanceIds.png"), ids, np.uint16)
            label_ids = np.where(ids >= 1000, ids // 1000, ids)
            write_grey(os.path.join(gt, f"{stem}_gtFine_labelIds.png"), label_ids, np.uint8)
        png, segments = create_panoptic(ids)
        if train_ids:
            for seg in segments:
                seg["category_id"] = TRAIN_ID[seg["category_id"]]
        write_rgb(os.path.join(png_dir, f"{stem}_gtFine_panoptic.png"), png)
        images.append({"id": stem, "width": W, "height": H, "file_name": f"{stem}_leftImg8bit.png"})
        annotations.append(
            {
                "image_id": stem,
                "file_name": f"{stem}_gtFine_panoptic.png",
                "segments_info": segments,
            }
        )
        out.append((image, semantic, instances))
    categories = [
        {"id": TRAIN_ID[i] if train_ids else i, "name": n, "isthing": t} for i, n, t in CATEGORIES
    ]
    if panoptic:
        # The JSON lists the second image first: the loader orders by file, as the labels do.
        record = {"images": images, "annotations": annotations[::-1], "categories": categories}
        with open(
            os.path.join(root, "gtFine", f"cityscapes_panoptic_{split}{suffix}.json"), "w"
        ) as f:
            json.dump(record, f)
    else:
        shutil.rmtree(png_dir)
    return out


def collect(ds):
    return list(ds.as_numpy_iterator())


def load(root, **options):
    return datasets.load("cityscapes", data_dir=root, split="val", task="panoptic", **options)


def check(examples, expected):
    assert len(examples) == len(expected)
    for (image, target), (want_image, semantic, instances) in zip(examples, expected):
        assert set(target) == {"semantic", "instance_ids"}
        assert image.dtype == np.uint8 and image.shape == (H, W, 3)
        assert target["semantic"].dtype == target["instance_ids"].dtype == np.int32
        np.testing.assert_array_equal(image, want_image)
        np.testing.assert_array_equal(target["semantic"], semantic)
        np.testing.assert_array_equal(target["instance_ids"], instances)


def check_spec(ds):
    image, target = ds.element_spec
    assert image.shape.as_list() == [None, None, 3] and image.dtype == tf.uint8
    for key in ("semantic", "instance_ids"):
        assert target[key].shape.as_list() == [None, None] and target[key].dtype == tf.int32


def pipeline_error(fn):
    with pytest.raises(tf.errors.OpError) as exc:
        fn()
    message = datasets.pipeline_error_message(exc.value)
    assert message is not None, str(exc.value)
    return message


# ----------------------------------------------------------------------------- the two forms
def test_labels_form_pixel_for_pixel(tmp_path):
    expected = make_cityscapes(tmp_path, panoptic=False)
    ds = load(tmp_path)  # no JSON: the labels
    check_spec(ds)
    check(collect(ds), expected)
    items = datasets.files_of(ds).items
    assert [os.path.basename(p) for p, _, _ in items] == [
        f"{stem}_leftImg8bit.png" for _, stem in STEMS
    ]
    assert all(a.endswith("_labelIds.png") and b.endswith("_instanceIds.png") for _, a, b in items)
    shuffled = collect(load(tmp_path, shuffle_files=True, seed=0))
    assert sorted(int(x.sum()) for x, _ in shuffled) == sorted(int(e[0].sum()) for e in expected)


def test_panoptic_form_pixel_for_pixel_and_same_as_labels(tmp_path):
    expected = make_cityscapes(tmp_path)
    from_json = load(tmp_path)  # the JSON exists: it is the default
    check_spec(from_json)
    assert all(
        png.endswith("_gtFine_panoptic.png") for _, png in datasets.files_of(from_json).items
    )
    examples = collect(from_json)
    check(examples, expected)
    check(collect(load(tmp_path, source="panoptic")), expected)
    from_labels = collect(load(tmp_path, source="labels"))
    for (xa, ya), (xb, yb) in zip(examples, from_labels):
        np.testing.assert_array_equal(xa, xb)
        for key in ("semantic", "instance_ids"):
            np.testing.assert_array_equal(ya[key], yb[key])
    # The panoptic form does not need the gtFine/<split> folders.
    shutil.rmtree(tmp_path / "gtFine" / "val")
    check(collect(load(tmp_path)), expected)


def test_train_id_panoptic_json(tmp_path):
    expected = make_cityscapes(tmp_path, labels=False, train_ids=True)
    check(collect(load(tmp_path, source="panoptic")), expected)


def test_ground_truth_scores_a_perfect_panoptic_quality(tmp_path):
    make_cityscapes(tmp_path, labels=False)
    metric = PanopticQuality(cityscapes.THING_CLASSES, cityscapes.STUFF_CLASSES)
    for _, target in collect(load(tmp_path)):
        panoptic = target["semantic"] * cityscapes.LABEL_DIVISOR + target["instance_ids"]
        metric.update_state(panoptic, panoptic)
    report = metric.report()
    assert report["all"]["pq"] == pytest.approx(1.0)
    assert report["things"]["pq"] == pytest.approx(1.0)


def test_panoptic_info():
    info = datasets.info("cityscapes", task="panoptic")
    assert info.task == "panoptic" and info.num_classes == 19
    assert info.class_names == datasets.info("cityscapes").class_names
    assert info.class_names[11] == "person" and info.class_names[18] == "bicycle"
    assert tuple(info.thing_classes) == tuple(range(11, 19))
    assert cityscapes.THING_CLASSES == tuple(range(11, 19))
    assert cityscapes.STUFF_CLASSES == tuple(range(11))
    assert cityscapes.LABEL_DIVISOR == 1000
    assert info.palette.shape == (19, 3) and info.ignore_index == 255
    assert info.splits == {"train": 2975, "val": 500, "test": 1525}
    assert "cityscapes_panoptic_" in info.layout and "instanceIds" in info.layout
    assert datasets.info("cityscapes", task="instance").num_classes == 8


# ----------------------------------------------------------------------------- errors
def test_bad_task_and_source(tmp_path):
    with pytest.raises(ValueError, match="valid tasks: semantic, instance, panoptic"):
        datasets.info("cityscapes", task="panoptics")
    with pytest.raises(ValueError, match="valid tasks: semantic, instance, panoptic"):
        datasets.load("cityscapes", data_dir=tmp_path, task="panoptics")
    make_cityscapes(tmp_path)
    with pytest.raises(ValueError, match="valid sources: labels, panoptic"):
        load(tmp_path, source="json")
    with pytest.raises(ValueError, match="task='panoptic'"):
        datasets.load("cityscapes", data_dir=tmp_path, split="val", source="labels")


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="leftImg8bit"):
        load(tmp_path)
    make_cityscapes(tmp_path, panoptic=False)
    json_path = str(tmp_path / "gtFine" / "cityscapes_panoptic_val.json")
    with pytest.raises(FileNotFoundError, match="createPanopticImgs") as exc:
        load(tmp_path, source="panoptic")
    assert json_path in str(exc.value)
    with pytest.raises(FileNotFoundError, match="leftImg8bit/train"):
        datasets.load("cityscapes", data_dir=tmp_path, split="train", task="panoptic")
    ids_file = (
        tmp_path / "gtFine" / "val" / "bochum" / "bochum_000000_000313_gtFine_instanceIds.png"
    )
    os.remove(ids_file)
    with pytest.raises(FileNotFoundError, match="gtFine_instanceIds file") as exc:
        load(tmp_path)
    assert str(ids_file) in str(exc.value)


def test_missing_panoptic_png_and_folder_are_named(tmp_path):
    make_cityscapes(tmp_path, labels=False)
    png_dir = tmp_path / "gtFine" / "cityscapes_panoptic_val"
    png = png_dir / "aachen_000000_000019_gtFine_panoptic.png"
    os.remove(png)
    with pytest.raises(FileNotFoundError) as exc:
        load(tmp_path)
    assert str(png) in str(exc.value)
    shutil.rmtree(png_dir)
    with pytest.raises(FileNotFoundError) as exc:
        load(tmp_path)
    assert str(png_dir) in str(exc.value)
    other = tmp_path / "other"
    make_cityscapes(other, labels=False)
    os.remove(other / "leftImg8bit" / "val" / "bochum" / "bochum_000000_000313_leftImg8bit.png")
    with pytest.raises(FileNotFoundError, match="bochum_000000_000313_leftImg8bit.png"):
        load(other)


def test_bad_annotations_are_data_errors_naming_the_file(tmp_path):
    make_cityscapes(tmp_path)
    json_path = tmp_path / "gtFine" / "cityscapes_panoptic_val.json"
    original = json_path.read_text()

    def rewrite(change):
        record = json.loads(original)
        change(record)
        json_path.write_text(json.dumps(record))

    rewrite(lambda r: r["annotations"][0]["segments_info"][0].update(category_id=99))
    with pytest.raises(DataError, match="category 99") as exc:
        load(tmp_path)
    assert str(json_path) in str(exc.value)
    json_path.write_text("{")
    with pytest.raises(DataError, match="cannot read") as exc:
        load(tmp_path)
    assert str(json_path) in str(exc.value)
    rewrite(lambda r: r["annotations"][1]["segments_info"][0].pop("id"))
    with pytest.raises(DataError, match="annotation 1 of .* is malformed") as exc:
        load(tmp_path)
    assert str(json_path) in str(exc.value)
    # A PNG segment that segments_info does not list (the first annotation is bochum's).
    rewrite(lambda r: r["annotations"][0]["segments_info"].pop(0))
    message = pipeline_error(lambda: collect(load(tmp_path)))
    assert "bochum_000000_000313_gtFine_panoptic.png" in message and "segments_info" in message
    # labelIds and instanceIds that disagree.
    ids_file = tmp_path / "gtFine" / "val" / "aachen" / "aachen_000000_000019_gtFine_labelIds.png"
    label_ids = np.asarray(Image.open(ids_file)).copy()
    label_ids[8, 6] = 7
    write_grey(str(ids_file), label_ids, np.uint8)
    message = pipeline_error(lambda: collect(load(tmp_path, source="labels")))
    assert "disagree" in message and str(ids_file) in message
