"""Segmentation losses for sparse labels.

Every loss here takes

* ``y_true``: class indices, shape ``(N, H, W)`` or ``(N, H, W, 1)``, any int or float dtype;
  pixels equal to ``ignore_index`` (255 by default) are dropped completely.
* ``y_pred``: ``(N, H, W, C)`` probabilities (default) or logits (``from_logits=True``).
  A one-channel ``y_pred`` is a binary sigmoid output (``mode="auto"`` detects it; pass
  ``mode="binary"`` or ``mode="multiclass"`` to be explicit); its labels are 0/1. This is the
  ``num_classes=1, activation="sigmoid"`` model: every loss here then scores the foreground
  (Dice, Jaccard, Tversky, Lovasz on class 1) or is the sigmoid binary cross-entropy
  (``CrossEntropy``, ``BinaryCrossEntropy``, ``FocalLoss``).

Reductions:

* Cross-entropy type losses (``CrossEntropy``, ``BinaryCrossEntropy``, ``OhemCrossEntropy``,
  ``FocalLoss``) average over the
  valid pixels of the whole batch. With ``class_weights`` or a ``sample_weight`` the average is a
  weighted one, ``sum(w * loss) / sum(w)`` (the PyTorch convention), so scaling every weight by the
  same factor changes nothing.
* Region losses (``DiceLoss``, ``JaccardLoss``, ``TverskyLoss``, ``LovaszSoftmaxLoss``) score each
  class on the soft counts of the whole batch and average ``1 - score`` over the classes that have
  ground-truth pixels in the batch (``classes="present"``, the default; ``classes="all"`` averages
  over every class). In binary mode only the foreground class is scored and it always counts, so a
  batch with no foreground still penalises false positives (through ``smooth``).
* A batch without a single valid pixel gives a loss of exactly 0, never NaN.

Predictions are cast to float32 first, so the losses are safe under ``mixed_float16``.

Losses compose and still serialize::

    loss = kerasseg.losses.CrossEntropy() + 0.5 * kerasseg.losses.DiceLoss()

Under ``tf.distribute`` each replica averages over its own valid pixels and Keras averages the
replicas; when replicas see different numbers of ignored pixels this is not exactly the global mean.
Label-range checks use graph asserts, which XLA (``jit_compile=True``) skips.
"""
import numbers

import keras
import tensorflow as tf

__all__ = [
    "SegmentationLoss",
    "CrossEntropy",
    "BinaryCrossEntropy",
    "OhemCrossEntropy",
    "FocalLoss",
    "DiceLoss",
    "JaccardLoss",
    "TverskyLoss",
    "LovaszSoftmaxLoss",
    "CombinedLoss",
    "get",
]

_EPSILON = 1e-7
_MODES = ("auto", "binary", "multiclass")
_CLASS_CHOICES = ("present", "all")

_register = keras.saving.register_keras_serializable(package="kerasseg")


# --------------------------------------------------------------------------- label helpers
# (shared with kerasseg.metrics)


def sparse_labels(y_true):
    """Returns int32 class indices of shape (N, H, W) from (N, H, W) or (N, H, W, 1) labels."""
    y_true = tf.convert_to_tensor(y_true)
    if y_true.shape.rank == 4:
        if y_true.shape[-1] != 1:
            raise ValueError(
                "kerasseg expects sparse labels of shape (N, H, W) or (N, H, W, 1) holding class "
                f"indices; got shape {tuple(y_true.shape)} (one-hot labels are not accepted)."
            )
        y_true = tf.squeeze(y_true, axis=-1)
    if y_true.dtype.is_floating:
        # Float labels come from datasets that stored masks as float; round so 254.99 stays 255.
        y_true = tf.round(y_true)
    return tf.cast(y_true, tf.int32)


