"""Weak supervision: segmentation models from image labels, points, scribbles and boxes.

Weak labels are data, one representation per kind:

- scribbles and points: sparse label maps int [H,W], 255 = unlabelled. ``data.prepare`` treats
  them as masks (nearest-neighbour resize, ignore padding), so they stay aligned.
- boxes: ``(boxes float32 [M,4] y1,x1,y2,x2, classes int32 [M])``; ``box_target`` turns them
  into an instance target whose masks are the filled boxes, which ``prepare`` augments and from
  which it recomputes the boxes, so boxes follow the crop, scale and flip exactly.
- image labels: a multi-hot vector int32 [num_classes], passed through ``prepare`` untouched.

Modules: ``simulate`` (weak labels from full masks, seeded), ``readers`` (ScribbleSup XML and
PNG, Bearman et al. points, VOC and COCO boxes), ``grabcut`` (box pseudo-masks), ``superpixels``
(ScribbleSup-style propagation with SLIC / Felzenszwalb, or Grady's random walker), ``crf``
(mean-field dense CRF over a local window, sharing its kernel with ``losses.GatedCRFLoss``),
``cam`` (classifier, CAMs, pseudo-masks), ``saliency`` (boundary-prior background, CAM + saliency
pseudo-masks) and ``packing`` (the image carried in ``y_true`` for the CRF loss).
"""

import numpy as np

from kerasseg.weak import cam, saliency
from kerasseg.weak.crf import crf
from kerasseg.weak.grabcut import grabcut
from kerasseg.weak.packing import PackedMeanIoU, PackedPixelAccuracy, pack, pack_image
from kerasseg.weak.readers import (
    VOC_CLASSES,
    points_map,
    read_coco_boxes,
    read_points_json,
    read_scribble_png,
    read_scribble_xml,
    read_voc_boxes,
)
from kerasseg.weak.simulate import KINDS, components, simulate
from kerasseg.weak.superpixels import SUPERPIXEL_METHODS, propagate, superpixels

__all__ = [
    "KINDS",
    "SUPERPIXEL_METHODS",
    "SUPERVISIONS",
    "VOC_CLASSES",
    "PackedMeanIoU",
    "PackedPixelAccuracy",
    "box_target",
    "cam",
    "components",
    "crf",
    "grabcut",
    "pack",
    "pack_image",
    "points_map",
    "propagate",
    "read_coco_boxes",
    "read_points_json",
    "read_scribble_png",
    "read_scribble_xml",
    "read_voc_boxes",
    "saliency",
    "simulate",
    "superpixels",
]

SUPERVISIONS = ("full",) + KINDS


def box_target(boxes, classes, shape):
    """``{"boxes", "classes", "masks"}`` for ``data.prepare``: masks uint8 [M,H,W] filled over
    each box (``y2``/``x2`` exclusive), so the pipeline's augmented, recomputed boxes are the
    boxes transformed with the image."""
    h, w = (int(v) for v in shape[:2])
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    masks = np.zeros((len(boxes), h, w), np.uint8)
    for k, (y1, x1, y2, x2) in enumerate(np.round(boxes).astype(int)):
        masks[k, max(y1, 0) : min(y2, h), max(x1, 0) : min(x2, w)] = 1
    return {"boxes": boxes, "classes": np.asarray(classes, np.int32), "masks": masks}
