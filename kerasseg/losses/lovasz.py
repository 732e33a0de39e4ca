"""The Lovasz-Softmax loss (Berman et al. 2018)."""

import keras
import tensorflow as tf

from kerasseg.losses.base import SegmentationLoss
from kerasseg.losses.region import CLASS_CHOICES, average_classes

__all__ = ["LovaszSoftmaxLoss"]


@keras.saving.register_keras_serializable(package="kerasseg")
class LovaszSoftmaxLoss(SegmentationLoss):
    """Lovász-Softmax loss (Berman et al. 2018), the convex surrogate of per-class IoU.

    Computed over all valid pixels of the batch (not per image). For each class the errors
    ``|onehot - p|`` are sorted in decreasing order and dotted with the gradient of the Lovász
    extension of the Jaccard loss. Averaged over classes present in the batch
    (``classes="present"``) or over all classes. Binary mode scores the foreground only (with
    sigmoid probabilities as errors). A ``sample_weight`` acts only as a mask (weight 0 drops a
    pixel).
    """

    def __init__(
        self,
        classes="present",
        ignore_index=255,
        from_logits=False,
        mode="auto",
        name="lovasz_softmax_loss",
    ):
        super().__init__(ignore_index=ignore_index, from_logits=from_logits, mode=mode, name=name)
        if classes not in CLASS_CHOICES:
            raise ValueError(f"classes must be one of {CLASS_CHOICES}; got {classes!r}.")
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
        return average_classes(per_class, batch, self.classes)

    def get_config(self):
        config = super().get_config()
        config.update(classes=self.classes)
        return config
