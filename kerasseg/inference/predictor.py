"""``predict``: class maps for images of any size (padding, sliding windows, TTA).

Every image is padded (edge pixels repeated, never zeros: a black border would read as an object
edge) up to the model's multiple, predicted, and cropped back, so the class map always has the
image's own size. Whatever the model's last activation, scores are turned into probabilities
first (softmax for logits, sigmoid for a single logit channel), and all blending of windows,
scales and flips averages probabilities, as mmsegmentation does.

An instance model (``describe(model)["task"] == "instance"``) gets its detections instead:
``kerasseg.models.instance.detect.detect`` (boxes, classes, scores and full-size masks per image).
"""

import weakref

import numpy as np
import tensorflow as tf

from kerasseg.inference.images import size_pair, split_input
from kerasseg.inference.padding import (
    model_channels,
    model_multiple,
    model_static_size,
    pad_to_multiple,
    pad_to_size,
)
from kerasseg.inference.sliding import tiled_probabilities
from kerasseg.inference.tta import check_scales, with_tta
from kerasseg.models.instance.detect import detect
from kerasseg.models.panoptic.predict import panoptic_predict
from kerasseg.models.segmenter import describe
from kerasseg.ops.outputs import main_output, output_kind, to_labels, to_probabilities

__all__ = ["predict", "runner"]

# One traced function per model, reused across calls: reduce_retracing relaxes the traced shape
# to dynamic after the second distinct size, so varied image sizes do not retrace each time.
_RUNNERS = weakref.WeakKeyDictionary()


def runner(model):
    """The model's traced probabilities function (batch -> float32 probabilities), one per
    model and kept while the model lives."""
    fn = _RUNNERS.get(model)
    if fn is None:
        kind = output_kind(model)

        def run(batch):
            return to_probabilities(main_output(model(batch, training=False)), kind)

        fn = tf.function(run, reduce_retracing=True)
        _RUNNERS[model] = fn
    return fn


class _Predictor:
    def __init__(self, model, batch_size, tile, overlap, multiple):
        self.run_model = runner(model)
        self.batch_size = batch_size
        self.multiple = multiple
        self.static = model_static_size(model)
        self.tile = tile
        self.overlap = overlap
        if self.static is not None:
            # A fixed-size model can only see windows of its own size.
            if tile is not None and tuple(tile) != self.static:
                raise ValueError(
                    f"This model takes {self.static[0]}x{self.static[1]} inputs only; "
                    f"tile must be None or {self.static}, got {tile}."
                )
            self.tile = self.static

    def padded(self, batch):
        """Probabilities for a batch of equal-size images: pad, run in chunks, crop back."""
        height, width = batch.shape[1], batch.shape[2]
        if self.static is not None:
            padded = pad_to_size(batch, self.static)
        else:
            padded = pad_to_multiple(batch, self.multiple)
        chunks = [
            self.run_model(padded[i : i + self.batch_size])
            for i in range(0, int(padded.shape[0]), self.batch_size)
        ]
        probs = chunks[0] if len(chunks) == 1 else tf.concat(chunks, axis=0)
        return probs[:, :height, :width]

    def at_size(self, batch):
        if self.tile is None:
            return self.padded(batch)
        return tf.stack(
            [
                tiled_probabilities(image, self.tile, self.overlap, self.batch_size, self.padded)
                for image in tf.unstack(batch)
            ]
        )


def _check_options(batch_size, overlap, scales):
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1); got {overlap!r}.")
    return check_scales(scales)


def _predict_arrays(predictor, arrays, batch_size, scales, flip, keep_probabilities):
    """Labels (and probabilities) per array, in input order; equal-size images share batches."""
    by_shape = {}
    for index, array in enumerate(arrays):
        by_shape.setdefault(array.shape, []).append(index)
    labels, probabilities = [None] * len(arrays), [None] * len(arrays)
    for indices in by_shape.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            batch = tf.constant(np.stack([arrays[i] for i in chunk]))
            probs = with_tta(batch, scales, flip, predictor.at_size)
            chunk_labels = to_labels(probs).numpy()
            for j, i in enumerate(chunk):
                labels[i] = chunk_labels[j]
                if keep_probabilities:
                    probabilities[i] = probs[j].numpy()
    return labels, probabilities


def _detect(model, images, batch_size, multiple, options, tile, scales, flip, probabilities):
    unsupported = {
        "tile": tile is not None,
        "scales": tuple(np.atleast_1d(scales).tolist()) != (1.0,),
        "flip": bool(flip),
        "return_probabilities": bool(probabilities),
    }
    named = [name for name, used in unsupported.items() if used]
    if named:
        raise ValueError(
            f"{', '.join(named)} apply to semantic models only; an instance model's "
            "predict takes score_threshold, max_detections, iou_threshold and max_size."
        )
    options = {name: value for name, value in options.items() if value is not None}
    return detect(model, images, batch_size=batch_size, multiple=multiple, **options)


