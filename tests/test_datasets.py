"""kerasseg.datasets: every loader on a tiny fixture written in the official layout.

Expected masks are computed here with independently written mappings (explicit tables), never by
calling the loader's own tables.
"""

import os
import pickle
import tarfile

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kerasseg import datasets


# ----------------------------------------------------------------------------- fixture helpers
def write_rgb(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ok = cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok, path


def write_grey(path, values, bits=8):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(values.astype(np.uint16 if bits == 16 else np.uint8)).save(path)


def write_palette_png(path, indices, palette):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    im = Image.fromarray(indices.astype(np.uint8), mode="P")
    im.putpalette(palette.astype(np.uint8).ravel().tolist())
    im.save(path)


def random_image(rng, h=40, w=60):
    # Smooth content, so a JPEG copy stays close to the original.
    small = rng.integers(0, 256, (4, 5, 3)).astype(np.float32)
    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), 0, 255).astype(
        np.uint8
    )


def collect(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def error_text(fn):
    """Message of the error raised by fn(), whether raised eagerly or from inside tf.data."""
    with pytest.raises(Exception) as exc:
        fn()
    return str(exc.value)


# ----------------------------------------------------------------------------- registry
def test_registry_lists_every_dataset():
    expected = {
        "voc2012",
        "voc2012_aug",
        "cityscapes",
        "camvid",
        "ade20k",
        "coco_stuff",
        "sunrgbd",
        "nyudv2",
        "cifar10",
        "folder",
        "shapes",
        "shapes_instances",
        "coco_instances",
        "shapes_panoptic",
        "coco_panoptic",
    }
    assert expected <= set(datasets.list_datasets())


def test_unknown_dataset_lists_registered_names():
    msg = error_text(lambda: datasets.load("nope", data_dir="/tmp"))
    assert "nope" in msg and "voc2012" in msg and "shapes" in msg
    with pytest.raises(ValueError, match="cityscapes"):
        datasets.info("nope")


def test_register_dataset_adds_a_loader():
    info = datasets.DatasetInfo(
        "toy_test", 2, ("a", "b"), np.zeros((2, 3), np.uint8), splits={"train": 1}
    )

    @datasets.register_dataset("toy_test", info=info, needs_data_dir=False, overwrite=True)
    def _load(data_dir, split):
        return tf.data.Dataset.from_tensors(
            (tf.zeros((2, 2, 3), tf.uint8), tf.ones((2, 2), tf.int32))
        )

    assert "toy_test" in datasets.list_datasets()
    assert datasets.info("toy_test").num_classes == 2
    ((x, y),) = collect(datasets.load("toy_test"))
    assert y.sum() == 4
    with pytest.raises(ValueError, match="already registered"):
        datasets.register_dataset("toy_test", _load, info=info)


# ----------------------------------------------------------------------------- shapes
def test_shapes_deterministic_and_splits_differ():
    a = collect(datasets.load("shapes", split="train", seed=0, num_images=6))
    b = collect(datasets.load("shapes", split="train", seed=0, num_images=4))
    for (xa, ya), (xb, yb) in zip(a, b):  # sample i does not depend on num_images
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    val = collect(datasets.load("shapes", split="val", seed=0, num_images=6))
    other_seed = collect(datasets.load("shapes", split="train", seed=1, num_images=6))
    assert not any(x.shape == v.shape and np.array_equal(x, v) for (x, _), (v, _) in zip(a, val))
    assert not np.array_equal(a[0][0], other_seed[0][0]) or a[0][0].shape != other_seed[0][0].shape


def test_shapes_content():
    info = datasets.info("shapes")
    assert info.num_classes >= 4 and len(info.class_names) == info.num_classes
    assert info.palette.shape == (info.num_classes, 3) and info.palette.dtype == np.uint8
    assert info.ignore_index == 255 and set(info.splits) == {"train", "val", "test"}
    samples = collect(datasets.load("shapes", split="train", seed=0, num_images=40))
    sizes = {x.shape[:2] for x, _ in samples}
    assert len(sizes) > 20
    classes = set()
    colours = {c: [] for c in range(1, info.num_classes)}
    for x, y in samples:
        assert x.dtype == np.uint8 and y.dtype == np.int32 and x.shape[:2] == y.shape
        assert 64 <= x.shape[0] <= 128 and 64 <= x.shape[1] <= 128
        assert y.min() >= 0 and y.max() < info.num_classes
        classes |= set(np.unique(y).tolist())
        for c in colours:
            if (y == c).sum() > 20:
                colours[c].append(x[y == c].mean(0))
    assert classes == set(range(info.num_classes))
    # Colour alone must not give the class away: every class appears in widely varying colours.
    for c, cols in colours.items():
        assert len(cols) >= 5 and np.std(np.asarray(cols), 0).mean() > 40, (c, len(cols))


def test_shapes_bad_split():
    with pytest.raises(ValueError, match="train, val, test"):
        datasets.load("shapes", split="validation")


# ----------------------------------------------------------------------------- folder
FOLDER_PALETTE = np.array(
    [[0, 0, 0], [200, 10, 10], [10, 200, 10], [10, 10, 200]] + [[7, 7, 7]] * 252
)


def make_folder(root, n=3, split=None, palette=True, rng=None, h=40, w=60, classes=4):
    rng = rng or np.random.default_rng(0)
    base = os.path.join(root, split) if split else root
    pairs = []
    for i in range(n):
        image = random_image(rng, h, w)
        mask = rng.integers(0, classes, (h, w))
        mask[:2] = 255
        write_rgb(os.path.join(base, "images", f"img_{i}.jpg" if i % 2 else f"img_{i}.png"), image)
        if palette:
            write_palette_png(os.path.join(base, "masks", f"img_{i}.png"), mask, FOLDER_PALETTE)
        else:
            write_grey(os.path.join(base, "masks", f"img_{i}.png"), mask)
        pairs.append((image, mask))
    return pairs


def test_folder_reads_palette_indices_not_colours(tmp_path):
    pairs = make_folder(tmp_path, n=3)
    out = collect(datasets.load("folder", data_dir=tmp_path, split="all", num_classes=4))
    assert len(out) == 3
    for (x, y), (_image, mask) in zip(out, pairs):
        assert x.dtype == np.uint8 and y.dtype == np.int32
        np.testing.assert_array_equal(y, mask)
    np.testing.assert_array_equal(out[0][0], pairs[0][0])  # PNG image: lossless
    assert np.abs(out[1][0].astype(int) - pairs[1][0]).mean() < 6  # JPEG: same picture


def test_folder_split_folders_and_info(tmp_path):
    make_folder(tmp_path, n=3, split="train", palette=False)
    make_folder(tmp_path, n=2, split="val", palette=False, rng=np.random.default_rng(1))
    assert len(collect(datasets.load("folder", data_dir=tmp_path, split="val"))) == 2
    info = datasets.info("folder", data_dir=tmp_path)
    assert info.num_classes == 4 and info.splits == {"train": 3, "val": 2}
    msg = error_text(lambda: datasets.load("folder", data_dir=tmp_path, split="test"))
    assert "train" in msg and "val" in msg
    (tmp_path / "classes.txt").write_text("bg\na\nb\nc\n")
    assert datasets.info("folder", data_dir=tmp_path).class_names == ("bg", "a", "b", "c")


def test_folder_val_fraction_partitions(tmp_path):
    make_folder(tmp_path, n=10, palette=False, h=8, w=8)
    train = collect(datasets.load("folder", data_dir=tmp_path, split="train", val_fraction=0.3))
    val = collect(datasets.load("folder", data_dir=tmp_path, split="val", val_fraction=0.3))
    assert len(train) + len(val) == 10 and len(val) > 0


def test_folder_missing_layout(tmp_path):
    msg = error_text(lambda: datasets.load("folder", data_dir=tmp_path / "nothing"))
    assert "images" in msg and "masks" in msg


def test_folder_image_without_mask(tmp_path):
    make_folder(tmp_path, n=2)
    os.remove(tmp_path / "masks" / "img_1.png")
    msg = error_text(lambda: datasets.load("folder", data_dir=tmp_path, split="all"))
    assert "img_1.jpg" in msg


def test_folder_size_mismatch_names_pair(tmp_path):
    make_folder(tmp_path, n=1)
    write_grey(str(tmp_path / "masks" / "img_0.png"), np.zeros((10, 10)))
    msg = error_text(lambda: collect(datasets.load("folder", data_dir=tmp_path, split="all")))
    assert "img_0.png" in msg and "images" in msg and "masks" in msg and "mismatch" in msg


def test_folder_label_out_of_range_names_value_and_file(tmp_path):
    make_folder(tmp_path, n=1, palette=False)
    bad = np.zeros((40, 60))
    bad[5, 5] = 7
    write_grey(str(tmp_path / "masks" / "img_0.png"), bad)
    msg = error_text(
        lambda: collect(datasets.load("folder", data_dir=tmp_path, split="all", num_classes=4))
    )
    assert "7" in msg and "img_0.png" in msg


def test_folder_corrupt_image_names_file(tmp_path):
    make_folder(tmp_path, n=2)
    (tmp_path / "images" / "img_1.jpg").write_bytes(b"not a jpeg at all")
    msg = error_text(lambda: collect(datasets.load("folder", data_dir=tmp_path, split="all")))
    assert "img_1.jpg" in msg


# ----------------------------------------------------------------------------- PASCAL VOC
def voc_palette():
    # The VOC colour map, written out for the first classes only; the rest are arbitrary here
    # because the loader must read indices, never colours.
    pal = np.zeros((256, 3), np.uint8)
    pal[:4] = [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    pal[255] = [224, 224, 192]
    return pal


def make_voc(
    root, rng, ids_train=("2007_000032", "2007_000039"), ids_val=("2007_000033",), label=True
):
    voc = os.path.join(root, "VOCdevkit", "VOC2012")
    masks = {}
    for i in list(ids_train) + list(ids_val):
        write_rgb(os.path.join(voc, "JPEGImages", i + ".jpg"), random_image(rng))
        mask = rng.integers(0, 21, (40, 60))
        mask[:, :3] = 255  # border band
        if label:
            write_palette_png(
                os.path.join(voc, "SegmentationClass", i + ".png"), mask, voc_palette()
            )
        masks[i] = mask
    sets = os.path.join(voc, "ImageSets", "Segmentation")
    os.makedirs(sets, exist_ok=True)
    for name, ids in (
        ("train", ids_train),
        ("val", ids_val),
        ("trainval", list(ids_train) + list(ids_val)),
    ):
        with open(os.path.join(sets, name + ".txt"), "w") as f:
            f.write("\n".join(ids) + "\n")
    return masks


def test_voc2012(tmp_path):
    rng = np.random.default_rng(0)
    masks = make_voc(tmp_path, rng)
    out = collect(datasets.load("voc2012", data_dir=tmp_path, split="train"))
    assert len(out) == 2
    for (x, y), i in zip(out, ("2007_000032", "2007_000039")):
        assert x.shape == (40, 60, 3) and x.dtype == np.uint8
        np.testing.assert_array_equal(y, masks[i])
    assert len(collect(datasets.load("voc2012", data_dir=tmp_path, split="trainval"))) == 3
    info = datasets.info("voc2012")
    assert (
        info.num_classes == 21 and info.class_names[15] == "person" and info.splits["val"] == 1449
    )
    np.testing.assert_array_equal(info.palette[:4], voc_palette()[:4])
    msg = error_text(lambda: datasets.load("voc2012", data_dir=tmp_path, split="test"))
    assert "train" in msg and "trainval" in msg


def test_voc2012_bad_label_value(tmp_path):
    rng = np.random.default_rng(0)
    make_voc(tmp_path, rng, ids_train=("a",), ids_val=("b",))
    mask = np.zeros((40, 60))
    mask[3, 3] = 30
    path = os.path.join(tmp_path, "VOCdevkit", "VOC2012", "SegmentationClass", "a.png")
    write_palette_png(path, mask, voc_palette())
    msg = error_text(lambda: collect(datasets.load("voc2012", data_dir=tmp_path, split="train")))
    assert "30" in msg and "a.png" in msg


def test_voc2012_missing_layout(tmp_path):
    msg = error_text(lambda: datasets.load("voc2012", data_dir=tmp_path))
    assert "VOCdevkit" in msg and "JPEGImages" in msg


def test_voc2012_aug(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    rng = np.random.default_rng(1)
    # VOC: train "v1" (labelled by VOC), val "s3"; SBD: train s1, s2 and v1, val s3.
    voc_masks = make_voc(tmp_path, rng, ids_train=("v1",), ids_val=("s3",))
    voc = os.path.join(tmp_path, "VOCdevkit", "VOC2012")
    sbd = os.path.join(tmp_path, "benchmark_RELEASE", "dataset")
    os.makedirs(os.path.join(sbd, "cls"))
    sbd_masks = {}
    for i in ("s1", "s2", "v1", "s3"):
        if i not in voc_masks:
            write_rgb(os.path.join(voc, "JPEGImages", i + ".jpg"), random_image(rng))
        seg = rng.integers(0, 21, (40, 60)).astype(np.uint8)
        scipy_io.savemat(
            os.path.join(sbd, "cls", i + ".mat"),
            {
                "GTcls": {
                    "Segmentation": seg,
                    "Boundaries": np.zeros((1, 21), object),
                    "CategoriesPresent": np.unique(seg),
                }
            },
        )
        sbd_masks[i] = seg
    with open(os.path.join(sbd, "train.txt"), "w") as f:
        f.write("s1\ns2\nv1\n")
    with open(os.path.join(sbd, "val.txt"), "w") as f:
        f.write("s3\n")
    out = collect(datasets.load("voc2012_aug", data_dir=tmp_path, split="train_aug"))
    # (SBD train + SBD val + VOC train) - VOC val = s1, s2, v1 (sorted); v1 keeps VOC's own label.
    assert len(out) == 3
    np.testing.assert_array_equal(out[0][1], sbd_masks["s1"])
    np.testing.assert_array_equal(out[1][1], sbd_masks["s2"])
    np.testing.assert_array_equal(out[2][1], voc_masks["v1"])
    val = collect(datasets.load("voc2012_aug", data_dir=tmp_path, split="val"))
    np.testing.assert_array_equal(val[0][1], voc_masks["s3"])
    assert len(collect(datasets.load("voc2012_aug", data_dir=tmp_path, split="train"))) == 3


def test_voc2012_aug_from_segmentation_class_aug(tmp_path):
    # The shared PNG conversion: VOC2012/SegmentationClassAug +
    # ImageSets/Segmentation/train_aug.txt.
    rng = np.random.default_rng(11)
    make_voc(tmp_path, rng, ids_train=("v1",), ids_val=("v2",))
    voc = os.path.join(tmp_path, "VOCdevkit", "VOC2012")
    write_rgb(os.path.join(voc, "JPEGImages", "s1.jpg"), random_image(rng))
    aug = rng.integers(0, 21, (40, 60))
    write_grey(os.path.join(voc, "SegmentationClassAug", "s1.png"), aug)
    with open(os.path.join(voc, "ImageSets", "Segmentation", "train_aug.txt"), "w") as f:
        f.write("s1\n")
    ((x, y),) = collect(datasets.load("voc2012_aug", data_dir=tmp_path, split="train_aug"))
    np.testing.assert_array_equal(y, aug)


# ----------------------------------------------------------------------------- Cityscapes
# The official cityscapesScripts table (labels.py): labelId -> trainId, 255 for "ignore in eval".
CITYSCAPES_TABLE = {
    0: 255,
    1: 255,
    2: 255,
    3: 255,
    4: 255,
    5: 255,
    6: 255,
    7: 0,
    8: 1,
    9: 255,
    10: 255,
    11: 2,
    12: 3,
    13: 4,
    14: 255,
    15: 255,
    16: 255,
    17: 5,
    18: 255,
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
    29: 255,
    30: 255,
    31: 16,
    32: 17,
    33: 18,
}


def test_cityscapes_label_ids_to_train_ids(tmp_path):
    rng = np.random.default_rng(2)
    expected = {}
    for city, stem in (("aachen", "aachen_000000_000019"), ("bochum", "bochum_000000_000313")):
        write_rgb(
            str(tmp_path / "leftImg8bit" / "val" / city / f"{stem}_leftImg8bit.png"),
            random_image(rng),
        )
        ids = rng.integers(0, 34, (40, 60))
        write_grey(str(tmp_path / "gtFine" / "val" / city / f"{stem}_gtFine_labelIds.png"), ids)
        expected[stem] = np.vectorize(CITYSCAPES_TABLE.get)(ids)
    out = collect(datasets.load("cityscapes", data_dir=tmp_path, split="val"))
    assert len(out) == 2
    for (_x, y), stem in zip(out, sorted(expected)):
        np.testing.assert_array_equal(y, expected[stem])
    assert datasets.info("cityscapes").class_names[0] == "road"
    with pytest.raises(RuntimeError, match="cityscapes-dataset.com"):
        datasets.download("cityscapes", tmp_path)


# ----------------------------------------------------------------------------- CamVid
def test_camvid_segnet_void_ignored(tmp_path):
    rng = np.random.default_rng(3)
    expected = []
    for name in ("0001TP_006690", "0001TP_006720"):
        write_rgb(str(tmp_path / "CamVid" / "test" / f"{name}.png"), random_image(rng))
        ann = rng.integers(0, 12, (40, 60))
        write_grey(str(tmp_path / "CamVid" / "testannot" / f"{name}.png"), ann)
        expected.append(np.where(ann == 11, 255, ann))
    out = collect(datasets.load("camvid", data_dir=tmp_path, split="test"))
    for (_x, y), e in zip(out, expected):
        np.testing.assert_array_equal(y, e)
    assert datasets.info("camvid").num_classes == 11


CAMVID_COLOURS = {
    "Animal": (64, 128, 64),
    "Archway": (192, 0, 128),
    "Bicyclist": (0, 128, 192),
    "Bridge": (0, 128, 64),
    "Building": (128, 0, 0),
    "Car": (64, 0, 128),
    "CartLuggagePram": (64, 0, 192),
    "Child": (192, 128, 64),
    "Column_Pole": (192, 192, 128),
    "Fence": (64, 64, 128),
    "LaneMkgsDriv": (128, 0, 192),
    "LaneMkgsNonDriv": (192, 0, 64),
    "Misc_Text": (128, 128, 64),
    "MotorcycleScooter": (192, 0, 192),
    "OtherMoving": (128, 64, 64),
    "ParkingBlock": (64, 192, 128),
    "Pedestrian": (64, 64, 0),
    "Road": (128, 64, 128),
    "RoadShoulder": (128, 128, 192),
    "Sidewalk": (0, 0, 192),
    "SignSymbol": (192, 128, 128),
    "Sky": (128, 128, 128),
    "SUVPickupTruck": (64, 128, 192),
    "TrafficCone": (0, 0, 64),
    "TrafficLight": (0, 64, 64),
    "Train": (192, 64, 128),
    "Tree": (128, 128, 0),
    "Truck_Bus": (192, 128, 192),
    "Tunnel": (64, 0, 64),
    "VegetationMisc": (192, 192, 0),
    "Void": (0, 0, 0),
    "Wall": (64, 192, 0),
}


def test_camvid_32_colour_labels(tmp_path):
    rng = np.random.default_rng(4)
    names = sorted((n for n in CAMVID_COLOURS if n != "Void"), key=str.lower)
    colours = np.array([CAMVID_COLOURS[n] for n in names + ["Void"]], np.uint8)
    expected = {}
    for stem in ("0001TP_006690", "0006R0_f02400", "Seq05VD_f00000"):
        write_rgb(str(tmp_path / "701_StillsRaw_full" / f"{stem}.png"), random_image(rng))
        pick = rng.integers(0, len(colours), (40, 60))
        write_rgb(str(tmp_path / "LabeledApproved_full" / f"{stem}_L.png"), colours[pick])
        expected[stem] = np.where(pick == len(names), 255, pick)
    os.makedirs(tmp_path / "CamVid")
    (tmp_path / "CamVid" / "val.txt").write_text(
        "/SegNet/CamVid/val/0006R0_f02400.png /SegNet/CamVid/valannot/0006R0_f02400.png\n"
    )
    out = collect(datasets.load("camvid", data_dir=tmp_path, split="all", variant="32"))
    assert len(out) == 3
    for (_x, y), stem in zip(out, sorted(expected)):
        np.testing.assert_array_equal(y, expected[stem])
    ((x, y),) = collect(datasets.load("camvid", data_dir=tmp_path, split="val", variant="32"))
    np.testing.assert_array_equal(y, expected["0006R0_f02400"])
    info = datasets.info("camvid", variant="32")
    assert info.num_classes == 31 and list(info.class_names) == names
    # A colour outside the table names itself and the file.
    bad = colours[np.zeros((40, 60), int)]
    bad[0, 0] = (1, 2, 3)
    write_rgb(str(tmp_path / "LabeledApproved_full" / "0001TP_006690_L.png"), bad)
    msg = error_text(
        lambda: collect(datasets.load("camvid", data_dir=tmp_path, split="all", variant="32"))
    )
    assert "(1, 2, 3)" in msg and "0001TP_006690_L.png" in msg


# ----------------------------------------------------------------------------- ADE20K
def test_ade20k_reduce_zero_label(tmp_path):
    rng = np.random.default_rng(5)
    root = tmp_path / "ADEChallengeData2016"
    expected = []
    for i in (1, 2):
        write_rgb(str(root / "images" / "validation" / f"ADE_val_{i:08d}.jpg"), random_image(rng))
        ann = rng.integers(0, 151, (40, 60))
        write_grey(str(root / "annotations" / "validation" / f"ADE_val_{i:08d}.png"), ann)
        expected.append(np.where(ann == 0, 255, ann - 1))
    for split in ("val", "validation"):
        out = collect(datasets.load("ade20k", data_dir=tmp_path, split=split))
        for (_x, y), e in zip(out, expected):
            np.testing.assert_array_equal(y, e)
    info = datasets.info("ade20k")
    assert (
        info.num_classes == 150 and info.class_names[0] == "wall" and info.class_names[-1] == "flag"
    )


# ----------------------------------------------------------------------------- COCO-Stuff
# COCO category ids in use (1-based): 80 things with gaps, then stuff 92..182.
COCO_USED_IDS = [
    i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)
] + list(range(92, 183))


def test_coco_stuff_contiguous_ids(tmp_path):
    assert len(COCO_USED_IDS) == 171
    to_index = {cid - 1: k for k, cid in enumerate(COCO_USED_IDS)}
    to_index[255] = 255
    values = np.array(sorted(to_index))
    rng = np.random.default_rng(6)
    expected = {}
    for stem in ("000000000139", "000000000285"):
        write_rgb(str(tmp_path / "images" / "val2017" / f"{stem}.jpg"), random_image(rng))
        raw = values[rng.integers(0, len(values), (40, 60))]
        write_grey(str(tmp_path / "stuffthingmaps_trainval2017" / "val2017" / f"{stem}.png"), raw)
        expected[stem] = np.vectorize(to_index.get)(raw)
    out = collect(datasets.load("coco_stuff", data_dir=tmp_path, split="val"))
    for (_x, y), stem in zip(out, sorted(expected)):
        np.testing.assert_array_equal(y, expected[stem])
    info = datasets.info("coco_stuff")
    assert (
        info.num_classes == 171
        and info.class_names[0] == "person"
        and info.class_names[80] == "banner"
    )
    # Value 11 (COCO id 12) names no category.
    write_grey(
        str(tmp_path / "stuffthingmaps_trainval2017" / "val2017" / "000000000139.png"),
        np.full((40, 60), 11),
    )
    msg = error_text(lambda: collect(datasets.load("coco_stuff", data_dir=tmp_path, split="val")))
    assert "11" in msg and "000000000139.png" in msg


# ----------------------------------------------------------------------------- RGB-D
@pytest.mark.parametrize("name,folder,k", [("nyudv2", "NYUDv2", 40), ("sunrgbd", "SUNRGBD", 37)])
def test_rgbd_with_depth(tmp_path, name, folder, k):
    rng = np.random.default_rng(7)
    root = tmp_path / folder
    expected = {}
    for stem in ("0001", "0002", "0003"):
        image = random_image(rng)
        depth = rng.integers(0, 12000, (40, 60))
        label = rng.integers(0, k + 1, (40, 60))
        write_rgb(str(root / "image" / f"{stem}.png"), image)
        write_grey(str(root / "depth" / f"{stem}.png"), depth, bits=16)
        write_grey(str(root / "label" / f"{stem}.png"), label)
        depth8 = np.clip(np.round(depth * 255.0 / 10000.0), 0, 255).astype(np.uint8)
        expected[stem] = (image, depth8, np.where(label == 0, 255, label - 1))
    (root / "train.txt").write_text("0001\n0003\n")
    (root / "test.txt").write_text("0002\n")
    out = collect(datasets.load(name, data_dir=tmp_path, split="train", with_depth=True))
    assert len(out) == 2
    for (x, y), stem in zip(out, ("0001", "0003")):
        image, depth8, label = expected[stem]
        assert x.shape == (40, 60, 4) and x.dtype == np.uint8
        np.testing.assert_array_equal(x[..., :3], image)
        np.testing.assert_array_equal(x[..., 3], depth8)
        np.testing.assert_array_equal(y, label)
    ((x, y),) = collect(datasets.load(name, data_dir=tmp_path, split="test"))
    assert x.shape == (40, 60, 3)
    info = datasets.info(name, with_depth=True)
    assert info.channels == 4 and info.num_classes == k


def test_rgbd_feeds_prepare(tmp_path):
    from kerasseg import data

    rng = np.random.default_rng(8)
    root = tmp_path / "NYUDv2"
    for stem in ("a", "b"):
        write_rgb(str(root / "train" / "image" / f"{stem}.png"), random_image(rng))
        write_grey(
            str(root / "train" / "depth" / f"{stem}.png"), rng.integers(0, 9000, (40, 60)), bits=16
        )
        write_grey(str(root / "train" / "label" / f"{stem}.png"), rng.integers(0, 41, (40, 60)))
    ds = datasets.load("nyudv2", data_dir=tmp_path, split="train", with_depth=True)
    x, y = next(iter(data.prepare(ds, batch_size=2, crop_size=32, seed=0)))
    assert x.shape == (2, 32, 32, 4) and y.shape == (2, 32, 32)


# ------------------------------------------------------------------------- CIFAR-10 and download
def make_cifar(root, rng, per_batch=3):
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder)
    expected = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, (per_batch, 32, 32, 3)).astype(np.uint8)
        labels = rng.integers(0, 10, per_batch).tolist()
        planar = images.transpose(0, 3, 1, 2).reshape(per_batch, 3072)  # R plane, G plane, B plane
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump({b"data": planar, b"labels": labels, b"batch_label": name.encode()}, f)
        expected[name] = (images, labels)
    return expected


