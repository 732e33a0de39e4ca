"""Streaming segmentation metrics, all read off one confusion matrix per metric.

Each metric is ``Cls(num_classes, ignore_index=255, from_logits=False, name=...)`` and accumulates
a ``num_classes x num_classes`` confusion matrix (2 x 2 for ``num_classes=1``; rows: ground
truth, columns: prediction) in a float64 variable (exact for counts up to 2**53) that is summed
across replicas under ``tf.distribute`` (``aggregation="sum"``, synchronised on read), so
``evaluate`` and the epoch logs of ``fit`` are those of the whole data set. (Keras' per-step
progress bar under a distribution strategy averages the replicas' running values; only the final
figures are exact.)

* ``y_true``: class indices ``(N, H, W)`` or ``(N, H, W, 1)``; ``ignore_index`` pixels are skipped.
* ``y_pred``: scores ``(N, H, W, C)`` (probabilities or logits, argmaxed over the last axis), a
  one-channel binary output ``(N, H, W, 1)`` (foreground where ``p > 0.5``, or ``logit > 0`` with
  ``from_logits=True``), or integer class indices ``(N, H, W)``.

Binary segmentation: a model built with ``num_classes=1, activation="sigmoid"`` takes metrics
built with ``num_classes=1`` (or 2, the same thing): labels are 0 (background) and 1
(foreground), and the matrix is 2 x 2, so ``MeanIoU(1)`` is the mean IoU of background and
foreground and ``ForegroundIoU()`` the IoU of the foreground alone.

Definitions follow mmsegmentation: per class ``IoU = TP / (TP + FP + FN)``,
``accuracy = TP / (TP + FN)``, ``Dice = 2 TP / (2 TP + FP + FN)``; a class with an empty
denominator (absent from both truth and prediction, or from truth for accuracy) is NaN and left
out of the class means. ``FrequencyWeightedIoU`` weights each IoU by the class's share of the
valid ground-truth pixels. A metric that has seen no valid pixel reports 0 for its means.
(segmentation_models' ``macro`` average scores an absent class as 1 instead; kerasseg does not.)

A label outside ``[0, num_classes)`` (``[0, 2)`` for ``num_classes=1``) that is not
``ignore_index`` is an error: a ``ValueError`` naming the value when run eagerly, an
``InvalidArgumentError`` with the same text inside ``fit``/``evaluate``. XLA
(``jit_compile=True``, Keras' default on GPU) drops graph asserts, so the metrics also count such
labels: once any was seen every result is NaN and ``report()`` raises.
"""
import json
import math

import keras
import numpy as np
import tensorflow as tf

from kerasseg.losses import check_label_range, first_bad_label, sparse_labels

__all__ = [
    "PixelAccuracy",
    "MeanPixelAccuracy",
    "MeanIoU",
    "FrequencyWeightedIoU",
    "DiceScore",
    "PerClassIoU",
    "ForegroundIoU",
    "BinaryIoU",
    "ConfusionMatrix",
    "confusion_matrix_scores",
    "summarize_confusion_matrix",
    "format_report",
]

_register = keras.saving.register_keras_serializable(package="kerasseg")


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


