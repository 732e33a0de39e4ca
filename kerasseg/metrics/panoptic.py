"""Panoptic quality (Kirillov et al. 2019) with panopticapi's rules, streaming in a Keras metric.

Maps are int ``[N, H, W]`` (or ``[H, W]``) panoptic ids ``class * label_divisor + instance``, the
form ``inference.predict`` returns. A pixel whose class is in neither ``thing_classes`` nor
``stuff_classes`` (e.g. 255, or a negative id) is void. In the ground truth, a thing-class pixel
with instance 0 belongs to that class's crowd region (Cityscapes' "car group", COCO's
``iscrowd``); stuff segments are normally instance 0.

Per image, as panopticapi's ``pq_compute``: a ground-truth segment (neither void nor crowd) and a
predicted one (not void) of the same class match when ``IoU > 0.5``, where the union leaves out
the predicted segment's void pixels; matches are unique at that threshold. Unmatched ground truth
counts as a false negative; an unmatched prediction as a false positive unless more than half of
it lies on void or on the crowd region of its own class. Per class ``PQ = sum IoU / (TP + FP/2 +
FN/2)``, ``SQ = sum IoU / TP``, ``RQ = TP / (TP + FP/2 + FN/2)``; the summary averages over the
classes that appear (TP + FP + FN > 0), for all classes, things and stuff.
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf

from kerasseg.ops.panoptic_ids import read_id_png, rgb_to_id  # noqa: F401 - rgb_to_id is public here

__all__ = ["PanopticQuality", "panoptic_quality_files", "rgb_to_id"]

_IMAGE_SHIFT = 2**32  # segment keys: image index * 2**32 + (panoptic id + 1), 0 = void


def _segments(ids, valid_class, divisor):
    """Segments of a batch of maps: (segment of each pixel, and per segment: class, instance,
    area, is void). A segment is one panoptic id in one image; an image's void is one segment."""
    batch = tf.shape(ids)[0]
    flat = tf.reshape(tf.cast(ids, tf.int64), [batch, -1])
    classes = tf.math.floordiv(flat, divisor)
    void = (flat < 0) | ~tf.gather(
        valid_class, tf.clip_by_value(classes, 0, valid_class.shape[0] - 1)
    )
    void |= classes >= valid_class.shape[0]
    shifted = tf.where(void, tf.zeros_like(flat), flat + 1)
    image = tf.range(tf.cast(batch, tf.int64), dtype=tf.int64)[:, None]
    keys, index = tf.unique(tf.reshape(image * _IMAGE_SHIFT + shifted, [-1]))
    count = tf.shape(keys)[0]
    area = tf.math.unsorted_segment_sum(tf.ones_like(index, tf.float64), index, count)
    local = keys % _IMAGE_SHIFT
    seg_void = local == 0
    seg_id = local - 1
    return index, tf.math.floordiv(seg_id, divisor), seg_id % divisor, area, seg_void


