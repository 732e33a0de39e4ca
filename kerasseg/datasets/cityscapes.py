"""Cityscapes fine annotations (`cityscapes`), evaluated on the 19 trainIds.

Layout under data_dir (how gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip extract; a
`cityscapes/` folder holding both is also accepted):

    leftImg8bit/{train,val,test}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    gtFine/{train,val,test}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png

The labelIds (0..33; -1 for the license plate) are mapped to trainIds with the official table of
cityscapesScripts (labels.py); every id without a trainId becomes 255. The test split's public
labels carry no ground truth.

Instances (``task="instance"``) come from the ``*_gtFine_instanceIds.png`` files next to the
labelIds (same folders):

    gtFine/{train,val,test}/<city>/<city>_<seq>_<frame>_gtFine_instanceIds.png

Their 16-bit values are labelId * 1000 + instance number for single objects of a class with
instances, and the plain labelId (< 1000) for stuff and for groups of objects without instance
ids (crowd regions), which are left out. The 8 evaluated thing classes person (24), rider (25),
car (26), truck (27), bus (28), train (31), motorcycle (32) and bicycle (33) become classes
0..7 in that order; the instances of caravan (29) and trailer (30), which the benchmark ignores,
are left out too. An example is ``(image uint8 [H,W,3], {"boxes": float32 [M,4], "classes":
int32 [M], "masks": uint8 [M,H,W]})``, one 0/1 mask per instance in increasing id order with
its tight box ``(y1, x1, y2, x2)`` in pixels (``y2``/``x2`` one past the last row/column); M
varies per image (None in the element spec) and may be 0. An id whose labelId is not a
Cityscapes label (above 33; 65535 is -1, the license plate) is a `DataError` naming the file.
``info("cityscapes", task="instance")`` describes the 8 classes.

Panoptic targets (``task="panoptic"``) are ``(image uint8 [H,W,3], {"semantic": int32 [H,W],
"instance_ids": int32 [H,W]})``: ``semantic`` holds the 19 trainIds (255 = void: unlabeled and
every class the benchmark ignores, caravan and trailer included), ``instance_ids`` the number of
each thing instance in the image (1, 2, ... in increasing segment id order, i.e. by labelId then
by Cityscapes' instance number) on the pixels of the 8 thing classes (trainIds 11..18), and 0 on
stuff, on void and on crowd regions (groups such as "car group": a thing class, no single
instance). ``semantic * LABEL_DIVISOR + instance_ids`` (LABEL_DIVISOR = 1000) is the panoptic
map ``kerasseg.metrics.PanopticQuality(THING_CLASSES, STUFF_CLASSES)`` reads. Two on-disk forms
load, chosen by ``source=``:

``source="labels"``: the official gtFine files, labelIds for the classes and instanceIds for the
instances (same folders)::

    gtFine/{train,val,test}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png
    gtFine/{train,val,test}/<city>/<city>_<seq>_<frame>_gtFine_instanceIds.png

``source="panoptic"``: what cityscapesScripts' ``createPanopticImgs`` writes into gtFine/ (COCO
panoptic style; segment ids are the instanceIds values, categories are labelIds)::

    gtFine/cityscapes_panoptic_{train,val,test}.json
    gtFine/cityscapes_panoptic_{train,val,test}/<city>_<seq>_<frame>_gtFine_panoptic.png

The PNGs hold segment id = R + 256 G + 256^2 B per pixel (0 = void); a segment's
``category_id`` (a Cityscapes labelId) gives its trainId and ``iscrowd`` 1 marks a crowd region.
The ``--use-train-id`` output (``cityscapes_panoptic_<split>_trainId.json`` and folder, whose
category ids are trainIds) is read too when the labelId one is absent. The images are found by
file name under ``leftImg8bit/<split>/``.

With ``source=None`` (the default) the panoptic JSON is read when it exists, else the labels.
Both forms give the same examples for the same annotations, in the same order (by city, then
file name). A missing folder, JSON or PNG is a ``FileNotFoundError`` naming the path; a segment
id a PNG holds but its ``segments_info`` does not list, a category the JSON does not define, or
an instance pixel whose labelIds and instanceIds disagree is a `DataError` naming the file.
``info("cityscapes", task="panoptic")`` describes the 19 classes with ``thing_classes``
(``THING_CLASSES``, trainIds 11..18; ``STUFF_CLASSES`` are 0..10).
"""

import os

import numpy as np

from kerasseg.datasets import _io, folder_instances
from kerasseg.datasets._registry import DataError, DatasetInfo, register_dataset

