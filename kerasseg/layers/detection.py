"""Layers of a two-stage detector's inference graph: proposals, ROIAlign, detections.

Each wraps a function of ``kerasseg.ops.boxes`` / ``kerasseg.ops.roi_align`` so that the graph
is a plain functional model that saves to ``.keras`` and exports; training calls the same ops
from ``train_step`` with the training-time sizes.
"""

import math

import keras
import tensorflow as tf

from kerasseg.ops import boxes as B
from kerasseg.ops.roi_align import fpn_levels, multilevel_roi_align

__all__ = [
    "Detections",
    "MaskSelect",
    "MultiLevelRoiAlign",
    "Proposals",
    "align_boxes",
    "align_pyramid",
    "detect_boxes",
    "level_anchors",
    "propose",
]


def level_anchors(level_maps, strides, sizes, ratios):
    """Anchors of every level, concatenated in level order -> [A, 4]."""
    return tf.concat(
        [
            B.anchors_for_level(tf.shape(m)[1], tf.shape(m)[2], stride, size, ratios)
            for m, stride, size in zip(level_maps, strides, sizes)
        ],
        axis=0,
    )


def nms_per_image(boxes, scores, max_output, iou):
    """Padded NMS image by image: ``(indices [B, max_output], counts [B])``.

    Each image runs TensorFlow's NonMaxSuppressionV4 kernel directly (XLA compiles it and
    TFLite has it as a builtin); ``tf.image.non_max_suppression_padded`` instead always
    builds its tiled pure-Python algorithm, a graph that takes seconds to trace and to run
    on a CPU.
    """

    def one(args):
        image_boxes, image_scores = args
        indices, count = tf.raw_ops.NonMaxSuppressionV4(
            boxes=image_boxes,
            scores=image_scores,
            max_output_size=max_output,
            iou_threshold=iou,
            score_threshold=0.0,
            pad_to_max_output_size=True,
        )
        return indices, count

    return tf.map_fn(
        one,
        (boxes, scores),
        fn_output_signature=(tf.TensorSpec([max_output], tf.int32), tf.TensorSpec([], tf.int32)),
    )


def propose(scores, deltas, anchors, level_sizes, image_size, pre_nms, post_nms, iou):
    """RPN proposals per image: per level the ``pre_nms`` best, decoded and clipped; NMS at
    ``iou`` level by level (boxes of different levels never suppress each other, as in
    torchvision); the ``post_nms`` best overall. ``scores`` [B, A] logits, ``deltas``
    [B, A, 4]. Returns ``(boxes [B, post_nms, 4], valid [B, post_nms])``."""
    height, width = image_size
    kept_boxes, kept_scores, kept_levels = [], [], []
    start = 0
    for level, count in enumerate(level_sizes):
        level_scores = scores[:, start : start + count]
        k = tf.minimum(pre_nms, tf.shape(level_scores)[1])
        top = tf.math.top_k(level_scores, k=k)
        level_deltas = tf.gather(deltas[:, start : start + count], top.indices, batch_dims=1)
        level_anchor = tf.gather(anchors[start : start + count], top.indices)
        boxes = B.clip_boxes(
            B.decode_boxes(level_deltas, level_anchor, B.RPN_WEIGHTS), height, width
        )
        kept_boxes.append(boxes)
        kept_scores.append(top.values)
        kept_levels.append(tf.fill(tf.shape(top.values), float(level)))
        start = start + count
    boxes = tf.concat(kept_boxes, axis=1)
    scores = tf.sigmoid(tf.concat(kept_scores, axis=1))
    levels = tf.concat(kept_levels, axis=1)
    sizes = tf.minimum(boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1])
    scores = tf.where(sizes > 1e-3, scores, -1.0)  # torchvision drops boxes smaller than this
    # Shift each level to its own region of the plane so that NMS runs per level at once.
    offset = (tf.cast(tf.maximum(height, width), tf.float32) + 1.0) * levels
    shifted = boxes + offset[..., None]
    selected, counts = nms_per_image(shifted, scores, post_nms, iou)
    out = tf.gather(boxes, selected, batch_dims=1)
    valid = tf.range(post_nms)[None, :] < counts[:, None]
    return tf.where(valid[..., None], out, 0.0), valid


