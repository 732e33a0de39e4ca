"""Instance scoring and task checks: which task a model or a dataset serves (and the one-line
error when they differ), COCO box and mask AP of a model on a split (``evaluate_instances``),
the per-epoch ``InstanceScores`` callback of an instance run, the COCO table and its JSON file.

    stats = kerasseg.training.evaluate_instances(model, "shapes_instances", split="val")
    print(kerasseg.training.format_coco(stats))
"""

import json
import math
import os

from kerasseg import datasets
from kerasseg.metrics.coco import IOU_TYPES, LOG_NAMES, STAT_NAMES, COCOEvaluation, coco_evaluate
from kerasseg.models.segmenter import describe
from kerasseg.training.datachecks import check_data_dir, dataset_meta, through_pipeline

__all__ = [
    "TABLE_COLUMNS",
    "model_task",
    "dataset_task",
    "check_task_match",
    "instance_run",
    "evaluate_instances",
    "validation_examples",
    "format_coco",
    "coco_json_path",
    "write_coco_json",
    "InstanceScores",
]

TABLE_COLUMNS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
_WHAT = {
    "semantic": "a semantic segmentation {what} (one class per pixel)",
    "instance": "an instance segmentation {what} (boxes, classes and masks per object)",
    "panoptic": "a panoptic segmentation {what}",
}


# --------------------------------------------------------------------------- tasks


def model_task(name):
    """The task ("semantic", "instance", "panoptic") of a registered architecture, without
    building it; "semantic" for a name the registry lacks (its own check reports that)."""
    from kerasseg.models import MODELS

    builder = MODELS.get(name)
    if builder is None:
        return "semantic"
    task = getattr(builder, "task", None)
    if isinstance(task, str):
        return task
    module = getattr(builder, "__module__", "") or ""
    for kind in ("instance", "panoptic"):
        if f".models.{kind}" in module:
            return kind
    return "semantic"


def dataset_task(meta):
    """The task a dataset's ``DatasetInfo`` serves: "instance", "panoptic" or "semantic"
    (masks of class indices; "classification" sets stay what they are)."""
    task = getattr(meta, "task", "segmentation")
    return "semantic" if task == "segmentation" else task


def _names_of(task, kind):
    if kind == "model":
        from kerasseg.models import MODELS

        return [name for name in sorted(MODELS) if model_task(name) == task]
    found = []
    for name in datasets.list_datasets():
        try:
            if dataset_task(datasets.info(name)) == task:
                found.append(name)
        except Exception:  # noqa: BLE001 - e.g. `folder` describes itself from its files
            continue
    return found


def check_task_match(model_task_name, model_label, dataset, meta):
    """ValueError (one line) when a model of task ``model_task_name`` meets a dataset made for
    another task; returns the task otherwise. ``model_label`` names the model in the message."""
    wanted, have = model_task_name, dataset_task(meta)
    if wanted == have or have not in _WHAT or wanted not in _WHAT:
        return wanted
    models = ", ".join(_names_of(have, "model")) or "none registered yet"
    sets = ", ".join(_names_of(wanted, "dataset")) or "none registered"
    raise ValueError(
        f"{model_label} is {_WHAT[wanted].format(what='model')} but dataset {dataset!r} is "
        f"{_WHAT[have].format(what='set')}; choose {_a(have)} model for it ({models}) or "
        f"{_a(wanted)} dataset ({sets})."
    )


def _a(word):
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def run_kind(config):
    """The task of the run ``train``'s arguments ask for: "semantic", or the model's task
    "instance" or "panoptic" (model and dataset must then agree; a mismatch is a ValueError)."""
    meta = dataset_meta(config.dataset, config.data_dir, config.dataset_options)
    task = model_task(config.model)
    if task == "semantic" and dataset_task(meta) not in ("instance", "panoptic"):
        return "semantic"
    return check_task_match(task, f"model {config.model!r}", config.dataset, meta)


def instance_run(config):
    """Whether ``train``'s arguments ask for an instance run (see ``run_kind``)."""
    return run_kind(config) == "instance"


# --------------------------------------------------------------------------- scores


