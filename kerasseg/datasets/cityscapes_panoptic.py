"""Cityscapes panoptic targets (``load("cityscapes", task="panoptic")``; the layouts and the
class lists are in ``kerasseg.datasets.cityscapes``).

Two sources give the same examples: the official gtFine labelIds + instanceIds PNGs, and the
JSON + id PNGs that cityscapesScripts' ``createPanopticImgs`` writes.
"""

import json
import os

import numpy as np
import tensorflow as tf

from kerasseg.datasets import _io, folder_instances
from kerasseg.datasets._registry import DataError
from kerasseg.datasets.cityscapes import (
    CLASS_NAMES,
    LABEL_LUT,
    LICENSE_PLATE,
    PANOPTIC_LAYOUT,
    SOURCES,
    THING_CLASSES,
    THING_LUT,
    TRAIN_IDS,
    label_items,
)
from kerasseg.ops.panoptic_ids import read_id_png


def _panoptic_lut():
    """labelId -> trainId for the category ids of the panoptic JSON (255: ignored class)."""
    lut = {label_id: 255 for label_id in range(-1, 34)}
    lut.update(TRAIN_IDS)
    return lut


_PANOPTIC_LUT = _panoptic_lut()
_THINGS = frozenset(THING_CLASSES)


def _instance_numbers(ids, keep):
    """int32 map: 1, 2, ... by increasing id where `keep`, 0 elsewhere."""
    numbers = np.zeros(ids.shape, np.int32)
    present = np.unique(ids[keep])
    if present.size:
        numbers[keep] = np.searchsorted(present, ids[keep]) + 1
    return numbers


def decode_panoptic(image_path, label_path, ids_path):
    """(image, semantic, instance_ids) of one official labelIds + instanceIds pair."""
    image = _io.read_rgb(image_path)
    label_ids = _io.read_label(label_path)
    ids = _io.read_label(ids_path).astype(np.int64)
    _io.check_same_size(image, label_ids, image_path, label_path)
    folder_instances.check_same_size(image, ids, image_path, ids_path)
    semantic = _io.apply_lut(
        label_ids, LABEL_LUT, label_path, "Cityscapes labelIds 0..33 (and 255 for -1)"
    )
    objects = (ids >= 1000) & (ids != LICENSE_PLATE)
    label_of = ids // 1000
    if objects.any() and label_of[objects].max() >= len(THING_LUT):
        bad = np.unique(ids[objects & (label_of >= len(THING_LUT))])
        raise DataError(
            f"instance id(s) {bad[:8].tolist()} in {ids_path!r} are not Cityscapes instanceIds "
            f"(labelId * 1000 + instance, labelId 0..33)"
        )
    disagree = objects & (label_ids.astype(np.int64) != label_of)
    if disagree.any():
        y, x = np.argwhere(disagree)[0]
        raise DataError(
            f"cityscapes: {ids_path!r} and {label_path!r} disagree: pixel (row {y}, column {x}) "
            f"is instance {int(ids[y, x])} (labelId {int(label_of[y, x])}) but has labelId "
            f"{int(label_ids[y, x])}"
        )
    # Evaluated things only: caravan and trailer instances are void (trainId 255).
    keep = objects & (THING_LUT[np.where(objects, label_of, 0)] >= 0)
    return image, semantic.astype(np.int32), _instance_numbers(ids, keep)


def decode_panoptic_png(image_path, png_path, segments, train_ids=False):
    """(image, semantic, instance_ids) of one createPanopticImgs PNG and its segments_info
    (checked by `load`: each segment has ``"train_id"`` added)."""
    image = _io.read_rgb(image_path)
    try:
        ids = read_id_png(png_path).astype(np.int64)
    except ValueError as error:
        raise DataError(f"cityscapes: {error}") from None
    folder_instances.check_same_size(image, ids, image_path, png_path)
    semantic = np.full(ids.shape, 255, np.int32)
    keep = np.zeros(ids.shape, bool)
    known = [0]
    for seg in segments:
        where = ids == seg["id"]
        known.append(seg["id"])
        semantic[where] = seg["train_id"]
        if seg["train_id"] in _THINGS and not seg.get("iscrowd", 0):
            keep |= where
    stray = np.setdiff1d(np.unique(ids), np.asarray(known, np.int64))
    if stray.size:
        raise DataError(
            f"cityscapes: {png_path!r} holds segment id(s) {stray[:5].tolist()} that its "
            f"segments_info does not list"
        )
    return image, semantic, _instance_numbers(ids, keep)


def _panoptic_files(root, split):
    """(json path, PNG folder, category ids are trainIds) of the panoptic form, or None."""
    gt = os.path.join(root, "gtFine")
    for suffix, train_ids in (("", False), ("_trainId", True)):
        path = os.path.join(gt, f"cityscapes_panoptic_{split}{suffix}.json")
        if os.path.isfile(path):
            return path, os.path.join(gt, f"cityscapes_panoptic_{split}{suffix}"), train_ids
    return None