def test_cifar10(tmp_path):
    expected = make_cifar(tmp_path, np.random.default_rng(9))
    out = collect(datasets.load("cifar10", data_dir=tmp_path, split="test"))
    images, labels = expected["test_batch"]
    assert len(out) == 3
    for (x, y), image, label in zip(out, images, labels):
        np.testing.assert_array_equal(x, image)
        assert y.shape == () and int(y) == label
    assert len(collect(datasets.load("cifar10", data_dir=tmp_path, split="train"))) == 15
    assert datasets.info("cifar10").task == "classification"


def _cifar_archive(tmp_path):
    src = tmp_path / "src"
    make_cifar(src, np.random.default_rng(10))
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        t.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    import hashlib

    return archive, hashlib.md5(archive.read_bytes()).hexdigest()


def test_download_from_local_archive(tmp_path, capsys):
    archive, md5 = _cifar_archive(tmp_path)
    dest = tmp_path / "data"
    paths = datasets.download("cifar10", dest, url=archive.as_uri(), md5=md5)
    assert os.path.isfile(paths[0]) and not os.path.exists(paths[0] + ".part")
    assert len(collect(datasets.load("cifar10", data_dir=dest, split="test"))) == 3
    # Without a checksum the digest is computed and reported instead.
    datasets.download("cifar10", tmp_path / "data2", url=archive.as_uri())
    assert "sha256" in capsys.readouterr().err


