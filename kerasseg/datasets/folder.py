"""`folder`: your own data as image files plus single-channel mask PNGs with the same file stems.

Layouts (the first that exists wins):

    D/<split>/images/*.jpg|png|...   D/<split>/masks/*.png      (split folders, e.g. train/ val/)
    D/images/*                       D/masks/*                  (one pool)

With one pool, split "all" (and "train") is every file, unless lists `D/<split>.txt` (one stem per
line) exist; `val_fraction=f` instead holds out a deterministic fraction f of the stems as "val" and
leaves the rest as "train". Masks hold class indices: grey PNGs, or palette PNGs whose indices (not
colours) are read. Value 255 is ignored. Class names come from `class_names=`, else from
`D/classes.txt` (one per line), else `num_classes=` (names class_0...), else the masks are scanned.
"""
import hashlib
import os

import numpy as np

from kerasseg.datasets import _io
from kerasseg.datasets._registry import DatasetInfo, register_dataset

LAYOUT = ("  D/images/<stem>.<jpg|png|...> and D/masks/<stem>.png\n"
          "  or D/<split>/images/... and D/<split>/masks/... (one folder per split)")


def _split_folders(data_dir):
    if not os.path.isdir(data_dir):
        return []
    return sorted(d for d in os.listdir(data_dir) if os.path.isdir(os.path.join(data_dir, d, "images")))


def _held_out(stem, fraction):
    # A hash of the stem, not a random draw, so the split never changes between runs or machines.
    h = int(hashlib.md5(stem.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    return h < fraction


def _pairs(data_dir, split, mask_suffix="", val_fraction=None):
    _io.require_dir(data_dir, "folder", LAYOUT)
    splits = _split_folders(data_dir)
    if splits:
        _io.check_split("folder", split, splits)
        root = os.path.join(data_dir, split)
    else:
        root = data_dir
        _io.require_dir(os.path.join(root, "images"), "folder", LAYOUT)
    image_dir, mask_dir = os.path.join(root, "images"), os.path.join(root, "masks")
    _io.require_dir(mask_dir, "folder", LAYOUT)
    images = _io.list_images(image_dir)
    masks = _io.list_images(mask_dir, suffix=mask_suffix)
    if not splits:
        lists = sorted(f[:-4] for f in os.listdir(data_dir) if f.endswith(".txt") and f != "classes.txt")
        if split in lists:
            keep = _io.read_lines(os.path.join(data_dir, split + ".txt"))
            unknown = [s for s in keep if s not in images]
            if unknown:
                raise FileNotFoundError(f"folder: {split}.txt names {unknown[0]!r}, which has no image in "
                                        f"{image_dir!r}")
            images = {s: images[s] for s in keep}
        elif val_fraction is not None and split in ("train", "val"):
            held = split == "val"
            images = {s: p for s, p in images.items() if _held_out(s, float(val_fraction)) == held}
        else:
            valid = ["all", "train"] + lists + (["val"] if val_fraction is not None else [])
            _io.check_split("folder", split, dict.fromkeys(valid))
    if not images:
        raise FileNotFoundError(f"folder: no images for split {split!r} in {image_dir!r}. Expected layout:\n{LAYOUT}")
    return _io.pair_by_stem(images, masks, "folder", mask_dir)


def _class_names(data_dir, num_classes, class_names):
    if class_names is not None:
        names = tuple(class_names)
        if num_classes is not None and num_classes != len(names):
            raise ValueError(f"num_classes={num_classes} but {len(names)} class_names given")
        return names
    path = os.path.join(data_dir, "classes.txt") if data_dir else None
    if num_classes is None and path and os.path.isfile(path):
        return tuple(_io.read_lines(path))
    if num_classes is not None:
        return tuple(f"class_{i}" for i in range(num_classes))
    return None


def _scan_num_classes(data_dir, ignore_index):
    top = -1
    for split in _split_folders(data_dir) or ["all"]:
        for _, mask_path in _pairs(data_dir, split):
            values = np.unique(_io.read_label(mask_path))
            values = values[values != ignore_index]
            if values.size:
                top = max(top, int(values.max()))
    return top + 1


def folder_info(data_dir=None, num_classes=None, class_names=None, ignore_index=255, **_):
    names = _class_names(data_dir, num_classes, class_names)
    if names is None and data_dir is not None:
        names = tuple(f"class_{i}" for i in range(_scan_num_classes(data_dir, ignore_index)))
    splits = {}
    if data_dir is not None and os.path.isdir(data_dir):
        for s in _split_folders(data_dir):
            splits[s] = len(_io.list_images(os.path.join(data_dir, s, "images")))
        if not splits and os.path.isdir(os.path.join(data_dir, "images")):
            splits["all"] = len(_io.list_images(os.path.join(data_dir, "images")))
    k = None if names is None else len(names)
    return DatasetInfo(
        name="folder", num_classes=k, class_names=names or (),
        palette=_io.voc_colormap(k or 256), ignore_index=ignore_index, splits=splits, layout=LAYOUT,
        description="Images and single-channel index masks from a folder.")


@register_dataset("folder", info=folder_info)
def load_folder(data_dir, split="train", num_classes=None, class_names=None, ignore_index=255, mask_suffix="",
                val_fraction=None, shuffle_files=False, seed=None):
    """Options: `num_classes`/`class_names` (mask values outside [0, K) other than ignore_index are
    then an error), `mask_suffix` (mask files named <stem><suffix>.png), `val_fraction`,
    `shuffle_files` (shuffle the file order before decoding, each epoch anew) and its `seed`."""
    pairs = _pairs(data_dir, split, mask_suffix, val_fraction)
    names = _class_names(data_dir, num_classes, class_names)
    if names is not None:
        lut = _io.identity_lut(len(names), ignore_index, size=65536)
        valid = f"the classes 0..{len(names) - 1} and ignore_index {ignore_index}"
    else:  # unknown class count: pass values through
        lut = np.arange(65536, dtype=np.int32)
        valid = "0..65535"
    decode = _io.decode_pair_fn(lut, valid)
    return _io.paths_dataset(pairs, decode, shuffle_files=shuffle_files, seed=seed)
