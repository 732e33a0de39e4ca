"""`shapes`: a synthetic segmentation set generated in-process (no files, no download).

Each image has a textured background (gradients, stripes, checkers or colour blotches, plus noise)
and 2 to 8 filled shapes, more on larger images: circles, rectangles and triangles, turned at most
20 degrees from upright, overlapping but none hidden by more than a quarter. Colours are
drawn at random for the background and for every shape, so colour says nothing about the class:
a model has to tell the classes apart by their outline. Masks are rasterised without anti-aliasing
from the very polygons drawn into the image, so every labelled pixel is exactly a shape pixel.

    ds = kerasseg.datasets.load("shapes", split="train", seed=0, num_images=400)

Sample i of a split depends only on (seed, split, i): changing `num_images` adds or drops samples
without changing the others, and train/val/test never share a sample.
"""

import cv2
import numpy as np
import tensorflow as tf

from kerasseg.datasets._io import check_split
from kerasseg.datasets._registry import DatasetInfo, register_dataset

CLASS_NAMES = ("background", "circle", "rectangle", "triangle")
PALETTE = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [0, 130, 200]], np.uint8)
DEFAULT_NUM_IMAGES = {"train": 400, "val": 100, "test": 100}
_SPLIT_STREAM = {"train": 1, "val": 2, "test": 3}

INFO = DatasetInfo(
    name="shapes",
    num_classes=len(CLASS_NAMES),
    class_names=CLASS_NAMES,
    palette=PALETTE,
    ignore_index=255,
    splits=dict(DEFAULT_NUM_IMAGES),
    layout="generated in memory; no files",
    description=(
        "Synthetic shapes on textured backgrounds; classes are decided by geometry, not colour."
    ),
)


def _random_colour(rng, avoid, min_distance=130.0):
    """A colour at least `min_distance` (RGB Euclidean) from every colour in `avoid` when one can be
    found quickly, so shapes stay visible on any background."""
    best, best_d = None, -1.0
    for _ in range(30):
        c = rng.uniform(0, 255, 3)
        d = min(np.linalg.norm(c - a) for a in avoid) if avoid else np.inf
        if d >= min_distance:
            return c
        if d > best_d:
            best, best_d = c, d
    return best


