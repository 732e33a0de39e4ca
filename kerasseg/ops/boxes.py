"""Boxes for detection: anchors, IoU, the usual delta encoding, clipping, matching, sampling.

Boxes are ``(y1, x1, y2, x2)`` in pixels, float32, with ``y2 - y1`` the height (no "+1": the
continuous convention of torchvision and Detectron2). Everything here is TensorFlow ops with
static shapes where the inputs have them, so it runs inside ``train_step`` and under XLA.
"""

import math

import tensorflow as tf

__all__ = [
    "BOX_WEIGHTS",
    "RPN_WEIGHTS",
    "anchors_for_level",
    "clip_boxes",
    "decode_boxes",
    "encode_boxes",
    "iou_matrix",
    "match_anchors",
    "match_proposals",
    "sample_indices",
]

# torchvision / Detectron2: the RPN encodes with unit weights, the box head with (10, 10, 5, 5).
RPN_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
# Largest log-scale change a decoded delta may make (Detectron2's clamp): exp(4.135) = 62.5x.
MAX_LOG_SCALE = math.log(1000.0 / 16)


def anchors_for_level(height, width, stride, size, ratios=(0.5, 1.0, 2.0)):
    """[height * width * len(ratios), 4] anchors of one pyramid level, location-major.

    Each location (row i, column j) has its centre at ``(i * stride, j * stride)`` as in
    torchvision's ``AnchorGenerator``; ``ratios`` are height / width, each anchor of area
    ``size**2``. ``height``/``width`` may be tensors (any image size at inference).
    """
    ratios = tf.constant(ratios, tf.float32)
    heights = size * tf.sqrt(ratios)
    widths = size / tf.sqrt(ratios)
    # torchvision rounds the base anchors to whole pixels.
    half = tf.round(tf.stack([-heights, -widths, heights, widths], axis=-1) / 2.0)
    ys = tf.cast(tf.range(height), tf.float32) * stride
    xs = tf.cast(tf.range(width), tf.float32) * stride
    cy, cx = tf.meshgrid(ys, xs, indexing="ij")
    centres = tf.reshape(tf.stack([cy, cx, cy, cx], axis=-1), [-1, 1, 4])
    return tf.reshape(centres + half[None], [-1, 4])


def iou_matrix(boxes_a, boxes_b):
    """IoU of every box of ``boxes_a`` [..., N, 4] with every box of ``boxes_b`` [..., M, 4]
    -> [..., N, M]. Degenerate boxes (zero area) have IoU 0 with everything."""
    a = tf.expand_dims(boxes_a, -2)
    b = tf.expand_dims(boxes_b, -3)
    top = tf.maximum(a[..., 0], b[..., 0])
    left = tf.maximum(a[..., 1], b[..., 1])
    bottom = tf.minimum(a[..., 2], b[..., 2])
    right = tf.minimum(a[..., 3], b[..., 3])
    inter = tf.maximum(bottom - top, 0.0) * tf.maximum(right - left, 0.0)
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return tf.where(union > 0.0, inter / tf.maximum(union, 1e-9), 0.0)


def _centre_size(boxes):
    height = boxes[..., 2] - boxes[..., 0]
    width = boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + 0.5 * height, boxes[..., 1] + 0.5 * width, height, width


def encode_boxes(boxes, references, weights=BOX_WEIGHTS):
    """Deltas ``(dy, dx, dh, dw)`` that take ``references`` to ``boxes`` (R-CNN encoding)."""
    cy, cx, h, w = _centre_size(boxes)
    ry, rx, rh, rw = _centre_size(references)
    rh = tf.maximum(rh, 1e-6)
    rw = tf.maximum(rw, 1e-6)
    wy, wx, wh, ww = weights
    return tf.stack(
        [
            wy * (cy - ry) / rh,
            wx * (cx - rx) / rw,
            wh * tf.math.log(tf.maximum(h, 1e-6) / rh),
            ww * tf.math.log(tf.maximum(w, 1e-6) / rw),
        ],
        axis=-1,
    )


