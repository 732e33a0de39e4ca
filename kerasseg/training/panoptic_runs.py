"""Panoptic runs: ``train`` for a panoptic model (Panoptic FPN, Panoptic-DeepLab) on a panoptic
dataset, and their scores (panoptic quality).

    result = kerasseg.training.train("panoptic_deeplab", "shapes_panoptic",
                                     backbone="mobilenetv2", weights=None, epochs=4,
                                     batch_size=4, crop_size=64, output="runs/pan")
    report = kerasseg.training.evaluate_panoptic(result.model, "shapes_panoptic")
    print(kerasseg.training.format_pq(report))

The run is an instance run's (``kerasseg.training.instances``: the model carries its losses,
Adam with clipped gradients unless told otherwise) with panoptic batches
(``data.prepare`` keeps ``semantic`` and ``instance_ids`` aligned) and PQ in place of COCO AP:
every ``validation_freq`` epochs (and after the last) ``PanopticScores`` scores the validation
split: ``val_PQ``, ``val_PQ_things``, ``val_PQ_stuff``, ``val_SQ``, ``val_RQ`` go to history.csv,
``best.keras`` is the epoch of the highest ``val_PQ``, and the last report is written to
``pq_<split>.json``.
"""

import json
import os

import keras
import numpy as np

from kerasseg.models.panoptic import panoptic_classes
from kerasseg.models.segmenter import describe
from kerasseg.training.datachecks import check_data_dir, dataset_meta, through_pipeline

__all__ = [
    "PanopticScores",
    "evaluate_panoptic",
    "format_pq",
    "panoptic_quality",
    "train_panoptic",
    "write_pq_json",
]

LOG_NAMES = {
    "PQ": ("all", "pq"),
    "PQ_things": ("things", "pq"),
    "PQ_stuff": ("stuff", "pq"),
    "SQ": ("all", "sq"),
    "RQ": ("all", "rq"),
}


def ground_truth_map(target, divisor, ignore_index=255):
    """A panoptic example's target -> int64 [H, W] panoptic ids (-1 void)."""
    semantic = np.asarray(target["semantic"]).astype(np.int64)
    instance_ids = np.asarray(target["instance_ids"]).astype(np.int64)
    return np.where(semantic == ignore_index, -1, semantic * divisor + instance_ids)


def panoptic_quality(model, examples, limit=None):
    """PQ, SQ, RQ (all, things, stuff, per class) of a panoptic ``model`` on ``examples``
    (``(image, {"semantic", "instance_ids"})``, a dataset or a list), as
    ``PanopticQuality.report`` gives them."""
    from kerasseg.metrics import PanopticQuality
    from kerasseg.models.panoptic.predict import panoptic_predict

    things, stuff, divisor = panoptic_classes(model)
    metric = PanopticQuality(things, stuff, label_divisor=divisor)
    for count, (image, target) in enumerate(examples):
        if limit is not None and count >= limit:
            break
        image = np.asarray(image)
        predicted = panoptic_predict(model, image)["panoptic"]
        truth = ground_truth_map({k: np.asarray(v) for k, v in target.items()}, divisor)
        metric.update_state(truth[None], predicted[None].astype(np.int64))
    return metric.report(describe(model)["class_names"])


def format_pq(report):
    """PQ, SQ and RQ for all classes, things and stuff, then per class, as a small table."""
    rows = [f"{'':<14}{'PQ':>8}{'SQ':>8}{'RQ':>8}{'classes':>9}"]
    for group in ("all", "things", "stuff"):
        values = report[group]
        rows.append(
            f"{group:<14}"
            + "".join(f"{values[k]:>8.4f}" for k in ("pq", "sq", "rq"))
            + f"{values['classes']:>9d}"
        )
    for name, values in report.get("per_class", {}).items():
        kind = "thing" if values["thing"] else "stuff"
        rows.append(
            f"  {str(name)[:12]:<12}"
            + "".join(f"{values[k]:>8.4f}" for k in ("pq", "sq", "rq"))
            + f"{kind:>9}"
        )
    return "\n".join(rows)


