"""Readers for the published weak-label formats; every one returns kerasseg's representations
(sparse label maps with 255 = unlabelled, ``(boxes, classes)`` with boxes ``y1, x1, y2, x2`` in
pixels, ``y2``/``x2`` one past the last pixel).

- ``read_scribble_xml``: ScribbleSup's PASCAL scribbles (``scribble_annotation/pascal_2012/*.xml``):
  ``<annotation><size><width/><height/></size><polygon><tag>dog</tag><point><X/><Y/></point>...``,
  one ``polygon`` (a stroke: its points joined in order) per scribble, its ``tag`` a VOC class name;
  rasterised with OpenCV polylines of ``line_width`` 3: class indices where drawn, 255 elsewhere.
- ``read_scribble_png``: the PNG version (as rloss distributes it): a grey or palette PNG of class
  indices, 255 = unlabelled (palette indices are read, not colours).
- ``read_points_json``: Bearman et al.'s points, ``{image: [{"x", "y", "cls", "rank"}, ...]}``
  (``cls`` the VOC index, ``rank`` the annotator's order); ``points_map`` draws them.
- ``read_voc_boxes``: VOC ``Annotations/*.xml`` (``object/name``, ``bndbox`` 1-based inclusive).
- ``read_coco_boxes``: COCO instance JSON through pycocotools, ``{file_name: (boxes, classes)}``
  with the categories in file order as 1..K (0 is background), crowd boxes left out.
"""

import json
import os
import xml.etree.ElementTree as ET

import cv2
import numpy as np
from PIL import Image

__all__ = [
    "VOC_CLASSES",
    "points_map",
    "read_coco_boxes",
    "read_points_json",
    "read_scribble_png",
    "read_scribble_xml",
    "read_voc_boxes",
]

VOC_CLASSES = (
    "background aeroplane bicycle bird boat bottle bus car cat chair cow diningtable dog horse "
    "motorbike person pottedplant sheep sofa train tvmonitor"
).split()


