"""``simulate``: weak labels derived from full masks, seeded, for controlled studies.

    scribbles = weak.simulate(mask, "scribbles")            # int32 [H,W], 255 = unlabelled
    points = weak.simulate(mask, "points", seed=0)          # int32 [H,W], 255 = unlabelled
    boxes, classes = weak.simulate(mask, "boxes")           # float32 [M,4] y1,x1,y2,x2; int32 [M]
    tags = weak.simulate(mask, "image", num_classes=4)      # int32 [num_classes] multi-hot

"Objects" are the connected components (8-connected) of each class's pixels; the background
(class ``background``, 0) counts as a class like the others for scribbles and points, so that a
model sees labelled background, as annotators draw it. A batch ``(N,H,W)`` or a list of masks gives
a list, image i drawn from ``numpy.random.default_rng([seed, i])``: the same seed gives the same
labels, whatever else is simulated.

- scribbles: the skeleton (``skimage.morphology.skeletonize``) of each component after an erosion
  of ``margin`` pixels (the whole component when erosion would empty it), drawn ``width`` pixels
  wide and clipped to the component, so every scribble pixel has its true class. ``fraction``
  below 1 keeps, per component, a random contiguous run of the skeleton's pixels (seeded).
- points: one random pixel per object, drawn from its interior (the pixels at least ``margin``
  from its border when there are any), grown to a disc of ``radius`` clipped to it; and on the
  background one click per background component, plus more drawn anywhere on its interior up to
  ``background_points`` clicks (default: as many as there are objects).
- boxes: the tight box of each non-background component (``y2``, ``x2`` one past the last pixel,
  the convention of the instance sets), optionally jittered by ``jitter`` x its size (seeded).
- image: the multi-hot vector of the classes present (background included when present).
"""

import cv2
import numpy as np

__all__ = ["KINDS", "simulate", "components"]

KINDS = ("scribbles", "points", "boxes", "image")


def components(mask, ignore_index=255, skip=()):
    """[(class, bool [H,W] component)] of every class of ``mask`` but ``skip`` and ignore."""
    out = []
    for cls in np.unique(mask):
        if cls == ignore_index or cls in skip:
            continue
        count, labels = cv2.connectedComponents((mask == cls).astype(np.uint8), connectivity=8)
        out.extend((int(cls), labels == k) for k in range(1, count))
    return out


def _erode(region, pixels):
    if pixels <= 0:
        return region
    kernel = np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)
    inner = cv2.erode(region.astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE) > 0
    return inner if inner.any() else region


def _scribbles(mask, rng, ignore_index, width, margin, fraction):
    from skimage.morphology import skeletonize

    out = np.full(mask.shape, ignore_index, np.int32)
    grow = np.ones((width, width), np.uint8) if width > 1 else None
    for cls, region in components(mask, ignore_index):
        skeleton = skeletonize(_erode(region, margin))
        if fraction < 1.0:
            ys, xs = np.nonzero(skeleton)
            order = np.lexsort((xs, ys))
            keep = max(1, int(round(fraction * len(order))))
            start = int(rng.integers(0, len(order) - keep + 1))
            skeleton = np.zeros_like(skeleton)
            sel = order[start : start + keep]
            skeleton[ys[sel], xs[sel]] = True
        if grow is not None:
            skeleton = cv2.dilate(skeleton.astype(np.uint8), grow) > 0
        out[skeleton & region] = cls
    return out


def _points(mask, rng, ignore_index, radius, margin, background, background_points):
    out = np.full(mask.shape, ignore_index, np.int32)
    parts = components(mask, ignore_index)
    objects = [(c, r) for c, r in parts if c != background]
    clicks = [(c, _erode(r, margin), r) for c, r in objects]
    ground = [r for c, r in parts if c == background]
    if ground:
        # As many background clicks as objects (at least one per background component),
        # spread over the background's interior: one click would be outweighed by the objects.
        n = len(objects) if background_points is None else int(background_points)
        inner = np.zeros(mask.shape, bool)
        region = np.zeros(mask.shape, bool)
        for r in ground:
            inner |= _erode(r, margin)
            region |= r
            clicks.append((background, _erode(r, margin), r))
        extra = max(n - len(ground), 0)
        clicks += [(background, inner, region)] * extra
    for cls, inner, region in clicks:
        ys, xs = np.nonzero(inner)
        k = int(rng.integers(0, len(ys)))
        disc = np.zeros(mask.shape, np.uint8)
        cv2.circle(disc, (int(xs[k]), int(ys[k])), int(radius), 1, -1)
        out[(disc > 0) & region] = cls
    return out


