"""`folder`: your own data as image files plus single-channel mask PNGs with the same file stems.

Layouts (the first that exists wins):

    D/<split>/images/*.jpg|png|...   D/<split>/masks/*.png      (split folders, e.g. train/ val/)
    D/images/*                       D/masks/*                  (one pool)

With one pool, split "all" is every file. Lists `D/<split>.txt` (one stem per line) name the
files of each split; without lists, "val" holds out a fraction of the files (`val_fraction`,
default 0.2: the round(0.2 n) stems whose names hash lowest, at least one, the same on every run
and machine, said once in a `SplitNote` warning) and "train" is the rest. A folder whose
subfolders are datasets of their own (each with classes.txt or split folders) is an error: a
parent folder given by mistake. Masks hold class indices: grey PNGs, or palette PNGs whose
indices (not colours) are read. Value 255 is ignored (unless the set is binary, below). Class
names come from `class_names=`, else from `D/classes.txt` (one per line), else `num_classes=`
(names class_0...), else the masks are scanned.

Binary sets. Foreground/background masks are often saved as black and white, 0 and 255, where
255 would otherwise be the ignore label and every foreground pixel would be lost. When the set is
opened (`load` or `info`), up to 32 of its mask files (all splits together, evenly spaced in sorted
order, so every split and `info` decide alike) are read; if their only values are 0 and 255, the
set is binary: 255 (and 1, should some masks be 0/1) becomes class 1, with a single warning per
folder saying so. The check runs only when `ignore_index` is not passed and the class count (from
`num_classes`, `class_names` or classes.txt), if known, is 2: `ignore_index=255` keeps the plain
reading (255 = ignore). `binary=True` forces the binary reading (0 -> 0, 1 and 255 -> 1, unless
255 is the ignore_index: given explicitly, or by default where the sampled masks are 0/1 rather
than 0/255) and `binary=False` turns the check off. A value other than 0, 1 and 255
in an unsampled mask of a set read as binary is an error naming the file. Masks of 0 and 1 need no
mapping: they are classes 0 and 1 already (255 still means ignore there). A binary set (0/255, or
masks that `info` scans to two classes) has 2 classes, named ("background", "foreground") unless
names are given, and keeps ignore_index 255 (for padding in `kerasseg.data.prepare`).

Instance targets: ``task="instance"`` reads per-image instance-id PNGs and class maps instead of
masks (layout and conventions in `kerasseg.datasets.folder_instances`).
"""

import os
import warnings

import numpy as np

from kerasseg.datasets import _io
from kerasseg.datasets._registry import DatasetInfo, register_dataset
from kerasseg.datasets.folder_splits import (  # noqa: F401 - part of this module's interface
    DEFAULT_VAL_FRACTION,
    SplitNote,
    check_not_a_parent,
    held_out,
    list_files,
    pool_split,
    split_folders,
    split_sizes,
)

LAYOUT = (
    "  D/images/<stem>.<jpg|png|...> and D/masks/<stem>.png\n"
    "  or D/<split>/images/... and D/<split>/masks/... (one folder per split)"
)


def _pairs(
    data_dir,
    split,
    mask_suffix="",
    val_fraction=None,
    mask_folder="masks",
    mask_extensions=_io.IMAGE_EXTENSIONS,
    layout=LAYOUT,
):
    """(image, mask) path pairs of `split`; `mask_folder`/`mask_extensions` name the label files
    (the instance reading pairs the images with instances/*.png)."""
    _io.require_dir(data_dir, "folder", layout)
    splits = split_folders(data_dir)
    if splits:
        check_not_a_parent(data_dir, splits)
        if split not in splits:
            raise ValueError(
                f"unknown split {split!r} for dataset 'folder' in {data_dir!r}; valid splits: "
                f"{', '.join(splits)} (each subfolder holding images/ is one split)"
            )
        root = os.path.join(data_dir, split)
    else:
        root = data_dir
        _io.require_dir(os.path.join(root, "images"), "folder", layout)
    image_dir, mask_dir = os.path.join(root, "images"), os.path.join(root, mask_folder)
    _io.require_dir(mask_dir, "folder", layout)
    images = _io.list_images(image_dir)
    masks = _io.list_images(mask_dir, mask_extensions, suffix=mask_suffix)
    if not splits:
        lists = list_files(data_dir)
        if split in lists:
            keep = _io.read_lines(os.path.join(data_dir, split + ".txt"))
            unknown = [s for s in keep if s not in images]
            if unknown:
                raise FileNotFoundError(
                    f"folder: {split}.txt names {unknown[0]!r}, which has no image in {image_dir!r}"
                )
            images = {s: images[s] for s in keep}
        elif split in ("train", "val") and not lists:
            images = pool_split(data_dir, images, split, val_fraction)
        elif split != "all":
            valid = ["all"] + (lists or ["train", "val"])
            _io.check_split("folder", split, dict.fromkeys(valid))
    if not images:
        raise FileNotFoundError(
            f"folder: no images for split {split!r} in {image_dir!r}. Expected layout:\n{layout}"
        )
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


