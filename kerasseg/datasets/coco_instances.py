"""COCO 2017 instance segmentation (`coco_instances`): the 80 thing classes, one mask per object.

Layout under data_dir (how train2017.zip, val2017.zip and annotations_trainval2017.zip extract):

    annotations/instances_{train,val}2017.json
    {train,val}2017/<file_name>        (file_name as the JSON's "images" give it)

An example is ``(image uint8 [H,W,3], {"boxes": float32 [M,4], "classes": int32 [M],
"masks": uint8 [M,H,W]})`` at the image's own size, M varying per image (None in the element
spec). Masks are decoded with `pycocotools.mask` the way the COCO API's ``annToMask`` does:
polygons (``frPyObjects`` + ``merge``), uncompressed RLE (``frPyObjects``) and compressed RLE (as
is), then ``decode``. Boxes are the tight boxes of the decoded masks, ``(y1, x1, y2, x2)`` in
pixels with ``y2``/``x2`` one past the last row/column, so they agree with the masks (the JSON's
"bbox" is not used). Images come in increasing image id order.

Classes: the JSON's "categories" sorted by id are numbered 0..K-1 (COCO's ids 1..90 with gaps
become 0..79; no background class). The mapping both ways: ``category_ids(data_dir, split)[i]``
is the category id of class index i, ``category_index(data_dir, split)[id]`` the index of a
category id; without data_dir both give the official COCO 2017 mapping (`COCO_CATEGORY_IDS`).
``kerasseg.datasets.info("coco_instances", data_dir=...)`` names the classes of the files.

Options of `load`:

- ``crowd="drop"`` (default): ``iscrowd=1`` annotations (regions of many objects, an RLE over a
  crowd) are not instances to learn and are left out, as torchvision's and Detectron2's training
  loaders do. ``crowd="keep"`` keeps them as instances and adds ``"iscrowd": int32 [M]`` (1 for
  crowd regions) to the target, so that a loss or COCOeval can ignore them.
- ``skip_empty`` (default: True for train, False for val): leave out images without a non-crowd
  instance, as Detectron2 (``FILTER_EMPTY_ANNOTATIONS``) and torchvision's reference training do;
  evaluation keeps every image, since an empty image still counts its false positives.
- ``shuffle_files`` / ``seed``: shuffle the image order (each epoch anew) before decoding.

Annotations are checked when the split is loaded, so a broken file fails at `load` with a
`DataError` naming the JSON file and the annotation id: an annotation without "segmentation", an
unknown category or image id, a segmentation that is neither polygons nor RLE, an RLE whose
"size" is not the image's. Coordinates that are not numbers, and an image of another size
than its record says, fail when decoded (inside the pipeline), with the same names. Polygons with
fewer than 3 points are dropped and an annotation left without any is skipped (Detectron2 does
the same); so is one whose decoded mask is empty.
"""

import json
import os

import numpy as np
import tensorflow as tf
from pycocotools import mask as mask_utils

from kerasseg.datasets import _io
from kerasseg.datasets._registry import DataError, DatasetInfo, Resource, register_dataset
from kerasseg.datasets.coco_stuff import THING_NAMES
from kerasseg.datasets.shapes_instances import masks_to_boxes

# The category ids of COCO 2017's 80 thing classes (1..90 without 12 26 29 30 45 66 68 69 71 83).
COCO_CATEGORY_IDS = tuple(
    i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)
)
CLASS_NAMES = THING_NAMES
CROWD_CHOICES = ("drop", "keep")
LAYOUT = (
    "  <data_dir>/annotations/instances_{train,val}2017.json\n"
    "  <data_dir>/{train,val}2017/<file_name>.jpg"
)
_SPLIT_DIRS = {
    "train": "train2017",
    "train2017": "train2017",
    "val": "val2017",
    "val2017": "val2017",
}