def _background(rng, h, w):
    """float32 [h,w,3] texture around one base colour, and that colour.

    The texture varies by at most +-`amp` around the base colour: enough that a model cannot treat
    "not flat" as "shape", small next to the colour distance kept between shapes and background.
    """
    base = rng.uniform(0, 255, 3)
    amp = rng.uniform(10, 35)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    proj = xx * np.cos(angle) + yy * np.sin(angle)
    kind = rng.integers(4)
    if kind == 0:  # linear gradient
        t = (proj - proj.min()) / max(float(np.ptp(proj)), 1.0) * 2 - 1
    elif kind == 1:  # stripes
        t = np.sign(np.sin(2 * np.pi * proj / rng.uniform(4, 16)))
    elif kind == 2:  # checkerboard
        p = int(rng.integers(5, 20))
        t = ((xx // p + yy // p) % 2) * 2 - 1.0
    else:  # smooth blotches
        small = rng.uniform(-1, 1, (int(rng.integers(2, 6)), int(rng.integers(2, 6)))).astype(
            np.float32
        )
        t = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    direction = rng.uniform(-1, 1, 3)
    direction /= max(np.abs(direction).max(), 1e-6)
    img = base + amp * t[..., None] * direction
    return img.astype(np.float32), [base]


def _shape_polygon(rng, cls, cx, cy, size, max_rotation):
    """Integer polygon of a rectangle or triangle (circles are drawn by cv2.circle)."""
    # Orientation varies within +-max_rotation degrees of upright: outlines stay the cue, and a
    # small model learns them in the demo's few hundred steps.
    theta = np.radians(rng.uniform(-max_rotation, max_rotation))
    if cls == 2:  # rectangle, aspect 0.6..1
        sw, sh = size * 1.7, size * 1.7 * rng.uniform(0.6, 1.0)
        if rng.random() < 0.5:
            sw, sh = sh, sw
        pts = cv2.boxPoints(((cx, cy), (sw, sh), np.degrees(theta)))
    else:  # triangle pointing up, vertices ~120 degrees apart with jitter, never degenerate
        angles = theta - np.pi / 2 + np.array([0.0, 2.094, 4.189]) + rng.uniform(-0.2, 0.2, 3)
        radii = size * rng.uniform(1.1, 1.35, 3)
        pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)
    return np.round(pts).astype(np.int32)


def _stamp(rng, cls, h, w, max_rotation):
    """Binary mask of one random shape of class `cls`."""
    size = rng.uniform(8, 17)
    cx, cy = rng.uniform(0.1 * w, 0.9 * w), rng.uniform(0.1 * h, 0.9 * h)
    stamp = np.zeros((h, w), np.uint8)
    if cls == 1:
        cv2.circle(stamp, (int(round(cx)), int(round(cy))), int(round(size)), 1, -1, cv2.LINE_8)
    else:
        cv2.fillPoly(stamp, [_shape_polygon(rng, cls, cx, cy, size, max_rotation)], 1, cv2.LINE_8)
    return stamp.astype(bool)


def render_sample(
    rng, min_size=64, max_size=128, max_shapes=8, max_rotation=20.0, max_occlusion=0.25
):
    """One (image uint8 [H,W,3], mask uint8 [H,W]) drawn from a numpy Generator."""
    h, w = (int(v) for v in rng.integers(min_size, max_size + 1, 2))
    image, bg_colours = _background(rng, h, w)
    mask = np.zeros((h, w), np.uint8)
    instances = np.zeros((h, w), np.int32)  # which drawn shape owns each pixel (0: none)
    areas, visible = {}, {}  # drawn and still visible pixel counts per shape
    # Shape sizes are absolute (radius 8..17 px, not relative to the image) so that a small crop
    # still shows whole shapes and an outline fits a small network's receptive field.
    # The count grows with the area, so that any crop holds a few shapes to learn from.
    n = int(np.clip(round(h * w / rng.uniform(1000, 2000)), min(2, max_shapes), max_shapes))
    for k in range(1, n + 1):
        for _attempt in range(10):
            cls = int(rng.integers(1, len(CLASS_NAMES)))
            region = _stamp(rng, cls, h, w, max_rotation)
            # Shapes may overlap, but none may lose more than max_occlusion of its drawn area.
            hidden = np.bincount(instances[region], minlength=k)
            if region.any() and all(
                visible[j] - hidden[j] >= (1 - max_occlusion) * areas[j] for j in areas
            ):
                break
        else:
            continue
        colour = _random_colour(rng, bg_colours)
        if rng.random() < 0.3:  # a soft linear shading across the shape
            ys, xs = np.nonzero(region)
            a = rng.uniform(0, 2 * np.pi)
            t = xs * np.cos(a) + ys * np.sin(a)
            t = (t - t.min()) / max(float(np.ptp(t)), 1.0)
            image[ys, xs] = colour + rng.uniform(-25, 25, 3) * t[:, None]
        else:
            image[region] = colour
        mask[region] = cls
        for j in areas:
            visible[j] -= int(hidden[j])
        instances[region] = k
        areas[k] = visible[k] = int(region.sum())
    image += rng.standard_normal(image.shape, dtype=np.float32) * np.float32(rng.uniform(2, 6))
    image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    return image, mask


def generate(
    split="train",
    seed=0,
    num_images=None,
    min_size=64,
    max_size=128,
    max_shapes=8,
    max_rotation=20.0,
):
    """Lists of numpy images and masks for a split (what `load("shapes")` wraps)."""
    check_split("shapes", split, DEFAULT_NUM_IMAGES)
    n = DEFAULT_NUM_IMAGES[split] if num_images is None else int(num_images)
    if n < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    if not 8 <= min_size <= max_size:
        raise ValueError(
            f"need 8 <= min_size <= max_size, got min_size={min_size}, max_size={max_size}"
        )
    images, masks = [], []
    for i in range(n):
        rng = np.random.default_rng([int(seed), _SPLIT_STREAM[split], i])
        img, m = render_sample(rng, min_size, max_size, max_shapes, max_rotation)
        images.append(img)
        masks.append(m.astype(np.int32))
    return images, masks


@register_dataset("shapes", info=INFO, needs_data_dir=False)
def load_shapes(
    data_dir=None,
    split="train",
    seed=0,
    num_images=None,
    min_size=64,
    max_size=128,
    max_shapes=8,
    max_rotation=20.0,
):
    """Options: `seed` (default 0), `num_images` (default train 400 / val 100 / test 100), image
    side lengths drawn from [min_size, max_size], up to `max_shapes` shapes per image, rectangles
    and triangles turned up to `max_rotation` degrees from upright."""
    images, masks = generate(split, seed, num_images, min_size, max_size, max_shapes, max_rotation)

    def gen():
        yield from zip(images, masks)

    ds = tf.data.Dataset.from_generator(
        gen,
        output_signature=(
            tf.TensorSpec((None, None, 3), tf.uint8),
            tf.TensorSpec((None, None), tf.int32),
        ),
    )
    return ds.apply(tf.data.experimental.assert_cardinality(len(images)))