def first_bad_label(labels, bad):
    """The first label where ``bad`` holds (0 where none does), defined on empty batches too.

    A sentinel (not bad, label 0) keeps argmax defined when a replica's share of a last,
    short batch under tf.distribute holds no pixels at all.
    """
    flat_bad = tf.concat([tf.reshape(bad, [-1]), [False]], axis=0)
    flat_labels = tf.concat([tf.reshape(labels, [-1]), tf.zeros([1], labels.dtype)], axis=0)
    first = tf.argmax(tf.cast(flat_bad, tf.int32), output_type=tf.int32)
    return tf.gather(flat_labels, first)


def check_label_range(labels, valid, num_classes, ignore_index, owner):
    """Fails on a label outside [0, num_classes) that is not ignore_index.

    Eagerly this raises a ValueError naming the value; inside a graph it adds an assert that raises
    InvalidArgumentError with the same text and the value. Returns the assert op (or None) and the
    boolean mask of offending pixels.
    """
    bad = tf.logical_and(valid, tf.logical_or(labels < 0, labels >= num_classes))
    text = (
        f"{owner}: labels must lie in [0, {num_classes}) or equal ignore_index={ignore_index}; "
        "found label value"
    )
    if tf.executing_eagerly():
        if bool(tf.reduce_any(bad)):
            value = int(tf.boolean_mask(labels, bad)[0])
            raise ValueError(f"{text} {value}.")
        return None, bad
    check = tf.debugging.Assert(tf.logical_not(tf.reduce_any(bad)),
                                [text, first_bad_label(labels, bad)])
    return check, bad


def _is_scalar(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _float_tuple(values, what):
    if values is None:
        return None
    try:
        return tuple(float(v) for v in values)
    except TypeError:
        raise ValueError(f"{what} must be a sequence of numbers, one per class; got {values!r}")


# --------------------------------------------------------------------------- composition


class _Composable:
    """`+` and scalar `*` that build a serializable CombinedLoss."""

    def __add__(self, other):
        if isinstance(other, keras.losses.Loss):
            return CombinedLoss._from_terms(_terms(self) + _terms(other))
        if _is_scalar(other) and other == 0:
            return self  # lets sum([loss_a, loss_b]) work
        return NotImplemented

    def __radd__(self, other):
        if isinstance(other, keras.losses.Loss):
            return CombinedLoss._from_terms(_terms(other) + _terms(self))
        if _is_scalar(other) and other == 0:
            return self
        return NotImplemented

    def __mul__(self, factor):
        if not _is_scalar(factor):
            return NotImplemented
        return CombinedLoss._from_terms([(loss, w * float(factor)) for loss, w in _terms(self)])

    __rmul__ = __mul__


def _terms(loss):
    if isinstance(loss, CombinedLoss):
        return list(zip(loss.losses, loss.weights))
    return [(loss, 1.0)]


@_register
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
        if len(weights) != len(losses) or not all(_is_scalar(w) for w in weights):
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


# --------------------------------------------------------------------------- base class


class _Batch:
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
        num_classes = y_pred.shape[-1]

        labels = sparse_labels(y_true)
        valid_bool = tf.not_equal(labels, self.ignore_index)
        check, bad = check_label_range(
            labels, valid_bool, num_classes, self.ignore_index, type(self).__name__
        )
        # Where the assert cannot run (XLA) a bad label is at least left out like an ignored one.
        valid_bool = tf.logical_and(valid_bool, tf.logical_not(bad))
        deps = [check] if check is not None else []
        with tf.control_dependencies(deps):
            labels = tf.where(valid_bool, labels, tf.zeros_like(labels))
        valid = tf.cast(valid_bool, tf.float32)
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
        return _Batch(labels, valid, weight, onehot, log_probs, probs, binary)

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


def _weighted_mean(values, weight):
    return tf.math.divide_no_nan(tf.reduce_sum(values * weight), tf.reduce_sum(weight))


def _per_class_weights(values, num_classes, what, owner):
    if len(values) != num_classes:
        raise ValueError(
            f"{owner}: {what} has {len(values)} entries but y_pred has {num_classes} classes."
        )
    return tf.constant(values, tf.float32)


# --------------------------------------------------------------------------- cross-entropy family


@_register
class CrossEntropy(SegmentationLoss):
    """Softmax cross-entropy over the valid pixels (sigmoid binary cross-entropy in binary mode).

    Args:
        ignore_index: label value left out of the loss entirely.
        class_weights: optional per-class weights (length C, or 2 in binary mode); the mean becomes
            ``sum(w[y] * ce) / sum(w[y])`` over valid pixels.
        from_logits: ``y_pred`` holds logits instead of probabilities.
        label_smoothing: mixes the one-hot target with the uniform distribution.
        mode: ``"auto"``, ``"binary"`` or ``"multiclass"`` (see module doc).
    """

    def __init__(
        self,
        ignore_index=255,
        class_weights=None,
        from_logits=False,
        label_smoothing=0.0,
        mode="auto",
        name="cross_entropy",
    ):
        super().__init__(ignore_index=ignore_index, from_logits=from_logits, mode=mode, name=name)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1); got {label_smoothing}.")
        self.class_weights = _float_tuple(class_weights, "class_weights")
        self.label_smoothing = float(label_smoothing)

    def pixel_losses(self, batch):
        """Per-pixel cross-entropy and per-pixel weight (0 on ignored pixels)."""
        target = batch.onehot
        if self.label_smoothing:
            eps = self.label_smoothing
            target = target * (1.0 - eps) + eps / batch.num_classes
        ce = -tf.reduce_sum(target * batch.log_probs, axis=-1)
        weight = batch.weight
        if self.class_weights is not None:
            cw = _per_class_weights(
                self.class_weights, batch.num_classes, "class_weights", type(self).__name__
            )
            weight = weight * tf.gather(cw, batch.labels)
        return ce, weight

    def compute(self, batch):
        ce, weight = self.pixel_losses(batch)
        return _weighted_mean(ce, weight)

    def get_config(self):
        config = super().get_config()
        config.update(
            class_weights=None if self.class_weights is None else list(self.class_weights),
            label_smoothing=self.label_smoothing,
        )
        return config


