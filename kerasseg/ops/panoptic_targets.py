"""Training targets of the panoptic models, derived in the graph from ``(semantic, instance_ids)``.

Panoptic batches carry two int32 maps ``[B, H, W]`` (``kerasseg.data.prepare``): each pixel's
class (``ignore_index`` void) and, on thing pixels, its instance's number (0 on stuff and on
crowd regions). From those:

- ``instance_targets``: Mask R-CNN's per-instance boxes, classes (the index among the thing
  classes) and masks, the ``max_instances`` largest instances of each image, padded with class -1;
- ``center_targets``: Panoptic-DeepLab's centre heatmap (a Gaussian of ``sigma`` px at each
  instance's centre of mass) and offsets (from each thing pixel to its instance's centre);
- ``stuff_targets``: Panoptic FPN's semantic labels, stuff classes 1..S with every thing pixel
  (crowd included) one class 0 "things", void kept void.
"""

import tensorflow as tf

from kerasseg.ops.masks import tight_boxes

__all__ = ["class_lookup", "instance_targets", "center_targets", "stuff_targets"]

LABEL_DIVISOR = 1000


def class_lookup(num_classes, chosen):
    """int32 [num_classes + 1]: the position of each class in ``chosen``, -1 elsewhere (the last
    entry catches out-of-range labels such as void)."""
    table = [-1] * (num_classes + 1)
    for position, cls in enumerate(chosen):
        table[int(cls)] = position
    return tf.constant(table, tf.int32)


def _lookup(table, labels):
    size = tf.shape(table)[0]
    index = tf.where((labels < 0) | (labels >= size - 1), size - 1, labels)
    return tf.gather(table, index)


def instance_targets(semantic, instance_ids, thing_table, max_instances):
    """-> {"boxes" float32 [B, M, 4], "classes" int32 [B, M], "masks" uint8 [B, M, H, W]}.

    ``thing_table``: ``class_lookup(num_classes, thing_classes)``. An instance is a (class,
    number) pair with number > 0 on a thing class; per image the ``max_instances`` largest are
    kept (slots in decreasing area), the rest of the slots padded (box 0, class -1, mask 0).
    """
    semantic = tf.cast(semantic, tf.int32)
    instance_ids = tf.cast(instance_ids, tf.int32)
    thing_index = _lookup(thing_table, semantic)
    keys = tf.where(
        (thing_index >= 0) & (instance_ids > 0), semantic * LABEL_DIVISOR + instance_ids, -1
    )

    def one(image_keys):
        flat = tf.reshape(image_keys, [-1])
        unique, index = tf.unique(flat)
        area = tf.math.unsorted_segment_sum(tf.ones_like(flat), index, tf.shape(unique)[0])
        area = tf.where(unique < 0, -1, area)
        count = tf.minimum(tf.shape(unique)[0], max_instances)
        top = tf.math.top_k(area, k=count)
        chosen = tf.where(top.values > 0, tf.gather(unique, top.indices), -1)
        chosen = tf.pad(chosen, [[0, max_instances - count]], constant_values=-1)
        masks = tf.equal(image_keys[None], chosen[:, None, None]) & (chosen[:, None, None] >= 0)
        classes = tf.where(chosen >= 0, _lookup(thing_table, chosen // LABEL_DIVISOR), -1)
        masks = tf.cast(masks, tf.uint8)
        boxes, _ = tight_boxes(masks)
        return boxes, classes, masks

    boxes, classes, masks = tf.map_fn(
        one,
        keys,
        fn_output_signature=(
            tf.TensorSpec([max_instances, 4], tf.float32),
            tf.TensorSpec([max_instances], tf.int32),
            tf.TensorSpec([max_instances, None, None], tf.uint8),
        ),
    )
    return {"boxes": boxes, "classes": classes, "masks": masks}


def center_targets(masks, valid, sigma):
    """Centre heatmap float32 [B, H, W] and offsets float32 [B, H, W, 2] (dy, dx) of instance
    masks [B, M, H, W] (``valid`` bool [B, M] marks the real slots)."""
    masks = tf.cast(masks, tf.float32) * tf.cast(valid, tf.float32)[:, :, None, None]
    height, width = tf.shape(masks)[2], tf.shape(masks)[3]
    ys = tf.cast(tf.range(height), tf.float32)[None, None, :, None]
    xs = tf.cast(tf.range(width), tf.float32)[None, None, None, :]
    area = tf.reduce_sum(masks, axis=[2, 3])
    safe = tf.maximum(area, 1.0)
    cy = tf.reduce_sum(masks * ys, axis=[2, 3]) / safe  # [B, M]
    cx = tf.reduce_sum(masks * xs, axis=[2, 3]) / safe
    present = tf.cast(area > 0, tf.float32)[:, :, None, None]
    distance = (ys - cy[:, :, None, None]) ** 2 + (xs - cx[:, :, None, None]) ** 2
    gauss = tf.exp(-distance / (2.0 * float(sigma) ** 2)) * present
    heatmap = tf.reduce_max(gauss, axis=1) if masks.shape[1] != 0 else tf.reduce_sum(gauss, 1)
    dy = tf.reduce_sum(masks * (cy[:, :, None, None] - ys), axis=1)
    dx = tf.reduce_sum(masks * (cx[:, :, None, None] - xs), axis=1)
    return heatmap, tf.stack([dy, dx], axis=-1)


def stuff_targets(semantic, stuff_table, ignore_index=255):
    """Panoptic FPN's semantic labels: 0 on thing classes, 1 + position among the stuff classes
    on stuff, ``ignore_index`` on void (anything in neither list)."""
    semantic = tf.cast(semantic, tf.int32)
    stuff = _lookup(stuff_table, semantic)
    size = tf.shape(stuff_table)[0] - 1
    in_range = (semantic >= 0) & (semantic < size)
    labelled = in_range & (semantic != ignore_index)
    is_thing = labelled & (stuff < 0)
    return tf.where(stuff >= 0, stuff + 1, tf.where(is_thing, 0, ignore_index))
