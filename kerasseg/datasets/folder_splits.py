"""How a `folder` set is split: split folders, list files, or a pool of which a fraction is held
out as "val" (by a hash of the file names); and the check that refuses a parent folder of several
datasets given as one. Shared by the mask and the instance readings (`folder`,
`folder_instances`)."""

import hashlib
import os
import warnings

from kerasseg.datasets import _io


def split_folders(data_dir):
    """The subfolders of ``data_dir`` holding images/, sorted: its splits."""
    if not os.path.isdir(data_dir):
        return []
    return sorted(
        d for d in os.listdir(data_dir) if os.path.isdir(os.path.join(data_dir, d, "images"))
    )


def list_files(data_dir):
    """The split lists of a pool: D/<split>.txt other than classes.txt, by split name."""
    return sorted(f[:-4] for f in os.listdir(data_dir) if f.endswith(".txt") and f != "classes.txt")


DEFAULT_VAL_FRACTION = 0.2  # of a pool without split folders or lists, held out as "val"


class SplitNote(UserWarning):
    """A pool of images was split into "train" and "val" by the default fraction (printed once
    per folder; the CLI shows it as one line)."""

    kerasseg_one_line = True


_SPLIT_ANNOUNCED = set()


def _stem_rank(stem):
    # A hash of the name, not a random draw, so the split never changes between runs or machines.
    return hashlib.md5(stem.encode("utf-8")).hexdigest(), stem


def held_out(stems, fraction):
    """The stems a pool holds out as "val": the round(fraction * n) whose names hash lowest,
    at least one and never all of them when there are two or more and fraction > 0."""
    stems = sorted(stems, key=_stem_rank)
    k = round(float(fraction) * len(stems))
    if fraction > 0 and len(stems) >= 2:
        k = min(max(k, 1), len(stems) - 1)
    return set(stems[:k])


def check_not_a_parent(data_dir, splits):
    """Refuse a folder whose "split" subfolders are datasets of their own (each with its
    classes.txt or its own split folders): a parent folder given by mistake."""
    own = [
        s
        for s in splits
        if os.path.isfile(os.path.join(data_dir, s, "classes.txt"))
        or split_folders(os.path.join(data_dir, s))
    ]
    if own:
        raise ValueError(
            f"folder: {data_dir!r} looks like a folder of datasets, not one dataset: its "
            f"subfolder(s) {', '.join(repr(s) for s in own)} have their own classes.txt or split "
            f"folders. Pass one dataset's folder as data_dir (--data-dir); subfolders holding "
            f"images/ and masks/ are read as splits."
        )


def pool_split(data_dir, images, split, val_fraction):
    """{stem: path} of split "train" or "val" of a pool (no split folders, no list files)."""
    fraction = DEFAULT_VAL_FRACTION if val_fraction is None else float(val_fraction)
    if not 0 <= fraction < 1:
        raise ValueError(f"folder: val_fraction must be in [0, 1); got {val_fraction!r}")
    val = held_out(images, fraction)
    if val_fraction is None and val and data_dir not in _SPLIT_ANNOUNCED:
        _SPLIT_ANNOUNCED.add(data_dir)
        warnings.warn(
            f"folder: {data_dir!r} has no split folders or lists: holding out {len(val)} of "
            f"{len(images)} images ({DEFAULT_VAL_FRACTION:.0%}, chosen by a hash of their file "
            f"names, the same on every run) as 'val' and training on the other "
            f"{len(images) - len(val)}; val_fraction=F (--dataset-option val_fraction=F) "
            f"changes the fraction, split 'all' (--val-split none) trains on every image.",
            SplitNote,
            stacklevel=5,
        )
    if split == "val" and not val:
        raise ValueError(
            f"folder: {data_dir!r} has no validation images: {len(images)} image(s) with "
            f"val_fraction={fraction} hold none out (train without validation: --val-split none)"
        )
    return {s: p for s, p in images.items() if (s in val) == (split == "val")}


def split_sizes(data_dir, val_fraction=None):
    """{split: number of images}: of the split folders; of a pool, "all" and its lists, or
    "all", "train" and "val" (held out by ``val_fraction``, default DEFAULT_VAL_FRACTION)."""
    splits = {}
    if data_dir is None or not os.path.isdir(data_dir):
        return splits
    for s in split_folders(data_dir):
        splits[s] = len(_io.list_images(os.path.join(data_dir, s, "images")))
    if splits or not os.path.isdir(os.path.join(data_dir, "images")):
        return splits
    images = _io.list_images(os.path.join(data_dir, "images"))
    splits["all"] = len(images)
    lists = list_files(data_dir)
    for name in lists:
        splits[name] = len(_io.read_lines(os.path.join(data_dir, name + ".txt")))
    if not lists:
        fraction = DEFAULT_VAL_FRACTION if val_fraction is None else float(val_fraction)
        val = len(held_out(images, fraction))
        splits.update(train=len(images) - val, val=val)
    return splits
