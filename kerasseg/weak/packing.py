"""Packed targets: the image carried in ``y_true`` for the losses that need it, and the metrics
that read such targets.

    batches = kerasseg.weak.pack_image(kerasseg.data.prepare(ds, ...))  # y: (B,H,W,1+C)
    model.compile(loss=losses.PartialCrossEntropy() + 0.1 * losses.GatedCRFLoss(),
                  metrics=[weak.PackedMeanIoU(num_classes)])

``pack_image`` runs after ``prepare``, so the image and the labels already went through the same
crop, scale and flip (the labels by nearest neighbour, the image photometrically distorted too:
the loss sees the image the network sees). ``PackedMeanIoU`` and ``PackedPixelAccuracy`` are the
``kerasseg.metrics`` ones applied to channel 0 of a packed target (plain labels work as well).
"""

import keras
import tensorflow as tf

from kerasseg import metrics
from kerasseg.losses.weak import unpack

__all__ = ["PackedMeanIoU", "PackedPixelAccuracy", "pack_image", "pack"]


def pack(images, labels):
    """``(images, labels)`` -> ``(images, float32 [..., H, W, 1 + C])``: labels then image."""
    images = tf.cast(images, tf.float32)
    labels = tf.cast(labels, tf.float32)
    if labels.shape.rank == images.shape.rank:
        labels = labels[..., 0]
    return images, tf.concat([labels[..., None], images], axis=-1)


def pack_image(batches):
    """Maps a dataset of ``(images, sparse labels)`` to packed targets (see the module doc)."""
    return batches.map(pack, num_parallel_calls=tf.data.AUTOTUNE)


@keras.saving.register_keras_serializable(package="kerasseg")
class PackedMeanIoU(metrics.MeanIoU):
    """``metrics.MeanIoU`` on channel 0 of a packed target."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(unpack(y_true)[0], y_pred, sample_weight)


@keras.saving.register_keras_serializable(package="kerasseg")
class PackedPixelAccuracy(metrics.PixelAccuracy):
    """``metrics.PixelAccuracy`` on channel 0 of a packed target."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(unpack(y_true)[0], y_pred, sample_weight)
