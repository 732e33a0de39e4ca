"""The losses' base class (label standardisation, ignore mask, binary mode, distribution
scaling) and their composition: ``CrossEntropy() + 0.5 * DiceLoss()`` is a ``CombinedLoss``."""

import numbers

import keras
import tensorflow as tf

from kerasseg.ops.labels import check_label_range, sparse_labels

__all__ = [
    "Batch",
    "CombinedLoss",
    "SegmentationLoss",
    "float_tuple",
    "is_scalar",
    "per_class_weights",
    "weighted_mean",
]

_EPSILON = 1e-7
_MODES = ("auto", "binary", "multiclass")


def is_scalar(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def float_tuple(values, what):
    if values is None:
        return None
    try:
        return tuple(float(v) for v in values)
    except TypeError:
        raise ValueError(
            f"{what} must be a sequence of numbers, one per class; got {values!r}"
        ) from None


class _Composable:
    """`+` and scalar `*` that build a serializable CombinedLoss."""

    def __add__(self, other):
        if isinstance(other, keras.losses.Loss):
            return CombinedLoss._from_terms(_terms(self) + _terms(other))
        if is_scalar(other) and other == 0:
            return self  # lets sum([loss_a, loss_b]) work
        return NotImplemented

    def __radd__(self, other):
        if isinstance(other, keras.losses.Loss):
            return CombinedLoss._from_terms(_terms(other) + _terms(self))
        if is_scalar(other) and other == 0:
            return self
        return NotImplemented

    def __mul__(self, factor):
        if not is_scalar(factor):
            return NotImplemented
        return CombinedLoss._from_terms([(loss, w * float(factor)) for loss, w in _terms(self)])

    __rmul__ = __mul__


def _terms(loss):
    if isinstance(loss, CombinedLoss):
        return list(zip(loss.losses, loss.weights))
    return [(loss, 1.0)]


@keras.saving.register_keras_serializable(package="kerasseg")
class CombinedLoss(_Composable, keras.losses.Loss):
    """Weighted sum of losses: ``sum(w_i * loss_i(y_true, y_pred))``.

    Usually built with operators (``CrossEntropy() + 0.5 * DiceLoss()``). The sub-losses may be any
    serializable ``keras.losses.Loss``; each one does its own reduction and distribution scaling.
    """

    def __init__(self, losses, weights=None, name="combined_loss"):
        super().__init__(name=name)
        losses = [
            keras.saving.deserialize_keras_object(l) if isinstance(l, dict) else l for l in losses
        ]
        if not losses:
            raise ValueError("CombinedLoss needs at least one loss.")
        for l in losses:
            if not isinstance(l, keras.losses.Loss):
                raise ValueError(
                    f"CombinedLoss takes keras.losses.Loss instances; got {type(l).__name__}."
                )
        if weights is None:
            weights = [1.0] * len(losses)
        if len(weights) != len(losses) or not all(is_scalar(w) for w in weights):
            raise ValueError(
                f"CombinedLoss needs one number per loss; got {len(losses)} losses and "
                f"weights={weights!r}."
            )
        self.losses = list(losses)
        self.weights = [float(w) for w in weights]

    @classmethod
    def _from_terms(cls, terms):
        return cls([l for l, _ in terms], [w for _, w in terms])

    def __call__(self, y_true, y_pred, sample_weight=None):
        with tf.name_scope(self.name):
            total = 0.0
            for loss, weight in zip(self.losses, self.weights):
                value = tf.cast(loss(y_true, y_pred, sample_weight=sample_weight), tf.float32)
                total = total + weight * value
            return tf.convert_to_tensor(total, tf.float32)

    def call(self, y_true, y_pred):
        return self(y_true, y_pred)

    def get_config(self):
        return {
            "losses": [keras.saving.serialize_keras_object(l) for l in self.losses],
            "weights": list(self.weights),
            "name": self.name,
        }

    def __repr__(self):
        parts = " + ".join(f"{w:g} * {type(l).__name__}" for l, w in zip(self.losses, self.weights))
        return f"CombinedLoss({parts})"


class Batch:
    """What every loss needs from one batch, computed once.

    labels: int32 (N,H,W) with ignored pixels set to 0; valid: float32 mask; weight: float32 mask
    times the sample weight; onehot: float32 (N,H,W,C); log_probs/probs: float32 (N,H,W,C).
    """

    def __init__(self, labels, valid, weight, onehot, log_probs, probs, binary):
        self.labels = labels
        self.valid = valid
        self.weight = weight
        self.onehot = onehot
        self.log_probs = log_probs
        self.probs = probs
        self.binary = binary

    @property
    def num_classes(self):
        return self.onehot.shape[-1]


class SegmentationLoss(_Composable, keras.losses.Loss):
    """Base class: label standardisation, ignore mask, binary mode and distribution scaling.

    Subclasses implement ``compute(batch)`` returning a float32 scalar.
    """

    def __init__(self, ignore_index=255, from_logits=False, mode="auto", name=None):
        super().__init__(name=name)
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}; got {mode!r}.")
        self.ignore_index = int(ignore_index)
        self.from_logits = bool(from_logits)
        self.mode = mode

    def __call__(self, y_true, y_pred, sample_weight=None):
        with tf.name_scope(self.name):
            value = self.call(y_true, y_pred, sample_weight)
            # Keras divides the loss by the number of replicas only for non-scalar per-sample
            # losses; these are already reduced scalars, so do it here.
            return _scale_for_replicas(value)

    def call(self, y_true, y_pred, sample_weight=None):
        batch = self._prepare(y_true, y_pred, sample_weight)
        return tf.cast(self.compute(batch), tf.float32)

    def compute(self, batch):
        raise NotImplementedError

    def _prepare(self, y_true, y_pred, sample_weight):
        y_pred, binary = self._class_scores(y_pred)
        num_classes = y_pred.shape[-1]
        labels, valid = self._labels(y_true, num_classes)
        weight = valid
        if sample_weight is not None:
            weight = valid * _pixel_weights(sample_weight, labels)
        if self.from_logits:
            log_probs = tf.nn.log_softmax(y_pred, axis=-1)
            probs = tf.nn.softmax(y_pred, axis=-1)
        else:
            probs = y_pred
            log_probs = tf.math.log(tf.clip_by_value(y_pred, _EPSILON, 1.0))
        onehot = tf.one_hot(labels, num_classes, dtype=tf.float32)
        return Batch(labels, valid, weight, onehot, log_probs, probs, binary)

    def _class_scores(self, y_pred):
        """float32 ``(N, H, W, C)`` scores, a one-channel binary output as two classes, and
        whether it was binary."""
        y_pred = tf.cast(tf.convert_to_tensor(y_pred), tf.float32)
        if y_pred.shape.rank != 4:
            raise ValueError(
                f"{type(self).__name__} expects y_pred of shape (N, H, W, C); "
                f"got {tuple(y_pred.shape)}."
            )
        channels = y_pred.shape[-1]
        if self.mode == "multiclass" and channels == 1:
            raise ValueError(
                f"{type(self).__name__}(mode='multiclass') needs one channel per class; y_pred has "
                "1 channel (use mode='binary' or 'auto' for a sigmoid output)."
            )
        binary = self.mode == "binary" or (self.mode == "auto" and channels == 1)
        if binary and channels != 1:
            raise ValueError(
                f"{type(self).__name__}(mode='binary') expects a one-channel y_pred (a sigmoid "
                f"output, num_classes=1); got {channels} channels."
            )
        if binary:
            # softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)], so the binary case reuses the
            # two-class code path exactly.
            if self.from_logits:
                y_pred = tf.concat([tf.zeros_like(y_pred), y_pred], axis=-1)
            else:
                y_pred = tf.concat([1.0 - y_pred, y_pred], axis=-1)
        return y_pred, binary

    def _labels(self, y_true, num_classes):
        """int32 labels with ignored pixels set to 0, and the float32 mask of valid pixels."""
        labels = sparse_labels(y_true)
        valid = tf.not_equal(labels, self.ignore_index)
        check, bad = check_label_range(
            labels, valid, num_classes, self.ignore_index, type(self).__name__
        )
        # Where the assert cannot run (XLA) a bad label is at least left out like an ignored one.
        valid = tf.logical_and(valid, tf.logical_not(bad))
        deps = [check] if check is not None else []
        with tf.control_dependencies(deps):
            labels = tf.where(valid, labels, tf.zeros_like(labels))
        return labels, tf.cast(valid, tf.float32)

    def get_config(self):
        return {
            "ignore_index": self.ignore_index,
            "from_logits": self.from_logits,
            "mode": self.mode,
            "name": self.name,
        }


def _scale_for_replicas(value):
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return value / replicas if replicas > 1 else value


def _pixel_weights(sample_weight, labels):
    """Broadcasts a per-sample (N,) or per-pixel (N,H,W[,1]) weight to the label shape."""
    w = tf.cast(tf.convert_to_tensor(sample_weight), tf.float32)
    if w.shape.rank == 4 and w.shape[-1] == 1:
        w = tf.squeeze(w, -1)
    while w.shape.rank is not None and w.shape.rank < labels.shape.rank:
        w = tf.expand_dims(w, -1)
    return tf.broadcast_to(w, tf.shape(labels))


def weighted_mean(values, weight):
    return tf.math.divide_no_nan(tf.reduce_sum(values * weight), tf.reduce_sum(weight))


def per_class_weights(values, num_classes, what, owner):
    if len(values) != num_classes:
        raise ValueError(
            f"{owner}: {what} has {len(values)} entries but y_pred has {num_classes} classes."
        )
    return tf.constant(values, tf.float32)
