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

Modules: base (``SegmentationLoss``, ``CombinedLoss``), pixel (the cross-entropy family), region
(Dice, Jaccard, Tversky), lovasz, registry (``get``: losses by short name), weak
(``PartialCrossEntropy``, ``GatedCRFLoss``: weak supervision, targets that carry the
image). Importing this package registers every loss with Keras.
"""

from kerasseg.losses.base import CombinedLoss, SegmentationLoss
from kerasseg.losses.lovasz import LovaszSoftmaxLoss
from kerasseg.losses.pixel import BinaryCrossEntropy, CrossEntropy, FocalLoss, OhemCrossEntropy
from kerasseg.losses.region import DiceLoss, JaccardLoss, TverskyLoss
from kerasseg.losses.registry import LOSSES, get
from kerasseg.losses.weak import GatedCRFLoss, PartialCrossEntropy

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
    "PartialCrossEntropy",
    "GatedCRFLoss",
    "LOSSES",
    "get",
]