def _parse_xml(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weak labels: no such file {path!r}")
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as error:
        raise ValueError(f"weak labels: {path!r} is not valid XML ({error})") from None


def _child(node, *names):
    """The first child whose tag is one of ``names`` (case-insensitive), else None."""
    wanted = {n.lower() for n in names}
    return next((c for c in node if c.tag.lower() in wanted), None)


def _number(node, names, path, what):
    child = _child(node, *names)
    try:
        return float(child.text)
    except (AttributeError, TypeError, ValueError):
        raise ValueError(f"weak labels: {path!r}: {what} has no numeric <{names[0]}>") from None


def _class_index(name, class_names, path):
    lookup = {n.lower(): i for i, n in enumerate(class_names)}
    key = (name or "").strip().lower()
    if key not in lookup:
        raise ValueError(
            f"weak labels: {path!r} names class {name!r}, which is not one of: "
            f"{', '.join(class_names)}"
        )
    return lookup[key]


def read_scribble_xml(path, shape=None, class_names=VOC_CLASSES, line_width=3, ignore_index=255):
    """int32 [H,W] label map of a ScribbleSup XML file (see the module doc); ``shape`` (H, W)
    when the file has no ``<size>``. Later strokes are drawn over earlier ones."""
    root = _parse_xml(path)
    size = _child(root, "size", "imagesize")
    if size is not None:
        h = int(_number(size, ("height", "nrows"), path, "<size>"))
        w = int(_number(size, ("width", "ncols"), path, "<size>"))
    elif shape is not None:
        h, w = (int(v) for v in shape[:2])
    else:
        raise ValueError(f"weak labels: {path!r} has no <size>; pass shape=(height, width)")
    out = np.full((h, w), ignore_index, np.int32)
    strokes = [c for c in root if c.tag.lower() in ("polygon", "scribble", "object")]
    for stroke in strokes:
        tag = _child(stroke, "tag", "name", "class")
        cls = _class_index(tag.text if tag is not None else None, class_names, path)
        points = [
            (
                int(round(_number(p, ("X", "x"), path, "<point>"))),
                int(round(_number(p, ("Y", "y"), path, "<point>"))),
            )
            for p in stroke
            if p.tag.lower() in ("point", "pt")
        ]
        if not points:
            continue
        pts = np.array(points, np.int32).reshape(-1, 1, 2)
        if len(points) == 1:
            cv2.circle(out, points[0], max(line_width // 2, 0), int(cls), -1)
        else:
            cv2.polylines(out, [pts], False, int(cls), int(line_width), cv2.LINE_8)
    return out


def read_scribble_png(path, num_classes=None, ignore_index=255):
    """int32 [H,W] class indices of a scribble PNG (grey or palette), 255 = unlabelled; with
    ``num_classes`` a value outside ``[0, num_classes)`` that is not 255 is a ValueError."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weak labels: no such file {path!r}")
    with Image.open(path) as img:
        if img.mode not in ("P", "L", "I", "I;16"):
            raise ValueError(
                f"weak labels: {path!r} is a {img.mode} image; scribble PNGs hold class indices "
                "(grey or palette), 255 for unlabelled pixels"
            )
        labels = np.asarray(img).astype(np.int32)
    if num_classes is not None:
        bad = (labels != ignore_index) & ((labels < 0) | (labels >= num_classes))
        if bad.any():
            raise ValueError(
                f"weak labels: {path!r} holds value {int(labels[bad][0])}, outside "
                f"[0, {num_classes}) and not {ignore_index} (unlabelled)"
            )
    return labels


def read_points_json(path):
    """``{image: [(y, x, cls, rank)]}`` of a Bearman et al. point file (see the module doc)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weak labels: no such file {path!r}")
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"weak labels: {path!r} is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"weak labels: {path!r} must map image names to lists of points")
    out = {}
    for image, points in data.items():
        rows = []
        for p in points or []:
            try:
                rows.append((float(p["y"]), float(p["x"]), int(p["cls"]), int(p.get("rank", 1))))
            except (KeyError, TypeError, ValueError):
                raise ValueError(
                    f"weak labels: {path!r}: a point of image {image!r} lacks numeric x, y, cls "
                    f"(got {p!r})"
                ) from None
        out[str(image)] = rows
    return out


def points_map(points, shape, radius=0, max_rank=None, ignore_index=255):
    """int32 [H,W] map of ``(y, x, cls[, rank])`` points: a disc of ``radius`` per point (0: one
    pixel), 255 elsewhere; ``max_rank`` keeps the points of annotators ranked up to it. Points
    outside the image are a ValueError naming them."""
    h, w = (int(v) for v in shape[:2])
    out = np.full((h, w), ignore_index, np.int32)
    for p in points:
        y, x, cls = p[0], p[1], p[2]
        if max_rank is not None and len(p) > 3 and p[3] > max_rank:
            continue
        yi, xi = int(round(y)), int(round(x))
        if not (0 <= yi < h and 0 <= xi < w):
            raise ValueError(f"weak labels: point (x={x}, y={y}) lies outside the {w}x{h} image")
        if radius > 0:
            cv2.circle(out, (xi, yi), int(radius), int(cls), -1)
        else:
            out[yi, xi] = int(cls)
    return out


def read_voc_boxes(path, class_names=VOC_CLASSES, skip_difficult=False):
    """(float32 [M,4] boxes y1,x1,y2,x2 (pixel edges), int32 [M] class indices) of a VOC
    annotation XML; VOC's 1-based inclusive ``xmin..xmax`` becomes ``x1 = xmin - 1, x2 = xmax``."""
    root = _parse_xml(path)
    boxes, classes = [], []
    for obj in root.iter("object"):
        name = _child(obj, "name")
        difficult = _child(obj, "difficult")
        if skip_difficult and difficult is not None and difficult.text.strip() == "1":
            continue
        cls = _class_index(name.text if name is not None else None, class_names, path)
        box = _child(obj, "bndbox")
        if box is None:
            raise ValueError(f"weak labels: {path!r}: object {name.text!r} has no <bndbox>")
        xmin, ymin = (_number(box, (k,), path, "<bndbox>") for k in ("xmin", "ymin"))
        xmax, ymax = (_number(box, (k,), path, "<bndbox>") for k in ("xmax", "ymax"))
        boxes.append((ymin - 1.0, xmin - 1.0, ymax, xmax))
        classes.append(cls)
    return np.array(boxes, np.float32).reshape(-1, 4), np.array(classes, np.int32)


def read_coco_boxes(annotation_file):
    """``({file_name: (boxes [M,4] y1,x1,y2,x2, classes [M])}, class_names)`` of a COCO
    instance file; categories in file order become 1..K (``class_names[0]`` is background)."""
    if not os.path.isfile(annotation_file):
        raise FileNotFoundError(f"weak labels: no such file {annotation_file!r}")
    import contextlib
    import io

    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(annotation_file)
    cat_ids = sorted(coco.getCatIds())
    index = {c: i + 1 for i, c in enumerate(cat_ids)}
    names = ["background"] + [coco.cats[c]["name"] for c in cat_ids]
    out = {}
    for image_id in sorted(coco.getImgIds()):
        info = coco.imgs[image_id]
        boxes, classes = [], []
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image_id], iscrowd=False)):
            x, y, w, h = ann["bbox"]
            if w <= 0 or h <= 0:
                continue
            boxes.append((y, x, y + h, x + w))
            classes.append(index[ann["category_id"]])
        out[info["file_name"]] = (
            np.array(boxes, np.float32).reshape(-1, 4),
            np.array(classes, np.int32),
        )
    return out, names
