"""Region losses: per-class scores from batch-wide soft TP/FP/FN, averaged over classes."""

import keras
import tensorflow as tf

from kerasseg.losses.base import SegmentationLoss

__all__ = [
    "CLASS_CHOICES",
    "DiceLoss",
    "JaccardLoss",
    "RegionLoss",
    "TverskyLoss",
    "average_classes",
]

CLASS_CHOICES = ("present", "all")


class RegionLoss(SegmentationLoss):
    """Per-class scores from batch-wide soft TP/FP/FN, averaged over the counted classes."""

    def __init__(
        self,
        smooth=1.0,
        classes="present",
        ignore_index=255,
        from_logits=False,
        mode="auto",
        name=None,
    ):
        super().__init__(ignore_index=ignore_index, from_logits=from_logits, mode=mode, name=name)
        if classes not in CLASS_CHOICES:
            raise ValueError(f"classes must be one of {CLASS_CHOICES}; got {classes!r}.")
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
        return average_classes(self.class_losses(batch), batch, self.classes)

    def get_config(self):
        config = super().get_config()
        config.update(smooth=self.smooth, classes=self.classes)
        return config


def average_classes(per_class, batch, classes):
    """Mean of per-class losses over the counted classes; 0 for a batch without valid pixels."""
    if batch.binary:
        counted = tf.constant([0.0, 1.0])
    elif classes == "all":
        counted = tf.ones_like(per_class)
    else:
        counted = tf.cast(
            tf.reduce_sum(batch.onehot * batch.valid[..., None], [0, 1, 2]) > 0, tf.float32
        )
    has_pixels = tf.reduce_sum(batch.valid) > 0
    mean = tf.math.divide_no_nan(tf.reduce_sum(per_class * counted), tf.reduce_sum(counted))
    return tf.where(has_pixels, mean, tf.zeros_like(mean))


def _ratio(numerator, denominator, smooth):
    return tf.math.divide_no_nan(numerator + smooth, denominator + smooth)


@keras.saving.register_keras_serializable(package="kerasseg")
class DiceLoss(RegionLoss):
    """Soft Dice loss, per class ``1 - (2 TP + smooth) / (2 TP + FP + FN + smooth)``.

    See the module doc for how classes are averaged.
    """

    def __init__(
        self,
        smooth=1.0,
        classes="present",
        ignore_index=255,
        from_logits=False,
        mode="auto",
        name="dice_loss",
    ):
        super().__init__(smooth, classes, ignore_index, from_logits, mode, name)

    def loss_from_counts(self, tp, fp, fn):
        return 1.0 - _ratio(2.0 * tp, 2.0 * tp + fp + fn, self.smooth)


@keras.saving.register_keras_serializable(package="kerasseg")
class JaccardLoss(RegionLoss):
    """Soft Jaccard (IoU) loss ``1 - (TP + smooth) / (TP + FP + FN + smooth)`` per class."""

    def __init__(
        self,
        smooth=1.0,
        classes="present",
        ignore_index=255,
        from_logits=False,
        mode="auto",
        name="jaccard_loss",
    ):
        super().__init__(smooth, classes, ignore_index, from_logits, mode, name)

    def loss_from_counts(self, tp, fp, fn):
        return 1.0 - _ratio(tp, tp + fp + fn, self.smooth)


@keras.saving.register_keras_serializable(package="kerasseg")
class TverskyLoss(RegionLoss):
    """Tversky loss (Salehi et al. 2017), optionally focal (Abraham & Khan 2019).

    Per class ``(1 - T) ** gamma`` with ``T = (TP + smooth) / (TP + alpha FP + beta FN + smooth)``:
    ``alpha`` weights false positives, ``beta`` false negatives (``alpha = beta = 0.5`` is Dice).
    Defaults 0.3 / 0.7 favour recall, as the paper recommends.
    """

    def __init__(
        self,
        alpha=0.3,
        beta=0.7,
        gamma=1.0,
        smooth=1.0,
        classes="present",
        ignore_index=255,
        from_logits=False,
        mode="auto",
        name="tversky_loss",
    ):
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
