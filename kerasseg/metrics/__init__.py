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

Instance segmentation: ``coco_evaluate(model, dataset)`` gives COCO box and mask AP through
``pycocotools.cocoeval.COCOeval`` (never re-implemented here), and the ``COCOEvaluation``
callback logs them during ``fit`` (``val_box_AP``, ``val_mask_AP``, ...).

Panoptic segmentation: ``PanopticQuality(thing_classes, stuff_classes)`` streams PQ, SQ and RQ
over panoptic id maps with panopticapi's rules (void, crowd), and ``panoptic_quality_files``
scores two panopticapi-format folders.

Modules: confusion (the metrics), scores (``confusion_matrix_scores``), report
(``summarize_confusion_matrix``, ``format_report``), coco (``coco_evaluate``,
``COCOEvaluation``), panoptic (``PanopticQuality``, ``panoptic_quality_files``). Importing this
package registers every metric with Keras.
"""

from kerasseg.metrics.coco import STAT_NAMES as COCO_STAT_NAMES
from kerasseg.metrics.coco import COCOEvaluation, coco_evaluate
from kerasseg.metrics.confusion import (
    BinaryIoU,
    ConfusionMatrix,
    DiceScore,
    ForegroundIoU,
    FrequencyWeightedIoU,
    MeanIoU,
    MeanPixelAccuracy,
    PerClassIoU,
    PixelAccuracy,
)
from kerasseg.metrics.panoptic import PanopticQuality, panoptic_quality_files
from kerasseg.metrics.report import format_report, summarize_confusion_matrix
from kerasseg.metrics.scores import confusion_matrix_scores

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
    "coco_evaluate",
    "COCOEvaluation",
    "COCO_STAT_NAMES",
    "PanopticQuality",
    "panoptic_quality_files",
]
