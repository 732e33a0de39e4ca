"""`folder` with ``task="instance"``: your own instance-segmentation data as files.

Layouts (the first that exists wins; splits work as for masks, see `kerasseg.datasets.folder`):

    D/<split>/images/<stem>.jpg|png|...   D/<split>/instances/<stem>.png + <stem>.json
    D/images/<stem>.*                     D/instances/<stem>.png + <stem>.json   (one pool)

``instances/<stem>.png`` is a single-channel PNG of instance ids (8- or 16-bit grey, or palette
indices) at the image's size: 0 is background, every other value 1..n is one object. Next to it,
``instances/<stem>.json`` maps each instance id to its class, by name or by index::

    {"1": "car", "2": "person", "3": 0}

Class names and their order (class i = the i-th name) come from `class_names=`, else from
``D/classes.txt`` (one per line), else `num_classes=` (the JSON then gives indices 0..K-1; names
class_0...); else every class map of the set (all splits) is read: names become the classes in
sorted order, indices give K = largest + 1. A one-class set may leave the JSON files out (every
instance is class 0). With `mask_suffix`, the files are ``<stem><suffix>.png`` and ``.json``.

    ds = kerasseg.datasets.load("folder", data_dir="~/mine", split="train", task="instance")

An example is ``(image uint8 [H,W,3], {"boxes": float32 [M,4], "classes": int32 [M],
"masks": uint8 [M,H,W]})``: one 0/1 mask per instance id present in the PNG, in increasing id
order, with its tight box ``(y1, x1, y2, x2)`` in pixels (``y2``/``x2`` one past the last
row/column). M varies per image (None in the element spec) and may be 0. Ids the JSON lists but
the PNG does not hold are left out.

The class maps are read when the split is loaded: invalid JSON, an id that is not a whole
number >= 1, an unknown class name or an index outside 0..K-1 fail at `load` with a `DataError`
naming the JSON file. An instance PNG of another size than its image, or holding an id its JSON
gives no class, fails when decoded (inside the pipeline) with a `DataError` naming the files.
"""

import json
import os

import numpy as np
import tensorflow as tf

from kerasseg.datasets import _io, folder
from kerasseg.datasets._registry import DataError, DatasetInfo
from kerasseg.datasets.shapes_instances import masks_to_boxes

TASKS = ("semantic", "instance")
_TASK_ALIASES = {None: "semantic", "segmentation": "semantic"}
INSTANCE_FOLDER = "instances"
LAYOUT = (
    "  D/images/<stem>.<jpg|png|...>, D/instances/<stem>.png (instance ids, 0 = background)\n"
    "  and D/instances/<stem>.json ({instance id: class name or index})\n"
    "  or D/<split>/images/... and D/<split>/instances/... (one folder per split)"
)