# (labelId, trainId) for the 19 evaluated classes; all other ids are ignored.
_TRAIN_IDS = {
    7: 0,
    8: 1,
    11: 2,
    12: 3,
    13: 4,
    17: 5,
    19: 6,
    20: 7,
    21: 8,
    22: 9,
    23: 10,
    24: 11,
    25: 12,
    26: 13,
    27: 14,
    28: 15,
    31: 16,
    32: 17,
    33: 18,
}
CLASS_NAMES = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)
PALETTE = np.array(
    [
        [128, 64, 128],
        [244, 35, 232],
        [70, 70, 70],
        [102, 102, 156],
        [190, 153, 153],
        [153, 153, 153],
        [250, 170, 30],
        [220, 220, 0],
        [107, 142, 35],
        [152, 251, 152],
        [70, 130, 180],
        [220, 20, 60],
        [255, 0, 0],
        [0, 0, 142],
        [0, 0, 70],
        [0, 60, 100],
        [0, 80, 100],
        [0, 0, 230],
        [119, 11, 32],
    ],
    np.uint8,
)

LAYOUT = (
    "  <data_dir>/leftImg8bit/{train,val,test}/<city>/*_leftImg8bit.png\n"
    "  <data_dir>/gtFine/{train,val,test}/<city>/*_gtFine_labelIds.png"
)
INSTANCE_LAYOUT = (
    "  <data_dir>/leftImg8bit/{train,val,test}/<city>/*_leftImg8bit.png\n"
    "  <data_dir>/gtFine/{train,val,test}/<city>/*_gtFine_instanceIds.png"
)
# labelIds of the 8 evaluated classes with instances, in class-index order.
THING_LABEL_IDS = (24, 25, 26, 27, 28, 31, 32, 33)
THING_NAMES = tuple(CLASS_NAMES[_TRAIN_IDS[i]] for i in THING_LABEL_IDS)
THING_PALETTE = PALETTE[[_TRAIN_IDS[i] for i in THING_LABEL_IDS]]

# Panoptic: the trainIds counted instance by instance (person .. bicycle), the others stuff.
THING_CLASSES = tuple(range(11, 19))
STUFF_CLASSES = tuple(range(11))
LABEL_DIVISOR = 1000
TASKS = ("semantic", "instance", "panoptic")
SOURCES = ("labels", "panoptic")
PANOPTIC_LAYOUT = (
    "  <data_dir>/leftImg8bit/{train,val,test}/<city>/*_leftImg8bit.png\n"
    "  and either (source='panoptic', cityscapesScripts' createPanopticImgs output)\n"
    "  <data_dir>/gtFine/cityscapes_panoptic_{train,val,test}.json\n"
    "  <data_dir>/gtFine/cityscapes_panoptic_{train,val,test}/*_gtFine_panoptic.png\n"
    "  or (source='labels')\n"
    "  <data_dir>/gtFine/{train,val,test}/<city>/*_gtFine_labelIds.png\n"
    "  <data_dir>/gtFine/{train,val,test}/<city>/*_gtFine_instanceIds.png"
)

MANUAL = (
    "Cityscapes needs a (free) registration: log in at "
    "https://www.cityscapes-dataset.com/downloads/, download gtFine_trainvaltest.zip and "
    "leftImg8bit_trainvaltest.zip and unzip both into {data_dir} "
    "so that it holds leftImg8bit/ and gtFine/. Then load('cityscapes', data_dir='{data_dir}')."
)

INFO = DatasetInfo(
    name="cityscapes",
    num_classes=19,
    class_names=CLASS_NAMES,
    palette=PALETTE,
    ignore_index=255,
    splits={"train": 2975, "val": 500, "test": 1525},
    layout=LAYOUT,
    homepage="https://www.cityscapes-dataset.com/",
    description="Urban street scenes from 50 cities; 19 evaluated classes (trainIds).",
)

INSTANCE_INFO = INFO.replace(
    num_classes=len(THING_NAMES),
    class_names=THING_NAMES,
    palette=THING_PALETTE,
    task="instance",
    layout=INSTANCE_LAYOUT,
    description="Urban street scenes from 50 cities; instances of the 8 evaluated thing classes.",
)


PANOPTIC_INFO = INFO.replace(
    task="panoptic",
    thing_classes=THING_CLASSES,
    layout=PANOPTIC_LAYOUT,
    description=(
        "Urban street scenes from 50 cities; panoptic: 11 stuff classes (trainIds 0..10) and "
        "instances of 8 thing classes (trainIds 11..18)."
    ),
)


