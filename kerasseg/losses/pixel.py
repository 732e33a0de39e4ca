"""Cross-entropy type losses, averaged over the valid pixels of the whole batch."""

import keras
import tensorflow as tf

from kerasseg.losses.base import (
    SegmentationLoss,
    float_tuple,
    is_scalar,
    per_class_weights,
    weighted_mean,
)

__all__ = ["BinaryCrossEntropy", "CrossEntropy", "FocalLoss", "OhemCrossEntropy"]


@keras.saving.register_keras_serializable(package="kerasseg")
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
        self.class_weights = float_tuple(class_weights, "class_weights")
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
            cw = per_class_weights(
                self.class_weights, batch.num_classes, "class_weights", type(self).__name__
            )
            weight = weight * tf.gather(cw, batch.labels)
        return ce, weight

    def compute(self, batch):
        ce, weight = self.pixel_losses(batch)
        return weighted_mean(ce, weight)

    def get_config(self):
        config = super().get_config()
        config.update(
            class_weights=None if self.class_weights is None else list(self.class_weights),
            label_smoothing=self.label_smoothing,
        )
        return config


@keras.saving.register_keras_serializable(package="kerasseg")
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

    def __init__(
        self,
        ignore_index=255,
        class_weights=None,
        from_logits=False,
        label_smoothing=0.0,
        name="binary_cross_entropy",
    ):
        super().__init__(
            ignore_index=ignore_index,
            class_weights=class_weights,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            mode="binary",
            name=name,
        )

    def get_config(self):
        config = super().get_config()
        config.pop("mode")
        return config


@keras.saving.register_keras_serializable(package="kerasseg")
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
        return weighted_mean(ce, weight * kept)

    def get_config(self):
        config = super().get_config()
        config.update(threshold=self.threshold, min_kept=self.min_kept)
        return config


@keras.saving.register_keras_serializable(package="kerasseg")
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
        if alpha is None or is_scalar(alpha):
            self.alpha = None if alpha is None else float(alpha)
        else:
            self.alpha = float_tuple(alpha, "alpha")

    def _alpha_t(self, batch):
        if self.alpha is None:
            return 1.0
        if isinstance(self.alpha, tuple):
            a = per_class_weights(self.alpha, batch.num_classes, "alpha", "FocalLoss")
            return tf.gather(a, batch.labels)
        if batch.binary:
            return tf.where(batch.labels == 1, self.alpha, 1.0 - self.alpha)
        return self.alpha

    def compute(self, batch):
        log_pt = tf.reduce_sum(batch.onehot * batch.log_probs, axis=-1)
        pt = tf.exp(log_pt)
        focal = -self._alpha_t(batch) * tf.pow(1.0 - pt, self.gamma) * log_pt
        return weighted_mean(focal, batch.weight)

    def get_config(self):
        config = super().get_config()
        alpha = list(self.alpha) if isinstance(self.alpha, tuple) else self.alpha
        config.update(gamma=self.gamma, alpha=alpha)
        return config