def _panoptic_items(root, split):
    """[(image path, PNG path)] and {PNG path: segments} of the panoptic form, by image path."""
    found = _panoptic_files(root, split)
    if found is None:
        path = os.path.join(root, "gtFine", f"cityscapes_panoptic_{split}.json")
        raise FileNotFoundError(
            f"cityscapes: panoptic annotations {path!r} not found (run cityscapesScripts' "
            f"createPanopticImgs, or pass source='labels'). Expected layout:\n{PANOPTIC_LAYOUT}"
        )
    json_path, png_dir, train_ids = found
    _io.require_dir(png_dir, "cityscapes", PANOPTIC_LAYOUT)
    image_root = _io.require_dir(
        os.path.join(root, "leftImg8bit", split), "cityscapes", PANOPTIC_LAYOUT
    )
    try:
        with open(json_path, encoding="utf-8") as f:
            record = json.load(f)
        categories = {c["id"]: c for c in record["categories"]}
        images = {im["id"]: im["file_name"] for im in record["images"]}
        annotations = record["annotations"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise DataError(
            f"cityscapes: cannot read {json_path!r} as COCO panoptic JSON (images, annotations, "
            f"categories): {error!r}"
        ) from None
    on_disk = {}
    for city in sorted(os.listdir(image_root)):
        if os.path.isdir(os.path.join(image_root, city)):
            for name in sorted(os.listdir(os.path.join(image_root, city))):
                on_disk.setdefault(name, os.path.join(image_root, city, name))
    items, segments = [], {}
    for number, ann in enumerate(annotations):
        try:
            if ann["image_id"] not in images:
                raise DataError(
                    f"cityscapes: {json_path!r} annotates unknown image {ann['image_id']}"
                )
            name = images[ann["image_id"]]
            if name not in on_disk:
                city = name.split("_")[0]
                raise FileNotFoundError(
                    f"cityscapes: image {os.path.join(image_root, city, name)!r} of {json_path!r} "
                    f"not found"
                )
            png = os.path.join(png_dir, ann["file_name"])
            if not os.path.isfile(png):
                raise FileNotFoundError(
                    f"cityscapes: panoptic PNG {png!r} of {json_path!r} not found"
                )
            checked = []
            for seg in ann["segments_info"]:
                category = seg["category_id"]
                if category not in categories:
                    raise DataError(
                        f"cityscapes: segment {seg['id']} of {ann['file_name']!r} in {json_path!r} "
                        f"has category {category}, which the JSON's categories do not list"
                    )
                if train_ids:
                    train_id = category if 0 <= category < len(CLASS_NAMES) else 255
                elif category in _PANOPTIC_LUT:
                    train_id = _PANOPTIC_LUT[category]
                else:
                    raise DataError(
                        f"cityscapes: segment {seg['id']} of {ann['file_name']!r} in {json_path!r} "
                        f"has category {category}, not a Cityscapes labelId (-1..33)"
                    )
                checked.append(dict(seg, id=int(seg["id"]), train_id=train_id))
            items.append((on_disk[name], png))
            segments[png] = checked
        except (KeyError, TypeError) as error:
            raise DataError(
                f"cityscapes: annotation {number} of {json_path!r} is malformed (missing or "
                f"wrong field {error}); expected image_id, file_name and segments_info of "
                f"{{id, category_id, iscrowd}}"
            ) from None
    items.sort()
    return items, segments


def panoptic_dataset(items, decode, shuffle_files=False, seed=None):
    """tf.data of ``(image, {"semantic", "instance_ids"})`` over `items` (path tuples, the image
    first); ``decode(*item) -> (image, semantic, instance_ids)`` runs in Python, so its errors
    keep their file names. Carries `kerasseg_files` (no decoder: the label is not one map)."""
    items = [tuple(os.fspath(p) for p in item) for item in items]

    def _py(i):
        image, semantic, instance_ids = decode(*items[int(i)])
        return (
            np.ascontiguousarray(image, np.uint8),
            np.ascontiguousarray(semantic, np.int32),
            np.ascontiguousarray(instance_ids, np.int32),
        )

    def _map(i):
        image, semantic, instance_ids = tf.numpy_function(
            _py, [i], (tf.uint8, tf.int32, tf.int32), stateful=False
        )
        image.set_shape((None, None, 3))
        semantic.set_shape((None, None))
        instance_ids.set_shape((None, None))
        return image, {"semantic": semantic, "instance_ids": instance_ids}

    ds = tf.data.Dataset.range(len(items))
    if shuffle_files:
        ds = ds.shuffle(len(items), seed=seed, reshuffle_each_iteration=True)
    out = ds.map(_map, num_parallel_calls=tf.data.AUTOTUNE)
    out.kerasseg_files = items
    out.kerasseg_decode = None
    return out


def load_panoptic(root, split, source, shuffle_files, seed):
    if source is None:
        source = "panoptic" if _panoptic_files(root, split) is not None else "labels"
    if source not in SOURCES:
        raise ValueError(
            f"cityscapes: unknown source {source!r}; valid sources: {', '.join(SOURCES)} "
            f"(None: the panoptic JSON when present, else the labels)"
        )
    if source == "labels":
        items = label_items(
            root, split, ("_gtFine_labelIds", "_gtFine_instanceIds"), PANOPTIC_LAYOUT
        )
        return panoptic_dataset(items, decode_panoptic, shuffle_files=shuffle_files, seed=seed)
    items, segments = _panoptic_items(root, split)
    if not items:
        raise FileNotFoundError(
            f"cityscapes: {_panoptic_files(root, split)[0]!r} annotates no images. Expected "
            f"layout:\n{PANOPTIC_LAYOUT}"
        )

    def decode(image_path, png_path):
        return decode_panoptic_png(image_path, png_path, segments[png_path])

    return panoptic_dataset(items, decode, shuffle_files=shuffle_files, seed=seed)