@keras.saving.register_keras_serializable(package="kerasseg")
class Proposals(keras.layers.Layer):
    """``[image, scores [B, A], deltas [B, A, 4], *level maps] -> boxes [B, post_nms, 4]``
    (invalid rows zero). Anchors follow the level maps' sizes, so any image size works."""

    def __init__(self, strides, sizes, ratios, pre_nms=1000, post_nms=1000, iou=0.7, **kw):
        super().__init__(**kw)
        self.strides, self.sizes, self.ratios = list(strides), list(sizes), list(ratios)
        self.pre_nms, self.post_nms, self.iou = int(pre_nms), int(post_nms), float(iou)

    @tf.autograph.experimental.do_not_convert
    def call(self, image, scores, deltas, *level_maps):
        anchors = level_anchors(level_maps, self.strides, self.sizes, self.ratios)
        counts = [tf.shape(m)[1] * tf.shape(m)[2] * len(self.ratios) for m in level_maps]
        size = tf.shape(image)[1], tf.shape(image)[2]
        boxes, _ = propose(
            tf.cast(scores, tf.float32),
            tf.cast(deltas, tf.float32),
            anchors,
            counts,
            size,
            self.pre_nms,
            self.post_nms,
            self.iou,
        )
        return boxes

    def get_config(self):
        config = super().get_config()
        config.update(
            strides=self.strides,
            sizes=self.sizes,
            ratios=self.ratios,
            pre_nms=self.pre_nms,
            post_nms=self.post_nms,
            iou=self.iou,
        )
        return config


def align_boxes(level_maps, boxes, images, output_size, strides, sampling_ratio=2):
    """ROIAlign of flat ``boxes`` [P, 4] of ``images`` [P], each from the pyramid level it
    belongs to (levels named by their strides, the finest first, e.g. P2..P5)
    -> [P, out, out, C]."""
    first = int(round(math.log2(strides[0])))
    levels = fpn_levels(boxes, first, first + len(strides) - 1) - first
    return multilevel_roi_align(
        level_maps, boxes, images, output_size, [1.0 / s for s in strides], sampling_ratio, levels
    )


def align_pyramid(level_maps, boxes, output_size, strides, sampling_ratio=2):
    """``align_boxes`` for a batch of boxes [B, R, 4] -> [B, R, out, out, C]."""
    batch, count = tf.shape(boxes)[0], tf.shape(boxes)[1]
    images = tf.repeat(tf.range(batch), count)
    flat = tf.reshape(boxes, [-1, 4])
    pooled = align_boxes(level_maps, flat, images, output_size, strides, sampling_ratio)
    channels = level_maps[0].shape[-1]
    return tf.reshape(pooled, [batch, count, output_size, output_size, channels])


@keras.saving.register_keras_serializable(package="kerasseg")
class MultiLevelRoiAlign(keras.layers.Layer):
    """``[boxes [B, R, 4], *level maps] -> [B * R, size, size, C]`` (batch-major rows), each
    box read from its FPN level (``kerasseg.ops.roi_align``)."""

    def __init__(self, output_size, strides, sampling_ratio=2, **kw):
        super().__init__(**kw)
        self.output_size, self.strides = int(output_size), list(strides)
        self.sampling_ratio = int(sampling_ratio)

    @tf.autograph.experimental.do_not_convert
    def call(self, boxes, *level_maps):
        maps = [tf.cast(m, self.compute_dtype) for m in level_maps]
        out = align_pyramid(maps, boxes, self.output_size, self.strides, self.sampling_ratio)
        return tf.reshape(out, [-1, self.output_size, self.output_size, maps[0].shape[-1]])

    def get_config(self):
        config = super().get_config()
        config.update(
            output_size=self.output_size,
            strides=self.strides,
            sampling_ratio=self.sampling_ratio,
        )
        return config