@_register
class BinaryCrossEntropy(CrossEntropy):
    """Binary cross-entropy of a one-channel (sigmoid) output ``(N, H, W, 1)`` against 0/1 labels.

    ``-(y log p + (1 - y) log(1 - p))`` averaged over the valid pixels; pixels labelled
    ``ignore_index`` are dropped. With ``from_logits=True`` it is computed from the logit ``z``
    stably (``log sigmoid(z)``), otherwise from probabilities clipped to ``[1e-7, 1]``.
    ``class_weights=(w_background, w_foreground)`` gives the weighted mean
    ``sum(w[y] * bce) / sum(w[y])``; ``label_smoothing`` moves the targets to ``eps / 2`` and
    ``1 - eps / 2``, as in Keras. A y_pred with more than one channel is a ValueError (use
    ``CrossEntropy`` for a softmax output). Equal to ``CrossEntropy()`` on a one-channel output.
    """

    def __init__(self, ignore_index=255, class_weights=None, from_logits=False,
                 label_smoothing=0.0, name="binary_cross_entropy"):
        super().__init__(ignore_index=ignore_index, class_weights=class_weights,
                         from_logits=from_logits, label_smoothing=label_smoothing, mode="binary",
                         name=name)

    def get_config(self):
        config = super().get_config()
        config.pop("mode")
        return config