def is_instance_task(dataset, task):
    """Whether `task` ("semantic", the default, or "instance") asks for instance targets; any
    other value is a ValueError listing the tasks `dataset` supports."""
    task = _TASK_ALIASES.get(task, task)
    if task not in TASKS:
        raise ValueError(f"{dataset}: unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    return task == "instance"


# ----------------------------------------------------------------------------- shared pipeline
def masks_of_ids(ids, instance_ids):
    """uint8 [M,H,W] 0/1 masks: mask i is where the id map `ids` equals `instance_ids[i]`."""
    instance_ids = np.asarray(instance_ids).reshape(-1)
    return (np.asarray(ids)[None] == instance_ids[:, None, None]).astype(np.uint8)


def check_same_size(image, ids, image_path, ids_path):
    if image.shape[:2] != ids.shape[:2]:
        raise DataError(
            f"image/instance map size mismatch: {image_path!r} is {image.shape[1]}x"
            f"{image.shape[0]} but {ids_path!r} is {ids.shape[1]}x{ids.shape[0]} (width x height)"
        )


def instance_dataset(items, decode, shuffle_files=False, seed=None):
    """tf.data of ``(image, {"boxes", "classes", "masks"})`` over `items` (path tuples, the image
    first and the instance map last); ``decode(*item) -> (image uint8 [H,W,3], masks uint8
    [M,H,W], classes int32 [M])`` runs in Python, so its errors keep their file names; boxes are
    the masks' tight boxes. The dataset carries `kerasseg_files` (the tuples) for
    `_registry.files_of`; its decoder is not exposed there (it does not return a label map)."""
    items = [tuple(os.fspath(p) for p in item) for item in items]
    if not items:
        raise ValueError("no samples found")

    def _py(i):
        image, masks, classes = decode(*items[int(i)])
        masks = np.ascontiguousarray(masks, np.uint8).reshape(-1, *image.shape[:2])
        classes = np.asarray(classes, np.int32).reshape(-1)
        return np.ascontiguousarray(image, np.uint8), masks_to_boxes(masks), classes, masks

    def _map(i):
        out = tf.numpy_function(
            _py, [i], (tf.uint8, tf.float32, tf.int32, tf.uint8), stateful=False
        )
        image, boxes, classes, masks = out
        image.set_shape((None, None, 3))
        boxes.set_shape((None, 4))
        classes.set_shape((None,))
        masks.set_shape((None, None, None))
        return image, {"boxes": boxes, "classes": classes, "masks": masks}

    ds = tf.data.Dataset.range(len(items))
    if shuffle_files:
        ds = ds.shuffle(len(items), seed=seed, reshuffle_each_iteration=True)
    out = ds.map(_map, num_parallel_calls=tf.data.AUTOTUNE)
    out.kerasseg_files = items
    out.kerasseg_decode = None
    return out


# ----------------------------------------------------------------------------- class maps
def class_map_path(ids_path):
    """The class-map JSON that goes with the instance PNG `ids_path`."""
    return os.path.splitext(ids_path)[0] + ".json"


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read class map {path!r}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise DataError(
            f"class map {path!r} must be a JSON object {{instance id: class name or index}}, "
            f"got {type(data).__name__}"
        )
    out = {}
    for key, value in data.items():
        text = str(key).strip()
        if not text.isdigit() or int(text) < 1:
            raise DataError(
                f"class map {path!r}: key {key!r} is not an instance id (a whole number >= 1; "
                f"0 is background)"
            )
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise DataError(
                f"class map {path!r}: instance {key} has class {value!r}; expected a class name "
                f"(string) or index (integer)"
            )
        if int(text) in out:
            raise DataError(f"class map {path!r}: instance id {int(text)} appears twice")
        out[int(text)] = value
    return out


def _class_index(raw, names, path):
    """{instance id: class index} of one JSON's raw entries, checked against the class list."""
    lookup = {name: i for i, name in enumerate(names)}
    out = {}
    for instance_id, value in raw.items():
        if isinstance(value, str):
            if value not in lookup:
                shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
                raise DataError(
                    f"class map {path!r}: instance {instance_id} has unknown class name "
                    f"{value!r}; the classes are: {shown}"
                )
            out[instance_id] = lookup[value]
        elif 0 <= value < len(names):
            out[instance_id] = value
        else:
            raise DataError(
                f"class map {path!r}: instance {instance_id} has class index {value}, outside "
                f"0..{len(names) - 1}"
            )
    return out


def _all_class_maps(data_dir, mask_suffix):
    roots = [os.path.join(data_dir, s) for s in folder.split_folders(data_dir)] or [data_dir]
    files = []
    for root in roots:
        found = os.path.join(root, INSTANCE_FOLDER)
        if os.path.isdir(found):
            for png in _io.list_images(found, (".png",), suffix=mask_suffix).values():
                if os.path.isfile(class_map_path(png)):
                    files.append(class_map_path(png))
    return sorted(files)


def _scan_classes(data_dir, mask_suffix):
    values, where = set(), {}
    for path in _all_class_maps(data_dir, mask_suffix):
        for instance_id, value in _read_json(path).items():
            if isinstance(value, int) and value < 0:
                raise DataError(
                    f"class map {path!r}: instance {instance_id} has negative class index {value}"
                )
            values.add(value)
            where.setdefault(type(value), path)
    names = sorted(v for v in values if isinstance(v, str))
    indices = [v for v in values if isinstance(v, int)]
    if names and indices:
        raise DataError(
            f"folder: the class maps mix class names ({where[str]!r}) and indices "
            f"({where[int]!r}); give the class list with class_names= or {data_dir}/classes.txt"
        )
    if names:
        return tuple(names)
    if indices:
        return tuple(f"class_{i}" for i in range(max(indices) + 1))
    return None


def resolve_classes(data_dir, num_classes=None, class_names=None, mask_suffix=""):
    """The class names (class i = entry i), or None when nothing says them."""
    names = folder._class_names(data_dir, num_classes, class_names)
    if names is None and data_dir is not None and os.path.isdir(data_dir):
        names = _scan_classes(data_dir, mask_suffix)
    return names


def instance_info(data_dir=None, num_classes=None, class_names=None, mask_suffix=""):
    names = resolve_classes(data_dir, num_classes, class_names, mask_suffix)
    k = None if names is None else len(names)
    return DatasetInfo(
        name="folder",
        num_classes=k,
        class_names=names or (),
        palette=_io.voc_colormap((k or 255) + 1)[1:],
        ignore_index=255,
        splits=folder.split_sizes(data_dir),
        task="instance",
        layout=LAYOUT,
        description="Images, instance-id PNGs and per-image class maps from a folder.",
    )


# ----------------------------------------------------------------------------- loading
def load_instances(
    data_dir,
    split="train",
    num_classes=None,
    class_names=None,
    mask_suffix="",
    val_fraction=None,
    shuffle_files=False,
    seed=None,
):
    """`load("folder", task="instance", ...)`: see the module docstring."""
    pairs = folder._pairs(
        data_dir, split, mask_suffix, val_fraction, INSTANCE_FOLDER, (".png",), LAYOUT
    )
    names = resolve_classes(data_dir, num_classes, class_names, mask_suffix)
    if names is None:
        raise DataError(
            f"folder: no classes found for the instances in {data_dir!r}: add class maps "
            f"instances/<stem>.json, or give class_names= or {data_dir}/classes.txt"
        )
    classes = {}  # instance PNG -> ({instance id: class index} or None for a one-class set, json)
    for _, ids_path in pairs:
        path = class_map_path(ids_path)
        if os.path.isfile(path):
            classes[ids_path] = (_class_index(_read_json(path), names, path), path)
        elif len(names) == 1:
            classes[ids_path] = (None, path)
        else:
            raise FileNotFoundError(
                f"folder: class map {path!r} not found: each instance PNG needs a JSON "
                f"{{instance id: class}} next to it ({len(names)} classes)"
            )

    def decode(image_path, ids_path):
        image = _io.read_rgb(image_path)
        ids = _io.read_label(ids_path)
        check_same_size(image, ids, image_path, ids_path)
        present = np.unique(ids)
        present = present[present != 0]
        mapping, json_path = classes[ids_path]
        if mapping is None:
            labels = np.zeros(len(present), np.int32)
        else:
            missing = [int(i) for i in present if int(i) not in mapping]
            if missing:
                raise DataError(
                    f"instance id(s) {missing[:8]} in {ids_path!r} have no class in {json_path!r}"
                )
            labels = np.asarray([mapping[int(i)] for i in present], np.int32)
        return image, masks_of_ids(ids, present), labels

    return instance_dataset(pairs, decode, shuffle_files=shuffle_files, seed=seed)