def _panoptic(model, images, batch_size, multiple, options, tile, scales, flip, probabilities):
    unsupported = {
        "tile": tile is not None,
        "scales": tuple(np.atleast_1d(scales).tolist()) != (1.0,),
        "flip": bool(flip),
        "return_probabilities": bool(probabilities),
        **{name: value is not None for name, value in options.items()},
    }
    named = [name for name, used in unsupported.items() if used]
    if named:
        raise ValueError(
            f"{', '.join(named)} do not apply to a panoptic model; its predict takes "
            "batch_size and multiple."
        )
    return panoptic_predict(model, images, batch_size=batch_size, multiple=multiple)


def predict(
    model,
    images,
    *,
    batch_size=4,
    tile=None,
    overlap=0.25,
    scales=(1.0,),
    flip=False,
    return_probabilities=False,
    multiple=None,
    score_threshold=None,
    max_detections=None,
    iou_threshold=None,
    max_size=None,
):
    """Class maps for images of any size (detections for an instance model).

    Args:
        model: a segmentation model taking RGB [0, 255] images, output (N, H, W, K) scores
            (softmax, sigmoid or logits; one sigmoid/logit channel is a binary model).
        images: uint8 (or float in [0, 255]) array (N, H, W, C) or one image (H, W, C);
            grayscale (H, W), (N, H, W) or (..., 1) is repeated to the model's channel count;
            or a list of images of different sizes.
        batch_size: images (or windows) per forward pass.
        tile: None for whole-image inference, else the sliding-window size, an int or
            (height, width). A model built for a fixed input size always slides windows of
            that size.
        overlap: fraction of the window two neighbouring windows share, in [0, 1).
        scales: test-time resize factors; probabilities are resized back and averaged.
        flip: also predict the horizontally flipped image at each scale (test-time augmentation).
        return_probabilities: also return the averaged probabilities (float32, (..., K)).
        multiple: the side multiple the model needs; default the model's own
            (``describe(model)["input_multiple"]``; 32 for a plain Keras model, which every
            kerasseg architecture accepts).
        score_threshold, max_detections, iou_threshold, max_size: instance models only, passed
            to ``detect`` (None: its defaults 0.05, 100, no extra NMS, no scaling).

    Returns:
        int32 class maps shaped like the input without its channel axis: (H, W) for one image,
        (N, H, W) for a batch, a list for a list. With ``return_probabilities`` a pair
        ``(labels, probabilities)`` of matching structure.
        For an instance model, per image ``{"boxes" float32 [M, 4] y1, x1, y2, x2 pixels,
        "classes" int32 [M], "scores" float32 [M], "masks" bool [M, H, W]}``: a dict for one
        image, a list for a batch or a list.
        For a panoptic model, per image ``{"panoptic": int32 [H, W] class * 1000 + instance
        (-1 void), "segments": [{"id", "class", "class_name", "instance", "is_thing", "score",
        "area"}]}`` (``kerasseg.inference.panoptic``).
    """
    instance = {
        "score_threshold": score_threshold,
        "max_detections": max_detections,
        "iou_threshold": iou_threshold,
        "max_size": max_size,
    }
    if describe(model)["task"] == "panoptic":
        return _panoptic(
            model, images, batch_size, multiple, instance, tile, scales, flip, return_probabilities
        )
    if describe(model)["task"] == "instance":
        return _detect(
            model, images, batch_size, multiple, instance, tile, scales, flip, return_probabilities
        )
    given = [name for name, value in instance.items() if value is not None]
    if given:
        raise ValueError(
            f"{', '.join(given)} apply to instance models only; this model's task is "
            f"{describe(model)['task']!r}."
        )
    scales = _check_options(batch_size, overlap, scales)
    predictor = _Predictor(
        model,
        int(batch_size),
        None if tile is None else size_pair(tile, "tile"),
        float(overlap),
        model_multiple(model, multiple),
    )
    arrays, form = split_input(images, model_channels(model))
    labels, probabilities = _predict_arrays(
        predictor, arrays, batch_size, scales, flip, return_probabilities
    )
    if not arrays:
        empty = np.zeros(np.shape(images)[:3] if form == "batch" else (0,), np.int32)
        labels = [] if form == "list" else empty
        return (labels, labels) if return_probabilities else labels
    if form == "single":
        labels, probabilities = labels[0], probabilities[0]
    elif form == "batch":
        labels = np.stack(labels)
        probabilities = np.stack(probabilities) if return_probabilities else None
    return (labels, probabilities) if return_probabilities else labels