@_register
class OhemCrossEntropy(CrossEntropy):
    """Cross-entropy on the hard pixels only (online hard example mining).

    A valid pixel is kept when the predicted probability of its true class is below
    ``threshold``; in addition the ``min_kept`` lowest-probability valid pixels *per image* are
    always kept (so ``min_kept * batch_size`` per batch, the mmsegmentation convention; fewer if the
    batch has fewer valid pixels). The loss is the (class-weighted) mean over the kept pixels; the
    selection itself carries no gradient.
    """

    def __init__(
        self,
        threshold=0.7,
        min_kept=100000,
        ignore_index=255,
        from_logits=False,
        class_weights=None,
        label_smoothing=0.0,
        mode="auto",
        name="ohem_cross_entropy",
    ):
        super().__init__(
            ignore_index=ignore_index,
            class_weights=class_weights,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            mode=mode,
            name=name,
        )
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1]; got {threshold}.")
        if int(min_kept) < 0:
            raise ValueError(f"min_kept must be >= 0; got {min_kept}.")
        self.threshold = float(threshold)
        self.min_kept = int(min_kept)

    def compute(self, batch):
        ce, weight = self.pixel_losses(batch)
        valid = tf.reshape(batch.valid > 0, [-1])
        p_true = tf.stop_gradient(tf.reduce_sum(batch.probs * batch.onehot, axis=-1))
        p_flat = tf.reshape(p_true, [-1])
        # Ignored pixels sort last; a stable sort makes the tie-break reproducible.
        order = tf.argsort(tf.where(valid, p_flat, 2.0), stable=True)
        rank = tf.math.invert_permutation(order)
        budget = self.min_kept * tf.shape(batch.labels)[0]
        hard = tf.logical_or(p_flat < self.threshold, rank < budget)
        kept = tf.cast(tf.logical_and(valid, hard), tf.float32)
        kept = tf.reshape(kept, tf.shape(ce))
        return _weighted_mean(ce, weight * kept)

    def get_config(self):
        config = super().get_config()
        config.update(threshold=self.threshold, min_kept=self.min_kept)
        return config


@_register
class FocalLoss(SegmentationLoss):
    """Focal loss (Lin et al. 2017), ``-alpha_t * (1 - p_t) ** gamma * log(p_t)``.

    Averaged over the valid pixels. ``alpha``: ``None`` (no class balancing); a number, which in
    binary mode weights the foreground by ``alpha`` and the background by ``1 - alpha`` as in the
    paper, and in multiclass mode is a constant factor; or a sequence of per-class weights.
    """

    def __init__(
        self,
        gamma=2.0,
        alpha=None,
        ignore_index=255,
        from_logits=False,
        mode="auto",
        name="focal_loss",
    ):
        super().__init__(ignore_index=ignore_index, from_logits=from_logits, mode=mode, name=name)
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0; got {gamma}.")
        self.gamma = float(gamma)
        if alpha is None or _is_scalar(alpha):
            self.alpha = None if alpha is None else float(alpha)
        else:
            self.alpha = _float_tuple(alpha, "alpha")

    def _alpha_t(self, batch):
        if self.alpha is None:
            return 1.0
        if isinstance(self.alpha, tuple):
            a = _per_class_weights(self.alpha, batch.num_classes, "alpha", "FocalLoss")
            return tf.gather(a, batch.labels)
        if batch.binary:
            return tf.where(batch.labels == 1, self.alpha, 1.0 - self.alpha)
        return self.alpha

    def compute(self, batch):
        log_pt = tf.reduce_sum(batch.onehot * batch.log_probs, axis=-1)
        pt = tf.exp(log_pt)
        focal = -self._alpha_t(batch) * tf.pow(1.0 - pt, self.gamma) * log_pt
        return _weighted_mean(focal, batch.weight)

    def get_config(self):
        config = super().get_config()
        alpha = list(self.alpha) if isinstance(self.alpha, tuple) else self.alpha
        config.update(gamma=self.gamma, alpha=alpha)
        return config


# --------------------------------------------------------------------------- region losses


class _RegionLoss(SegmentationLoss):
    """Per-class scores from batch-wide soft TP/FP/FN, averaged over the counted classes."""

    def __init__(self, smooth=1.0, classes="present", ignore_index=255, from_logits=False,
                 mode="auto", name=None):
        super().__init__(ignore_index=ignore_index, from_logits=from_logits, mode=mode, name=name)
        if classes not in _CLASS_CHOICES:
            raise ValueError(f"classes must be one of {_CLASS_CHOICES}; got {classes!r}.")
        if smooth < 0:
            raise ValueError(f"smooth must be >= 0; got {smooth}.")
        self.smooth = float(smooth)
        self.classes = classes

    def class_losses(self, batch):
        """Returns the per-class loss vector (C,) for this batch."""
        w = batch.weight[..., None]
        axes = [0, 1, 2]
        tp = tf.reduce_sum(w * batch.probs * batch.onehot, axes)
        fp = tf.reduce_sum(w * batch.probs * (1.0 - batch.onehot), axes)
        fn = tf.reduce_sum(w * (1.0 - batch.probs) * batch.onehot, axes)
        return self.loss_from_counts(tp, fp, fn)

    def loss_from_counts(self, tp, fp, fn):
        raise NotImplementedError

    def compute(self, batch):
        return _average_classes(self.class_losses(batch), batch, self.classes)

    def get_config(self):
        config = super().get_config()
        config.update(smooth=self.smooth, classes=self.classes)
        return config