def detect_boxes(proposals, logits, deltas, image_size, score_threshold, iou, max_detections):
    """Final boxes from the box head: class-specific decoding, per-class NMS (Model Garden's
    and torchvision's postprocess). ``logits`` [B, R, K + 1] (class 0 is background),
    ``deltas`` [B, R, (K + 1) * 4]. Returns boxes [B, D, 4], scores [B, D], classes [B, D]
    (0..K-1, object classes), num_detections [B]."""
    num = logits.shape[-1]
    probs = tf.nn.softmax(logits, axis=-1)[..., 1:]
    deltas = tf.reshape(deltas, tf.concat([tf.shape(deltas)[:2], [num, 4]], 0))[..., 1:, :]
    refs = tf.broadcast_to(proposals[:, :, None, :], tf.shape(deltas))
    boxes = B.clip_boxes(B.decode_boxes(deltas, refs, B.BOX_WEIGHTS), *image_size)
    sizes = tf.minimum(boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1])
    probs = tf.where(sizes >= 1e-2, probs, 0.0)
    nmsed = tf.image.combined_non_max_suppression(
        boxes,
        probs,
        max_detections,
        max_detections,
        iou_threshold=iou,
        score_threshold=score_threshold,
        clip_boxes=False,
    )
    return (
        nmsed.nmsed_boxes,
        nmsed.nmsed_scores,
        tf.cast(nmsed.nmsed_classes, tf.int32),
        nmsed.valid_detections,
    )


@keras.saving.register_keras_serializable(package="kerasseg")
class Detections(keras.layers.Layer):
    """``[image, proposals, logits, deltas] -> {boxes, scores, classes, num_detections}``."""

    def __init__(self, score_threshold=0.05, iou=0.5, max_detections=100, **kw):
        super().__init__(**kw)
        self.score_threshold, self.iou = float(score_threshold), float(iou)
        self.max_detections = int(max_detections)

    @tf.autograph.experimental.do_not_convert
    def call(self, image, proposals, logits, deltas):
        size = tf.shape(image)[1], tf.shape(image)[2]
        batch, count = tf.shape(proposals)[0], tf.shape(proposals)[1]
        logits = tf.reshape(tf.cast(logits, tf.float32), [batch, count, logits.shape[-1]])
        deltas = tf.reshape(tf.cast(deltas, tf.float32), [batch, count, deltas.shape[-1]])
        boxes, scores, classes, num = detect_boxes(
            proposals, logits, deltas, size, self.score_threshold, self.iou, self.max_detections
        )
        return {"boxes": boxes, "scores": scores, "classes": classes, "num_detections": num}

    def get_config(self):
        config = super().get_config()
        config.update(
            score_threshold=self.score_threshold,
            iou=self.iou,
            max_detections=self.max_detections,
        )
        return config


@keras.saving.register_keras_serializable(package="kerasseg")
class MaskSelect(keras.layers.Layer):
    """``[mask logits [B * D, m, m, K + 1], classes [B, D]] -> probabilities [B, D, m, m]`` of
    each detection's own class (channel class + 1: channel 0 is the unused background)."""

    @tf.autograph.experimental.do_not_convert
    def call(self, logits, classes):
        batch, count = tf.shape(classes)[0], tf.shape(classes)[1]
        size = logits.shape[1]
        logits = tf.reshape(tf.cast(logits, tf.float32), [batch, count, size, size, -1])
        picked = tf.gather(logits, classes + 1, axis=-1, batch_dims=2)
        return tf.sigmoid(picked)

    def compute_output_shape(self, logits_shape, classes_shape):
        return (classes_shape[0], classes_shape[1], logits_shape[1], logits_shape[2])
