"""``detect``: an instance model's detections on images of any size, in the images' own pixels.

    result = detect(model, image)        # {"boxes", "classes", "scores", "masks" bool [M, H, W]}
    results = detect(model, batch)       # a list, one dict per image

Each image is (optionally) scaled down so its long side is at most ``max_size``, padded at the
bottom and right with zeros (black, as ``kerasseg.data`` pads training crops) up to the model's
``input_multiple``, and run through ``model(images, training=False)``, which returns the
instance contract: ``boxes`` [B, D, 4] (y1, x1, y2, x2 in input pixels), ``scores`` [B, D],
``classes`` [B, D] (0..K-1), ``masks`` [B, D, m, m] (probabilities in the box frame) and
``num_detections`` [B]. The boxes are scaled back to the original pixels; rows past
``num_detections``, below ``score_threshold`` or wholly outside the image are dropped; an
optional extra class-wise NMS runs at ``iou_threshold``; the best ``max_detections`` are kept
(highest score first); and the masks are pasted at the original image size
(``kerasseg.ops.masks.paste_masks``) in the frame of the unclipped box, while the returned boxes
are clipped to the image.
"""

import weakref

import cv2
import numpy as np
import tensorflow as tf

from kerasseg.models.segmenter import describe
from kerasseg.ops.masks import paste_masks

__all__ = ["detect", "OUTPUT_KEYS", "empty_result", "prepare_image", "split_images"]

OUTPUT_KEYS = ("boxes", "scores", "classes", "masks", "num_detections")
_RUNNERS = weakref.WeakKeyDictionary()


def _runner(model):
    """One traced forward pass per model (reduce_retracing: image sizes go dynamic)."""
    fn = _RUNNERS.get(model)
    if fn is None:

        def run(batch):
            outputs = model(batch, training=False)
            if not isinstance(outputs, dict) or any(key not in outputs for key in OUTPUT_KEYS):
                got = sorted(outputs) if isinstance(outputs, dict) else type(outputs).__name__
                raise ValueError(
                    "An instance model must return a dict with "
                    f"{', '.join(OUTPUT_KEYS)}; got {got}."
                )
            return {key: outputs[key] for key in OUTPUT_KEYS}

        fn = tf.function(run, reduce_retracing=True)
        _RUNNERS[model] = fn
    return fn


def _as_image(image, where):
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3) or 0 in array.shape[:2]:
        raise ValueError(
            f"{where}: expected an image (H, W, 3), (H, W, 1) or (H, W); got shape {array.shape}."
        )
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    if array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise ValueError(f"{where}: images must hold numbers in [0, 255]; got dtype {array.dtype}.")
    return array


def split_images(images):
    """-> (list of (H, W, 3) arrays, "single" | "batch" | "list")."""
    if isinstance(images, (list, tuple)):
        return [_as_image(im, f"images[{i}]") for i, im in enumerate(images)], "list"
    array = np.asarray(images)
    if array.ndim == 4 or (array.ndim == 3 and array.shape[-1] not in (1, 3)):
        return [_as_image(im, f"images[{i}]") for i, im in enumerate(array)], "batch"
    return [_as_image(array, "image")], "single"