class BinaryMaskWarning(UserWarning):
    """The folder's masks were read as a binary 0/255 set. A plain `warnings` warning (filter it
    with this category); the CLI prints it as one line (`kerasseg_one_line`)."""

    kerasseg_one_line = True


BINARY_NAMES = ("background", "foreground")
BINARY_SAMPLE = 32  # mask files read to decide whether a set is binary
_BINARY_CACHE = {}  # sampled files' (path, mtime, size) -> whether they make a 0/255 set
_ANNOUNCED = set()  # data folders whose 0/255 reading was reported already


def _mask_files(data_dir, mask_suffix=""):
    """Every mask file of the set (all split folders, or the one pool), sorted."""
    roots = [os.path.join(data_dir, s) for s in split_folders(data_dir)] or [data_dir]
    files = []
    for root in roots:
        folder = os.path.join(root, "masks")
        if os.path.isdir(folder):
            files += _io.list_images(folder, suffix=mask_suffix).values()
    return sorted(files)


def _sample(files, k=None):
    k = BINARY_SAMPLE if k is None else k
    if len(files) <= k:
        return list(files)
    index = np.unique(np.round(np.linspace(0, len(files) - 1, k)).astype(int))
    return [files[i] for i in index]


def _binary_encoding(data_dir, mask_suffix=""):
    """(is_binary, sampled, total): True when the sampled masks hold only 0 and 255 (some 255)."""
    files = _mask_files(data_dir, mask_suffix)
    sample = _sample(files)
    key = tuple((p, os.stat(p).st_mtime_ns, os.stat(p).st_size) for p in sample)
    if key not in _BINARY_CACHE:
        values = set()
        for path in sample:
            values.update(int(v) for v in np.unique(_io.read_label(path)))
            if not values <= {0, 255}:
                break
        _BINARY_CACHE[key] = 255 in values and values <= {0, 255}
    return _BINARY_CACHE[key], len(sample), len(files)


def _resolve(data_dir, num_classes, class_names, ignore_index, binary, mask_suffix):
    """(class names or None, ignore_index, binary reading: None, 1 (0/1) or 255 (0/255))."""
    names = _class_names(data_dir, num_classes, class_names)
    # Real names (given, or from classes.txt) are kept; generic ones give way to BINARY_NAMES.
    named = class_names is not None or (num_classes is None and names is not None)
    ignore = 255 if ignore_index is None else int(ignore_index)
    encoding = None
    if binary is None:
        auto = ignore_index is None and (names is None or len(names) == 2)
        if auto and data_dir is not None and os.path.isdir(data_dir):
            found, sampled, total = _binary_encoding(data_dir, mask_suffix)
            encoding = 255 if found else None
            if found and (data_dir, mask_suffix) not in _ANNOUNCED:
                _ANNOUNCED.add((data_dir, mask_suffix))
                shown = names if named else BINARY_NAMES
                warnings.warn(
                    f"folder: the masks in {data_dir!r} hold only the values 0 and 255 ({sampled} "
                    f"of {total} mask files read): reading a binary set, 255 -> class 1, 2 classes "
                    f"{tuple(shown)}. Pass ignore_index=255 if 255 means 'ignore'.",
                    BinaryMaskWarning,
                    stacklevel=4,
                )
    elif binary:
        if names is not None and len(names) != 2:
            raise ValueError(
                f"folder: binary=True means 2 classes, but {len(names)} class names "
                f"were given or found"
            )
        if ignore in (0, 1):
            raise ValueError(
                f"folder: binary=True needs an ignore_index other than the classes 0 "
                f"and 1, got {ignore}"
            )
        if ignore_index is None and data_dir is not None and os.path.isdir(data_dir):
            # No ignore_index given: 0/255 masks are foreground 255, 0/1 masks keep 255 = ignore.
            encoding = 255 if _binary_encoding(data_dir, mask_suffix)[0] else 1
        else:
            encoding = 1 if ignore == 255 else 255
    if encoding is not None and not named:
        names = BINARY_NAMES
    return names, ignore, encoding