RESOURCES = [
    Resource(
        url="http://images.cocodataset.org/zips/train2017.zip",
        filename="train2017.zip",
        md5="cced6f7f71b7629ddf16f17bbcfab6b2",
    ),
    Resource(
        url="http://images.cocodataset.org/zips/val2017.zip",
        filename="val2017.zip",
        md5="442b8da7639aecaf257c1dceb8ba8c80",
    ),
    Resource(
        url="http://images.cocodataset.org/annotations/annotations_trainval2017.zip",
        filename="annotations_trainval2017.zip",
        md5="f4bbac642086de4f52a3fdda2de5fa2c",
    ),
]

_CATEGORIES = {}  # (json path, mtime, size) -> ((id, name), ...) sorted by id


def annotation_file(data_dir, split="train"):
    """Path of the instances JSON of `split` ("train"/"train2017", "val"/"val2017")."""
    _io.check_split("coco_instances", split, _SPLIT_DIRS)
    name = f"instances_{_SPLIT_DIRS[split]}.json"
    return os.path.join(os.path.expanduser(os.fspath(data_dir)), "annotations", name)


def _existing_annotation_file(data_dir, split):
    if split is None:  # the categories are the same in both: read the smaller file if there
        found = [annotation_file(data_dir, s) for s in ("val", "train")]
        found = [p for p in found if os.path.isfile(p)] or found
        path = found[0]
    else:
        path = annotation_file(data_dir, split)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"coco_instances: annotation file {path!r} not found. Expected layout:\n{LAYOUT}"
        )
    return path


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(
            f"cannot read COCO annotation file {path!r}: not valid JSON ({e})"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise DataError(f"{path!r} is not a COCO instances file (no 'annotations' list)")
    return data


def _parse_categories(data, path):
    cats = data.get("categories")
    if not isinstance(cats, list) or not cats:
        raise DataError(f"{path!r} has no 'categories' list; a COCO instances file needs one")
    out = {}
    for c in cats:
        if not isinstance(c, dict) or not isinstance(c.get("id"), int) or "name" not in c:
            raise DataError(f"{path!r}: category {c!r} needs an integer 'id' and a 'name'")
        if c["id"] in out:
            raise DataError(f"{path!r}: category id {c['id']} appears twice in 'categories'")
        out[c["id"]] = str(c["name"])
    return tuple(sorted(out.items()))


def _cache_key(path):
    st = os.stat(path)
    return (os.path.abspath(path), st.st_mtime_ns, st.st_size)


def categories(data_dir, split=None):
    """``((category id, name), ...)`` of the JSON of `split`, sorted by id: entry i is class i.
    `split` None reads val's file if present, else train's (COCO gives both the same)."""
    path = _existing_annotation_file(data_dir, split)
    key = _cache_key(path)
    if key not in _CATEGORIES:
        _CATEGORIES[key] = _parse_categories(_read_json(path), path)
    return _CATEGORIES[key]


def category_ids(data_dir=None, split=None):
    """Class index -> COCO category id: a tuple whose entry i is the id of class i (read from
    the files under data_dir, or the official COCO 2017 ids without it)."""
    if data_dir is None:
        return COCO_CATEGORY_IDS
    return tuple(i for i, _ in categories(data_dir, split))


def category_index(data_dir=None, split=None):
    """COCO category id -> class index (0..K-1): the inverse of `category_ids`."""
    return {c: i for i, c in enumerate(category_ids(data_dir, split))}


def coco_info(data_dir=None, split=None, **_):
    """`DatasetInfo` of the official 80 classes, or of the categories of the JSON under
    data_dir when given."""
    names = CLASS_NAMES if data_dir is None else tuple(n for _, n in categories(data_dir, split))
    return DatasetInfo(
        name="coco_instances",
        num_classes=len(names),
        class_names=names,
        palette=_io.voc_colormap(len(names) + 1)[1:],
        ignore_index=255,
        splits={"train": 118287, "val": 5000},
        task="instance",
        layout=LAYOUT,
        homepage="https://cocodataset.org/#detection-2017",
        description="COCO 2017 instance segmentation: 80 thing classes, polygon and RLE masks.",
    )


# ----------------------------------------------------------------------------- annotations


def _clean_segmentation(seg, height, width, where):
    """`seg` checked and normalised (polygons with < 3 points dropped); None when nothing is
    left. Raises DataError (naming `where`) for a segmentation of no known form."""
    if isinstance(seg, list):
        if seg and all(isinstance(v, (int, float)) for v in seg):
            seg = [seg]  # one flat polygon
        for poly in seg:
            if not isinstance(poly, list):
                raise DataError(f"{where}: a polygon must be a list of x, y numbers, got {poly!r}")
        # (Coordinates that are not numbers fail when decoded, with the same names.)
        return [p for p in seg if len(p) >= 6 and len(p) % 2 == 0] or None
    if isinstance(seg, dict) and "counts" in seg and "size" in seg:
        size = seg["size"]
        if not isinstance(size, list) or size != [height, width]:
            raise DataError(
                f"{where}: RLE size {size!r} is not the image's [height, width] [{height}, {width}]"
            )
        counts = seg["counts"]
        if isinstance(counts, list):
            if not all(isinstance(v, int) and v >= 0 for v in counts) or sum(counts) != (
                height * width
            ):
                raise DataError(
                    f"{where}: uncompressed RLE counts must be non-negative integers summing "
                    f"to height*width = {height * width}"
                )
        elif not isinstance(counts, str):
            raise DataError(
                f"{where}: RLE counts must be a list (uncompressed) or a string (compressed), "
                f"got {type(counts).__name__}"
            )
        return {"size": [height, width], "counts": counts}
    raise DataError(
        f"{where}: 'segmentation' must be polygons (a list of lists) or an RLE dict with "
        f"'counts' and 'size', got {type(seg).__name__}"
    )


def segmentation_to_rle(seg, height, width):
    """One compressed RLE of a COCO segmentation (what ``COCO.annToRLE`` computes)."""
    if isinstance(seg, list):
        return mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
    if isinstance(seg["counts"], list):
        return mask_utils.frPyObjects(seg, height, width)
    return seg


def _decode_masks(anns, height, width, where):
    """uint8 [N,H,W] masks of `anns` (``[ann id, class, iscrowd, segmentation]`` lists)."""
    if not anns:
        return np.zeros((0, height, width), np.uint8)
    rles = []
    for ann in anns:
        try:
            rles.append(segmentation_to_rle(ann[3], height, width))
        except Exception as e:  # noqa: BLE001 - pycocotools raises several types
            raise DataError(f"{where}, annotation id {ann[0]}: cannot decode mask: {e}") from None
    masks = mask_utils.decode(rles)  # [H, W, N], Fortran order
    return np.ascontiguousarray(np.transpose(masks, (2, 0, 1)), np.uint8)


def _index_annotations(data, path, crowd):
    """{image id: [[ann id, class index, iscrowd, segmentation], ...]} of the checked
    annotations, and {image id: image record}."""
    index = {c: i for i, (c, _) in enumerate(_parse_categories(data, path))}
    images = {}
    for im in data.get("images") or []:
        if not isinstance(im, dict) or not all(k in im for k in ("id", "file_name")):
            raise DataError(f"{path!r}: image record {im!r} needs 'id' and 'file_name'")
        if not all(isinstance(im.get(k), int) and im[k] > 0 for k in ("height", "width")):
            raise DataError(f"{path!r}: image id {im['id']} needs integer 'height' and 'width'")
        images[im["id"]] = im
    per_image = {i: [] for i in images}
    for ann in data["annotations"]:
        aid = ann.get("id") if isinstance(ann, dict) else None
        where = f"{path!r}, annotation id {aid}"
        if not isinstance(ann, dict) or "segmentation" not in ann:
            raise DataError(
                f"{where} has no 'segmentation': coco_instances needs a mask (polygons or RLE) "
                f"for every annotation (a detection-only file has boxes alone)"
            )
        im = images.get(ann.get("image_id"))
        if im is None:
            raise DataError(f"{where}: image_id {ann.get('image_id')!r} is not in 'images'")
        if ann.get("category_id") not in index:
            raise DataError(
                f"{where}: category_id {ann.get('category_id')!r} is not in 'categories' "
                f"(valid ids: {sorted(index)})"
            )
        iscrowd = int(ann.get("iscrowd", 0) or 0)
        if iscrowd and crowd == "drop":
            continue
        seg = _clean_segmentation(ann["segmentation"], im["height"], im["width"], where)
        if seg is not None:
            per_image[im["id"]].append([aid, index[ann["category_id"]], iscrowd, seg])
    return per_image, images


@register_dataset("coco_instances", info=coco_info, resources=RESOURCES)
def load_coco_instances(
    data_dir, split="train", crowd="drop", skip_empty=None, shuffle_files=False, seed=None
):
    """Splits train (train2017) / val (val2017). Options `crowd` ("drop" | "keep"),
    `skip_empty` (default True for train, False for val), `shuffle_files`, `seed`: see the
    module docstring."""
    _io.check_split("coco_instances", split, _SPLIT_DIRS)
    if crowd not in CROWD_CHOICES:
        raise ValueError(f"crowd must be one of {', '.join(CROWD_CHOICES)}; got {crowd!r}")
    path = _existing_annotation_file(data_dir, split)
    image_dir = _io.require_dir(
        os.path.join(data_dir, _SPLIT_DIRS[split]), "coco_instances", LAYOUT
    )
    data = _read_json(path)
    _CATEGORIES[_cache_key(path)] = _parse_categories(data, path)
    per_image, images = _index_annotations(data, path, crowd)
    del data
    if skip_empty is None:
        skip_empty = _SPLIT_DIRS[split] == "train2017"
    ids = sorted(i for i in images if not skip_empty or any(a[2] == 0 for a in per_image[i]))
    if not ids:
        raise DataError(
            f"coco_instances: no images to load from {path!r} (skip_empty={skip_empty})"
        )
    present = set(os.listdir(image_dir))
    missing = [images[i]["file_name"] for i in ids if images[i]["file_name"] not in present]
    if missing:
        raise FileNotFoundError(
            f"coco_instances: {len(missing)} image(s) of {path!r} are not in {image_dir!r}, "
            f"e.g. {missing[0]!r}"
        )
    records = [
        (
            os.path.join(image_dir, images[i]["file_name"]),
            images[i]["id"],
            images[i]["height"],
            images[i]["width"],
            json.dumps(per_image[i], separators=(",", ":")).encode("utf-8"),  # compact in memory
        )
        for i in ids
    ]
    del per_image, images
    keep_crowd = crowd == "keep"

    def decode(i):
        file, image_id, h, w, blob = records[int(i)]
        image = _io.read_rgb(file)
        if image.shape[:2] != (h, w):
            raise DataError(
                f"image {file!r} is {image.shape[1]}x{image.shape[0]} but {path!r} gives image "
                f"id {image_id} as {w}x{h} (width x height)"
            )
        anns = json.loads(blob)
        masks = _decode_masks(anns, h, w, f"{path!r}, image id {image_id}")
        keep = masks.any(axis=(1, 2))
        masks = masks[keep]
        classes = np.asarray([a[1] for a in anns], np.int32).reshape(-1)[keep]
        iscrowd = np.asarray([a[2] for a in anns], np.int32).reshape(-1)[keep]
        return image, masks_to_boxes(masks), classes, masks, iscrowd

    def _map(i):
        out = tf.numpy_function(
            decode, [i], (tf.uint8, tf.float32, tf.int32, tf.uint8, tf.int32), stateful=False
        )
        image, boxes, classes, masks, iscrowd = out
        image.set_shape((None, None, 3))
        boxes.set_shape((None, 4))
        classes.set_shape((None,))
        masks.set_shape((None, None, None))
        iscrowd.set_shape((None,))
        target = {"boxes": boxes, "classes": classes, "masks": masks}
        if keep_crowd:
            target["iscrowd"] = iscrowd
        return image, target

    ds = tf.data.Dataset.range(len(records))
    if shuffle_files:
        ds = ds.shuffle(len(records), seed=seed, reshuffle_each_iteration=True)
    return ds.map(_map, num_parallel_calls=tf.data.AUTOTUNE)