class InstanceScores(COCOEvaluation):
    """``COCOEvaluation`` that logs the AP columns only (AP, AP50, AP75, APs, APm, APl per
    type; the recall figures stay in ``results``) and whose epochs without an evaluation log
    NaN under the same names, so history.csv (whose columns the first epoch fixes) has them
    from the start. ``stats`` returns the last evaluation as ``coco_evaluate`` returns it."""

    def __init__(self, dataset, every=1, prefix="val_", report=None, **options):
        super().__init__(dataset, every=every, prefix=prefix, **options)
        self.report = report  # e.g. print: one line per evaluation
        kinds = options.get("iou_types", IOU_TYPES)
        kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        self.names = {
            kind: {name: f"{prefix}{LOG_NAMES[kind]}_{name}" for name in STAT_NAMES}
            for kind in kinds
        }

    def on_epoch_end(self, epoch, logs=None):
        scores = {}
        super().on_epoch_end(epoch, scores)
        if logs is not None:
            for names in self.names.values():
                logs.update(
                    {
                        key: scores.get(key, float("nan"))
                        for name, key in names.items()
                        if name in TABLE_COLUMNS
                    }
                )
        if epoch in self.results and self.report is not None:
            values = self.results[epoch]
            parts = [
                f"{LOG_NAMES[kind]} AP {values[names['AP']]:.4f} AP50 {values[names['AP50']]:.4f}"
                for kind, names in self.names.items()
            ]
            self.report(f"epoch {epoch + 1}: COCO {self.prefix.rstrip('_')} " + ", ".join(parts))

    def stats(self):
        if not self.results:
            return None
        values = self.results[max(self.results)]
        return {
            kind: {name: values[key] for name, key in names.items()}
            for kind, names in self.names.items()
        }


def _plain(stats):
    return {
        kind: {k: None if v is None or math.isnan(v) else float(v) for k, v in values.items()}
        for kind, values in stats.items()
    }


def write_coco_json(path, stats, **record):
    """``stats`` (NaN as null) with the fields of ``record`` into a JSON file at ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({**record, **_plain(stats)}, f, indent=2)
    return path


def format_coco(stats):
    """COCO's AP, AP50, AP75, APs/m/l per type as a small table ("-": no ground truth there)."""
    rows = [f"{'':<6}" + "".join(f"{name:>8}" for name in TABLE_COLUMNS)]
    for kind, values in stats.items():
        cells = []
        for name in TABLE_COLUMNS:
            value = values.get(name)
            missing = value is None or math.isnan(value)
            cells.append(f"{'-' if missing else format(value, '.4f'):>8}")
        rows.append(f"{LOG_NAMES.get(kind, kind):<6}" + "".join(cells))
    return "\n".join(rows)


def coco_json_path(checkpoint, dataset, split):
    """Where ``kerasseg evaluate`` writes an instance checkpoint's scores by default: next to
    the checkpoint, ``<stem>_coco_<dataset>_<split>.json``."""
    stem = os.path.splitext(os.path.abspath(os.fspath(checkpoint)))[0]
    return f"{stem}_coco_{dataset}_{split}.json"


def validation_examples(dataset, data_dir, split, options, limit):
    ds = datasets.load(dataset, data_dir=data_dir, split=split, **options)
    return ds.take(int(limit)) if limit else ds


def evaluate_instances(
    model,
    dataset,
    *,
    data_dir=None,
    split="val",
    steps=None,
    dataset_options=None,
    output=None,
    overwrite=False,
    **options,
):
    """COCO box and mask AP (``metrics.coco_evaluate``) of an instance ``model`` on a split of
    a registered instance dataset; ``steps`` limits it to the first that many images.
    ``options`` go to ``coco_evaluate`` (score_threshold, max_size, ...)."""
    dataset_options = dict(dataset_options or {})
    meta = dataset_meta(dataset, data_dir, dataset_options)
    check_data_dir(dataset, data_dir)
    check_task_match(describe(model)["task"], "the model", dataset, meta)
    raw = validation_examples(dataset, data_dir, split, dataset_options, steps)
    return through_pipeline(
        lambda: coco_evaluate(model, raw, output=output, overwrite=overwrite, **options)
    )
