"""Instance targets from files: `cityscapes` with task="instance" (gtFine instanceIds) and
`folder` with task="instance" (instance-id PNGs + JSON class maps), on tiny fixtures written here
in the on-disk layouts.

Expected masks, classes and boxes are computed here from the arrays written, with an explicit
labelId -> class table and a tight-box computation of their own, never with the loaders' tables.
"""

import json
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kerasseg import datasets
from kerasseg.datasets import DataError

# Cityscapes labelId -> instance class (person rider car truck bus train motorcycle bicycle).
CITYSCAPES_THINGS = {24: 0, 25: 1, 26: 2, 27: 3, 28: 4, 31: 5, 32: 6, 33: 7}
CITYSCAPES_THING_COLOURS = [
    [220, 20, 60],
    [255, 0, 0],
    [0, 0, 142],
    [0, 0, 70],
    [0, 60, 100],
    [0, 80, 100],
    [0, 0, 230],
    [119, 11, 32],
]


# ----------------------------------------------------------------------------- helpers
def collect(ds):
    return list(ds.as_numpy_iterator())


def write_rgb(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)), path


def write_ids(path, ids, how="pil16"):
    """An id map as a PNG: 16-bit grey by Pillow ("pil16") or OpenCV ("cv16"), an int32 array in
    Pillow's "I" mode converted to 16 bits ("pil32"), 8-bit grey ("grey8") or palette."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if how == "cv16":
        assert cv2.imwrite(str(path), ids.astype(np.uint16))
    elif how == "pil16":
        Image.fromarray(ids.astype(np.uint16)).save(path)
    elif how == "pil32":
        Image.fromarray(ids.astype(np.int32)).convert("I;16").save(path)
    elif how == "grey8":
        Image.fromarray(ids.astype(np.uint8)).save(path)
    else:
        im = Image.fromarray(ids.astype(np.uint8), mode="P")
        im.putpalette(np.random.default_rng(0).integers(0, 256, 768).tolist())
        im.save(path)
    with Image.open(path) as im:  # the file holds the ids, whatever the writer
        np.testing.assert_array_equal(np.asarray(im).astype(np.int64), ids)


def write_json(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f)


def random_image(rng, h, w):
    return rng.integers(0, 256, (h, w, 3)).astype(np.uint8)


def tight_boxes(masks):
    out = []
    for m in masks:
        ys, xs = np.nonzero(m)
        out.append([ys.min(), xs.min(), ys.max() + 1, xs.max() + 1])
    return np.asarray(out, np.float32).reshape(-1, 4)


def check_example(example, image, masks, classes):
    x, target = example
    assert set(target) == {"boxes", "classes", "masks"}
    np.testing.assert_array_equal(x, image)
    assert target["masks"].dtype == np.uint8 and target["classes"].dtype == np.int32
    assert target["boxes"].dtype == np.float32
    expected_masks = np.asarray(masks, np.uint8).reshape(-1, *image.shape[:2])
    np.testing.assert_array_equal(target["masks"], expected_masks)
    np.testing.assert_array_equal(target["classes"], np.asarray(classes, np.int32))
    np.testing.assert_array_equal(target["boxes"], tight_boxes(expected_masks))


def check_spec(ds):
    image_spec, target = ds.element_spec
    assert image_spec.shape.as_list() == [None, None, 3] and image_spec.dtype == tf.uint8
    assert target["boxes"].shape.as_list() == [None, 4] and target["boxes"].dtype == tf.float32
    assert target["classes"].shape.as_list() == [None] and target["classes"].dtype == tf.int32
    assert target["masks"].shape.as_list() == [None, None, None]
    assert target["masks"].dtype == tf.uint8


def pipeline_error(fn):
    """The loader's message of an error raised inside the tf.data pipeline."""
    with pytest.raises(tf.errors.OpError) as exc:
        fn()
    message = datasets.pipeline_error_message(exc.value)
    assert message is not None, str(exc.value)
    return message


