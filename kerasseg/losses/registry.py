"""Losses by short name, e.g. for the command line: ``get("bce", ignore_index=255)``."""

import keras

from kerasseg.losses.lovasz import LovaszSoftmaxLoss
from kerasseg.losses.pixel import BinaryCrossEntropy, CrossEntropy, FocalLoss, OhemCrossEntropy
from kerasseg.losses.region import DiceLoss, JaccardLoss, TverskyLoss
from kerasseg.losses.weak import GatedCRFLoss, PartialCrossEntropy

__all__ = ["LOSSES", "get"]

LOSSES = {
    "cross_entropy": CrossEntropy,
    "crossentropy": CrossEntropy,
    "ce": CrossEntropy,
    "binary_cross_entropy": BinaryCrossEntropy,
    "binary_crossentropy": BinaryCrossEntropy,
    "bce": BinaryCrossEntropy,
    "ohem_cross_entropy": OhemCrossEntropy,
    "focal": FocalLoss,
    "dice": DiceLoss,
    "jaccard": JaccardLoss,
    "tversky": TverskyLoss,
    "lovasz": LovaszSoftmaxLoss,
    "partial_cross_entropy": PartialCrossEntropy,
    "gated_crf": GatedCRFLoss,
}


def get(name, **kwargs):
    """Builds a loss by short name, e.g. for the CLI.

    Names: ``"cross_entropy"`` (also ``"ce"`` and ``"crossentropy"``),
    ``"binary_cross_entropy"`` (also ``"bce"`` and ``"binary_crossentropy"``),
    ``"ohem_cross_entropy"``, ``"focal"``, ``"dice"``, ``"jaccard"``, ``"tversky"``, ``"lovasz"``,
    ``"partial_cross_entropy"``, ``"gated_crf"`` (weak supervision: its targets carry the image),
    matched case-insensitively with ``-`` read as ``_``; ``kwargs`` go to the loss, e.g.
    ``get("bce", ignore_index=255)``.
    """
    if isinstance(name, keras.losses.Loss):
        return name
    key = str(name).strip().lower().replace("-", "_")
    try:
        cls = LOSSES[key]
    except KeyError:
        raise ValueError(f"Unknown loss {name!r}; choose one of {sorted(LOSSES)}.") from None
    return cls(**kwargs)