def _binary_lut(encoding, ignore):
    mapping = {0: 0, 1: 1, ignore: ignore}
    if encoding == 255:
        mapping[255] = 1
        valid = (
            "0 (background) and 1 or 255 (foreground): the set is read as binary (see the "
            "folder loader's docstring; pass ignore_index=255 to read 255 as ignore)"
        )
    else:
        valid = f"the binary classes 0 and 1 and ignore_index {ignore}"
    return _io.make_lut(mapping, size=65536), valid


def _scan_num_classes(data_dir, ignore_index, mask_suffix=""):
    top = -1
    for split in split_folders(data_dir) or ["all"]:
        for _, mask_path in _pairs(data_dir, split, mask_suffix):
            values = np.unique(_io.read_label(mask_path))
            values = values[values != ignore_index]
            if values.size:
                top = max(top, int(values.max()))
    return top + 1


def _instance_module(task, ignore_index=None, binary=None):
    """The `folder_instances` module when `task` asks for instance targets, else None."""
    from kerasseg.datasets import folder_instances

    if not folder_instances.is_instance_task("folder", task):
        return None
    for option, value in (("ignore_index", ignore_index), ("binary", binary)):
        if value is not None:
            raise ValueError(f"folder: {option}= applies to masks, not to task='instance'")
    return folder_instances


def folder_info(
    data_dir=None,
    num_classes=None,
    class_names=None,
    ignore_index=None,
    binary=None,
    mask_suffix="",
    task="semantic",
    val_fraction=None,
    **_,
):
    """`DatasetInfo` of the folder's set (masks, or instance targets with task="instance")."""
    instances = _instance_module(task)
    if instances is not None:  # ignore_index/binary come along from semantic-minded callers
        return instances.instance_info(data_dir, num_classes, class_names, mask_suffix)
    names, ignore_index, _ = _resolve(
        data_dir, num_classes, class_names, ignore_index, binary, mask_suffix
    )
    if names is None and data_dir is not None:
        count = _scan_num_classes(data_dir, ignore_index, mask_suffix)
        # Two classes found by the scan (masks of 0 and 1): a binary set.
        names = BINARY_NAMES if count == 2 else tuple(f"class_{i}" for i in range(count))
    splits = split_sizes(data_dir, val_fraction)
    k = None if names is None else len(names)
    return DatasetInfo(
        name="folder",
        num_classes=k,
        class_names=names or (),
        palette=_io.voc_colormap(k or 256),
        ignore_index=ignore_index,
        splits=splits,
        layout=LAYOUT,
        description="Images and single-channel index masks from a folder.",
    )


@register_dataset("folder", info=folder_info)
def load_folder(
    data_dir,
    split="train",
    num_classes=None,
    class_names=None,
    ignore_index=None,
    mask_suffix="",
    val_fraction=None,
    shuffle_files=False,
    seed=None,
    binary=None,
    task="semantic",
):
    """Options: `num_classes`/`class_names` (mask values outside [0, K) other than ignore_index are
    then an error), `ignore_index` (255 unless given; giving it turns off the binary check),
    `binary` (None: read 0/255 masks as binary, True: always read as binary, False: never; see
    the module docstring), `mask_suffix` (mask files named <stem><suffix>.png), `val_fraction`,
    `shuffle_files` (shuffle the file order before decoding, each epoch anew) and its `seed`.
    `task="instance"` yields instance targets (see `kerasseg.datasets.folder_instances`)."""
    instances = _instance_module(task, ignore_index, binary)
    if instances is not None:
        return instances.load_instances(
            data_dir,
            split,
            num_classes,
            class_names,
            mask_suffix,
            val_fraction,
            shuffle_files,
            seed,
        )
    pairs = _pairs(data_dir, split, mask_suffix, val_fraction)
    names, ignore_index, encoding = _resolve(
        data_dir, num_classes, class_names, ignore_index, binary, mask_suffix
    )
    if encoding is not None:
        lut, valid = _binary_lut(encoding, ignore_index)
    elif names is not None:
        lut = _io.identity_lut(len(names), ignore_index, size=65536)
        valid = f"the classes 0..{len(names) - 1} and ignore_index {ignore_index}"
    else:  # unknown class count: pass values through
        lut = np.arange(65536, dtype=np.int32)
        valid = "0..65535"
    decode = _io.decode_pair_fn(lut, valid)
    return _io.paths_dataset(pairs, decode, shuffle_files=shuffle_files, seed=seed)
