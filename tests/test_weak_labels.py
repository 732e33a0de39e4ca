"""Weak labels as data: the readers on fixtures in the published formats, `simulate`, GrabCut
boxes, superpixel propagation and boxes kept aligned by `prepare`."""

import json

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kerasseg import data, weak
from kerasseg.datasets import shapes


@pytest.fixture(scope="module")
def sample():
    images, masks = shapes.generate("train", seed=3, num_images=3)
    return images, masks


# --------------------------------------------------------------------------- readers

SCRIBBLE_XML = """<?xml version="1.0"?>
<annotation>
  <filename>2007_000032.jpg</filename>
  <size><width>40</width><height>30</height></size>
  <polygon>
    <tag>background</tag>
    <point><X>2</X><Y>3</Y></point>
    <point><X>30</X><Y>3</Y></point>
  </polygon>
  <polygon>
    <tag>dog</tag>
    <point><X>10</X><Y>20</Y></point>
    <point><X>10</X><Y>26</Y></point>
    <point><X>20</X><Y>26</Y></point>
  </polygon>
</annotation>
"""


def test_scribble_xml_is_rasterised_with_line_width_3(tmp_path):
    path = tmp_path / "2007_000032.xml"
    path.write_text(SCRIBBLE_XML)
    labels = weak.read_scribble_xml(str(path))
    expected = np.full((30, 40), 255, np.int32)
    cv2.polylines(expected, [np.array([[2, 3], [30, 3]], np.int32)], False, 0, 3)
    cv2.polylines(expected, [np.array([[10, 20], [10, 26], [20, 26]], np.int32)], False, 12, 3)
    np.testing.assert_array_equal(labels, expected)
    assert labels.shape == (30, 40) and labels[3, 16] == 0 and labels[23, 10] == 12
    assert labels[0, 16] == labels[6, 16] == 255  # a thin stroke, not a band
    assert set(np.unique(labels)) == {0, 12, 255}


