"""Instance targets in ``prepare``: the mask-aware transforms, box recomputation and padding.

An instance example is ``(image uint8 [H,W,3], {"boxes": float32 [M,4], "classes": int32 [M],
"masks": uint8 [M,H,W]})`` with boxes ``(y1, x1, y2, x2)`` in pixels (the tight box of the mask,
``x2`` = last column + 1) and M varying per example. ``prepare`` sends such datasets here and
returns fixed-shape batches ``(float32 [B,h,w,C] in [0,255], {"boxes": float32 [B,N,4],
"classes": int32 [B,N], "masks": uint8 [B,N,h,w]})`` with ``N = max_instances``.

- The masks go through exactly the geometry of the image (random scale, pad and crop, flip; the
  evaluation fit-and-pad), sampled by nearest neighbour at the pixel centres the image's bilinear
  resize reads, so image and masks stay aligned. Photometric distortion touches the image only.
- The output boxes are recomputed from the output masks (tight boxes); the input boxes are only
  checked. An instance whose mask is empty after the transforms (cropped away, or too thin to
  survive a down-scale) is dropped.
- When more than N instances remain, the N with the largest (output) mask area are kept, in their
  original order. Free slots are padding: box 0, class -1, mask 0.
- Mask values: any non-zero value is foreground; the output masks are 0/1.
- Target keys other than boxes, classes and masks are dropped.
- Checked inside the pipeline (a failed check stops iteration with an InvalidArgumentError whose
  message ``kerasseg.datasets.pipeline_error_message`` returns, and training reports as a
  ``DataError``): masks at another height and width than the image, a box with y2 < y1 or
  x2 < x1 (or not finite), counts of boxes, classes and masks that differ, a negative class.
  ``check_instance_example`` / ``check_instances`` run the same checks on the numpy side.
"""

import numpy as np
import tensorflow as tf

from kerasseg.data import transforms as T
from kerasseg.data.photometric import photometric as distort
from kerasseg.ops.masks import tight_boxes

__all__ = [
    "KEYS",
    "is_instance_spec",
    "check_spec",
    "standardize",
    "augmentation",
    "evaluation",
    "finalize",
    "batch",
    "tight_boxes",
    "check_instance_example",
    "check_instances",
]

KEYS = ("boxes", "classes", "masks")


def is_instance_spec(element_spec):
    """True when a dataset's element is ``(image, dict with boxes, classes and masks)``."""
    if not isinstance(element_spec, tuple) or len(element_spec) != 2:
        return False
    target = element_spec[1]
    return isinstance(target, dict) and all(k in target for k in KEYS)


def check_spec(element_spec, o):
    """ValueError for what the element spec or ``prepare``'s options already show is wrong."""
    image, target = element_spec
    ranks = {"boxes": 2, "classes": 1, "masks": 3}
    for key, rank in ranks.items():
        shape = getattr(target[key], "shape", None)
        if shape is None:
            raise ValueError(
                f"prepare: instance target {key!r} must be a tensor, got {target[key]}"
            )
        if shape.rank is not None and shape.rank != rank:
            raise ValueError(
                f"prepare: instance target {key!r} must have rank {rank} "
                f"(boxes [M,4], classes [M], masks [M,H,W]); got shape {shape}"
            )
    last = target["boxes"].shape
    if last.rank == 2 and last[-1] is not None and last[-1] != 4:
        raise ValueError(f"prepare: instance boxes must be [M,4] (y1, x1, y2, x2); got {last}")
    if image.shape.rank is not None and image.shape.rank not in (2, 3):
        raise ValueError(f"prepare expects images [H,W,C]; got shape {image.shape}")
    if o.cat_max_ratio is not None:
        raise ValueError("prepare: cat_max_ratio applies to semantic masks, not instance targets")
    if int(o.max_instances) < 1:
        raise ValueError(f"max_instances must be >= 1, got {o.max_instances}")


def _dense(value, dtype):
    if isinstance(value, tf.RaggedTensor):
        value = value.to_tensor()
    return tf.cast(value, dtype)


