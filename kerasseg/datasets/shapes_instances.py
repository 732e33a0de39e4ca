"""`shapes_instances`: a synthetic instance-segmentation set generated in-process (no files).

Each image (64x64 by default, option `image_size`) has a random-ish background (a base colour, a
soft linear gradient and noise) and 2 to 5 objects of the classes circle, square and triangle,
drawn with OpenCV in distinct random colours (each far from the background's and from the other
objects' colours). Sizes, positions and rotations are random; the same class may appear several
times in one image, and objects may overlap: later objects occlude earlier ones, so an earlier
instance's mask loses the pixels a later one covers. An instance whose visible area would fall
under `min_area` pixels (10 by default) is redrawn elsewhere (up to 10 tries) and otherwise left
out, so every instance has at least `min_area` visible pixels and masks never overlap.
Shapes are rasterised without anti-aliasing and coloured exactly over their masks.

An example is ``(image uint8 [H,W,3], {"boxes": float32 [M,4], "classes": int32 [M],
"masks": uint8 [M,H,W]})``: boxes are ``(y1, x1, y2, x2)`` in pixels, the tight box of the mask
(``y2`` = last row + 1, ``x2`` = last column + 1); classes are 0 circle, 1 square, 2 triangle
(no background class); masks are 0/1. M varies from image to image (the element spec has None
for it).

    ds = kerasseg.datasets.load("shapes_instances", split="train", seed=0, num_images=200)

Sample i of a split depends only on (seed, split, i): changing `num_images` adds or drops samples
without changing the others, and "train" and "val" never share a sample. Generation takes well
under a millisecond per 64x64 image.
"""

import cv2
import numpy as np
import tensorflow as tf

from kerasseg.datasets._io import check_split
from kerasseg.datasets._registry import DatasetInfo, register_dataset

CLASS_NAMES = ("circle", "square", "triangle")
PALETTE = np.array([[230, 25, 75], [60, 180, 75], [0, 130, 200]], np.uint8)
DEFAULT_NUM_IMAGES = {"train": 400, "val": 100}
_SPLIT_STREAM = {"train": 11, "val": 12}

INFO = DatasetInfo(
    name="shapes_instances",
    num_classes=len(CLASS_NAMES),
    class_names=CLASS_NAMES,
    palette=PALETTE,
    ignore_index=255,
    splits=dict(DEFAULT_NUM_IMAGES),
    task="instance",
    layout="generated in memory; no files",
    description=(
        "Synthetic instance segmentation: 2-5 overlapping circles, squares and triangles per "
        "image, later ones occluding earlier ones."
    ),
)

OUTPUT_SIGNATURE = (
    tf.TensorSpec((None, None, 3), tf.uint8),
    {
        "boxes": tf.TensorSpec((None, 4), tf.float32),
        "classes": tf.TensorSpec((None,), tf.int32),
        "masks": tf.TensorSpec((None, None, None), tf.uint8),
    },
)


def masks_to_boxes(masks):
    """float32 [M,4] tight boxes ``(y1, x1, y2, x2)`` of 0/1 masks [M,H,W] (``y2``/``x2`` one
    past the last row/column); an empty mask gets an all-zero box."""
    masks = np.asarray(masks).astype(bool)
    boxes = np.zeros((len(masks), 4), np.float32)
    for i, m in enumerate(masks):
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        if rows.size:
            boxes[i] = (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1)
    return boxes


def image_hw(image_size):
    if np.isscalar(image_size):
        h = w = image_size
    else:
        try:
            h, w = image_size
        except (TypeError, ValueError):
            raise ValueError(
                f"image_size must be an int or (height, width), got {image_size!r}"
            ) from None
    if int(h) != h or int(w) != w or min(int(h), int(w)) < 16:
        raise ValueError(f"image_size must be whole numbers >= 16, got {image_size!r}")
    return int(h), int(w)


def distinct_colour(rng, avoid, min_distance=100.0):
    """A random RGB colour at least `min_distance` from each of `avoid` (or the farthest of 30
    tries)."""
    best, best_d = None, -1.0
    for _ in range(30):
        c = rng.uniform(0, 255, 3)
        d = min(float(np.linalg.norm(c - a)) for a in avoid) if avoid else np.inf
        if d >= min_distance:
            return c
        if d > best_d:
            best, best_d = c, d
    return best


def _background(rng, h, w):
    base = rng.uniform(0, 255, 3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    t = xx * np.cos(angle) + yy * np.sin(angle)
    t = (t - t.min()) / max(float(np.ptp(t)), 1.0) - 0.5
    direction = rng.uniform(-1, 1, 3)
    image = base + rng.uniform(10, 40) * t[..., None] * direction
    return image.astype(np.float32), base


def _draw(rng, cls, h, w):
    """bool [h,w] mask of one random shape of class `cls` (0 circle, 1 square, 2 triangle)."""
    side = min(h, w)
    r = rng.uniform(0.08, 0.2) * side
    cx, cy = rng.uniform(0.1 * w, 0.9 * w), rng.uniform(0.1 * h, 0.9 * h)
    canvas = np.zeros((h, w), np.uint8)
    if cls == 0:
        cv2.circle(canvas, (int(round(cx)), int(round(cy))), max(int(round(r)), 2), 1, -1)
    elif cls == 1:
        pts = cv2.boxPoints(((cx, cy), (1.6 * r, 1.6 * r), rng.uniform(0, 90)))
        cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], 1, cv2.LINE_8)
    else:
        angles = rng.uniform(0, 2 * np.pi) + np.array([0.0, 2.094, 4.189])
        angles += rng.uniform(-0.25, 0.25, 3)
        pts = np.stack([cx + 1.2 * r * np.cos(angles), cy + 1.2 * r * np.sin(angles)], 1)
        cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], 1, cv2.LINE_8)
    return canvas.astype(bool)