def _task(task):
    """ "semantic" (also None / "segmentation"), "instance" or "panoptic"; any other value is a
    ValueError listing them."""
    task = {None: "semantic", "segmentation": "semantic"}.get(task, task)
    if task not in TASKS:
        raise ValueError(f"cityscapes: unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    return task


def cityscapes_info(task="semantic", **_):
    """`INFO` (19 trainIds), `INSTANCE_INFO` (8 thing classes) for task="instance", or
    `PANOPTIC_INFO` (19 trainIds, thing_classes 11..18) for task="panoptic"."""
    return {"semantic": INFO, "instance": INSTANCE_INFO, "panoptic": PANOPTIC_INFO}[_task(task)]


def _lut():
    lut = _io.make_lut({label_id: 255 for label_id in range(34)})
    for label_id, train_id in _TRAIN_IDS.items():
        lut[label_id] = train_id
    lut[255] = 255  # -1 (license plate) written as an unsigned byte
    return lut


LABEL_LUT = _lut()


def _root(data_dir):
    for root in (data_dir, os.path.join(data_dir, "cityscapes")):
        if os.path.isdir(os.path.join(root, "leftImg8bit")):
            return root
    return _io.require_dir(os.path.join(data_dir, "leftImg8bit"), "cityscapes", LAYOUT)


def _thing_lut():
    lut = np.full(34, -1, np.int64)
    lut[list(THING_LABEL_IDS)] = np.arange(len(THING_LABEL_IDS))
    return lut


THING_LUT = _thing_lut()
TRAIN_IDS = _TRAIN_IDS  # labelId -> trainId, for the panoptic module
LICENSE_PLATE = 65535  # labelId -1 in a 16-bit PNG


def decode_instances(image_path, ids_path):
    """(image uint8 [H,W,3], masks uint8 [M,H,W], classes int32 [M]) of one instanceIds PNG."""
    image = _io.read_rgb(image_path)
    ids = _io.read_label(ids_path)
    folder_instances.check_same_size(image, ids, image_path, ids_path)
    present = np.unique(ids).astype(np.int64)
    present = present[(present >= 1000) & (present != LICENSE_PLATE)]
    label_ids = present // 1000
    if label_ids.size and label_ids.max() >= len(THING_LUT):
        bad = present[label_ids >= len(THING_LUT)]
        raise DataError(
            f"instance id(s) {bad[:8].tolist()} in {ids_path!r} are not Cityscapes instanceIds "
            f"(labelId * 1000 + instance, labelId 0..33)"
        )
    classes = THING_LUT[label_ids] if label_ids.size else np.zeros(0, np.int64)
    keep = classes >= 0  # caravan and trailer instances are not evaluated
    masks = folder_instances.masks_of_ids(ids, present[keep])
    return image, masks, classes[keep].astype(np.int32)


def label_items(root, split, suffixes, layout):
    """[(image, label per suffix...)] of the gtFine folders, by city then stem."""
    image_root = _io.require_dir(os.path.join(root, "leftImg8bit", split), "cityscapes", layout)
    label_root = _io.require_dir(os.path.join(root, "gtFine", split), "cityscapes", layout)
    items = []
    for city in sorted(os.listdir(image_root)):
        city_dir = os.path.join(image_root, city)
        if not os.path.isdir(city_dir):
            continue
        images = _io.list_images(city_dir, (".png",), suffix="_leftImg8bit")
        columns = []
        for suffix in suffixes:
            labels = (
                _io.list_images(os.path.join(label_root, city), (".png",), suffix=suffix)
                if os.path.isdir(os.path.join(label_root, city))
                else {}
            )
            missing = [stem for stem in images if stem not in labels]
            if missing:
                expected = os.path.join(label_root, city, f"{missing[0]}{suffix}.png")
                raise FileNotFoundError(
                    f"cityscapes: {len(missing)} image(s) have no {suffix[1:]} file: "
                    f"{expected!r} not found (for {images[missing[0]]!r}). Expected layout:\n"
                    f"{layout}"
                )
            pairs = _io.pair_by_stem(images, labels, "cityscapes", os.path.join(label_root, city))
            columns.append(pairs)
        if columns:  # the same images, by stem, in every column
            items += [(pairs[0][0], *(p[1] for p in pairs)) for pairs in zip(*columns)]
    if not items:
        raise FileNotFoundError(
            f"cityscapes: no *_leftImg8bit.png under {image_root!r}. Expected layout:\n{layout}"
        )
    return items


@register_dataset("cityscapes", info=cityscapes_info, manual_download=MANUAL)
def load_cityscapes(
    data_dir, split="train", task="semantic", source=None, shuffle_files=False, seed=None
):
    """Splits train / val / test (fine annotations). `task`: "semantic" (default, trainId
    masks), "instance" (instance targets of the 8 thing classes) or "panoptic" (semantic +
    instance_ids; `source` "labels", "panoptic" or None: the panoptic JSON when present, else the
    labels). See the module docstring."""
    task = _task(task)
    _io.check_split("cityscapes", split, INFO.splits)
    if source is not None and task != "panoptic":
        raise ValueError(
            f"cityscapes: source= chooses the panoptic annotations (task='panoptic'); "
            f"got source={source!r} with task={task!r}"
        )
    root = _root(data_dir)
    if task == "panoptic":
        from kerasseg.datasets.cityscapes_panoptic import load_panoptic

        return load_panoptic(root, split, source, shuffle_files, seed)
    instance = task == "instance"
    layout = INSTANCE_LAYOUT if instance else LAYOUT
    suffix = "_gtFine_instanceIds" if instance else "_gtFine_labelIds"
    items = label_items(root, split, (suffix,), layout)
    if instance:
        return folder_instances.instance_dataset(
            items, decode_instances, shuffle_files=shuffle_files, seed=seed
        )
    decode = _io.decode_pair_fn(LABEL_LUT, "Cityscapes labelIds 0..33 (and 255 for -1)")
    return _io.paths_dataset(items, decode, shuffle_files=shuffle_files, seed=seed)