def _text(template, *values):
    """A string tensor: ``template`` with its ``{}`` replaced by the (scalar) ``values``."""
    return tf.strings.format(template, values)


def _first(bad, values, fill):
    """The first row of ``values`` where ``bad`` holds (``fill`` when none), and its index."""
    index = tf.argmax(tf.cast(tf.concat([bad, [False]], 0), tf.int32), output_type=tf.int32)
    return tf.gather(tf.concat([values, fill], 0), index), index


def _asserts(image, boxes, classes, masks):
    size, shape = tf.shape(image)[:2], tf.shape(masks)
    counts = tf.stack([tf.shape(boxes)[0], tf.shape(classes)[0], shape[0]])
    sizes = _text(
        "prepare: instance masks are {}x{} but their image is {}x{}; masks must be M x H x W at "
        "the image's height and width",
        shape[1],
        shape[2],
        size[0],
        size[1],
    )
    count_text = _text(
        "prepare: an instance target has {} boxes, {} classes and {} masks; each instance needs "
        "one box, one class and one mask",
        counts[0],
        counts[1],
        counts[2],
    )
    width = tf.shape(boxes)[1]
    checks = [
        tf.debugging.Assert(tf.reduce_all(tf.equal(shape[1:3], size)), [sizes]),
        tf.debugging.Assert(tf.reduce_all(tf.equal(counts, counts[2])), [count_text]),
        tf.debugging.Assert(
            tf.equal(width, 4), [_text("prepare: instance boxes must be M x 4, got M x {}", width)]
        ),
    ]
    with tf.control_dependencies(checks[2:]):
        finite = tf.reduce_all(tf.math.is_finite(boxes), 1)
        bad = ~finite | (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
        box, index = _first(bad, boxes, tf.zeros([1, 4]))
    box_text = _text(
        "prepare: instance box {} is (y1, x1, y2, x2) = ({}, {}, {}, {}): y2 < y1 or x2 < x1 (or "
        "not finite); boxes are y1, x1, y2, x2 in pixels",
        index,
        box[0],
        box[1],
        box[2],
        box[3],
    )
    negative, _ = _first(classes < 0, classes, [0])
    class_text = _text(
        "prepare: instance classes must be >= 0 (-1 marks padding); found {}", negative
    )
    checks.append(tf.debugging.Assert(tf.logical_not(tf.reduce_any(bad)), [box_text]))
    checks.append(tf.debugging.Assert(tf.reduce_all(classes >= 0), [class_text]))
    return checks


def standardize(image, target):
    """``(image, {"boxes", "classes", "masks"}) -> (float32 image, {"classes", "masks" 0/1})``,
    after the checks of the module docstring (the boxes are recomputed later)."""
    image = tf.convert_to_tensor(image)
    if image.shape.rank == 2:  # grey without a channel axis
        image = image[..., None]
    boxes = _dense(target["boxes"], tf.float32)
    classes = _dense(target["classes"], tf.int32)
    masks = tf.cast(_dense(target["masks"], tf.bool), tf.uint8)
    with tf.control_dependencies(_asserts(image, boxes, classes, masks)):
        image = tf.cast(tf.identity(image), tf.float32)
        classes, masks = tf.identity(classes), tf.identity(masks)
    masks = tf.ensure_shape(masks, [None, None, None])
    return image, {"classes": tf.ensure_shape(classes, [None]), "masks": masks}


def _nearest(offset, length, source, new):
    """Source indices of output pixels ``offset .. offset + length - 1`` when ``source`` pixels
    are resized to ``new``: the pixel under each output pixel's centre (tf.image.resize's nearest,
    where its bilinear reads)."""
    step = tf.cast(source, tf.float32) / tf.cast(new, tf.float32)
    centres = (tf.cast(offset + tf.range(length), tf.float32) + 0.5) * step
    return tf.clip_by_value(tf.cast(tf.floor(centres), tf.int32), 0, source - 1)


def _sample_masks(masks, new_size, offset, window):
    """The ``window`` at ``offset`` of ``masks`` [M,H,W] resized to ``new_size`` (nearest)."""
    shape = tf.shape(masks)
    rows = _nearest(offset[0], window[0], shape[1], new_size[0])
    cols = _nearest(offset[1], window[1], shape[2], new_size[1])
    return tf.gather(tf.gather(masks, rows, axis=1), cols, axis=2)


def _pad(image, masks, height, width):
    """Pad bottom/right up to at least (height, width): image and masks with 0."""
    image, _ = T.pad_to(image, None, height, width, 0)
    shape = tf.shape(masks)
    pad_h, pad_w = tf.maximum(height - shape[1], 0), tf.maximum(width - shape[2], 0)
    return image, tf.pad(masks, [[0, 0], [0, pad_h], [0, pad_w]])


def _pad_multiple(image, masks, multiple):
    shape = tf.shape(image)
    return _pad(
        image,
        masks,
        (shape[0] + multiple - 1) // multiple * multiple,
        (shape[1] + multiple - 1) // multiple * multiple,
    )


def _scale_and_crop(image, masks, seed, o):
    size = tf.shape(image)[:2]
    scaled = o.scale_range is not None
    new_size = T.scaled_size(image, seed, o.scale_range, o.base_size) if scaled else size
    if o.crop is None:
        if scaled:
            image = T.resize(image, None, new_size)[0]
            masks = _sample_masks(masks, new_size, (0, 0), new_size)
        return image, masks
    crop = tf.constant(o.crop, tf.int32)
    window = tf.minimum(new_size, crop)
    y, x = T.choose_offsets(new_size, o.crop, seed, None, 0, None, 0)
    if scaled:
        image = T.window_sampler(image, new_size, window, "bilinear")(y, x)
    else:
        image = image[y : y + window[0], x : x + window[1]]
    masks = _sample_masks(masks, new_size, (y, x), window)
    return _pad(image, masks, o.crop[0], o.crop[1])


def finalize(image, classes, masks, max_instances):
    """Recompute the boxes, drop empty masks, keep the ``max_instances`` largest and pad to that
    many slots: ``(image, {"boxes", "classes", "masks"})``."""
    boxes, present = tight_boxes(masks)
    boxes, classes, masks = (tf.boolean_mask(t, present) for t in (boxes, classes, masks))
    area = tf.reduce_sum(tf.cast(masks, tf.int32), axis=[1, 2])
    count = tf.minimum(tf.shape(area)[0], max_instances)
    keep = tf.sort(tf.math.top_k(area, k=count, sorted=True).indices)
    boxes, classes, masks = (tf.gather(t, keep) for t in (boxes, classes, masks))
    free = max_instances - count
    target = {
        "boxes": tf.ensure_shape(tf.pad(boxes, [[0, free], [0, 0]]), [max_instances, 4]),
        "classes": tf.ensure_shape(
            tf.pad(classes, [[0, free]], constant_values=-1), [max_instances]
        ),
        "masks": tf.ensure_shape(
            tf.pad(masks, [[0, free], [0, 0], [0, 0]]), [max_instances, None, None]
        ),
    }
    return image, target


def augmentation(o, photo_channels):
    """The training map ``((image, target), seed) -> (image, target)``."""
    strengths = (float(o.brightness_delta), o.contrast_range, o.saturation_range)
    strengths += (float(o.hue_delta),)
    max_instances = int(o.max_instances)

    def augment(element, seed):
        image, target = element
        image, masks = _scale_and_crop(image, target["masks"], seed, o)
        if o.flip:
            do_flip = T.uniform(seed, T.S_FLIP, 0.0, 1.0) < 0.5
            image = tf.cond(do_flip, lambda: tf.reverse(image, [1]), lambda: image)
            masks = tf.cond(do_flip, lambda: tf.reverse(masks, [2]), lambda: masks)
        if o.photometric:
            image = distort(image, seed, *strengths, channels=photo_channels)
        if o.pad_multiple:
            image, masks = _pad_multiple(image, masks, int(o.pad_multiple))
        return finalize(image, target["classes"], masks, max_instances)

    return augment


def evaluation(o):
    """The evaluation map: fit within and pad to ``crop`` (masks alike), then ``pad_multiple``."""
    max_instances = int(o.max_instances)

    def evaluate(image, target):
        masks = target["masks"]
        if o.crop is not None:
            image, _ = T.fit_within(image, None, o.crop)
            new_size = tf.shape(image)[:2]
            masks = _sample_masks(masks, new_size, (0, 0), new_size)
            image, masks = _pad(image, masks, o.crop[0], o.crop[1])
        if o.pad_multiple:
            image, masks = _pad_multiple(image, masks, int(o.pad_multiple))
        return finalize(image, target["classes"], masks, max_instances)

    return evaluate


def batch(ds, o):
    """Fixed-shape batches for a crop (static shapes set); else padded to the largest image."""
    fixed = o.crop is not None
    if fixed or o.batch_size == 1:
        ds = ds.batch(o.batch_size, drop_remainder=o.drop_remainder)
    else:
        padding = (0.0, {"boxes": 0.0, "classes": -1, "masks": tf.constant(0, tf.uint8)})
        ds = ds.padded_batch(o.batch_size, padding_values=padding, drop_remainder=o.drop_remainder)
    if not fixed:
        return ds
    multiple = o.pad_multiple
    h = o.crop[0] if not multiple else -(-o.crop[0] // multiple) * multiple
    w = o.crop[1] if not multiple else -(-o.crop[1] // multiple) * multiple
    channels, n = ds.element_spec[0].shape[-1], int(o.max_instances)

    def set_static(image, target):
        image = tf.ensure_shape(image, (None, h, w, channels))
        target = dict(target, masks=tf.ensure_shape(target["masks"], (None, n, h, w)))
        return image, target

    return ds.map(set_static)


# ----------------------------------------------------------------------------- numpy side


def check_instance_example(image, target, num_classes=None, where="instance example"):
    """Check one ``(image, {"boxes", "classes", "masks"})`` example in numpy before training;
    raises ValueError saying what is wrong (``where`` names the example in the message)."""
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"{where}: the image must be [H,W,C]; got shape {image.shape}")
    missing = [k for k in KEYS if k not in target]
    if missing:
        raise ValueError(f"{where}: the target lacks {missing} (needs boxes, classes, masks)")
    boxes, classes, masks = (np.asarray(target[k]) for k in KEYS)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{where}: boxes must be [M,4] (y1, x1, y2, x2); got {boxes.shape}")
    if classes.ndim != 1 or masks.ndim != 3:
        raise ValueError(
            f"{where}: classes must be [M] and masks [M,H,W]; got {classes.shape}, {masks.shape}"
        )
    if not len(boxes) == len(classes) == len(masks):
        raise ValueError(
            f"{where}: {len(boxes)} boxes, {len(classes)} classes and {len(masks)} masks; each "
            "instance needs one box, one class and one mask"
        )
    if masks.shape[1:] != image.shape[:2]:
        raise ValueError(
            f"{where}: masks are {masks.shape[1]}x{masks.shape[2]} but the image is "
            f"{image.shape[0]}x{image.shape[1]}; masks must have the image's height and width"
        )
    bad = ~np.isfinite(boxes).all(1) | (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"{where}: box {i} is (y1, x1, y2, x2) = {tuple(boxes[i].tolist())}: y2 < y1 or "
            "x2 < x1 (or not finite); boxes are y1, x1, y2, x2 in pixels"
        )
    if classes.size and (classes.min() < 0 or (num_classes and classes.max() >= num_classes)):
        top = f"{num_classes - 1}" if num_classes else "K-1"
        raise ValueError(f"{where}: classes must lie in 0..{top}; found {classes.tolist()}")


def check_instances(examples, num_classes=None, limit=None):
    """``check_instance_example`` on each example of a dataset (or any iterable of pairs), the
    first ``limit`` only when given; returns how many were checked."""
    if isinstance(examples, tf.data.Dataset):
        examples = examples.as_numpy_iterator()
    count = 0
    for count, (image, target) in enumerate(examples, 1):
        check_instance_example(image, target, num_classes, where=f"instance example {count - 1}")
        if limit is not None and count >= limit:
            break
    return count
