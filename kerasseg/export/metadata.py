"""What an exported model says about its classes: names and colours, by default the model's own
(``describe(model)``), checked against the classes it predicts. NumPy only (no OpenCV)."""

import numpy as np

from kerasseg.models.segmenter import default_class_names, describe
from kerasseg.ops.palette import default_palette

__all__ = ["num_classes", "metadata"]


def num_classes(model):
    """The classes the served labels take: one sigmoid/logit channel still labels two, 0 and 1;
    an instance model's object classes (``describe(model)["num_classes"]``)."""
    if describe(model)["task"] == "instance":
        return int(describe(model)["num_classes"])
    return max(int(model.outputs[0].shape[-1]), 2)


def _names(model, class_names, k):
    if class_names is None:
        names = describe(model)["class_names"]
        return names if len(names) == k else default_class_names(k)
    names = [str(c) for c in class_names]
    if len(names) != k:
        raise ValueError(f"class_names has {len(names)} names; the model predicts {k} classes.")
    return names


def _colours(model, palette, k):
    if palette is None:
        colours = np.asarray(describe(model)["palette"])
        return colours if colours.ndim == 2 and len(colours) >= k else default_palette(k)
    colours = np.asarray(palette)
    if colours.ndim != 2 or colours.shape[1] != 3 or len(colours) < k:
        raise ValueError(
            f"palette must be {k} or more RGB colours (shape (K, 3)); got shape {colours.shape}."
        )
    if colours.min() < 0 or colours.max() > 255:
        raise ValueError("palette colours must be in [0, 255].")
    return colours


def metadata(model, class_names=None, palette=None):
    """-> (class names, a list of K str; palette, uint8 [K, 3]). Defaults: the model's own
    (a ``Segmenter``'s names and colours), else ``class_0``... and kerasseg's default colours."""
    k = num_classes(model)
    return _names(model, class_names, k), _colours(model, palette, k)[:k].astype(np.uint8)
