"""``grabcut``: box pseudo-masks with OpenCV's GrabCut (the BoxSup / Box2Seg initialisation).

    labels = weak.grabcut(image, boxes, classes)   # int32 [H,W]: 0 outside the boxes,
                                                   # the box's class on GrabCut's foreground,
                                                   # 255 inside a box where GrabCut said background

Each box (``y1, x1, y2, x2`` in pixels, ``y2``/``x2`` one past the last pixel) is cut on its own,
GrabCut initialised with the rectangle (everything outside it is certain background) and run
``iterations`` times; its result is clipped to the box, so a pseudo-mask never leaves its box.
Larger boxes are drawn first, so a small object inside a large box keeps its class. A box where
GrabCut fails (too small, no background outside it, or a foreground of less than
``min_fraction`` of the box) falls back to the ellipse inscribed in the box's inner 80%.
Box pixels GrabCut calls background are left unlabelled (255) unless another box claims them:
only the pixels outside every box are certain background. OpenCV's RNG is seeded per call, so
the result is reproducible.
"""

import cv2
import numpy as np

__all__ = ["grabcut"]


def _fallback(h, w, y1, x1, y2, x2):
    region = np.zeros((h, w), np.uint8)
    centre = (int(round((x1 + x2 - 1) / 2)), int(round((y1 + y2 - 1) / 2)))
    axes = (max(int(0.4 * (x2 - x1)), 0), max(int(0.4 * (y2 - y1)), 0))
    cv2.ellipse(region, centre, axes, 0, 0, 360, 1, -1)
    return region > 0


def _cut(bgr, box, iterations, min_fraction, seed):
    h, w = bgr.shape[:2]
    y1, x1, y2, x2 = box
    inside = np.zeros((h, w), bool)
    inside[y1:y2, x1:x2] = True
    fallback = _fallback(h, w, y1, x1, y2, x2) & inside
    covers_all = y1 == 0 and x1 == 0 and y2 == h and x2 == w
    if y2 - y1 < 3 or x2 - x1 < 3 or covers_all:
        return fallback
    mask = np.zeros((h, w), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(int(seed))
    try:
        cv2.grabCut(
            bgr, mask, (x1, y1, x2 - x1, y2 - y1), bgd, fgd, int(iterations), cv2.GC_INIT_WITH_RECT
        )
    except cv2.error:
        return fallback
    fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)) & inside
    if fg.sum() < min_fraction * inside.sum():
        return fallback
    return fg


def grabcut(
    image, boxes, classes, iterations=5, ignore_index=255, background=0, min_fraction=0.1, seed=0
):
    """int32 [H,W] pseudo-mask of ``image`` (uint8 [H,W,3] RGB, or grey) from its boxes; see the
    module doc."""
    image = np.asarray(image)
    if image.ndim == 2 or image.shape[-1] == 1:
        image = np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, -1)
    if image.ndim != 3 or image.shape[-1] < 3:
        raise ValueError(f"grabcut expects an image [H,W,3]; got shape {image.shape}")
    h, w = image.shape[:2]
    bgr = np.ascontiguousarray(np.clip(image[..., 2::-1], 0, 255).astype(np.uint8))
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    classes = np.asarray(classes).reshape(-1)
    if len(boxes) != len(classes):
        raise ValueError(f"grabcut: {len(boxes)} boxes but {len(classes)} classes")
    out = np.full((h, w), background, np.int32)
    claimed = np.zeros((h, w), bool)
    pixel_boxes = []
    for box in boxes:
        y1, x1 = int(np.floor(max(box[0], 0))), int(np.floor(max(box[1], 0)))
        y2, x2 = int(np.ceil(min(box[2], h))), int(np.ceil(min(box[3], w)))
        pixel_boxes.append((y1, x1, max(y2, y1), max(x2, x1)))
    areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in pixel_boxes]
    for k in np.argsort(areas, kind="stable")[::-1]:
        y1, x1, y2, x2 = pixel_boxes[k]
        if y2 <= y1 or x2 <= x1:
            continue
        fg = _cut(bgr, pixel_boxes[k], iterations, min_fraction, seed)
        inside = np.zeros((h, w), bool)
        inside[y1:y2, x1:x2] = True
        out[fg] = int(classes[k])
        claimed |= fg
        out[inside & ~claimed] = ignore_index
    return out