def render_sample(rng, image_size=64, min_objects=2, max_objects=5, min_area=10, background=None):
    """One sample drawn from a numpy Generator: ``(image, target, drawn)`` where `target` is the
    example's dict and `drawn` (bool [M,H,W]) holds each kept object's whole drawn shape, before
    later objects occluded it (``masks[i] == drawn[i] & ~drawn[i+1:].any(0)``).
    ``background(rng, h, w)`` -> (float32 image, [its colours]) paints what lies behind the
    objects (default: one colour with a gradient); object colours stay far from its colours."""
    h, w = image_hw(image_size)
    if background is None:
        image, base = _background(rng, h, w)
        base = [base]
    else:
        image, base = background(rng, h, w)
    n = int(rng.integers(min_objects, max_objects + 1))
    owner = np.zeros((h, w), np.int32)  # 1 + index in `drawn` of the object shown at a pixel
    drawn, classes, colours = [], [], list(base)
    for _ in range(n):
        cls = int(rng.integers(len(CLASS_NAMES)))
        k = len(drawn) + 1
        for _attempt in range(10):
            shape = _draw(rng, cls, h, w)
            left = np.bincount(owner[~shape], minlength=k)[1:]  # what stays visible of each
            if shape.sum() >= min_area and (left >= min_area).all():
                break
        else:
            continue  # no room for it: left out
        colour = distinct_colour(rng, colours)
        colours.append(colour)
        image[shape] = colour
        owner[shape] = k
        drawn.append(shape)
        classes.append(cls)
    masks = owner[None] == np.arange(1, len(drawn) + 1)[:, None, None]
    visible = masks.sum(axis=(1, 2)) >= min_area
    masks = masks[visible].astype(np.uint8)
    drawn = np.asarray(drawn, bool).reshape(-1, h, w)[visible]
    classes = np.asarray(classes, np.int32)[visible]
    image += rng.standard_normal(image.shape, dtype=np.float32) * np.float32(rng.uniform(2, 6))
    image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    target = {"boxes": masks_to_boxes(masks), "classes": classes, "masks": masks}
    return image, target, drawn


def _check_options(split, num_images, image_size, min_objects, max_objects, min_area):
    check_split("shapes_instances", split, DEFAULT_NUM_IMAGES)
    n = DEFAULT_NUM_IMAGES[split] if num_images is None else int(num_images)
    if n < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    image_hw(image_size)
    if not 1 <= int(min_objects) <= int(max_objects):
        raise ValueError(
            f"need 1 <= min_objects <= max_objects, got min_objects={min_objects}, "
            f"max_objects={max_objects}"
        )
    if int(min_area) < 1:
        raise ValueError(f"min_area must be >= 1 pixel, got {min_area}")
    return n


def generate(
    split="train",
    seed=0,
    num_images=None,
    image_size=64,
    min_objects=2,
    max_objects=5,
    min_area=10,
    with_drawn=False,
):
    """A list of ``(image, target)`` numpy samples of a split (what `load("shapes_instances")`
    wraps); with `with_drawn`, ``(image, target, drawn)`` triples (see `render_sample`)."""
    n = _check_options(split, num_images, image_size, min_objects, max_objects, min_area)
    out = []
    for i in range(n):
        rng = np.random.default_rng([int(seed), _SPLIT_STREAM[split], i])
        sample = render_sample(rng, image_size, int(min_objects), int(max_objects), int(min_area))
        out.append(sample if with_drawn else sample[:2])
    return out


@register_dataset("shapes_instances", info=INFO, needs_data_dir=False)
def load_shapes_instances(
    data_dir=None,
    split="train",
    seed=0,
    num_images=None,
    image_size=64,
    min_objects=2,
    max_objects=5,
    min_area=10,
):
    """Options: `seed` (default 0), `num_images` (default train 400 / val 100), `image_size`
    (an int or (height, width), default 64), `min_objects`/`max_objects` drawn per image (2 and
    5; an object that cannot be placed is left out) and `min_area`, the fewest visible pixels
    an instance keeps (10)."""
    samples = generate(split, seed, num_images, image_size, min_objects, max_objects, min_area)

    def gen():
        yield from samples

    ds = tf.data.Dataset.from_generator(gen, output_signature=OUTPUT_SIGNATURE)
    return ds.apply(tf.data.experimental.assert_cardinality(len(samples)))
