"""The streaming confusion-matrix metrics: one matrix per metric, each reading its score off it
(see the package doc for the conventions)."""

import keras
import numpy as np
import tensorflow as tf

from kerasseg.metrics.report import format_report, summarize_confusion_matrix
from kerasseg.metrics.scores import confusion_matrix_scores
from kerasseg.ops.labels import check_label_range, first_bad_label, sparse_labels

__all__ = [
    "BinaryIoU",
    "ConfusionMatrix",
    "DiceScore",
    "ForegroundIoU",
    "FrequencyWeightedIoU",
    "MeanIoU",
    "MeanPixelAccuracy",
    "PerClassIoU",
    "PixelAccuracy",
]


class _ConfusionMatrixMetric(keras.metrics.Metric):
    """Accumulates one confusion matrix; subclasses pick what ``result()`` reads from it."""

    _default_name = None  # set by every public subclass
    _score = None  # key of confusion_matrix_scores() that result() returns

    def __init__(self, num_classes, ignore_index=255, from_logits=False, name=None, dtype=None):
        super().__init__(name=name or self._default_name, dtype=dtype)
        if (
            isinstance(num_classes, bool)
            or not isinstance(num_classes, (int, np.integer))
            or num_classes < 1
        ):
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
            with tf.control_dependencies(
                [
                    tf.debugging.assert_non_negative(
                        y_pred, message=f"{self.name}: negative predicted class"
                    ),
                    tf.debugging.assert_less(
                        y_pred,
                        n,
                        message=f"{self.name}: predicted class must be < {n} "
                        f"(num_classes={self.num_classes})",
                    ),
                ]
            ):
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
        if (
            labels.shape.is_fully_defined()
            and predicted.shape.is_fully_defined()
            and labels.shape != predicted.shape
        ):
            raise ValueError(
                f"{self.name}: labels have shape {tuple(labels.shape)} but predictions "
                f"{tuple(predicted.shape)} (y_pred must be at the labels' resolution)."
            )
        valid = tf.not_equal(labels, self.ignore_index)
        check, bad = check_label_range(labels, valid, n, self.ignore_index, type(self).__name__)
        bad_pred = tf.logical_or(predicted < 0, predicted >= n)
        in_range = tf.logical_and(valid, tf.logical_not(bad))
        in_range = tf.logical_and(in_range, tf.logical_not(bad_pred))

        update = _confusion_counts(labels, predicted, in_range, n, sample_weight)

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


def _confusion_counts(labels, predicted, counted, n, sample_weight=None):
    """The ``n x n`` float64 confusion matrix of the ``counted`` pixels, optionally weighted
    by a per-sample or per-pixel ``sample_weight``."""
    # Pixels that do not count go to one extra bin that is dropped, which keeps every shape
    # static (XLA-friendly) and the counting in integers.
    bins = n * n
    index = tf.reshape(tf.where(counted, labels * n + predicted, bins), [-1])
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
    return tf.reshape(counts[:bins], (n, n))


@keras.saving.register_keras_serializable(package="kerasseg")
class PixelAccuracy(_ConfusionMatrixMetric):
    """Share of valid pixels classified correctly (mmsegmentation's aAcc)."""

    _default_name = "pixel_accuracy"
    _score = "pixel_accuracy"


@keras.saving.register_keras_serializable(package="kerasseg")
class MeanPixelAccuracy(_ConfusionMatrixMetric):
    """Mean over classes of TP / (TP + FN); classes without ground-truth pixels are left out."""

    _default_name = "mean_pixel_accuracy"
    _score = "mean_accuracy"


@keras.saving.register_keras_serializable(package="kerasseg")
class MeanIoU(_ConfusionMatrixMetric):
    """Mean over classes of TP / (TP + FP + FN); classes absent from truth and prediction are
    left out."""

    _default_name = "mean_iou"
    _score = "mean_iou"


@keras.saving.register_keras_serializable(package="kerasseg")
class FrequencyWeightedIoU(_ConfusionMatrixMetric):
    """Sum over classes of IoU times the class's share of the valid ground-truth pixels."""

    _default_name = "fw_iou"
    _score = "fw_iou"


@keras.saving.register_keras_serializable(package="kerasseg")
class DiceScore(_ConfusionMatrixMetric):
    """Mean over classes of the hard Dice 2 TP / (2 TP + FP + FN); absent classes are left out."""

    _default_name = "dice"
    _score = "mean_dice"


@keras.saving.register_keras_serializable(package="kerasseg")
class PerClassIoU(_ConfusionMatrixMetric):
    """IoU of every class, a vector of length ``num_classes`` (NaN for a class never seen);
    length 2 (background, foreground) for ``num_classes=1``."""

    _default_name = "per_class_iou"
    _score = "iou"


@keras.saving.register_keras_serializable(package="kerasseg")
class ForegroundIoU(_ConfusionMatrixMetric):
    """IoU of the foreground (class 1) of a binary task, ``TP / (TP + FP + FN)``, a scalar.

    For a one-channel sigmoid output (``num_classes=1``, the default; the foreground is
    ``p > 0.5``, or ``logit > 0`` with ``from_logits=True``) or a two-class output
    (``num_classes=2``). Background pixels count only as false positives / negatives of the
    foreground. 0 while no foreground pixel has been seen in truth or prediction (like Keras'
    ``BinaryIoU``), so it can be monitored. ``BinaryIoU`` is the same class.
    """

    _default_name = "foreground_iou"

    def __init__(self, num_classes=1, ignore_index=255, from_logits=False, name=None, dtype=None):
        if (
            not isinstance(num_classes, bool)
            and isinstance(num_classes, (int, np.integer))
            and num_classes > 2
        ):
            raise ValueError(
                f"ForegroundIoU scores class 1 of a binary task (num_classes=1 or 2); got "
                f"num_classes={num_classes} (use PerClassIoU for every class of a multi-class "
                "task)."
            )
        super().__init__(
            num_classes, ignore_index=ignore_index, from_logits=from_logits, name=name, dtype=dtype
        )

    def result(self):
        cm = tf.cast(self.total_cm, tf.float64)
        tp = cm[1, 1]
        union = tf.reduce_sum(cm[1, :]) + tf.reduce_sum(cm[:, 1]) - tp
        value = tf.math.divide_no_nan(tp, union)
        value = tf.where(self.bad_labels[0] > 0, tf.cast(float("nan"), value.dtype), value)
        return tf.cast(value, self.dtype)


BinaryIoU = ForegroundIoU


@keras.saving.register_keras_serializable(package="kerasseg")
class ConfusionMatrix(_ConfusionMatrixMetric):
    """The confusion matrix itself (float64, rows truth, columns prediction) with ``report()``.

    ``report(class_names)`` returns a printable table; ``summary(class_names)`` the same figures as
    a JSON-able dict (see ``summarize_confusion_matrix``). Every metric in this module has both.
    """

    _default_name = "confusion_matrix"

    def result(self):
        return tf.identity(self.total_cm)
