"""`shapes_panoptic`: a synthetic panoptic set generated in-process (no files).

The objects of `shapes_instances` (circles, squares, triangles: the "thing" classes, counted
instance by instance) in front of two "stuff" regions, sky above and ground below a horizon at
a random height and tilt, each its own colour with a gradient and noise. Classes: 0 sky,
1 ground (stuff), 2 circle, 3 square, 4 triangle (things).

An example is ``(image uint8 [H,W,3], {"semantic": int32 [H,W], "instance_ids": int32 [H,W]})``:
the class of every pixel, and for thing pixels their instance's number in the image (1, 2, ...;
0 on stuff). The panoptic map of ``kerasseg.metrics.PanopticQuality`` is
``semantic * 1000 + instance_ids``.

    ds = kerasseg.datasets.load("shapes_panoptic", split="train", seed=0, num_images=200)

Sample i of a split depends only on (seed, split, i), and "train" and "val" never share one.
"""

import numpy as np
import tensorflow as tf

from kerasseg.datasets import shapes_instances
from kerasseg.datasets._io import check_split
from kerasseg.datasets._registry import DatasetInfo, register_dataset

STUFF_NAMES = ("sky", "ground")
CLASS_NAMES = STUFF_NAMES + shapes_instances.CLASS_NAMES
STUFF_CLASSES = (0, 1)
THING_CLASSES = (2, 3, 4)
PALETTE = np.concatenate([[[70, 130, 180], [152, 251, 152]], shapes_instances.PALETTE]).astype(
    np.uint8
)
DEFAULT_NUM_IMAGES = {"train": 400, "val": 100}
_SPLIT_STREAM = {"train": 21, "val": 22}
LABEL_DIVISOR = 1000

INFO = DatasetInfo(
    name="shapes_panoptic",
    num_classes=len(CLASS_NAMES),
    class_names=CLASS_NAMES,
    palette=PALETTE,
    ignore_index=255,
    splits=dict(DEFAULT_NUM_IMAGES),
    task="panoptic",
    thing_classes=THING_CLASSES,
    layout="generated in memory; no files",
    description=(
        "Synthetic panoptic segmentation: sky and ground (stuff) behind 2-5 circles, squares "
        "and triangles (things), later ones occluding earlier ones."
    ),
)

OUTPUT_SIGNATURE = (
    tf.TensorSpec((None, None, 3), tf.uint8),
    {
        "semantic": tf.TensorSpec((None, None), tf.int32),
        "instance_ids": tf.TensorSpec((None, None), tf.int32),
    },
)


def _sky_and_ground(rng, h, w, stuff):
    """Two regions split by a tilted horizon; writes the stuff classes into ``stuff``."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    horizon = rng.uniform(0.3, 0.7) * h + rng.uniform(-0.2, 0.2) * (xx - w / 2)
    below = yy >= horizon
    stuff[:] = np.where(below, 1, 0)
    sky = rng.uniform(0, 255, 3)
    ground = shapes_instances.distinct_colour(rng, [sky], min_distance=120.0)
    image = np.where(below[..., None], ground, sky).astype(np.float32)
    image += rng.uniform(5, 20) * ((yy / max(h - 1, 1)) - 0.5)[..., None]
    return image, [sky, ground]


def render_sample(rng, image_size=64, min_objects=2, max_objects=5, min_area=10):
    """``(image, {"semantic", "instance_ids"})`` drawn from a numpy Generator."""
    h, w = shapes_instances.image_hw(image_size)
    stuff = np.zeros((h, w), np.int32)

    def background(rng, h, w):
        return _sky_and_ground(rng, h, w, stuff)

    image, target, _ = shapes_instances.render_sample(
        rng, (h, w), min_objects, max_objects, min_area, background=background
    )
    semantic = stuff.copy()
    instance_ids = np.zeros((h, w), np.int32)
    for number, (cls, mask) in enumerate(zip(target["classes"], target["masks"]), start=1):
        semantic[mask > 0] = THING_CLASSES[int(cls)]
        instance_ids[mask > 0] = number
    return image, {"semantic": semantic, "instance_ids": instance_ids}


def generate(split="train", seed=0, num_images=None, image_size=64, min_objects=2, max_objects=5):
    """The ``(image, target)`` numpy samples of a split (what `load("shapes_panoptic")` wraps)."""
    check_split("shapes_panoptic", split, DEFAULT_NUM_IMAGES)
    n = DEFAULT_NUM_IMAGES[split] if num_images is None else int(num_images)
    if n < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    out = []
    for i in range(n):
        rng = np.random.default_rng([int(seed), _SPLIT_STREAM[split], i])
        out.append(render_sample(rng, image_size, int(min_objects), int(max_objects)))
    return out


@register_dataset("shapes_panoptic", info=INFO, needs_data_dir=False)
def load_shapes_panoptic(
    data_dir=None,
    split="train",
    seed=0,
    num_images=None,
    image_size=64,
    min_objects=2,
    max_objects=5,
):
    """Options: `seed` (0), `num_images` (train 400 / val 100), `image_size` (an int or
    (height, width), 64), `min_objects`/`max_objects` per image (2 and 5)."""
    samples = generate(split, seed, num_images, image_size, min_objects, max_objects)

    def gen():
        yield from samples

    ds = tf.data.Dataset.from_generator(gen, output_signature=OUTPUT_SIGNATURE)
    return ds.apply(tf.data.experimental.assert_cardinality(len(samples)))