class _ConfusionMatrixMetric(keras.metrics.Metric):
    """Accumulates one confusion matrix; subclasses pick what ``result()`` reads from it."""

    _default_name = None  # set by every public subclass
    _score = None  # key of confusion_matrix_scores() that result() returns

    def __init__(self, num_classes, ignore_index=255, from_logits=False, name=None, dtype=None):
        super().__init__(name=name or self._default_name, dtype=dtype)
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
                or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int; got {num_classes!r}.")
        self.num_classes = int(num_classes)
        # num_classes=1 is a binary (sigmoid) task: background and foreground are both counted.
        self.matrix_size = 2 if self.num_classes == 1 else self.num_classes
        self.ignore_index = int(ignore_index)
        self.from_logits = bool(from_logits)
        self.total_cm = self.add_variable(
            shape=(self.matrix_size, self.matrix_size),
            initializer="zeros",
            dtype="float64",
            aggregation="sum",
            name="confusion_matrix",
        )
        # [number of out-of-range labels seen, one such value]; only matters where graph asserts
        # do not run (XLA), see the module doc.
        self.bad_labels = self.add_variable(
            shape=(2,), initializer="zeros", dtype="float64", aggregation="sum", name="bad_labels"
        )

    # ---------------------------------------------------------------- accumulation

    def _predicted_labels(self, y_pred, label_rank):
        n = self.matrix_size
        y_pred = tf.convert_to_tensor(y_pred)
        if y_pred.dtype.is_integer and (
            y_pred.shape.rank == label_rank
            or (y_pred.shape.rank == label_rank + 1 and y_pred.shape[-1] == 1)
        ):
            if y_pred.shape.rank == label_rank + 1:
                y_pred = tf.squeeze(y_pred, -1)
            y_pred = tf.cast(y_pred, tf.int32)
            # Class-index predictions are the caller's data, so a wrong one is an error too.
            with tf.control_dependencies([
                tf.debugging.assert_non_negative(
                    y_pred, message=f"{self.name}: negative predicted class"
                ),
                tf.debugging.assert_less(
                    y_pred, n,
                    message=f"{self.name}: predicted class must be < {n} "
                            f"(num_classes={self.num_classes})",
                ),
            ]):
                return tf.identity(y_pred)
        channels = y_pred.shape[-1]
        if channels == 1:
            if self.matrix_size != 2:
                raise ValueError(
                    f"{self.name}: a one-channel y_pred is read as binary (2 classes), but "
                    f"num_classes={self.num_classes} (use num_classes=1 or 2 for a sigmoid "
                    "output)."
                )
            threshold = 0.0 if self.from_logits else 0.5
            return tf.cast(tf.squeeze(y_pred, -1) > threshold, tf.int32)
        if channels is not None and channels != self.num_classes:
            raise ValueError(
                f"{self.name}: y_pred has {channels} channels but num_classes={self.num_classes}."
            )
        return tf.argmax(y_pred, axis=-1, output_type=tf.int32)

    def update_state(self, y_true, y_pred, sample_weight=None):
        n = self.matrix_size
        labels = sparse_labels(y_true)
        predicted = self._predicted_labels(y_pred, labels.shape.rank)
        if labels.shape.is_fully_defined() and predicted.shape.is_fully_defined() \
                and labels.shape != predicted.shape:
            raise ValueError(
                f"{self.name}: labels have shape {tuple(labels.shape)} but predictions "
                f"{tuple(predicted.shape)} (y_pred must be at the labels' resolution)."
            )
        valid = tf.not_equal(labels, self.ignore_index)
        check, bad = check_label_range(labels, valid, n, self.ignore_index, type(self).__name__)
        bad_pred = tf.logical_or(predicted < 0, predicted >= n)
        in_range = tf.logical_and(valid, tf.logical_not(bad))
        in_range = tf.logical_and(in_range, tf.logical_not(bad_pred))

        # Pixels that do not count go to one extra bin that is dropped, which keeps every shape
        # static (XLA-friendly) and the counting in integers.
        bins = n * n
        index = tf.where(in_range, labels * n + predicted, bins)
        index = tf.reshape(index, [-1])
        # A segment sum, not bincount: bincount's output size is computed from the data,
        # which XLA cannot compile when the data comes out of a network.
        if sample_weight is None:
            counts = tf.cast(
                tf.math.unsorted_segment_sum(tf.ones_like(index), index, bins + 1), tf.float64
            )
        else:
            weights = tf.cast(tf.convert_to_tensor(sample_weight), tf.float64)
            if weights.shape.rank == labels.shape.rank + 1 and weights.shape[-1] == 1:
                weights = tf.squeeze(weights, -1)
            while weights.shape.rank < labels.shape.rank:
                weights = tf.expand_dims(weights, -1)
            weights = tf.reshape(tf.broadcast_to(weights, tf.shape(labels)), [-1])
            counts = tf.math.unsorted_segment_sum(weights, index, bins + 1)
        update = tf.reshape(counts[:bins], (n, n))

        n_bad = tf.reduce_sum(tf.cast(bad, tf.float64))
        first_bad = first_bad_label(labels, bad)
        deps = [check] if check is not None else []
        with tf.control_dependencies(deps):
            self.total_cm.assign_add(update)
            seen = self.bad_labels[0]
            self.bad_labels.assign(
                tf.stack(
                    [
                        seen + n_bad,
                        tf.where(n_bad > 0, tf.cast(first_bad, tf.float64), self.bad_labels[1]),
                    ]
                )
            )

    # ---------------------------------------------------------------- results

    def _scores(self):
        return confusion_matrix_scores(self.total_cm)

    def result(self):
        value = self._scores()[self._score]
        value = tf.where(self.bad_labels[0] > 0, tf.cast(float("nan"), value.dtype), value)
        return tf.cast(value, self.dtype)

    def confusion_matrix(self):
        """The accumulated matrix as a float64 numpy array (rows truth, columns prediction)."""
        return np.asarray(keras.ops.convert_to_numpy(self.total_cm), dtype=np.float64)

    def _raise_if_bad_labels(self):
        seen, value = keras.ops.convert_to_numpy(self.bad_labels)
        if seen > 0:
            raise ValueError(
                f"{type(self).__name__}: {int(seen)} label(s) outside [0, {self.matrix_size}) that "
                f"are not ignore_index={self.ignore_index} were seen, e.g. {int(value)}."
            )

    def summary(self, class_names=None):
        """JSON-able dict of per-class IoU, accuracy, Dice, pixel counts and the mean metrics."""
        self._raise_if_bad_labels()
        if self.num_classes == 1:  # binary: the matrix has a background row the names may lack
            if class_names is None:
                class_names = ("background", "foreground")
            elif len(class_names) == 1:
                class_names = ("background",) + tuple(class_names)
        return summarize_confusion_matrix(self.confusion_matrix(), class_names)

    def report(self, class_names=None, digits=2):
        """Per-class table (IoU, accuracy, Dice in %, pixel counts) and the means, as a string."""
        return format_report(self.summary(class_names), digits=digits)

    def get_config(self):
        return {
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "from_logits": self.from_logits,
            "name": self.name,
            "dtype": self.dtype,
        }