def _boxes(mask, rng, ignore_index, background, jitter):
    h, w = mask.shape
    boxes, classes = [], []
    for cls, region in components(mask, ignore_index, skip=(background,)):
        rows, cols = np.nonzero(region.any(1))[0], np.nonzero(region.any(0))[0]
        box = np.array([rows[0], cols[0], rows[-1] + 1, cols[-1] + 1], np.float32)
        if jitter:
            size = np.array([box[2] - box[0], box[3] - box[1]] * 2, np.float32)
            box = box + rng.uniform(-jitter, jitter, 4).astype(np.float32) * size
            box = np.clip(np.round(box), 0, [h, w, h, w]).astype(np.float32)
            box[2:] = np.maximum(box[2:], box[:2] + 1)
        boxes.append(box)
        classes.append(cls)
    return np.array(boxes, np.float32).reshape(-1, 4), np.array(classes, np.int32)


def _image(mask, num_classes, ignore_index):
    present = np.unique(mask)
    present = present[present != ignore_index]
    if present.size and (present.min() < 0 or present.max() >= num_classes):
        bad = present[(present < 0) | (present >= num_classes)][0]
        raise ValueError(
            f"simulate(kind='image'): mask value {int(bad)} is outside [0, {num_classes}) "
            f"(num_classes={num_classes}) and is not ignore_index={ignore_index}."
        )
    tags = np.zeros(num_classes, np.int32)
    tags[present.astype(np.int64)] = 1
    return tags


def simulate(
    masks,
    kind,
    seed=0,
    *,
    num_classes=None,
    ignore_index=255,
    background=0,
    width=3,
    margin=2,
    fraction=1.0,
    radius=1,
    jitter=0.0,
    background_points=None,
):
    """Weak labels of ``kind`` (one of ``KINDS``) from full masks; see the module doc.

    masks: int [H,W] (one mask: one result) or [N,H,W] / a list of [H,W] (a list of results).
    seed: an int, or a tuple of ints (e.g. ``(seed, index)`` to simulate one image of a stream).
    num_classes: needed for ``kind="image"`` (the vector's length).
    """
    if kind not in KINDS:
        raise ValueError(f"simulate: unknown kind {kind!r}; choose one of {', '.join(KINDS)}.")
    if kind == "image" and num_classes is None:
        raise ValueError("simulate(kind='image') needs num_classes (the multi-hot length).")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"simulate: fraction must be in (0, 1]; got {fraction}.")
    single = not isinstance(masks, (list, tuple)) and np.ndim(masks) == 2
    batch = [masks] if single else list(masks)
    results = []
    for i, mask in enumerate(batch):
        mask = np.asarray(mask)
        if mask.ndim == 3 and mask.shape[-1] == 1:
            mask = mask[..., 0]
        if mask.ndim != 2:
            raise ValueError(f"simulate expects masks [H,W] or [N,H,W]; got shape {mask.shape}.")
        mask = mask.astype(np.int64)
        base = [int(v) for v in seed] if isinstance(seed, (list, tuple)) else [int(seed)]
        rng = np.random.default_rng(base + [i])
        if kind == "scribbles":
            results.append(_scribbles(mask, rng, ignore_index, int(width), int(margin), fraction))
        elif kind == "points":
            results.append(
                _points(
                    mask, rng, ignore_index, int(radius), int(margin), background, background_points
                )
            )
        elif kind == "boxes":
            results.append(_boxes(mask, rng, ignore_index, background, float(jitter)))
        else:
            results.append(_image(mask, int(num_classes), ignore_index))
    return results[0] if single else results
