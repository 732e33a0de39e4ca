"""COCO panoptic segmentation (`coco_panoptic`): every pixel a "thing" instance or a "stuff"
region (COCO 2017: 80 thing and 53 stuff categories).

Layout under data_dir (train2017.zip, val2017.zip and panoptic_annotations_trainval2017.zip
with the two zips inside it, extracted):

    annotations/panoptic_{train,val}2017.json
    annotations/panoptic_{train,val}2017/<file_name>   (PNG: segment id = R + 256 G + 256^2 B)
    {train,val}2017/<image file_name>

An example is ``(image uint8 [H,W,3], {"semantic": int32 [H,W], "instance_ids": int32 [H,W]})``:
the class of each pixel (255 where the PNG holds no segment: void), and for a thing segment its
number in the image (1, 2, ... in ``segments_info`` order); stuff, void and crowd regions
(``iscrowd=1``: a thing class, no single instance) have instance 0, which is how
``kerasseg.metrics.PanopticQuality`` reads ``semantic * 1000 + instance_ids``.

Classes: the JSON's "categories" sorted by id are numbered 0..K-1. ``thing_classes(data_dir,
split)`` and ``stuff_classes(...)`` list the indices with ``isthing`` 1 and 0. A segment of an
unknown category, or a PNG id missing from its ``segments_info``, is a `DataError` naming the
file.
"""

import json
import os

import numpy as np
import tensorflow as tf

from kerasseg.datasets import _io
from kerasseg.datasets._registry import DataError, DatasetInfo, register_dataset
from kerasseg.ops.panoptic_ids import read_id_png

SPLITS = ("train", "val")
LAYOUT = (
    "  D/annotations/panoptic_{train,val}2017.json\n"
    "  D/annotations/panoptic_{train,val}2017/*.png\n"
    "  D/{train,val}2017/*.jpg"
)
VOID = 255


def _json_path(data_dir, split):
    return os.path.join(data_dir, "annotations", f"panoptic_{split}2017.json")


def _read_json(data_dir, split):
    path = _json_path(data_dir, split)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"coco_panoptic: {path!r} not found. Expected layout under data_dir:\n{LAYOUT}"
        )
    with open(path, encoding="utf-8") as f:
        return path, json.load(f)


def _categories(record):
    return sorted(record["categories"], key=lambda c: c["id"])


def thing_classes(data_dir, split="val"):
    """Class indices of the thing categories (``isthing`` 1)."""
    cats = _categories(_read_json(data_dir, split)[1])
    return tuple(i for i, c in enumerate(cats) if c.get("isthing", 0))


def stuff_classes(data_dir, split="val"):
    """Class indices of the stuff categories (``isthing`` 0)."""
    cats = _categories(_read_json(data_dir, split)[1])
    return tuple(i for i, c in enumerate(cats) if not c.get("isthing", 0))


def panoptic_targets(ids, segments, index_of, things, path):
    """A PNG's segment ids and its segments_info -> (semantic, instance_ids) int32 maps."""
    semantic = np.full(ids.shape, VOID, np.int32)
    instance_ids = np.zeros(ids.shape, np.int32)
    known = {0}
    number = 0
    for seg in segments:
        if seg["category_id"] not in index_of:
            raise DataError(
                f"coco_panoptic: segment {seg['id']} of {path!r} has category "
                f"{seg['category_id']}, which the JSON's categories do not list"
            )
        where = ids == seg["id"]
        known.add(seg["id"])
        cls = index_of[seg["category_id"]]
        semantic[where] = cls
        if cls in things and not seg.get("iscrowd", 0):
            number += 1
            instance_ids[where] = number
    stray = np.setdiff1d(np.unique(ids), np.fromiter(known, np.int64))
    if stray.size:
        raise DataError(
            f"coco_panoptic: {path!r} holds segment id(s) {stray[:5].tolist()} that its "
            f"segments_info does not list"
        )
    return semantic, instance_ids


def coco_panoptic_info(data_dir=None, split="val", **_):
    names, splits, things = (), {}, ()
    if data_dir is not None and os.path.isfile(_json_path(data_dir, split)):
        cats = _categories(_read_json(data_dir, split)[1])
        names = tuple(c["name"] for c in cats)
        things = tuple(i for i, c in enumerate(cats) if c.get("isthing", 0))
        for s in SPLITS:
            if os.path.isfile(_json_path(data_dir, s)):
                splits[s] = len(_read_json(data_dir, s)[1]["annotations"])
    return DatasetInfo(
        name="coco_panoptic",
        num_classes=len(names) or None,
        class_names=names,
        palette=_io.voc_colormap(len(names) or 256),
        ignore_index=VOID,
        splits=splits,
        task="panoptic",
        thing_classes=things,
        layout=LAYOUT,
        description="COCO 2017 panoptic: thing instances and stuff regions (panopticapi PNGs).",
    )


@register_dataset("coco_panoptic", info=coco_panoptic_info)
def load_coco_panoptic(data_dir, split="train"):
    """The split's images in annotation order (see the module docstring)."""
    _io.check_split("coco_panoptic", split, SPLITS)
    path, record = _read_json(data_dir, split)
    cats = _categories(record)
    index_of = {c["id"]: i for i, c in enumerate(cats)}
    things = {i for i, c in enumerate(cats) if c.get("isthing", 0)}
    images = {im["id"]: im["file_name"] for im in record["images"]}
    png_dir = os.path.join(data_dir, "annotations", f"panoptic_{split}2017")
    image_dir = os.path.join(data_dir, f"{split}2017")
    samples = []
    for ann in record["annotations"]:
        if ann["image_id"] not in images:
            raise DataError(f"coco_panoptic: {path!r} annotates unknown image {ann['image_id']}")
        samples.append(
            (
                os.path.join(image_dir, images[ann["image_id"]]),
                os.path.join(png_dir, ann["file_name"]),
                ann["segments_info"],
            )
        )

    def gen():
        for image_path, png_path, segments in samples:
            image = _io.read_rgb(image_path)
            try:
                ids = read_id_png(png_path)
            except ValueError as error:
                raise DataError(f"coco_panoptic: {error}") from None
            _io.check_same_size(image, ids, image_path, png_path)
            semantic, instance_ids = panoptic_targets(ids, segments, index_of, things, png_path)
            yield image, {"semantic": semantic, "instance_ids": instance_ids}

    signature = (
        tf.TensorSpec((None, None, 3), tf.uint8),
        {
            "semantic": tf.TensorSpec((None, None), tf.int32),
            "instance_ids": tf.TensorSpec((None, None), tf.int32),
        },
    )
    ds = tf.data.Dataset.from_generator(gen, output_signature=signature)
    return ds.apply(tf.data.experimental.assert_cardinality(len(samples)))
