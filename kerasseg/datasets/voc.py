"""PASCAL VOC 2012 segmentation (`voc2012`) and its SBD-augmented training set (`voc2012_aug`).

Layout under data_dir (as the official archives extract):

    VOCdevkit/VOC2012/JPEGImages/<id>.jpg
    VOCdevkit/VOC2012/SegmentationClass/<id>.png        palette PNGs: value = class index,
                                                        255 = border
    VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt
    benchmark_RELEASE/dataset/cls/<id>.mat               (voc2012_aug only) SBD, GTcls.Segmentation
    benchmark_RELEASE/dataset/{train,val}.txt

`voc2012_aug` split "train_aug" (alias "train") is the usual 10,582-image set: (SBD train + SBD
val + VOC train) minus VOC val. Each image takes VOC's own annotation when VOC has one (it carries
the 255 border band), else a `VOC2012/SegmentationClassAug/<id>.png` when that common conversion is
present, else the SBD `.mat`. Without benchmark_RELEASE, a list
`VOC2012/ImageSets/Segmentation/train_aug.txt` (or trainaug.txt) with SegmentationClassAug PNGs is
used instead. Split "val" is VOC val. Reading `.mat` files needs scipy.
"""

import os

import numpy as np

from kerasseg.datasets import _io
from kerasseg.datasets._registry import DatasetInfo, Resource, register_dataset

CLASS_NAMES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
PALETTE = _io.voc_colormap(len(CLASS_NAMES))

LAYOUT = (
    "  <data_dir>/VOCdevkit/VOC2012/JPEGImages/<id>.jpg\n"
    "  <data_dir>/VOCdevkit/VOC2012/SegmentationClass/<id>.png\n"
    "  <data_dir>/VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt"
)
AUG_LAYOUT = LAYOUT + (
    "\n  <data_dir>/benchmark_RELEASE/dataset/cls/<id>.mat\n"
    "  <data_dir>/benchmark_RELEASE/dataset/{train,val}.txt"
)

VOC_RESOURCE = Resource(
    url="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
    filename="VOCtrainval_11-May-2012.tar",
    md5="6cd6e144f989b92b3379bac3b3de84fd",
)
SBD_RESOURCE = Resource(
    url="https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/benchmark.tgz",  # noqa: E501
    filename="benchmark.tgz",
    md5="82b4d87ceb2ed10f6038a1cba92111cb",
)

INFO = DatasetInfo(
    name="voc2012",
    num_classes=21,
    class_names=CLASS_NAMES,
    palette=PALETTE,
    ignore_index=255,
    splits={"train": 1464, "val": 1449, "trainval": 2913},
    layout=LAYOUT,
    homepage="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
    description="PASCAL VOC 2012 segmentation: 20 object classes + background.",
)
AUG_INFO = INFO.replace(
    name="voc2012_aug",
    splits={"train_aug": 10582, "val": 1449},
    layout=AUG_LAYOUT,
    description="VOC 2012 with the SBD annotations added to training (train_aug).",
)

# Palette indices 0..20 are classes, 255 the border band; nothing else may occur.
_LUT = _io.identity_lut(21)
_VALID = "VOC classes 0..20 and 255"


def _voc_root(data_dir, layout=LAYOUT, name="voc2012"):
    root = os.path.join(data_dir, "VOCdevkit", "VOC2012")
    _io.require_dir(root, name, layout)
    return root


def _voc_ids(root, split):
    path = os.path.join(root, "ImageSets", "Segmentation", split + ".txt")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"voc2012: split list {path!r} not found. Expected layout:\n{LAYOUT}"
        )
    return _io.read_lines(path)


def _check_files(items, name):
    for paths in items:
        for p in paths:
            if not os.path.isfile(p):
                raise FileNotFoundError(f"{name}: {p!r} is listed in the split but missing")
    return items