def _positive_int(value, what, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be a positive integer; got {value!r}.")
    return int(value)


def prepare_image(image, max_size, multiple):
    """-> (padded float32 (Hp, Wp, 3), (scale_y, scale_x)) for one image."""
    height, width = image.shape[:2]
    image = image.astype(np.float32)
    scale = (1.0, 1.0)
    if max_size is not None and max(height, width) > max_size:
        factor = max_size / max(height, width)
        size = (max(1, round(height * factor)), max(1, round(width * factor)))
        image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        scale = (size[0] / height, size[1] / width)
    padded_h = -(-image.shape[0] // multiple) * multiple
    padded_w = -(-image.shape[1] // multiple) * multiple
    padded = np.zeros((padded_h, padded_w, 3), np.float32)
    padded[: image.shape[0], : image.shape[1]] = image
    return padded, scale


def empty_result(height, width, mask_dtype=bool):
    return {
        "boxes": np.zeros((0, 4), np.float32),
        "classes": np.zeros((0,), np.int32),
        "scores": np.zeros((0,), np.float32),
        "masks": np.zeros((0, height, width), mask_dtype),
    }


def _class_nms(boxes, scores, classes, iou_threshold):
    """Indices kept by per-class NMS, highest score first."""
    keep = []
    for label in np.unique(classes):
        index = np.flatnonzero(classes == label)
        chosen = tf.image.non_max_suppression(
            boxes[index], scores[index], max_output_size=len(index), iou_threshold=iou_threshold
        ).numpy()
        keep.extend(index[chosen].tolist())
    keep = np.asarray(keep, np.int64)
    return keep[np.argsort(-scores[keep], kind="stable")]


def _decode(outputs, row, image_size, scale, options):
    """One image's result from row ``row`` of the model's batched outputs."""
    height, width = image_size
    count = int(outputs["num_detections"][row])
    boxes = np.asarray(outputs["boxes"][row][:count], np.float32).reshape(-1, 4)
    scores = np.asarray(outputs["scores"][row][:count], np.float32).reshape(-1)
    classes = np.asarray(outputs["classes"][row][:count]).astype(np.int32).reshape(-1)
    masks = np.asarray(outputs["masks"][row][:count], np.float32)
    boxes = boxes / np.array([scale[0], scale[1], scale[0], scale[1]], np.float32)
    clipped = np.clip(boxes, 0.0, np.array([height, width, height, width], np.float32))
    # Boxes left empty by the clipping (wholly outside the image) go, as in Detectron2.
    nonempty = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    keep = np.flatnonzero((scores >= options["score_threshold"]) & nonempty)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    if options["iou_threshold"] is not None and len(keep):
        keep = keep[
            _class_nms(clipped[keep], scores[keep], classes[keep], options["iou_threshold"])
        ]
    keep = keep[: options["max_detections"]]
    if not len(keep):
        return empty_result(height, width)
    return {
        "boxes": clipped[keep],
        "classes": classes[keep],
        "scores": scores[keep],
        # Pasted in the frame of the unclipped box: the mask covers that box.
        "masks": paste_masks(masks[keep], boxes[keep], height, width, options["mask_threshold"]),
    }


def detect(
    model,
    images,
    *,
    score_threshold=0.05,
    max_detections=100,
    iou_threshold=None,
    batch_size=1,
    max_size=None,
    mask_threshold=0.5,
    multiple=None,
):
    """Instance detections (boxes, classes, scores, full-size masks) for images of any size.

    Args:
        model: an instance model (``describe(model)["task"] == "instance"``) returning the dict
            of ``OUTPUT_KEYS`` for float32 [0, 255] images (see the module docstring).
        images: uint8 (or float in [0, 255]) (N, H, W, 3), one (H, W, 3) (grey (H, W) or
            (..., 1) is repeated to RGB), or a list of images of different sizes.
        score_threshold: drop detections scoring below it.
        max_detections: keep at most this many per image (the highest scores).
        iou_threshold: None, or the IoU of an extra class-wise NMS over the model's detections.
        batch_size: images per forward pass (equal padded sizes share a batch).
        max_size: None, or the longest side an image is scaled down to before the model
            (boxes and masks come back at the original size).
        mask_threshold: mask probability from which a pixel is on.
        multiple: the side multiple inputs are padded to; default the model's
            ``input_multiple``.

    Returns:
        Per image a dict ``{"boxes": float32 [M, 4] y1, x1, y2, x2 in the image's pixels
        (clipped to it), "classes": int32 [M], "scores": float32 [M] (descending),
        "masks": bool [M, H, W]}``; one dict for one image, a list for a batch or a list.
    """
    if not 0.0 <= float(score_threshold) <= 1.0:
        raise ValueError(f"score_threshold must be in [0, 1]; got {score_threshold!r}.")
    if iou_threshold is not None and not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"iou_threshold must be None or in [0, 1]; got {iou_threshold!r}.")
    options = {
        "score_threshold": float(score_threshold),
        "max_detections": _positive_int(max_detections, "max_detections"),
        "iou_threshold": None if iou_threshold is None else float(iou_threshold),
        "mask_threshold": float(mask_threshold),
    }
    batch_size = _positive_int(batch_size, "batch_size")
    max_size = _positive_int(max_size, "max_size", allow_none=True)
    if multiple is None:
        multiple = describe(model)["input_multiple"] or 1
    multiple = _positive_int(multiple, "multiple")
    arrays, form = split_images(images)
    prepared = [prepare_image(array, max_size, multiple) for array in arrays]
    by_shape = {}
    for index, (padded, _) in enumerate(prepared):
        by_shape.setdefault(padded.shape, []).append(index)
    run = _runner(model)
    results = [None] * len(arrays)
    for indices in by_shape.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            batch = tf.constant(np.stack([prepared[i][0] for i in chunk]))
            outputs = {key: value.numpy() for key, value in run(batch).items()}
            for row, i in enumerate(chunk):
                size = arrays[i].shape[:2]
                results[i] = _decode(outputs, row, size, prepared[i][1], options)
    return results[0] if form == "single" else results