def _average_classes(per_class, batch, classes):
    """Mean of per-class losses over the counted classes; 0 for a batch without valid pixels."""
    if batch.binary:
        counted = tf.constant([0.0, 1.0])
    elif classes == "all":
        counted = tf.ones_like(per_class)
    else:
        counted = tf.cast(tf.reduce_sum(batch.onehot * batch.valid[..., None], [0, 1, 2]) > 0,
                          tf.float32)
    has_pixels = tf.reduce_sum(batch.valid) > 0
    mean = tf.math.divide_no_nan(tf.reduce_sum(per_class * counted), tf.reduce_sum(counted))
    return tf.where(has_pixels, mean, tf.zeros_like(mean))


def _ratio(numerator, denominator, smooth):
    return tf.math.divide_no_nan(numerator + smooth, denominator + smooth)


@_register
class DiceLoss(_RegionLoss):
    """Soft Dice loss, per class ``1 - (2 TP + smooth) / (2 TP + FP + FN + smooth)``.

    See the module doc for how classes are averaged.
    """

    def __init__(self, smooth=1.0, classes="present", ignore_index=255, from_logits=False,
                 mode="auto", name="dice_loss"):
        super().__init__(smooth, classes, ignore_index, from_logits, mode, name)

    def loss_from_counts(self, tp, fp, fn):
        return 1.0 - _ratio(2.0 * tp, 2.0 * tp + fp + fn, self.smooth)


@_register
class JaccardLoss(_RegionLoss):
    """Soft Jaccard (IoU) loss ``1 - (TP + smooth) / (TP + FP + FN + smooth)`` per class."""

    def __init__(self, smooth=1.0, classes="present", ignore_index=255, from_logits=False,
                 mode="auto", name="jaccard_loss"):
        super().__init__(smooth, classes, ignore_index, from_logits, mode, name)

    def loss_from_counts(self, tp, fp, fn):
        return 1.0 - _ratio(tp, tp + fp + fn, self.smooth)


@_register
class TverskyLoss(_RegionLoss):
    """Tversky loss (Salehi et al. 2017), optionally focal (Abraham & Khan 2019).

    Per class ``(1 - T) ** gamma`` with ``T = (TP + smooth) / (TP + alpha FP + beta FN + smooth)``:
    ``alpha`` weights false positives, ``beta`` false negatives (``alpha = beta = 0.5`` is Dice).
    Defaults 0.3 / 0.7 favour recall, as the paper recommends.
    """

    def __init__(self, alpha=0.3, beta=0.7, gamma=1.0, smooth=1.0, classes="present",
                 ignore_index=255, from_logits=False, mode="auto", name="tversky_loss"):
        super().__init__(smooth, classes, ignore_index, from_logits, mode, name)
        if alpha < 0 or beta < 0 or gamma <= 0:
            raise ValueError(
                f"TverskyLoss needs alpha >= 0, beta >= 0, gamma > 0; got {alpha}, {beta}, {gamma}."
            )
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.gamma = float(gamma)

    def loss_from_counts(self, tp, fp, fn):
        index = _ratio(tp, tp + self.alpha * fp + self.beta * fn, self.smooth)
        return tf.pow(tf.maximum(1.0 - index, 0.0), self.gamma)

    def get_config(self):
        config = super().get_config()
        config.update(alpha=self.alpha, beta=self.beta, gamma=self.gamma)
        return config