@register_dataset("voc2012", info=INFO, resources=[VOC_RESOURCE])
def load_voc2012(data_dir, split="train", shuffle_files=False, seed=None):
    """Splits train / val / trainval of VOC 2012 segmentation."""
    _io.check_split("voc2012", split, INFO.splits)
    root = _voc_root(data_dir)
    items = [
        (
            os.path.join(root, "JPEGImages", i + ".jpg"),
            os.path.join(root, "SegmentationClass", i + ".png"),
        )
        for i in _voc_ids(root, split)
    ]
    _check_files(items, "voc2012")
    return _io.paths_dataset(
        items, _io.decode_pair_fn(_LUT, _VALID), shuffle_files=shuffle_files, seed=seed
    )


def read_sbd_mat(path):
    """Class map stored in an SBD `cls/*.mat` (GTcls.Segmentation)."""
    try:
        from scipy.io import loadmat
    except ImportError as e:  # scipy is only needed for this set
        raise ImportError("voc2012_aug reads SBD .mat labels with scipy: pip install scipy") from e
    try:
        mat = loadmat(path, squeeze_me=True, struct_as_record=False)
        seg = mat["GTcls"].Segmentation
    except Exception as e:
        raise ValueError(
            f"cannot read SBD label file {path!r} (expected a struct GTcls with a "
            f"Segmentation field): {e}"
        ) from None
    return np.asarray(seg)


def _aug_label(path):
    return read_sbd_mat(path) if path.endswith(".mat") else _io.read_label(path)


@register_dataset("voc2012_aug", info=AUG_INFO, resources=[VOC_RESOURCE, SBD_RESOURCE])
def load_voc2012_aug(data_dir, split="train_aug", shuffle_files=False, seed=None):
    """Splits train_aug (10,582 images) and val (VOC 2012 val)."""
    split = "train_aug" if split == "train" else split
    _io.check_split("voc2012_aug", split, list(AUG_INFO.splits) + ["train"])
    root = _voc_root(data_dir, AUG_LAYOUT, "voc2012_aug")
    voc_val = _voc_ids(root, "val")
    aug_list = [
        os.path.join(root, "ImageSets", "Segmentation", n)
        for n in ("train_aug.txt", "trainaug.txt")
    ]
    aug_list = [p for p in aug_list if os.path.isfile(p)]
    sbd = os.path.join(data_dir, "benchmark_RELEASE", "dataset")
    if split == "val":
        ids = voc_val
    elif aug_list and not os.path.isdir(os.path.join(sbd, "cls")):
        ids = _io.read_lines(aug_list[0])  # a ready-made list (with SegmentationClassAug PNGs)
    else:
        _io.require_dir(os.path.join(sbd, "cls"), "voc2012_aug", AUG_LAYOUT)
        sbd_ids = []
        for name in ("train", "val"):
            path = os.path.join(sbd, name + ".txt")
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"voc2012_aug: SBD list {path!r} not found. Expected layout:\n{AUG_LAYOUT}"
                )
            sbd_ids += _io.read_lines(path)
        ids = sorted(set(sbd_ids + _voc_ids(root, "train")) - set(voc_val))
    items = []
    for i in ids:
        # VOC's own annotation first, then the widely shared PNG conversion of SBD, then SBD itself.
        candidates = [
            os.path.join(root, "SegmentationClass", i + ".png"),
            os.path.join(root, "SegmentationClassAug", i + ".png"),
            os.path.join(sbd, "cls", i + ".mat"),
        ]
        label = next((c for c in candidates if os.path.isfile(c)), candidates[-1])
        image = os.path.join(root, "JPEGImages", i + ".jpg")
        if not os.path.isfile(image):  # SBD ships its own copy of every image it labels
            image = os.path.join(data_dir, "benchmark_RELEASE", "dataset", "img", i + ".jpg")
        items.append((image, label))
    _check_files(items, "voc2012_aug")
    decode = _io.decode_pair_fn(_LUT, _VALID, read_mask=_aug_label)
    return _io.paths_dataset(items, decode, shuffle_files=shuffle_files, seed=seed)
