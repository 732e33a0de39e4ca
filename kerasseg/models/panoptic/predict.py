"""``panoptic_predict``: a panoptic model's map and segments on images of any size (what
``kerasseg.inference.predict`` returns for a panoptic model).

    out = panoptic_predict(model, image)
    out["panoptic"]   # int32 [H, W]: class * label_divisor + instance (instance 0: stuff), -1 void
    out["segments"]   # [{"id", "class", "class_name", "instance", "is_thing", "score", "area"}]

Each image is padded at the bottom and right with zeros (black, as ``kerasseg.data`` pads
training crops) to the model's ``input_multiple`` and the map cropped back. A thing's score is
the model's own (the detection score in Panoptic FPN, centre times class probability in
Panoptic-DeepLab); a stuff region's is the mean probability of its class over the region.
"""

import weakref

import numpy as np
import tensorflow as tf

from kerasseg.models.instance.detect import prepare_image, split_images
from kerasseg.models.panoptic.common import panoptic_classes
from kerasseg.models.segmenter import describe

__all__ = ["panoptic_predict", "segments_of", "PANOPTIC_KEYS"]

PANOPTIC_KEYS = ("panoptic", "instance_scores", "semantic")
_RUNNERS = weakref.WeakKeyDictionary()


def _runner(model):
    fn = _RUNNERS.get(model)
    if fn is None:

        def run(batch):
            outputs = model(batch, training=False)
            missing = [
                k for k in PANOPTIC_KEYS if not isinstance(outputs, dict) or k not in outputs
            ]
            if missing:
                raise ValueError(
                    f"A panoptic model must return a dict with {', '.join(PANOPTIC_KEYS)}; "
                    f"{model.name} lacks {', '.join(missing)}."
                )
            return {k: outputs[k] for k in PANOPTIC_KEYS}

        fn = tf.function(run, reduce_retracing=True)
        _RUNNERS[model] = fn
    return fn


def _semantic_channel(num_channels, num_classes, stuff):
    """Class -> channel of the model's semantic output: the class itself, or (Panoptic FPN's
    1 + S channels) 1 + its position among the stuff classes."""
    if num_channels == num_classes:
        return {c: c for c in range(num_classes)}
    return {c: 1 + i for i, c in enumerate(stuff)}


def segments_of(panoptic, instance_scores, semantic, things, stuff, divisor, names):
    """The segments of one map (see the module doc), largest first."""
    ids, inverse, areas = np.unique(panoptic, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(panoptic.shape)
    channel = _semantic_channel(semantic.shape[-1], len(names), stuff)
    segments = []
    for k, (segment, area) in enumerate(zip(ids.tolist(), areas.tolist())):
        if segment < 0:
            continue
        cls, number = divmod(segment, divisor)
        is_thing = cls in things
        if is_thing and 0 < number <= len(instance_scores):
            score = float(instance_scores[number - 1])
        elif cls in channel:
            score = float(semantic[..., channel[cls]][inverse == k].mean())
        else:
            score = 0.0
        segments.append(
            {
                "id": int(segment),
                "class": int(cls),
                "class_name": names[cls] if 0 <= cls < len(names) else str(cls),
                "instance": int(number),
                "is_thing": bool(is_thing),
                "score": score,
                "area": int(area),
            }
        )
    return sorted(segments, key=lambda s: -s["area"])


def panoptic_predict(model, images, *, batch_size=1, multiple=None):
    """Panoptic maps and segments; one dict for one image, a list for a batch or a list.

    Args:
        model: a panoptic model (``describe(model)["task"] == "panoptic"``).
        images: uint8 (or float in [0, 255]) (N, H, W, 3), one (H, W, 3), grey, or a list of
            images of different sizes.
        batch_size: images per forward pass (equal padded sizes share a batch).
        multiple: the side multiple inputs are padded to; default the model's own.
    """
    info = describe(model)
    things, stuff, divisor = panoptic_classes(model)
    multiple = info["input_multiple"] if multiple is None else multiple
    for what, value in (("batch_size", batch_size), ("multiple", multiple)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{what} must be a positive integer; got {value!r}.")
    arrays, form = split_images(images)
    padded = [prepare_image(array, None, int(multiple))[0] for array in arrays]
    by_shape = {}
    for index, canvas in enumerate(padded):
        by_shape.setdefault(canvas.shape, []).append(index)
    run = _runner(model)
    results = [None] * len(arrays)
    for indices in by_shape.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            outputs = run(tf.constant(np.stack([padded[i] for i in chunk])))
            outputs = {k: v.numpy() for k, v in outputs.items()}
            for row, i in enumerate(chunk):
                height, width = arrays[i].shape[:2]
                panoptic = outputs["panoptic"][row, :height, :width].astype(np.int32)
                semantic = outputs["semantic"][row, :height, :width]
                results[i] = {
                    "panoptic": panoptic,
                    "segments": segments_of(
                        panoptic,
                        outputs["instance_scores"][row],
                        semantic,
                        things,
                        stuff,
                        divisor,
                        info["class_names"],
                    ),
                }
    return results[0] if form == "single" else results