@_register
class LovaszSoftmaxLoss(SegmentationLoss):
    """Lovász-Softmax loss (Berman et al. 2018), the convex surrogate of per-class IoU.

    Computed over all valid pixels of the batch (not per image). For each class the errors
    ``|onehot - p|`` are sorted in decreasing order and dotted with the gradient of the Lovász
    extension of the Jaccard loss. Averaged over classes present in the batch
    (``classes="present"``) or over all classes. Binary mode scores the foreground only (with
    sigmoid probabilities as errors). A ``sample_weight`` acts only as a mask (weight 0 drops a
    pixel).
    """

    def __init__(self, classes="present", ignore_index=255, from_logits=False, mode="auto",
                 name="lovasz_softmax_loss"):
        super().__init__(ignore_index=ignore_index, from_logits=from_logits, mode=mode, name=name)
        if classes not in _CLASS_CHOICES:
            raise ValueError(f"classes must be one of {_CLASS_CHOICES}; got {classes!r}.")
        self.classes = classes

    def compute(self, batch):
        num_classes = batch.num_classes
        keep = tf.cast(tf.reshape(batch.weight > 0, [1, -1]), tf.float32)
        # Rows are classes from here on. Dropped pixels get error 0 and no foreground instead of
        # being removed (boolean_mask has a dynamic shape, which XLA silently miscompiles here):
        # they sort behind every positive error, and whatever follows them has error 0 too, so
        # they change no term of the sum.
        fg = tf.transpose(tf.reshape(batch.onehot, [-1, num_classes])) * keep
        probs = tf.transpose(tf.reshape(batch.probs, [-1, num_classes]))
        errors = tf.abs(fg - probs) * keep
        order = tf.argsort(tf.stop_gradient(errors), axis=-1, direction="DESCENDING", stable=True)
        errors_sorted = tf.gather(errors, order, batch_dims=1)
        fg_sorted = tf.gather(fg, order, batch_dims=1)
        gts = tf.reduce_sum(fg_sorted, axis=-1, keepdims=True)
        intersection = gts - tf.cumsum(fg_sorted, axis=-1)
        union = gts + tf.cumsum(1.0 - fg_sorted, axis=-1)
        jaccard = 1.0 - tf.math.divide_no_nan(intersection, union)
        grad = tf.concat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], axis=-1)
        per_class = tf.reduce_sum(errors_sorted * tf.stop_gradient(grad), axis=-1)
        return _average_classes(per_class, batch, self.classes)

    def get_config(self):
        config = super().get_config()
        config.update(classes=self.classes)
        return config


_BY_NAME = {
    "cross_entropy": CrossEntropy,
    "binary_cross_entropy": BinaryCrossEntropy,
    "binary_crossentropy": BinaryCrossEntropy,
    "bce": BinaryCrossEntropy,
    "ohem_cross_entropy": OhemCrossEntropy,
    "focal": FocalLoss,
    "dice": DiceLoss,
    "jaccard": JaccardLoss,
    "tversky": TverskyLoss,
    "lovasz": LovaszSoftmaxLoss,
}


def get(name, **kwargs):
    """Builds a loss by short name, e.g. for the CLI.

    Names: ``"cross_entropy"``, ``"binary_cross_entropy"`` (also ``"bce"`` and
    ``"binary_crossentropy"``), ``"ohem_cross_entropy"``, ``"focal"``, ``"dice"``, ``"jaccard"``,
    ``"tversky"``, ``"lovasz"``, matched case-insensitively with ``-`` read as ``_``; ``kwargs``
    go to the loss, e.g. ``get("bce", ignore_index=255)``.
    """
    if isinstance(name, keras.losses.Loss):
        return name
    key = str(name).strip().lower().replace("-", "_")
    try:
        cls = _BY_NAME[key]
    except KeyError:
        raise ValueError(f"Unknown loss {name!r}; choose one of {sorted(_BY_NAME)}.") from None
    return cls(**kwargs)