def decode_boxes(deltas, references, weights=BOX_WEIGHTS):
    """Inverse of ``encode_boxes``; log-scale changes are clamped as Detectron2 does."""
    ry, rx, rh, rw = _centre_size(references)
    wy, wx, wh, ww = weights
    dy = deltas[..., 0] / wy
    dx = deltas[..., 1] / wx
    dh = tf.minimum(deltas[..., 2] / wh, MAX_LOG_SCALE)
    dw = tf.minimum(deltas[..., 3] / ww, MAX_LOG_SCALE)
    cy = ry + dy * rh
    cx = rx + dx * rw
    h = rh * tf.exp(dh)
    w = rw * tf.exp(dw)
    return tf.stack([cy - 0.5 * h, cx - 0.5 * w, cy + 0.5 * h, cx + 0.5 * w], axis=-1)


def clip_boxes(boxes, height, width):
    """Clip boxes to the image ``[0, height] x [0, width]``."""
    height = tf.cast(height, boxes.dtype)
    width = tf.cast(width, boxes.dtype)
    limits = tf.stack([height, width, height, width])
    return tf.clip_by_value(boxes, 0.0, limits)


def match_anchors(anchors, gt_boxes, gt_valid, positive=0.7, negative=0.3):
    """RPN labels for ``anchors`` [A, 4] against a batch's ``gt_boxes`` [B, M, 4].

    Returns ``(labels [B, A] int32: 1 positive, 0 negative, -1 neither; matched [B, A] int32)``:
    IoU >= ``positive`` is positive, < ``negative`` negative, and each ground truth's best
    anchors (ties included, as torchvision's ``allow_low_quality_matches``) are positive too.
    ``gt_valid`` [B, M] bool marks the real (unpadded) ground truths; with none, all negative.
    """
    iou = iou_matrix(anchors, gt_boxes)
    iou = tf.where(gt_valid[:, None, :], iou, -1.0)
    best = tf.reduce_max(iou, axis=-1)
    matched = tf.argmax(iou, axis=-1, output_type=tf.int32)
    labels = tf.where(best >= positive, 1, tf.where(best < negative, 0, -1))
    best_per_gt = tf.reduce_max(iou, axis=-2, keepdims=True)
    is_best = (iou == best_per_gt) & gt_valid[:, None, :] & (best_per_gt > 0.0)
    labels = tf.where(tf.reduce_any(is_best, axis=-1), 1, labels)
    return tf.cast(labels, tf.int32), matched


def match_proposals(proposals, gt_boxes, gt_valid, threshold=0.5):
    """Head labels for ``proposals`` [B, R, 4]: ``(foreground [B, R] bool, matched [B, R]
    int32)``: foreground where the best IoU with a real ground truth is >= ``threshold``."""
    iou = iou_matrix(proposals, gt_boxes)
    iou = tf.where(gt_valid[:, None, :], iou, -1.0)
    best = tf.reduce_max(iou, axis=-1)
    return best >= threshold, tf.argmax(iou, axis=-1, output_type=tf.int32)


def sample_indices(positive, negative, num_samples, positive_fraction, seed):
    """A fixed-size random sample per image: ``(indices [B, S], valid [B, S], is_positive
    [B, S])`` from candidate masks ``positive``/``negative`` [B, N].

    At most ``int(positive_fraction * S)`` positives, the rest negatives, as torchvision's
    ``BalancedPositiveNegativeSampler``; positives fill the first slots. With too few
    candidates the tail of the sample is marked invalid. ``seed``: a shape-[2] stateless seed.
    """
    num_positive = int(num_samples * positive_fraction)
    noise = tf.random.stateless_uniform(tf.shape(positive), seed)
    top_pos = tf.math.top_k(tf.where(positive, noise + 2.0, -1.0), k=num_positive)
    top_neg = tf.math.top_k(tf.where(negative, noise + 2.0, -1.0), k=num_samples)
    pos_taken = tf.reduce_sum(tf.cast(top_pos.values > 0.0, tf.int32), axis=-1, keepdims=True)
    slots = tf.range(num_samples)[None, :]
    pos_index = tf.pad(top_pos.indices, [[0, 0], [0, num_samples - num_positive]])
    neg_slot = tf.clip_by_value(slots - pos_taken, 0, num_samples - 1)
    neg_index = tf.gather(top_neg.indices, neg_slot, batch_dims=1)
    neg_valid = tf.gather(top_neg.values, neg_slot, batch_dims=1) > 0.0
    is_positive = slots < pos_taken
    indices = tf.where(is_positive, pos_index, neg_index)
    valid = is_positive | neg_valid
    return indices, valid, is_positive
