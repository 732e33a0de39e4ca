"""Mask R-CNN's training: target assignment and the five losses, with static shapes.

Ground truth arrives padded to a fixed count M per image (``classes == -1`` marks padding),
as ``kerasseg.data.prepare`` batches it. Everything is batched TensorFlow ops, so it runs in
``train_step``, under ``jit_compile`` and under a distribution strategy. The recipe is
torchvision's (Detectron2's is the same up to details named where they differ).
"""

import tensorflow as tf

from kerasseg.layers import align_pyramid
from kerasseg.ops import boxes as B
from kerasseg.ops.roi_align import roi_align

# torchvision's smooth-L1 beta for both box losses.
SMOOTH_L1_BETA = 1.0 / 9.0


def smooth_l1(diff, beta=SMOOTH_L1_BETA):
    diff = tf.abs(diff)
    return tf.reduce_sum(tf.where(diff < beta, 0.5 * diff**2 / beta, diff - 0.5 * beta), -1)


def _masked_mean(values, mask, count):
    return tf.reduce_sum(tf.where(mask, values, 0.0)) / tf.maximum(count, 1.0)


def rpn_losses(scores, deltas, anchors, gt_boxes, gt_valid, seed, cfg):
    """Objectness BCE over 256 sampled anchors per image (half positive at most) and smooth-L1
    on the positives' deltas, both averaged over the sampled anchors."""
    labels, matched = B.match_anchors(
        anchors, gt_boxes, gt_valid, cfg["rpn_positive_iou"], cfg["rpn_negative_iou"]
    )
    idx, valid, positive = B.sample_indices(
        labels == 1, labels == 0, cfg["rpn_samples"], cfg["rpn_positive_fraction"], seed
    )
    count = tf.reduce_sum(tf.cast(valid, tf.float32))
    logits = tf.gather(scores, idx, batch_dims=1)
    bce = tf.nn.sigmoid_cross_entropy_with_logits(tf.cast(positive, tf.float32), logits)
    target_boxes = tf.gather(gt_boxes, tf.gather(matched, idx, batch_dims=1), batch_dims=1)
    targets = B.encode_boxes(target_boxes, tf.gather(anchors, idx), B.RPN_WEIGHTS)
    box = smooth_l1(tf.gather(deltas, idx, batch_dims=1) - targets)
    return _masked_mean(bce, valid, count), _masked_mean(box, positive, count)


def sample_rois(proposals, proposal_valid, gt_boxes, gt_classes, gt_valid, seed, cfg):
    """512 ROIs per image, 25% foreground at most (IoU >= 0.5 with a ground truth), from the
    proposals plus the ground-truth boxes themselves. Returns a dict of [B, S] tensors:
    ``boxes`` [B, S, 4], ``labels`` (0 background, k + 1 class k), ``matched`` (ground-truth
    index), ``valid`` and ``positive`` (positives fill the first slots)."""
    candidates = tf.concat([tf.stop_gradient(proposals), gt_boxes], axis=1)
    candidate_valid = tf.concat([proposal_valid, gt_valid], axis=1)
    foreground, matched = B.match_proposals(candidates, gt_boxes, gt_valid, cfg["roi_fg_iou"])
    foreground &= candidate_valid
    background = candidate_valid & ~foreground
    idx, valid, positive = B.sample_indices(
        foreground, background, cfg["roi_samples"], cfg["roi_positive_fraction"], seed
    )
    matched = tf.gather(matched, idx, batch_dims=1)
    classes = tf.gather(gt_classes, matched, batch_dims=1)
    return {
        "boxes": tf.gather(candidates, idx, batch_dims=1),
        "labels": tf.where(positive, classes + 1, 0),
        "matched": matched,
        "valid": valid,
        "positive": positive,
    }


def box_losses(rois, logits, deltas, gt_boxes, num_classes):
    """Cross-entropy over the sampled ROIs; smooth-L1 of the ground-truth class's deltas on
    the positives; both averaged over the sampled ROIs (torchvision's normalisation)."""
    count = tf.reduce_sum(tf.cast(rois["valid"], tf.float32))
    shape = tf.shape(rois["labels"])
    logits = tf.reshape(logits, [shape[0], shape[1], num_classes + 1])
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(rois["labels"], logits)
    deltas = tf.reshape(deltas, [shape[0], shape[1], num_classes + 1, 4])
    picked = tf.gather(deltas, rois["labels"], axis=2, batch_dims=2)
    target_boxes = tf.gather(gt_boxes, rois["matched"], batch_dims=1)
    targets = B.encode_boxes(target_boxes, rois["boxes"], B.BOX_WEIGHTS)
    box = smooth_l1(picked - targets)
    return _masked_mean(ce, rois["valid"], count), _masked_mean(box, rois["positive"], count)


def positive_rois(rois, num_positive, dynamic):
    """The ROIs the mask head trains on, flat: ``boxes`` [P, 4], ``images``, ``labels``,
    ``matched`` and ``valid`` [P].

    ``dynamic``: only the sampled positives (P varies: the mask head, the most costly part of
    a training step, runs on as many ROIs as torchvision's); otherwise the first
    ``num_positive`` slots of every image, padding included (static shapes, for XLA).
    """
    positive = rois["positive"][:, :num_positive]
    if dynamic:
        # One masked-out row more, so the heads never see an empty batch (some CPU kernels'
        # convolution gradients fail on zero rows).
        where = tf.concat([tf.where(positive), tf.zeros([1, 2], tf.int64)], axis=0)
        valid = tf.concat([tf.ones([tf.shape(where)[0] - 1], tf.bool), [False]], axis=0)
    else:
        batch = tf.shape(positive)[0]
        b, slot = tf.meshgrid(tf.range(batch), tf.range(num_positive), indexing="ij")
        where = tf.reshape(tf.stack([b, slot], axis=-1), [-1, 2])
        valid = tf.reshape(positive, [-1])
    where = tf.cast(where, tf.int32)
    return {
        "boxes": tf.gather_nd(rois["boxes"], where),
        "images": where[:, 0],
        "labels": tf.gather_nd(rois["labels"], where),
        "matched": tf.gather_nd(rois["matched"], where),
        "valid": valid,
    }


def mask_loss(mask_logits, positives, gt_masks):
    """Per-pixel BCE of the ground-truth class's mask (soft targets: each positive's matched
    ground-truth mask ROIAligned to the mask size, as torchvision's ``project_masks_on_boxes``)
    averaged over pixels and positives. ``mask_logits`` [P, m, m, K + 1]; ``gt_masks``
    [B, M, H, W]."""
    size = mask_logits.shape[1]
    logits = tf.gather(mask_logits, positives["labels"], axis=-1, batch_dims=1)
    shape = tf.shape(gt_masks)
    table = tf.reshape(tf.cast(gt_masks, tf.float32), [-1, shape[2], shape[3], 1])
    rows = positives["images"] * shape[1] + positives["matched"]
    targets = roi_align(table, positives["boxes"], rows, size)[..., 0]
    bce = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(targets, logits), axis=[1, 2])
    valid = positives["valid"]
    return _masked_mean(bce, valid, tf.reduce_sum(tf.cast(valid, tf.float32)))


def roi_features(level_maps, boxes, size, strides):
    """ROIAlign of [B, S, 4] boxes -> [B * S, size, size, C] rows for a head."""
    pooled = align_pyramid(level_maps, boxes, size, strides)
    return tf.reshape(pooled, [-1, size, size, level_maps[0].shape[-1]])
