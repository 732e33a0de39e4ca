"""Indoor RGB-D sets: NYU Depth v2 with the 40-class labels (`nyudv2`) and SUN RGB-D with 37 classes
(`sunrgbd`).

Neither ships an official per-image PNG release, so kerasseg reads the common preprocessed layout
(one folder per modality, same file stems) that the RGB-D segmentation repositories export:

    NYUDv2/image/<stem>.png|jpg      RGB
    NYUDv2/depth/<stem>.png          16-bit depth in millimetres (0 = no measurement)
    NYUDv2/label/<stem>.png          0 = unlabeled, 1..40 the classes of Gupta et al. (2013)
    NYUDv2/train.txt, NYUDv2/test.txt   stems of the standard 795 / 654 split

and the same under SUNRGBD/ (labels 1..37, split 5285 / 5050). Per-split folders
(NYUDv2/train/{image,depth,label}/...) are accepted instead of the lists. Label 0 becomes the ignore
index 255 and 1..K become 0..K-1.

`with_depth=True` appends depth as a fourth uint8 channel: millimetres scaled so that 0..`max_depth`
metres (default 10) spans 0..255 and clipped above; an 8-bit depth PNG is taken as already scaled.
Models then take `input_shape=(None, None, 4)`; `kerasseg.data.prepare` leaves that channel out of
the colour augmentation.
"""

import os

import numpy as np

from kerasseg.datasets import _io
from kerasseg.datasets._registry import DatasetInfo, register_dataset

NYU40_NAMES = (
    "wall",
    "floor",
    "cabinet",
    "bed",
    "chair",
    "sofa",
    "table",
    "door",
    "window",
    "bookshelf",
    "picture",
    "counter",
    "blinds",
    "desk",
    "shelves",
    "curtain",
    "dresser",
    "pillow",
    "mirror",
    "floor mat",
    "clothes",
    "ceiling",
    "books",
    "refrigerator",
    "television",
    "paper",
    "towel",
    "shower curtain",
    "box",
    "whiteboard",
    "person",
    "night stand",
    "toilet",
    "sink",
    "lamp",
    "bathtub",
    "bag",
    "otherstructure",
    "otherfurniture",
    "otherprop",
)
SUN37_NAMES = NYU40_NAMES[:37]  # SUN RGB-D's 37 classes are the first 37 of NYU's 40


def _layout(folder):
    return (
        f"  <data_dir>/{folder}/image/<stem>.png|jpg\n"
        f"  <data_dir>/{folder}/depth/<stem>.png   (16-bit, millimetres)\n"
        f"  <data_dir>/{folder}/label/<stem>.png   (0 = unlabeled, 1..K classes)\n"
        f"  <data_dir>/{folder}/{{train,test}}.txt  (stems),\n"
        f"    or {folder}/{{train,test}}/image|depth|label/"
    )


def _info(name, folder, names, splits, description):
    def make(with_depth=False, **_):
        return DatasetInfo(
            name=name,
            num_classes=len(names),
            class_names=names,
            palette=_io.voc_colormap(len(names) + 1)[1:],
            ignore_index=255,
            splits=dict(splits),
            channels=4 if with_depth else 3,
            layout=_layout(folder),
            description=description,
        )

    return make


def depth_to_uint8(depth, max_depth=10.0, units_per_metre=1000.0):
    """Depth map -> uint8: 8-bit maps pass through, 16-bit ones are scaled from 0..max_depth
    metres."""
    if depth.dtype == np.uint8:
        return depth
    scaled = depth.astype(np.float32) * (255.0 / (max_depth * units_per_metre))
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def _items(data_dir, folder, split, name):
    layout = _layout(folder)
    root = _io.require_dir(os.path.join(data_dir, folder), name, layout)
    listing = os.path.join(root, split + ".txt")
    if os.path.isdir(os.path.join(root, split, "image")):
        base, stems = os.path.join(root, split), None
    elif os.path.isfile(listing):
        base, stems = root, _io.read_lines(listing)
    else:
        raise FileNotFoundError(
            f"{name}: split {split!r} needs {listing!r} or the folder "
            f"{os.path.join(root, split, 'image')!r}. Expected layout:\n{layout}"
        )
    folders = [
        _io.require_dir(os.path.join(base, m), name, layout) for m in ("image", "depth", "label")
    ]
    images, depths, labels = (_io.list_images(f) for f in folders)
    stems = sorted(images) if stems is None else [os.path.splitext(s)[0] for s in stems]
    items = []
    for stem in stems:
        for files, folder_path in (
            (images, folders[0]),
            (depths, folders[1]),
            (labels, folders[2]),
        ):
            if stem not in files:
                raise FileNotFoundError(f"{name}: no file for {stem!r} in {folder_path!r}")
        items.append((images[stem], depths[stem], labels[stem]))
    return items


def _make_decoder(num_classes, with_depth, max_depth, name):
    lut = _io.make_lut({0: 255, **{v: v - 1 for v in range(1, num_classes + 1)}})
    valid = f"{name} labels 0..{num_classes}"

    def decode(image_path, depth_path, label_path):
        image = _io.read_rgb(image_path)
        raw = _io.read_label(label_path)
        _io.check_same_size(image, raw, image_path, label_path)
        label = _io.apply_lut(raw, lut, label_path, valid)
        if not with_depth:
            return image, label
        depth = _io.read_label(depth_path)
        _io.check_same_size(image, depth, image_path, depth_path)
        return np.concatenate([image, depth_to_uint8(depth, max_depth)[..., None]], -1), label

    return decode


def _register(name, folder, names, splits, description):
    info = _info(name, folder, names, splits, description)

    def load(
        data_dir, split="train", with_depth=False, max_depth=10.0, shuffle_files=False, seed=None
    ):
        _io.check_split(name, split, splits)
        items = _items(data_dir, folder, split, name)
        decode = _make_decoder(len(names), with_depth, float(max_depth), name)
        return _io.paths_dataset(
            items, decode, channels=4 if with_depth else 3, shuffle_files=shuffle_files, seed=seed
        )

    load.__doc__ = (
        "Splits train / test. Options: with_depth (adds depth as a 4th uint8 channel), max_depth "
        "(metres mapped to 255), shuffle_files, seed."
    )
    register_dataset(name, load, info=info)
    return load


load_nyudv2 = _register(
    "nyudv2",
    "NYUDv2",
    NYU40_NAMES,
    {"train": 795, "test": 654},
    "NYU Depth v2, 1449 labelled indoor RGB-D frames, 40 classes (Gupta et al.).",
)
load_sunrgbd = _register(
    "sunrgbd",
    "SUNRGBD",
    SUN37_NAMES,
    {"train": 5285, "test": 5050},
    "SUN RGB-D, 10,335 indoor RGB-D frames, 37 classes.",
)
