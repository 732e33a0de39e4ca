"""Per-class and mean scores read off a confusion matrix (rows truth, columns prediction)."""

import tensorflow as tf

__all__ = ["confusion_matrix_scores"]


def confusion_matrix_scores(cm):
    """Per-class and mean scores of a confusion matrix (rows truth, columns prediction).

    Works on a tensor or array; returns a dict of float64 tensors: ``iou``, ``accuracy``, ``dice``
    (per class, NaN where undefined), ``gt_pixels``, ``pred_pixels``, ``true_positives`` and the
    scalars ``pixel_accuracy``, ``mean_accuracy``, ``mean_iou``, ``fw_iou``, ``mean_dice``.
    """
    cm = tf.cast(tf.convert_to_tensor(cm), tf.float64)
    tp = tf.linalg.diag_part(cm)
    gt = tf.reduce_sum(cm, axis=1)
    pred = tf.reduce_sum(cm, axis=0)
    union = gt + pred - tp
    total = tf.reduce_sum(gt)

    iou = _nan_divide(tp, union)
    accuracy = _nan_divide(tp, gt)
    dice = _nan_divide(2.0 * tp, gt + pred)
    freq = tf.math.divide_no_nan(gt, total)
    return {
        "iou": iou,
        "accuracy": accuracy,
        "dice": dice,
        "gt_pixels": gt,
        "pred_pixels": pred,
        "true_positives": tp,
        "pixel_accuracy": tf.math.divide_no_nan(tf.reduce_sum(tp), total),
        "mean_accuracy": _nan_mean(accuracy),
        "mean_iou": _nan_mean(iou),
        "fw_iou": tf.reduce_sum(freq * _nan_to_zero(iou)),
        "mean_dice": _nan_mean(dice),
    }


def _nan_divide(numerator, denominator):
    nan = tf.constant(float("nan"), numerator.dtype)
    return tf.where(denominator > 0, tf.math.divide_no_nan(numerator, denominator), nan)


def _nan_to_zero(x):
    return tf.where(tf.math.is_nan(x), tf.zeros_like(x), x)


def _nan_mean(x):
    defined = tf.cast(tf.logical_not(tf.math.is_nan(x)), x.dtype)
    return tf.math.divide_no_nan(tf.reduce_sum(_nan_to_zero(x)), tf.reduce_sum(defined))
