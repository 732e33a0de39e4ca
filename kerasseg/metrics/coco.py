"""COCO box and mask AP of an instance model, through ``pycocotools`` only.

    ds = kerasseg.datasets.load("shapes_instances", split="val")   # unbatched examples
    stats = kerasseg.metrics.coco_evaluate(model, ds)
    stats["segm"]["AP"], stats["bbox"]["AP50"]
    model.fit(train, callbacks=[kerasseg.metrics.COCOEvaluation(val_ds, every=5)])

The ground truth is built in memory from the examples ``(image uint8 [H, W, 3], {"boxes" [M, 4]
y1, x1, y2, x2, "classes" [M], "masks" uint8 [M, H, W]})``: one COCO image per example (ids from
1), one annotation per instance with its RLE mask (``pycocotools.mask.encode``), its mask area,
its box in COCO ``[x, y, w, h]`` and ``iscrowd`` 0; category ids are class index + 1. The model's
detections (``kerasseg.models.instance.detect``) become COCO results (RLE masks, xywh boxes,
scores) and ``pycocotools.cocoeval.COCOeval`` scores them with its standard parameters (IoU
0.50:0.95, maxDets 1, 10, 100, COCO's area ranges). As Detectron2 does, mask results carry no box,
so the small / medium / large split of the mask AP uses mask areas.

The 12 numbers COCOeval's ``summarize`` prints are returned per type under ``STAT_NAMES``;
pycocotools' -1 (no ground truth in that range, e.g. no small objects) is NaN here (null in the
JSON file). A class absent from the ground truth is left out of the means, by COCO's rules.
"""

import contextlib
import io
import json
import os

import keras
import numpy as np

from kerasseg.models.instance.detect import detect
from kerasseg.models.segmenter import describe

__all__ = ["coco_evaluate", "COCOEvaluation", "STAT_NAMES", "IOU_TYPES"]

IOU_TYPES = ("bbox", "segm")
STAT_NAMES = (
    "AP",
    "AP50",
    "AP75",
    "APs",
    "APm",
    "APl",
    "AR1",
    "AR10",
    "AR100",
    "ARs",
    "ARm",
    "ARl",
)
LOG_NAMES = {"bbox": "box", "segm": "mask"}


def _numpy(value):
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def _examples(dataset):
    """(image, boxes, classes, masks) NumPy arrays per example of an unbatched data set."""
    for index, example in enumerate(dataset):
        image, target = example
        image = _numpy(image)
        if image.ndim != 3:
            raise ValueError(
                f"coco_evaluate takes unbatched examples (image [H, W, 3], target); example "
                f"{index} has an image of shape {image.shape}. Pass the data set before "
                "batching (as kerasseg.datasets.load gives it) or call .unbatch()."
            )
        height, width = image.shape[:2]
        masks = _numpy(target["masks"]).astype(np.uint8).reshape(-1, height, width)
        classes = _numpy(target["classes"]).astype(np.int64).reshape(-1)
        boxes = target.get("boxes")
        boxes = None if boxes is None else _numpy(boxes).astype(np.float64).reshape(-1, 4)
        if len(classes) != len(masks) or (boxes is not None and len(boxes) != len(masks)):
            raise ValueError(
                f"example {index}: {len(masks)} masks, {len(classes)} classes and "
                f"{'no' if boxes is None else len(boxes)} boxes; they must match."
            )
        yield image, boxes, classes, masks


def _rle(mask):
    import pycocotools.mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")  # JSON-friendly
    return rle