def test_download_resumes_partial_file(tmp_path, capsys):
    archive, md5 = _cifar_archive(tmp_path)
    dest = tmp_path / "data"
    dest.mkdir()
    content = archive.read_bytes()
    (dest / "cifar-10-python.tar.gz.part").write_bytes(content[: len(content) // 2])
    datasets.download("cifar10", dest, url=archive.as_uri(), md5=md5)
    assert "resuming" in capsys.readouterr().err
    assert (dest / "cifar-10-python.tar.gz").read_bytes() == content


def test_download_checksum_mismatch(tmp_path):
    archive, _ = _cifar_archive(tmp_path)
    with pytest.raises(ValueError, match="md5 mismatch"):
        datasets.download("cifar10", tmp_path / "data", url=archive.as_uri(), md5="0" * 32)


def test_download_resumes_over_http_range(tmp_path, capsys):
    # A loopback server that honours Range requests, as the dataset hosts do.
    import http.server
    import threading

    archive, md5 = _cifar_archive(tmp_path)
    content = archive.read_bytes()
    ranges = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            start = 0
            if self.headers.get("Range"):
                start = int(self.headers["Range"].split("=")[1].split("-")[0])
                ranges.append(start)
                self.send_response(206)
                self.send_header(
                    "Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}"
                )
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(content) - start))
            self.end_headers()
            self.wfile.write(content[start:])

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        dest = tmp_path / "data"
        dest.mkdir()
        (dest / "cifar-10-python.tar.gz.part").write_bytes(content[:1000])
        url = f"http://127.0.0.1:{server.server_address[1]}/cifar-10-python.tar.gz"
        datasets.download("cifar10", dest, url=url, md5=md5)
    finally:
        server.shutdown()
        server.server_close()
    assert ranges == [1000]
    assert (dest / "cifar-10-python.tar.gz").read_bytes() == content
    assert len(collect(datasets.load("cifar10", data_dir=dest, split="test"))) == 3