@keras.saving.register_keras_serializable(package="kerasseg")
class PanopticQuality(keras.metrics.Metric):
    """Streaming PQ. ``result()`` is PQ over all classes; ``report()`` gives PQ, SQ and RQ for
    all classes, things and stuff, and per class.

    ``update_state(y_true, y_pred)``: panoptic id maps (see the module doc), int, same shape.
    """

    def __init__(
        self, thing_classes, stuff_classes, label_divisor=1000, name="panoptic_quality", dtype=None
    ):
        super().__init__(name=name, dtype=dtype)
        self.thing_classes = sorted(int(c) for c in thing_classes)
        self.stuff_classes = sorted(int(c) for c in stuff_classes)
        both = set(self.thing_classes) & set(self.stuff_classes)
        if both:
            raise ValueError(f"PanopticQuality: classes {sorted(both)} are both thing and stuff.")
        classes = self.thing_classes + self.stuff_classes
        if not classes or min(classes) < 0:
            raise ValueError(
                f"PanopticQuality: thing_classes and stuff_classes need class indices >= 0; "
                f"got {self.thing_classes} and {self.stuff_classes}."
            )
        if int(label_divisor) <= 0:
            raise ValueError(f"PanopticQuality: label_divisor must be > 0; got {label_divisor}.")
        self.label_divisor = int(label_divisor)
        self.num_classes = max(classes) + 1
        valid = np.zeros(self.num_classes, bool)
        valid[classes] = True
        thing = np.zeros(self.num_classes, bool)
        thing[self.thing_classes] = True
        self._valid, self._thing = valid, thing
        # per class: TP, FP, FN, sum of matched IoUs
        self.stats = self.add_variable(
            shape=(self.num_classes, 4),
            initializer="zeros",
            dtype="float64",
            aggregation="sum",
            name="pq_stats",
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("PanopticQuality does not take sample_weight.")
        y_true, y_pred = tf.convert_to_tensor(y_true), tf.convert_to_tensor(y_pred)
        if y_true.shape.rank == 2:
            y_true, y_pred = y_true[None], y_pred[None]
        self.stats.assign_add(self._batch_stats(y_true, y_pred))

    def _batch_stats(self, y_true, y_pred):
        divisor = self.label_divisor
        valid = tf.constant(self._valid)
        thing = tf.constant(self._thing)
        g_index, g_class, g_instance, g_area, g_void = _segments(y_true, valid, divisor)
        p_index, p_class, _, p_area, p_void = _segments(y_pred, valid, divisor)
        g_crowd = ~g_void & tf.gather(thing, tf.maximum(g_class, 0)) & (g_instance == 0)
        n_g, n_p = tf.shape(g_area, tf.int64)[0], tf.shape(p_area, tf.int64)[0]
        # Intersections of every (ground-truth, predicted) segment pair that shares a pixel.
        pair_key = tf.cast(g_index, tf.int64) * n_p + tf.cast(p_index, tf.int64)
        pairs, pair_index = tf.unique(pair_key)
        inter = tf.math.unsorted_segment_sum(
            tf.ones_like(pair_index, tf.float64), pair_index, tf.shape(pairs)[0]
        )
        g, p = pairs // n_p, pairs % n_p
        pg_void, pg_crowd = tf.gather(g_void, g), tf.gather(g_crowd, g)
        pg_class, pp_class = tf.gather(g_class, g), tf.gather(p_class, p)
        same = pg_class == pp_class
        # each prediction's pixels on void, and on the crowd region of its own class
        on_void = tf.math.unsorted_segment_sum(tf.where(pg_void, inter, 0.0), p, n_p)
        on_crowd = tf.math.unsorted_segment_sum(tf.where(pg_crowd & same, inter, 0.0), p, n_p)

        candidate = ~pg_void & ~pg_crowd & ~tf.gather(p_void, p) & same
        union = tf.gather(g_area, g) + tf.gather(p_area, p) - inter - tf.gather(on_void, p)
        iou = inter / tf.maximum(union, 1.0)
        match = candidate & (iou > 0.5)
        matchf = tf.cast(match, tf.float64)
        g_matched = tf.math.unsorted_segment_max(matchf, g, n_g) > 0
        p_matched = tf.math.unsorted_segment_max(matchf, p, n_p) > 0

        c = self.num_classes
        clip = lambda classes: tf.clip_by_value(classes, 0, c - 1)  # noqa: E731 (void: masked)
        tp = tf.math.unsorted_segment_sum(matchf, clip(pg_class), c)
        iou_sum = tf.math.unsorted_segment_sum(tf.where(match, iou, 0.0), clip(pg_class), c)
        missed = tf.cast(~g_void & ~g_crowd & ~g_matched, tf.float64)
        fn = tf.math.unsorted_segment_sum(missed, clip(g_class), c)
        excused = (on_void + on_crowd) / p_area > 0.5
        spurious = tf.cast(~p_void & ~p_matched & ~excused, tf.float64)
        fp = tf.math.unsorted_segment_sum(spurious, clip(p_class), c)
        return tf.stack([tp, fp, fn, iou_sum], axis=1)

    def reset_state(self):
        self.stats.assign(tf.zeros_like(self.stats))

    def result(self):
        tp, fp, fn, iou = tf.unstack(tf.convert_to_tensor(self.stats), axis=1)
        present = ((tp + fp + fn) > 0) & tf.constant(self._valid)
        pq = tf.math.divide_no_nan(iou, tp + 0.5 * fp + 0.5 * fn)
        count = tf.reduce_sum(tf.cast(present, tf.float64))
        return tf.math.divide_no_nan(tf.reduce_sum(tf.where(present, pq, 0.0)), count)

    def report(self, class_names=None):
        """{"all"|"things"|"stuff": {"pq", "sq", "rq", "classes"}, "per_class": {name: {...}}}."""
        stats = np.asarray(keras.ops.convert_to_numpy(self.stats), np.float64)
        return pq_report(stats, self.thing_classes, self.stuff_classes, class_names)

    def get_config(self):
        return dict(
            super().get_config(),
            thing_classes=self.thing_classes,
            stuff_classes=self.stuff_classes,
            label_divisor=self.label_divisor,
        )


def pq_report(stats, thing_classes, stuff_classes, class_names=None):
    """The summary of per-class [TP, FP, FN, sum IoU] rows (see the module doc)."""
    per_class = {}
    for c in sorted(set(thing_classes) | set(stuff_classes)):
        tp, fp, fn, iou = (float(v) for v in stats[c])
        if tp + fp + fn == 0:
            continue
        denominator = tp + 0.5 * fp + 0.5 * fn
        name = class_names[c] if class_names is not None else c
        per_class[name] = dict(
            pq=iou / denominator,
            sq=iou / tp if tp else 0.0,
            rq=tp / denominator,
            tp=int(tp),
            fp=int(fp),
            fn=int(fn),
            thing=c in set(thing_classes),
        )
    report = {}
    for group, keep in (("all", None), ("things", True), ("stuff", False)):
        rows = [r for r in per_class.values() if keep is None or r["thing"] == keep]
        n = len(rows)
        report[group] = {
            key: (sum(r[key] for r in rows) / n if n else 0.0) for key in ("pq", "sq", "rq")
        }
        report[group]["classes"] = n
    report["per_class"] = per_class
    return report


def _to_panoptic_map(ids, segments, category_index, thing, divisor, path):
    """A panopticapi id map and its segments_info -> class * divisor + instance (-1 void)."""
    out = np.full(ids.shape, -1, np.int64)
    counts = {}
    known = set()
    for seg in segments:
        if seg["category_id"] not in category_index:
            raise ValueError(
                f"'{path}': segment {seg['id']} has category_id {seg['category_id']}, which is "
                f"not among the ground truth's categories {sorted(category_index)}."
            )
        c = category_index[seg["category_id"]]
        if thing[c] and seg.get("iscrowd", 0):
            instance = 0
        elif thing[c]:
            instance = counts[c] = counts.get(c, 0) + 1
        else:
            instance = 0
        if instance >= divisor:
            raise ValueError(f"'{path}': more than {divisor - 1} instances of category {c}.")
        out[ids == seg["id"]] = c * divisor + instance
        known.add(seg["id"])
    unknown = sorted(set(np.unique(ids).tolist()) - known - {0})
    if unknown:
        raise ValueError(f"'{path}' has segment ids {unknown[:5]} that its JSON does not list.")
    return out


def panoptic_quality_files(gt_json, pred_json, gt_folder=None, pred_folder=None, divisor=1000):
    """PQ of predictions against ground truth, both in panopticapi's format (a JSON whose
    ``annotations`` list ``file_name`` and ``segments_info`` per image, and a folder of RGB-encoded
    PNGs, by default the JSON's name without ``.json``). Categories (and which are things) come
    from the ground truth's ``categories``. Returns ``PanopticQuality.report()`` keyed by category
    name."""
    folders = []
    for path, folder in ((gt_json, gt_folder), (pred_json, pred_folder)):
        if not os.path.isfile(path):
            raise ValueError(f"panoptic JSON '{path}' does not exist.")
        folders.append(folder or os.path.splitext(path)[0])
    with open(gt_json) as f:
        gt = json.load(f)
    with open(pred_json) as f:
        pred = json.load(f)
    categories = sorted(gt["categories"], key=lambda c: c["id"])
    category_index = {c["id"]: i for i, c in enumerate(categories)}
    thing = np.array([bool(c.get("isthing", 1)) for c in categories])
    metric = PanopticQuality(
        np.flatnonzero(thing), np.flatnonzero(~thing), label_divisor=divisor, name="pq"
    )
    predictions = {a["image_id"]: a for a in pred["annotations"]}
    for truth in gt["annotations"]:
        if truth["image_id"] not in predictions:
            raise ValueError(f"'{pred_json}' has no prediction for image_id {truth['image_id']!r}.")
        maps = []
        for annotation, folder in (
            (truth, folders[0]),
            (predictions[truth["image_id"]], folders[1]),
        ):
            path = os.path.join(folder, annotation["file_name"])
            ids = read_id_png(path)
            maps.append(
                _to_panoptic_map(
                    ids, annotation["segments_info"], category_index, thing, divisor, path
                )
            )
        if maps[0].shape != maps[1].shape:
            raise ValueError(
                f"image_id {truth['image_id']!r}: prediction {maps[1].shape} and ground truth "
                f"{maps[0].shape} differ in size."
            )
        metric.update_state(maps[0], maps[1])
    return metric.report([c.get("name", str(c["id"])) for c in categories])