def _xywh(boxes):
    """y1, x1, y2, x2 -> COCO [x, y, w, h] (lists of floats)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.stack(
        [boxes[:, 1], boxes[:, 0], boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]], 1
    ).tolist()


def _ground_truth(examples):
    """-> (COCO dataset dict without categories, image sizes, largest class seen)."""
    import pycocotools.mask as mask_utils

    images, annotations, sizes, top = [], [], [], -1
    for image_id, (image, boxes, classes, masks) in enumerate(examples, 1):
        height, width = image.shape[:2]
        images.append({"id": image_id, "height": height, "width": width})
        sizes.append((height, width))
        rles = [_rle(mask) for mask in masks]
        if boxes is None:
            xywh = [mask_utils.toBbox(rle).tolist() for rle in rles]
        else:
            xywh = _xywh(boxes)
        for rle, box, label in zip(rles, xywh, classes):
            annotations.append(
                {
                    "id": len(annotations) + 1,  # COCOeval needs ids from 1
                    "image_id": image_id,
                    "category_id": int(label) + 1,
                    "segmentation": rle,
                    "area": float(mask_utils.area(rle)),
                    "bbox": [float(v) for v in box],
                    "iscrowd": 0,
                }
            )
            top = max(top, int(label))
    return {"images": images, "annotations": annotations}, sizes, top


def _results(predictions, sizes, score_threshold, max_detections):
    """COCO result lists per IoU type from detect()-style dicts (one per image)."""
    if len(predictions) != len(sizes):
        raise ValueError(
            f"{len(predictions)} predictions for {len(sizes)} examples; pass one detect() "
            "result per example, in the data set's order."
        )
    bbox, segm, top = [], [], -1
    for image_id, (result, size) in enumerate(zip(predictions, sizes), 1):
        scores = np.asarray(result["scores"], np.float64).reshape(-1)
        order = np.argsort(-scores, kind="stable")
        order = order[scores[order] >= score_threshold][:max_detections]
        classes = np.asarray(result["classes"]).astype(np.int64).reshape(-1)
        boxes = _xywh(np.asarray(result["boxes"]).reshape(-1, 4)[order]) if len(order) else []
        masks = result.get("masks")
        if masks is not None:
            masks = np.asarray(masks).reshape(-1, *size)
        for j, index in enumerate(order):
            common = {
                "image_id": image_id,
                "category_id": int(classes[index]) + 1,
                "score": float(scores[index]),
            }
            bbox.append({**common, "bbox": [float(v) for v in boxes[j]]})
            if masks is not None:
                segm.append({**common, "segmentation": _rle(masks[index] > 0)})
            top = max(top, int(classes[index]))
    return {"bbox": bbox, "segm": segm}, top


def _score(ground_truth, results, iou_type, verbose):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with quiet:
        truth = COCO()
        truth.dataset = ground_truth
        truth.createIndex()
        if results:
            detections = truth.loadRes(results)
        else:  # loadRes refuses an empty list; no detection scores 0 where there is truth
            detections = COCO()
            detections.dataset = {**ground_truth, "annotations": []}
            detections.createIndex()
        evaluator = COCOeval(truth, detections, iouType=iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {
        name: float("nan") if value < 0 else float(value)
        for name, value in zip(STAT_NAMES, evaluator.stats)
    }


def _write(stats, output, overwrite):
    if os.path.exists(output) and not overwrite:
        raise FileExistsError(f"{output} exists; pass overwrite=True to replace it.")
    plain = {
        kind: {name: None if np.isnan(value) else value for name, value in values.items()}
        for kind, values in stats.items()
    }
    folder = os.path.dirname(os.path.abspath(output))
    os.makedirs(folder, exist_ok=True)
    with open(output, "w", encoding="utf-8") as f:
        json.dump(plain, f, indent=2)


def coco_evaluate(
    model,
    dataset,
    *,
    iou_types=IOU_TYPES,
    score_threshold=0.0,
    max_detections=100,
    class_names=None,
    output=None,
    overwrite=False,
    verbose=False,
    **detect_options,
):
    """COCO box and mask AP (``pycocotools.cocoeval.COCOeval``) of an instance model.

    Args:
        model: an instance model, or precomputed predictions: a list with one
            ``detect()``-style dict (``boxes`` y1, x1, y2, x2 pixels, ``classes``, ``scores``,
            ``masks`` [M, H, W]) per example, in the data set's order.
        dataset: unbatched instance examples ``(image uint8 [H, W, 3], {"boxes", "classes",
            "masks" uint8 [M, H, W]})`` (a ``tf.data.Dataset`` or any iterable).
        iou_types: any of "bbox" and "segm".
        score_threshold: detections scoring below it are left out.
        max_detections: detections per image (COCO's maxDets stay 1, 10, 100).
        class_names: category names (default the model's, else ``class_<i>``).
        output: a path to write the result as JSON (refused if it exists, unless
            ``overwrite=True``).
        verbose: let pycocotools print its progress and tables.
        **detect_options: passed to ``detect`` (``iou_threshold``, ``max_size``, ...).

    Returns:
        ``{iou_type: {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100",
        "ARs", "ARm", "ARl"}}`` (floats in [0, 1]; NaN where COCO has no ground truth).
    """
    iou_types = (iou_types,) if isinstance(iou_types, str) else tuple(iou_types)
    if not iou_types or any(kind not in IOU_TYPES for kind in iou_types):
        raise ValueError(f"iou_types must be some of {IOU_TYPES}; got {iou_types!r}.")
    if output is not None and os.path.exists(output) and not overwrite:
        raise FileExistsError(f"{output} exists; pass overwrite=True to replace it.")
    examples = list(_examples(dataset))
    ground_truth, sizes, top = _ground_truth(examples)
    if isinstance(model, (list, tuple)):
        predictions, num_classes = list(model), None
    else:
        predictions = [
            detect(
                model,
                image,
                score_threshold=score_threshold,
                max_detections=max_detections,
                **detect_options,
            )
            for image, _, _, _ in examples
        ]
        info = describe(model)
        num_classes, class_names = info["num_classes"], class_names or info["class_names"]
    results, top_predicted = _results(predictions, sizes, score_threshold, max_detections)
    if "segm" in iou_types and results["bbox"] and not results["segm"]:
        raise ValueError("segm evaluation needs masks in the predictions.")
    if num_classes is None:
        num_classes = len(class_names) if class_names else max(top, top_predicted) + 1
    names = list(class_names) if class_names else [f"class_{i}" for i in range(num_classes)]
    if max(top, top_predicted) >= len(names):
        raise ValueError(
            f"class {max(top, top_predicted)} in the data or the predictions, but only "
            f"{len(names)} classes ({names})."
        )
    ground_truth["categories"] = [{"id": i + 1, "name": name} for i, name in enumerate(names)]
    stats = {kind: _score(ground_truth, results[kind], kind, verbose) for kind in iou_types}
    if output is not None:
        _write(stats, output, overwrite)
    return stats


class COCOEvaluation(keras.callbacks.Callback):
    """Runs ``coco_evaluate`` on ``dataset`` after every ``every`` epochs (and after the last
    epoch of ``fit``) and adds the numbers to the epoch's logs as
    ``{prefix}box_AP``, ``{prefix}box_AP50``, ..., ``{prefix}mask_AP``, ... (all 12 per type;
    box for "bbox", mask for "segm"), so History, CSVLogger and ModelCheckpoint see them.

    Args:
        dataset: unbatched instance examples (see ``coco_evaluate``); a small validation
            subset keeps it quick.
        every: epochs between evaluations.
        prefix: the log names' prefix.
        **options: passed to ``coco_evaluate`` (iou_types, score_threshold, max_detections,
            and ``detect``'s options). ``output`` is a format string taking ``epoch``
            (1-based), e.g. ``"runs/x/coco_{epoch:03d}.json"``.
    """

    def __init__(self, dataset, every=1, prefix="val_", **options):
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"every must be a positive integer; got {every!r}.")
        self.dataset = dataset
        self.every = int(every)
        self.prefix = prefix
        self.options = options
        self.results = {}  # epoch (0-based) -> the values it logged

    def on_epoch_end(self, epoch, logs=None):
        epochs = (getattr(self, "params", None) or {}).get("epochs")
        last = epochs is not None and epoch + 1 == epochs
        if (epoch + 1) % self.every and not last:
            return
        options = dict(self.options)
        if options.get("output"):
            options["output"] = options["output"].format(epoch=epoch + 1)
        stats = coco_evaluate(self.model, self.dataset, **options)
        values = {
            f"{self.prefix}{LOG_NAMES[kind]}_{name}": value
            for kind, numbers in stats.items()
            for name, value in numbers.items()
        }
        self.results[epoch] = values
        if logs is not None:
            logs.update(values)