@_register
class PixelAccuracy(_ConfusionMatrixMetric):
    """Share of valid pixels classified correctly (mmsegmentation's aAcc)."""

    _default_name = "pixel_accuracy"
    _score = "pixel_accuracy"


@_register
class MeanPixelAccuracy(_ConfusionMatrixMetric):
    """Mean over classes of TP / (TP + FN); classes without ground-truth pixels are left out."""

    _default_name = "mean_pixel_accuracy"
    _score = "mean_accuracy"


@_register
class MeanIoU(_ConfusionMatrixMetric):
    """Mean over classes of TP / (TP + FP + FN); classes absent from truth and prediction are
    left out."""

    _default_name = "mean_iou"
    _score = "mean_iou"


@_register
class FrequencyWeightedIoU(_ConfusionMatrixMetric):
    """Sum over classes of IoU times the class's share of the valid ground-truth pixels."""

    _default_name = "fw_iou"
    _score = "fw_iou"


@_register
class DiceScore(_ConfusionMatrixMetric):
    """Mean over classes of the hard Dice 2 TP / (2 TP + FP + FN); absent classes are left out."""

    _default_name = "dice"
    _score = "mean_dice"


@_register
class PerClassIoU(_ConfusionMatrixMetric):
    """IoU of every class, a vector of length ``num_classes`` (NaN for a class never seen);
    length 2 (background, foreground) for ``num_classes=1``."""

    _default_name = "per_class_iou"
    _score = "iou"


@_register
class ForegroundIoU(_ConfusionMatrixMetric):
    """IoU of the foreground (class 1) of a binary task, ``TP / (TP + FP + FN)``, a scalar.

    For a one-channel sigmoid output (``num_classes=1``, the default; the foreground is
    ``p > 0.5``, or ``logit > 0`` with ``from_logits=True``) or a two-class output
    (``num_classes=2``). Background pixels count only as false positives / negatives of the
    foreground. 0 while no foreground pixel has been seen in truth or prediction (like Keras'
    ``BinaryIoU``), so it can be monitored. ``BinaryIoU`` is the same class.
    """

    _default_name = "foreground_iou"

    def __init__(self, num_classes=1, ignore_index=255, from_logits=False, name=None,
                 dtype=None):
        if not isinstance(num_classes, bool) and isinstance(num_classes, (int, np.integer)) \
                and num_classes > 2:
            raise ValueError(
                f"ForegroundIoU scores class 1 of a binary task (num_classes=1 or 2); got "
                f"num_classes={num_classes} (use PerClassIoU for every class of a multi-class "
                "task)."
            )
        super().__init__(num_classes, ignore_index=ignore_index, from_logits=from_logits,
                         name=name, dtype=dtype)

    def result(self):
        cm = tf.cast(self.total_cm, tf.float64)
        tp = cm[1, 1]
        union = tf.reduce_sum(cm[1, :]) + tf.reduce_sum(cm[:, 1]) - tp
        value = tf.math.divide_no_nan(tp, union)
        value = tf.where(self.bad_labels[0] > 0, tf.cast(float("nan"), value.dtype), value)
        return tf.cast(value, self.dtype)