def write_pq_json(path, report, **record):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({**record, **report}, f, indent=2, default=float)
    return path


def evaluate_panoptic(
    model, dataset, *, data_dir=None, split="val", steps=None, dataset_options=None
):
    """``panoptic_quality`` of ``model`` on a split of a registered panoptic dataset (``steps``:
    its first that many images)."""
    from kerasseg.training.instance_scores import check_task_match, validation_examples

    dataset_options = dict(dataset_options or {})
    meta = dataset_meta(dataset, data_dir, dataset_options)
    check_data_dir(dataset, data_dir)
    check_task_match(describe(model)["task"], "the model", dataset, meta)
    raw = validation_examples(dataset, data_dir, split, dataset_options, steps)
    return through_pipeline(lambda: panoptic_quality(model, raw))


class PanopticScores(keras.callbacks.Callback):
    """PQ on held-out examples every ``every`` epochs and after the last; the epochs between
    log NaN under the same names (history.csv's columns are fixed by the first epoch)."""

    def __init__(self, examples, every=1, prefix="val_", report=None):
        super().__init__()
        self.examples = examples
        self.every = max(int(every), 1)
        self.prefix = prefix
        self.report = report
        self.results = {}

    def on_epoch_end(self, epoch, logs=None):
        last = epoch + 1 == self.params.get("epochs", epoch + 1)
        values = {f"{self.prefix}{name}": float("nan") for name in LOG_NAMES}
        if (epoch + 1) % self.every == 0 or last:
            scores = through_pipeline(lambda: panoptic_quality(self.model, self.examples))
            self.results[epoch] = scores
            for name, (group, key) in LOG_NAMES.items():
                values[f"{self.prefix}{name}"] = float(scores[group][key])
            if self.report is not None:
                self.report(
                    f"epoch {epoch + 1}: {self.prefix.rstrip('_')} PQ {scores['all']['pq']:.4f} "
                    f"(things {scores['things']['pq']:.4f}, stuff {scores['stuff']['pq']:.4f})"
                )
        if logs is not None:
            logs.update(values)

    def last(self):
        return self.results[max(self.results)] if self.results else None


def train_panoptic(config):
    """``train`` for a panoptic model (``config``: ``train``'s arguments by name)."""
    from kerasseg.training import instances as I
    from kerasseg.training.runfiles import write_run_json

    meta = I.resolve(config, task="panoptic")
    keras.utils.set_random_seed(config.seed)
    train_ds, val, config.steps_per_epoch, channels = I.load_data(config, meta, check=False)
    options = dict(config.model_options)
    thing_classes = getattr(meta, "thing_classes", ())
    if "thing_classes" not in options:
        if not thing_classes:
            raise ValueError(
                f"dataset {config.dataset!r} does not say which classes are things; pass "
                "model_options={'thing_classes': [...]}."
            )
        options["thing_classes"] = [int(c) for c in thing_classes]
    config.model_options = options
    net = I.build(config, meta, channels)
    os.makedirs(config.output, exist_ok=True)
    write_run_json(os.path.join(config.output, "run.json"), I.run_record(config, meta, "panoptic"))
    scores = None
    if val is not None:
        report = None if config.verbose == 0 else I.say
        scores = PanopticScores(val, every=int(config.validation_freq or 1), report=report)

    def final_scores():
        report = scores.last()
        return (
            report if report is not None else through_pipeline(lambda: panoptic_quality(net, val))
        )

    def write(report, **record):
        path = os.path.join(config.output, f"pq_{config.val_split}.json")
        return write_pq_json(path, report, **record)

    return I.run_own_loss(config, net, train_ds, scores, "panoptic", "val_PQ", final_scores, write)