# ----------------------------------------------------------------------------- Cityscapes
def cityscapes_ids(h=24, w=32):
    """An instanceIds map of stuff, crowd groups and instances, and what the loader must yield:
    (ids, masks in increasing id order, classes)."""
    ids = np.full((h, w), 7, np.int64)  # road
    ids[:4] = 23  # sky
    ids[4:8, :6] = 26  # a car group without instance ids (crowd): left out
    ids[4:8, 6:10] = 24  # a person group: left out
    ids[10:14, 2:9] = 24000  # person 0
    ids[10:13, 9:12] = 24001  # person 1, touching person 0
    ids[15:20, 3:5] = 25000  # rider
    ids[15:22, 12:30] = 26003  # car
    ids[2:6, 20:24] = 27000  # truck
    ids[8:10, 20:31] = 28000  # bus
    ids[20:23, 0:3] = 29000  # caravan: not evaluated, left out
    ids[22:24, 5:9] = 30001  # trailer: not evaluated, left out
    ids[0, 0] = 31000  # train, one pixel
    ids[12:14, 14:18] = 32005  # motorcycle
    ids[23, 20:32] = 33000  # bicycle, the last row
    ids[8:10, 12:15] = 33001  # bicycle
    expected = sorted(v for v in np.unique(ids) if v >= 1000 and v // 1000 in CITYSCAPES_THINGS)
    masks = [(ids == v).astype(np.uint8) for v in expected]
    classes = [CITYSCAPES_THINGS[v // 1000] for v in expected]
    return ids, masks, classes


def make_cityscapes(root, split="val", how="pil16"):
    rng = np.random.default_rng(5)
    ids, masks, classes = cityscapes_ids()
    samples = {}
    for city, stem, sample_ids in (
        ("aachen", "aachen_000000_000019", ids),
        ("bochum", "bochum_000000_000313", np.where(ids >= 1000, 26, ids)),  # no instances
    ):
        image = random_image(rng, *ids.shape)
        write_rgb(os.path.join(root, "leftImg8bit", split, city, f"{stem}_leftImg8bit.png"), image)
        gt = os.path.join(root, "gtFine", split, city)
        write_ids(os.path.join(gt, f"{stem}_gtFine_instanceIds.png"), sample_ids, how)
        label_ids = np.where(sample_ids >= 1000, sample_ids // 1000, sample_ids)
        Image.fromarray(label_ids.astype(np.uint8)).save(
            os.path.join(gt, f"{stem}_gtFine_labelIds.png")
        )
        samples[stem] = (image, label_ids)
    return samples, masks, classes


@pytest.mark.parametrize("how", ["pil16", "cv16", "pil32"])
def test_cityscapes_instance_ids_to_targets(tmp_path, how):
    samples, masks, classes = make_cityscapes(tmp_path, how=how)
    ds = datasets.load("cityscapes", data_dir=tmp_path, split="val", task="instance")
    check_spec(ds)
    first, second = collect(ds)  # aachen, then bochum
    check_example(first, samples["aachen_000000_000019"][0], masks, classes)
    assert list(first[1]["classes"]) == [0, 0, 1, 2, 3, 4, 5, 6, 7, 7]
    np.testing.assert_array_equal(first[1]["boxes"][-1], [8, 12, 10, 15])  # bicycle 33001
    image = samples["bochum_000000_000313"][0]
    check_example(second, image, np.zeros((0, *image.shape[:2])), [])
    assert second[1]["boxes"].shape == (0, 4)
    files = datasets.files_of(ds)
    assert [os.path.basename(p) for p, _ in files.items] == [
        "aachen_000000_000019_leftImg8bit.png",
        "bochum_000000_000313_leftImg8bit.png",
    ]
    assert all(p.endswith("_gtFine_instanceIds.png") for _, p in files.items)


def test_cityscapes_semantic_default_unchanged(tmp_path):
    samples, _, _ = make_cityscapes(tmp_path)
    out = collect(datasets.load("cityscapes", data_dir=tmp_path, split="val"))
    trainids = {7: 0, 23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
    for (x, y), stem in zip(out, sorted(samples)):
        image, label_ids = samples[stem]
        np.testing.assert_array_equal(x, image)
        np.testing.assert_array_equal(y, np.vectorize(lambda v: trainids.get(v, 255))(label_ids))
    info = datasets.info("cityscapes")
    assert info is datasets.info("cityscapes", task="semantic")
    assert info.num_classes == 19 and info.task == "segmentation"
    assert info.class_names[0] == "road" and info.palette.shape == (19, 3)


def test_cityscapes_instance_info():
    info = datasets.info("cityscapes", task="instance")
    assert info.task == "instance" and info.num_classes == 8
    assert info.class_names == (
        "person",
        "rider",
        "car",
        "truck",
        "bus",
        "train",
        "motorcycle",
        "bicycle",
    )
    np.testing.assert_array_equal(info.palette, CITYSCAPES_THING_COLOURS)
    assert info.splits == {"train": 2975, "val": 500, "test": 1525}
    assert "instanceIds" in info.layout
    with pytest.raises(ValueError, match="semantic, instance"):
        datasets.info("cityscapes", task="panoptics")
    with pytest.raises(ValueError, match="semantic, instance"):
        datasets.load("cityscapes", data_dir="/nonexistent", task="panoptics")


def test_cityscapes_instance_errors_name_the_file(tmp_path):
    make_cityscapes(tmp_path)
    gt = tmp_path / "gtFine" / "val"
    bad = gt / "bochum" / "bochum_000000_000313_gtFine_instanceIds.png"
    write_ids(str(bad), np.full((10, 10), 26000))
    message = pipeline_error(
        lambda: collect(
            datasets.load("cityscapes", data_dir=tmp_path, split="val", task="instance")
        )
    )
    assert "size mismatch" in message and "bochum_000000_000313_leftImg8bit.png" in message
    assert str(bad) in message and "10x10" in message and "32x24" in message

    ids = cityscapes_ids()[0]
    ids[0, 1] = 40002  # labelId 40 does not exist
    write_ids(str(bad), ids)
    message = pipeline_error(
        lambda: collect(
            datasets.load("cityscapes", data_dir=tmp_path, split="val", task="instance")
        )
    )
    assert "40002" in message and str(bad) in message

    os.remove(bad)
    with pytest.raises(FileNotFoundError, match="bochum_000000_000313_leftImg8bit.png"):
        datasets.load("cityscapes", data_dir=tmp_path, split="val", task="instance")
    # The semantic reading does not need the instanceIds files.
    assert len(collect(datasets.load("cityscapes", data_dir=tmp_path, split="val"))) == 2


# ----------------------------------------------------------------------------- folder
def blobs(h, w, spec):
    """An id map with rectangles: spec = [(id, y1, x1, y2, x2), ...] drawn in order."""
    ids = np.zeros((h, w), np.int64)
    for v, y1, x1, y2, x2 in spec:
        ids[y1:y2, x1:x2] = v
    return ids


def make_instance_folder(root, samples, split=None, how="grey8", classes_txt=None):
    """samples: {stem: (ids, class map or None)} -> {stem: image}."""
    rng = np.random.default_rng(len(samples))
    base = os.path.join(root, split) if split else str(root)
    images = {}
    for stem, (ids, class_map) in samples.items():
        images[stem] = random_image(rng, *ids.shape)
        write_rgb(os.path.join(base, "images", f"{stem}.png"), images[stem])
        write_ids(os.path.join(base, "instances", f"{stem}.png"), ids, how)
        if class_map is not None:
            write_json(os.path.join(base, "instances", f"{stem}.json"), class_map)
    if classes_txt is not None:
        with open(os.path.join(root, "classes.txt"), "w") as f:
            f.write("\n".join(classes_txt) + "\n")
    return images


def expected_of(ids, class_of):
    present = sorted(int(v) for v in np.unique(ids) if v != 0)
    return [(ids == v).astype(np.uint8) for v in present], [class_of[v] for v in present]


@pytest.mark.parametrize("how", ["grey8", "palette"])
def test_folder_instances_with_class_names(tmp_path, how):
    a = blobs(20, 30, [(1, 2, 3, 9, 12), (2, 5, 10, 15, 25), (4, 16, 0, 20, 30)])
    b = blobs(16, 18, [(3, 0, 0, 16, 1), (200, 4, 4, 8, 8)])
    samples = {
        # id 7 is listed but absent from the PNG: left out
        "a": (a, {"1": "car", "2": "person", "4": "car", "7": "tree"}),
        "b": (b, {"3": "tree", "200": 1}),  # names and indices may mix with a class list
    }
    images = make_instance_folder(tmp_path, samples, how=how, classes_txt=["person", "car", "tree"])
    ds = datasets.load("folder", data_dir=tmp_path, split="all", task="instance")
    check_spec(ds)
    out = collect(ds)
    check_example(out[0], images["a"], *expected_of(a, {1: 1, 2: 0, 4: 1}))
    check_example(out[1], images["b"], *expected_of(b, {3: 2, 200: 1}))
    np.testing.assert_array_equal(
        out[0][1]["boxes"], [[2, 3, 9, 12], [5, 10, 15, 25], [16, 0, 20, 30]]
    )
    info = datasets.info("folder", data_dir=tmp_path, task="instance")
    assert info.task == "instance" and info.num_classes == 3
    assert info.class_names == ("person", "car", "tree")
    assert info.splits == {"all": 2, "train": 1, "val": 1}
    assert info.palette.shape == (3, 3)
    # The semantic reading of the same folder is unchanged (it needs masks/).
    with pytest.raises(FileNotFoundError, match="masks"):
        datasets.load("folder", data_dir=tmp_path, split="all")


def test_folder_instances_split_folders_16_bit_indices(tmp_path):
    big = blobs(12, 14, [(300, 0, 0, 6, 7), (1000, 6, 7, 12, 14), (65535, 0, 13, 1, 14)])
    small = blobs(12, 14, [(1, 3, 3, 5, 5)])
    train = make_instance_folder(
        tmp_path, {"t0": (big, {"300": 2, "1000": 0, "65535": 1})}, split="train", how="pil16"
    )
    val = make_instance_folder(tmp_path, {"v0": (small, {"1": 2})}, split="val", how="pil16")
    empty = np.zeros((12, 14), np.int64)
    make_instance_folder(tmp_path, {"v1": (empty, {})}, split="val", how="pil16")
    kwargs = dict(data_dir=tmp_path, task="instance", num_classes=3)
    (t,) = collect(datasets.load("folder", split="train", **kwargs))
    check_example(t, train["t0"], *expected_of(big, {300: 2, 1000: 0, 65535: 1}))
    v0, v1 = collect(datasets.load("folder", split="val", **kwargs))
    check_example(v0, val["v0"], *expected_of(small, {1: 2}))
    assert v1[1]["masks"].shape == (0, 12, 14) and v1[1]["boxes"].shape == (0, 4)
    info = datasets.info("folder", **kwargs)
    assert info.splits == {"train": 1, "val": 2} and info.class_names == (
        "class_0",
        "class_1",
        "class_2",
    )
    # Without a class list, the indices of all splits' class maps give the class count.
    assert datasets.info("folder", data_dir=tmp_path, task="instance").num_classes == 3


def test_folder_instances_scanned_names_and_one_class(tmp_path):
    a = blobs(10, 10, [(1, 0, 0, 3, 3), (2, 5, 5, 9, 9)])
    make_instance_folder(tmp_path / "named", {"a": (a, {"1": "zebra", "2": "ant"})})
    (x,) = collect(datasets.load("folder", data_dir=tmp_path / "named", task="instance"))
    np.testing.assert_array_equal(x[1]["classes"], [1, 0])  # sorted: ant 0, zebra 1
    info = datasets.info("folder", data_dir=tmp_path / "named", task="instance")
    assert info.class_names == ("ant", "zebra")

    images = make_instance_folder(tmp_path / "cells", {"c": (a, None)})  # no class maps
    ds = datasets.load("folder", data_dir=tmp_path / "cells", task="instance", class_names=["cell"])
    (x,) = collect(ds)
    check_example(x, images["c"], *expected_of(a, {1: 0, 2: 0}))
    with pytest.raises(DataError, match="no classes found"):
        datasets.load("folder", data_dir=tmp_path / "cells", task="instance")
    with pytest.raises(FileNotFoundError, match=r"c\.json"):
        datasets.load("folder", data_dir=tmp_path / "cells", task="instance", num_classes=2)


def test_folder_instances_size_mismatch_and_missing_class(tmp_path):
    a = blobs(10, 12, [(1, 0, 0, 3, 3), (2, 5, 5, 9, 9)])
    make_instance_folder(tmp_path, {"a": (a, {"1": "x", "2": "y"})})
    png = str(tmp_path / "instances" / "a.png")
    write_ids(png, np.ones((8, 12), np.int64))
    message = pipeline_error(
        lambda: collect(datasets.load("folder", data_dir=tmp_path, task="instance"))
    )
    assert "size mismatch" in message and png in message
    assert str(tmp_path / "images" / "a.png") in message and "12x8" in message

    write_ids(png, blobs(10, 12, [(1, 0, 0, 3, 3), (2, 5, 5, 9, 9), (5, 9, 0, 10, 2)]))
    message = pipeline_error(
        lambda: collect(datasets.load("folder", data_dir=tmp_path, task="instance"))
    )
    assert "[5]" in message and png in message
    assert str(tmp_path / "instances" / "a.json") in message and "no class" in message


@pytest.mark.parametrize(
    "class_map,match",
    [
        ({"1": "car", "2": "boat"}, "unknown class name 'boat'"),
        ({"1": "car", "2": 3}, "class index 3, outside 0..1"),
        ({"0": "car"}, "key '0' is not an instance id"),
        ({"one": "car"}, "key 'one' is not an instance id"),
        ({"1": ["car"]}, "expected a class name"),
        (["car"], "must be a JSON object"),
    ],
)
def test_folder_instances_bad_class_map_names_the_file(tmp_path, class_map, match):
    a = blobs(6, 6, [(1, 0, 0, 3, 3)])
    make_instance_folder(tmp_path, {"a": (a, class_map)}, classes_txt=["car", "person"])
    with pytest.raises(DataError, match=match) as exc:
        datasets.load("folder", data_dir=tmp_path, task="instance")
    assert str(tmp_path / "instances" / "a.json") in str(exc.value)


def test_folder_instances_invalid_json_and_options(tmp_path):
    a = blobs(6, 6, [(1, 0, 0, 3, 3)])
    make_instance_folder(tmp_path, {"a": (a, {"1": 0})}, classes_txt=["car"])
    (tmp_path / "instances" / "a.json").write_text("{1: car")
    with pytest.raises(DataError, match="not valid JSON") as exc:
        datasets.load("folder", data_dir=tmp_path, task="instance")
    assert "a.json" in str(exc.value)
    with pytest.raises(ValueError, match="ignore_index"):
        datasets.load("folder", data_dir=tmp_path, task="instance", ignore_index=0)
    with pytest.raises(ValueError, match="semantic, instance"):
        datasets.load("folder", data_dir=tmp_path, task="detection")
    os.remove(tmp_path / "images" / "a.png")
    write_rgb(str(tmp_path / "images" / "b.jpg"), np.zeros((6, 6, 3), np.uint8))
    with pytest.raises(FileNotFoundError, match=r"b\.jpg"):
        datasets.load("folder", data_dir=tmp_path, task="instance")