BinaryIoU = ForegroundIoU


@_register
class ConfusionMatrix(_ConfusionMatrixMetric):
    """The confusion matrix itself (float64, rows truth, columns prediction) with ``report()``.

    ``report(class_names)`` returns a printable table; ``summary(class_names)`` the same figures as
    a JSON-able dict (see ``summarize_confusion_matrix``). Every metric in this module has both.
    """

    _default_name = "confusion_matrix"

    def result(self):
        return tf.identity(self.total_cm)


# --------------------------------------------------------------------------- reports


def _py(value):
    value = float(value)
    return None if math.isnan(value) else value


def summarize_confusion_matrix(cm, class_names=None):
    """JSON-able summary of a confusion matrix (rows truth, columns prediction).

    Returns ``{"num_classes", "pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou", "mean_dice",
    "total_pixels", "classes": [{"name", "iou", "accuracy", "dice", "gt_pixels", "pred_pixels",
    "true_positives"}, ...]}``; undefined scores are ``None``.
    """
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"A confusion matrix must be square; got shape {cm.shape}.")
    n = cm.shape[0]
    if class_names is None:
        class_names = [str(i) for i in range(n)]
    class_names = [str(c) for c in class_names]
    if len(class_names) != n:
        raise ValueError(f"Got {len(class_names)} class names for {n} classes.")
    scores = {k: v.numpy() for k, v in confusion_matrix_scores(cm).items()}
    classes = []
    for i, name in enumerate(class_names):
        classes.append(
            {
                "name": name,
                "iou": _py(scores["iou"][i]),
                "accuracy": _py(scores["accuracy"][i]),
                "dice": _py(scores["dice"][i]),
                "gt_pixels": float(scores["gt_pixels"][i]),
                "pred_pixels": float(scores["pred_pixels"][i]),
                "true_positives": float(scores["true_positives"][i]),
            }
        )
    summary = {"num_classes": n, "total_pixels": float(cm.sum())}
    for key in ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou", "mean_dice"):
        summary[key] = _py(scores[key])
    summary["classes"] = classes
    json.dumps(summary)  # fail here, not in the caller's json.dump, if something is not JSON-able
    return summary


def format_report(summary, digits=2):
    """Renders ``summarize_confusion_matrix``'s dict as a fixed-width table (scores in %)."""

    def pct(v):
        return "n/a" if v is None else f"{100.0 * v:.{digits}f}"

    rows = [
        (c["name"], pct(c["iou"]), pct(c["accuracy"]), pct(c["dice"]),
         f"{c['gt_pixels']:.0f}", f"{c['pred_pixels']:.0f}")
        for c in summary["classes"]
    ]
    header = ("class", "IoU", "Acc", "Dice", "GT pixels", "Pred pixels")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]

    def line(cells):
        first = cells[0].ljust(widths[0])
        return "  ".join([first] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:])])

    out = [line(header), "-" * len(line(header))]
    out += [line(r) for r in rows]
    out.append("-" * len(line(header)))
    out.append(
        f"mIoU {pct(summary['mean_iou'])}  mAcc {pct(summary['mean_accuracy'])}  "
        f"mDice {pct(summary['mean_dice'])}  aAcc {pct(summary['pixel_accuracy'])}  "
        f"fwIoU {pct(summary['fw_iou'])}  ({summary['total_pixels']:.0f} valid pixels)"
    )
    return "\n".join(out)
