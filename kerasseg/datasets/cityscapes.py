"""Cityscapes fine annotations (`cityscapes`), evaluated on the 19 trainIds.

Layout under data_dir (how gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip extract; a
`cityscapes/` folder holding both is also accepted):

    leftImg8bit/{train,val,test}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    gtFine/{train,val,test}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png

The labelIds (0..33; -1 for the license plate) are mapped to trainIds with the official table of
cityscapesScripts (labels.py); every id without a trainId becomes 255. The test split's public
labels carry no ground truth.
"""

import os

import numpy as np

from kerasseg.datasets import _io
from kerasseg.datasets._registry import DatasetInfo, register_dataset

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


def _lut():
    lut = _io.make_lut({label_id: 255 for label_id in range(34)})
    for label_id, train_id in _TRAIN_IDS.items():
        lut[label_id] = train_id
    lut[255] = 255  # -1 (license plate) written as an unsigned byte
    return lut


_LUT = _lut()


def _root(data_dir):
    for root in (data_dir, os.path.join(data_dir, "cityscapes")):
        if os.path.isdir(os.path.join(root, "leftImg8bit")):
            return root
    return _io.require_dir(os.path.join(data_dir, "leftImg8bit"), "cityscapes", LAYOUT)


@register_dataset("cityscapes", info=INFO, manual_download=MANUAL)
def load_cityscapes(data_dir, split="train", shuffle_files=False, seed=None):
    """Splits train / val / test (fine annotations)."""
    _io.check_split("cityscapes", split, INFO.splits)
    root = _root(data_dir)
    image_root = _io.require_dir(os.path.join(root, "leftImg8bit", split), "cityscapes", LAYOUT)
    label_root = _io.require_dir(os.path.join(root, "gtFine", split), "cityscapes", LAYOUT)
    items = []
    for city in sorted(os.listdir(image_root)):
        city_dir = os.path.join(image_root, city)
        if not os.path.isdir(city_dir):
            continue
        images = _io.list_images(city_dir, (".png",), suffix="_leftImg8bit")
        labels = (
            _io.list_images(os.path.join(label_root, city), (".png",), suffix="_gtFine_labelIds")
            if os.path.isdir(os.path.join(label_root, city))
            else {}
        )
        items += _io.pair_by_stem(images, labels, "cityscapes", os.path.join(label_root, city))
    if not items:
        raise FileNotFoundError(
            f"cityscapes: no *_leftImg8bit.png under {image_root!r}. Expected layout:\n{LAYOUT}"
        )
    decode = _io.decode_pair_fn(_LUT, "Cityscapes labelIds 0..33 (and 255 for -1)")
    return _io.paths_dataset(items, decode, shuffle_files=shuffle_files, seed=seed)
