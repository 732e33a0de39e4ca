"""Prediction on images of any size: padding to the model's multiple, sliding windows, TTA.

    labels = kerasseg.inference.predict(model, image)                # (H, W) int32
    labels = kerasseg.inference.predict(model, batch, tile=512)      # (N, H, W), sliding window
    labels, probs = kerasseg.inference.predict(model, images, scales=(0.75, 1.0, 1.25), flip=True,
                                               return_probabilities=True)

An instance model (task "instance") gets per image ``{"boxes", "classes", "scores", "masks"}``
from ``predict`` (``detect``, re-exported here from ``kerasseg.models.instance.detect``).

Modules: ``predictor`` (``predict``); ``padding`` (the model's input multiple, read from
``describe(model)``, channels, fixed size, edge padding); ``images`` (input shapes);
``sliding`` (windows and Hann blending); ``tta`` (scales and flips). The score-to-probability
functions live in ``kerasseg.ops.outputs`` and are re-exported here.
"""

from kerasseg.inference.images import as_image_array, size_pair, split_input
from kerasseg.inference.padding import (
    DEFAULT_MULTIPLE,
    model_channels,
    model_multiple,
    model_static_size,
    pad_to_multiple,
    pad_to_size,
)
from kerasseg.inference.predictor import predict, runner
from kerasseg.inference.sliding import hann, tiled_probabilities, window_starts
from kerasseg.inference.tta import check_scales, with_tta
from kerasseg.models.instance.detect import detect
from kerasseg.models.panoptic.predict import panoptic_predict, segments_of
from kerasseg.ops.outputs import main_output, output_kind, to_labels, to_probabilities

__all__ = [
    "panoptic_predict",
    "segments_of",
    "DEFAULT_MULTIPLE",
    "as_image_array",
    "check_scales",
    "detect",
    "hann",
    "main_output",
    "model_channels",
    "model_multiple",
    "model_static_size",
    "output_kind",
    "pad_to_multiple",
    "pad_to_size",
    "predict",
    "runner",
    "size_pair",
    "split_input",
    "tiled_probabilities",
    "to_labels",
    "to_probabilities",
    "window_starts",
    "with_tta",
]