def test_scribble_xml_with_an_unknown_class_names_it(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text(SCRIBBLE_XML.replace("<tag>dog</tag>", "<tag>dragon</tag>"))
    with pytest.raises(ValueError, match=r"bad\.xml.*'dragon'.*aeroplane"):
        weak.read_scribble_xml(str(path))
    with pytest.raises(FileNotFoundError, match="missing.xml"):
        weak.read_scribble_xml(str(tmp_path / "missing.xml"))


def test_scribble_png_reads_palette_indices(tmp_path):
    labels = np.full((6, 7), 255, np.uint8)
    labels[1, 1:5] = 3
    labels[4, 2] = 0
    img = Image.fromarray(labels, mode="P")
    img.putpalette([(i * 37) % 256 for i in range(768)])
    img.save(tmp_path / "s.png")
    read = weak.read_scribble_png(str(tmp_path / "s.png"), num_classes=21)
    np.testing.assert_array_equal(read, labels.astype(np.int32))
    with pytest.raises(ValueError, match=r"s\.png.*value 3.*\[0, 3\)"):
        weak.read_scribble_png(str(tmp_path / "s.png"), num_classes=3)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(ValueError, match="rgb.png.*RGB"):
        weak.read_scribble_png(str(tmp_path / "rgb.png"))


def test_points_json_in_bearman_format(tmp_path):
    content = {
        "2008_000002": [
            {"x": 4, "y": 2, "cls": 5, "rank": 1},
            {"x": 0, "y": 7, "cls": 15, "rank": 2},
        ],
        "2008_000003": [],
    }
    path = tmp_path / "points.json"
    path.write_text(json.dumps(content))
    points = weak.read_points_json(str(path))
    assert points == {"2008_000002": [(2.0, 4.0, 5, 1), (7.0, 0.0, 15, 2)], "2008_000003": []}
    labels = weak.points_map(points["2008_000002"], (8, 6))
    expected = np.full((8, 6), 255, np.int32)
    expected[2, 4], expected[7, 0] = 5, 15
    np.testing.assert_array_equal(labels, expected)
    first_rank = weak.points_map(points["2008_000002"], (8, 6), max_rank=1)
    assert (first_rank != 255).sum() == 1
    with pytest.raises(ValueError, match="outside the 3x3 image"):
        weak.points_map(points["2008_000002"], (3, 3))
    path.write_text(json.dumps({"a": [{"x": 1}]}))
    with pytest.raises(ValueError, match="points.json.*'a'.*lacks"):
        weak.read_points_json(str(path))


VOC_XML = """<annotation>
  <size><width>50</width><height>40</height><depth>3</depth></size>
  <object><name>dog</name><difficult>0</difficult>
    <bndbox><xmin>5</xmin><ymin>10</ymin><xmax>20</xmax><ymax>30</ymax></bndbox></object>
  <object><name>person</name><difficult>1</difficult>
    <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>50</xmax><ymax>40</ymax></bndbox></object>
</annotation>
"""


def test_voc_boxes(tmp_path):
    path = tmp_path / "2007_000032.xml"
    path.write_text(VOC_XML)
    boxes, classes = weak.read_voc_boxes(str(path))
    np.testing.assert_array_equal(boxes, [[9, 4, 30, 20], [0, 0, 40, 50]])
    np.testing.assert_array_equal(classes, [12, 15])
    boxes, classes = weak.read_voc_boxes(str(path), skip_difficult=True)
    assert boxes.shape == (1, 4) and classes.tolist() == [12]


def test_coco_boxes(tmp_path):
    coco = {
        "images": [{"id": 7, "file_name": "a.jpg", "width": 30, "height": 20}],
        "categories": [{"id": 3, "name": "car"}, {"id": 1, "name": "person"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 7,
                "category_id": 3,
                "bbox": [2, 4, 10, 6],
                "area": 60,
                "iscrowd": 0,
                "segmentation": [[2, 4, 12, 4, 12, 10]],
            },
            {
                "id": 2,
                "image_id": 7,
                "category_id": 1,
                "bbox": [0, 0, 5, 5],
                "area": 25,
                "iscrowd": 1,
                "segmentation": {"counts": [0, 25], "size": [20, 30]},
            },
        ],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(coco))
    boxes, names = weak.read_coco_boxes(str(path))
    assert names == ["background", "person", "car"]
    np.testing.assert_array_equal(boxes["a.jpg"][0], [[4, 2, 10, 12]])
    np.testing.assert_array_equal(boxes["a.jpg"][1], [2])


# --------------------------------------------------------------------------- simulate


@pytest.mark.parametrize("kind", ["scribbles", "points"])
def test_sparse_labels_are_seeded_and_inside_the_true_masks(sample, kind):
    _, masks = sample
    a = weak.simulate(masks, kind, seed=5)
    b = weak.simulate(masks, kind, seed=5)
    for labels, again, mask in zip(a, b, masks):
        np.testing.assert_array_equal(labels, again)
        drawn = labels != 255
        assert drawn.any()
        np.testing.assert_array_equal(labels[drawn], mask[drawn])  # every label is true
        # every object (connected component of a class) gets at least one labelled pixel
        for _, region in weak.components(mask):
            assert drawn[region].any()
    if kind == "points":
        c = weak.simulate(masks, kind, seed=6)
        assert any((x != y).any() for x, y in zip(a, c))
        # one point (radius 1: at most a 3x3 disc) per object
        n_objects = len(weak.components(masks[0]))
        assert (a[0] != 255).sum() <= 9 * n_objects


def test_partial_scribbles_are_seeded_runs_of_the_skeleton(sample):
    _, masks = sample
    full = weak.simulate(masks[0], "scribbles", seed=1)
    part = weak.simulate(masks[0], "scribbles", seed=1, fraction=0.3)
    np.testing.assert_array_equal(part, weak.simulate(masks[0], "scribbles", seed=1, fraction=0.3))
    assert 0 < (part != 255).sum() < (full != 255).sum()
    assert np.all(part[part != 255] == masks[0][part != 255])


def test_boxes_and_image_labels(sample):
    _, masks = sample
    mask = masks[0]
    boxes, classes = weak.simulate(mask, "boxes")
    assert len(boxes) == len(weak.components(mask, skip=(0,)))
    for box, cls in zip(boxes.astype(int), classes):
        y1, x1, y2, x2 = box
        inside = mask[y1:y2, x1:x2] == cls
        # tight: the class touches all four sides of its box
        assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
    jittered = weak.simulate(mask, "boxes", seed=2, jitter=0.1)
    np.testing.assert_array_equal(jittered[0], weak.simulate(mask, "boxes", seed=2, jitter=0.1)[0])
    tags = weak.simulate(mask, "image", num_classes=4)
    np.testing.assert_array_equal(tags, [int(c in mask) for c in range(4)])
    with pytest.raises(ValueError, match="num_classes"):
        weak.simulate(mask, "image")
    with pytest.raises(ValueError, match="mask value 3 is outside \\[0, 2\\)"):
        weak.simulate(np.full((4, 4), 3), "image", num_classes=2)
    with pytest.raises(ValueError, match="unknown kind 'lines'.*scribbles, points, boxes, image"):
        weak.simulate(mask, "lines")


# --------------------------------------------------------------------------- GrabCut, superpixels


def test_grabcut_masks_lie_inside_their_boxes(sample):
    images, masks = sample
    for image, mask in zip(images, masks):
        boxes, classes = weak.simulate(mask, "boxes")
        labels = weak.grabcut(image, boxes, classes)
        np.testing.assert_array_equal(labels, weak.grabcut(image, boxes, classes))  # seeded
        in_any = np.zeros(mask.shape, bool)
        for y1, x1, y2, x2 in boxes.astype(int):
            in_any[y1:y2, x1:x2] = True
        assert np.all(labels[~in_any] == 0)  # outside every box: background
        for cls in np.unique(classes):
            owned = np.zeros(mask.shape, bool)
            for box, c in zip(boxes.astype(int), classes):
                if c == cls:
                    owned[box[0] : box[2], box[1] : box[3]] = True
            assert np.all(owned[labels == cls])  # a class only inside its own boxes
        assert set(np.unique(labels)) <= {0, 255, *classes.tolist()}


def test_grabcut_falls_back_inside_a_degenerate_box():
    image = np.zeros((20, 20, 3), np.uint8)
    labels = weak.grabcut(image, [[0, 0, 20, 20], [5, 5, 7, 7]], [1, 2])
    assert set(np.unique(labels)) <= {1, 2, 255}
    assert np.all(np.argwhere(labels == 2).min(0) >= 5) and np.all(
        np.argwhere(labels == 2).max(0) < 7
    )
    with pytest.raises(ValueError, match="2 boxes but 1 classes"):
        weak.grabcut(image, [[0, 0, 5, 5], [1, 1, 4, 4]], [1])


@pytest.mark.parametrize("method", ["slic", "felzenszwalb"])
def test_superpixel_propagation_keeps_labels_and_fills_whole_superpixels(sample, method):
    images, masks = sample
    labels = weak.simulate(masks[0], "points", seed=0)
    dense = weak.propagate(images[0], labels, method)
    known = labels != 255
    np.testing.assert_array_equal(dense[known], labels[known])
    assert (dense != 255).sum() > known.sum()
    segments = weak.superpixels(images[0], method)
    for sp in np.unique(segments[dense != 255]):
        region = segments == sp
        values = np.unique(dense[region])
        if not np.isin(values, [255]).any():
            continue
        # a superpixel is either filled with one class or left with only its own labels
        assert len(values) == 1 or np.all(dense[region & ~known] == 255)
    with pytest.raises(ValueError, match="unknown method 'watershed'.*slic, felzenszwalb"):
        weak.propagate(images[0], labels, "watershed")


# --------------------------------------------------------------------------- prepare


def test_prepare_keeps_boxes_aligned_with_the_image():
    image = np.zeros((40, 60, 3), np.uint8)
    image[10:20, 5:25] = 255
    target = weak.box_target([[10, 5, 20, 25]], [2], image.shape)
    ds = tf.data.Dataset.from_tensors((image, target))
    for seed in range(3):
        batch = data.prepare(
            ds,
            batch_size=1,
            crop_size=32,
            training=True,
            seed=seed,
            photometric=False,
            scale_range=(0.8, 1.2),
        )
        images, out = next(iter(batch))
        boxes, classes = out["boxes"][0].numpy(), out["classes"][0].numpy()
        assert classes[0] == 2
        y1, x1, y2, x2 = boxes[0].astype(int)
        white = images[0, ..., 0].numpy() > 127
        # the box is the tight box of the (white) object after the same crop, scale and flip
        rows, cols = np.nonzero(white.any(1))[0], np.nonzero(white.any(0))[0]
        assert abs(rows[0] - y1) <= 1 and abs(rows[-1] + 1 - y2) <= 1
        assert abs(cols[0] - x1) <= 1 and abs(cols[-1] + 1 - x2) <= 1


def test_prepare_keeps_sparse_labels_and_image_tags():
    image = np.zeros((32, 32, 3), np.uint8)
    labels = np.full((32, 32), 255, np.int32)
    labels[3, 4] = 1
    labels[20:23, 10:13] = 2
    image[labels == 2] = 200
    sparse = data.prepare(
        tf.data.Dataset.from_tensors((image, labels)),
        batch_size=1,
        crop_size=32,
        training=True,
        seed=1,
        scale_range=None,
        photometric=False,
    )
    img, lab = next(iter(sparse))
    np.testing.assert_array_equal(lab[0].numpy() == 2, img[0, ..., 0].numpy() == 200)
    tags = np.array([1, 0, 1, 0], np.int32)
    tagged = data.prepare(
        tf.data.Dataset.from_tensors((image, tags)),
        batch_size=1,
        crop_size=16,
        training=True,
        seed=1,
    )
    np.testing.assert_array_equal(next(iter(tagged))[1][0].numpy(), tags)


def test_random_walker_propagation_fills_uniform_regions_from_their_seeds():
    image = np.zeros((24, 30, 3), np.uint8)
    image[:, 15:] = (200, 180, 20)
    labels = np.full((24, 30), 255, np.int32)
    labels[10:12, 3:6] = 0
    labels[5, 20] = 3
    dense = weak.propagate(image, labels, "random_walker")
    assert dense.dtype == np.int32
    np.testing.assert_array_equal(dense, np.where(np.arange(30) < 15, 0, 3)[None].repeat(24, 0))
    # a pixel whose walk is a toss-up stays unlabelled; a single class is returned as it is
    ramp = np.zeros_like(image)
    ramp[..., 0] = np.linspace(0, 255, 30).astype(np.uint8)[None]  # no edge to stop at
    flat = weak.propagate(ramp, labels, "random_walker", min_confidence=0.99)
    assert 255 in flat and np.all(flat[labels != 255] == labels[labels != 255])
    one = np.where(labels == 3, 255, labels)
    np.testing.assert_array_equal(weak.propagate(image, one, "random_walker"), one)
