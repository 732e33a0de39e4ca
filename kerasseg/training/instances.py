"""Instance runs: the recipe ``train`` follows for an instance model (Mask R-CNN) on an instance
dataset (``kerasseg.training.instance_scores`` scores them and checks the tasks agree).

    result = kerasseg.training.train("mask_rcnn", "shapes_instances", backbone="mobilenetv2",
                                     weights=None, epochs=4, batch_size=2, crop_size=64,
                                     output="runs/masks")
    stats = kerasseg.training.evaluate_instances(result.model, "shapes_instances")
    print(kerasseg.training.format_coco(stats))

An instance model carries its losses and target assignment (``compile(optimizer=...)`` then
``fit``), so a run needs no loss: batches come from ``data.prepare(..., max_instances=N)``, the
optimizer is Adam (1e-3, gradients clipped at norm 10) unless told otherwise, and every
``validation_freq`` epochs (and after the last) ``metrics.COCOEvaluation`` scores the validation
split (``val_steps``: its first that many images): ``val_box_AP``, ``val_mask_AP50``, ... go to
history.csv, ``best.keras`` is the epoch with the highest ``val_mask_AP`` (without a validation
split: the lowest training loss), and the last scores are written to ``coco_<split>.json``.
"""

import os

import keras

from kerasseg import datasets
from kerasseg.metrics.coco import coco_evaluate
from kerasseg.training.datachecks import (
    check_data_dir,
    count_steps,
    dataset_meta,
    default_validation,
    through_pipeline,
)
from kerasseg.training.defaults import auto_crop, image_sizes
from kerasseg.training.fitting import fit
from kerasseg.training.instance_scores import InstanceScores, validation_examples, write_coco_json
from kerasseg.training.optimizers import default_learning_rate, make_optimizer
from kerasseg.training.runfiles import check_output, log, run_data_dir, write_run_json

__all__ = ["INSTANCE_OPTIMIZER", "INSTANCE_CLIPNORM", "train_instances"]

INSTANCE_OPTIMIZER = "adam"  # trains Mask R-CNN from scratch; SGD wants pretrained backbones
INSTANCE_CLIPNORM = 10.0  # early detection losses spike; clipping keeps a from-scratch run finite


# --------------------------------------------------------------------------- the recipe


def _reject_semantic_options(config, task):
    unsupported = {
        "loss": config.loss is not None,
        "binary": config.binary is True,
        "mixed_precision": bool(config.mixed_precision),
        "strategy": not (isinstance(config.strategy, str) and config.strategy == "none"),
    }
    named = [name for name, used in unsupported.items() if used]
    if named:
        raise ValueError(
            f"{', '.join(named)}: not supported for {task} models ({config.model!r}), "
            "which carry their own losses and train on one device."
        )


def resolve(config, task="instance"):
    """Fill in and check ``config``; -> the dataset's description."""
    import kerasseg
    from kerasseg.training.task import model_defaults

    _reject_semantic_options(config, task)
    config.output = os.fspath(config.output)
    config.dataset_options = dict(config.dataset_options or {})
    config.model_options = dict(config.model_options or {})
    if config.val_dataset_options is None:
        config.val_dataset_options = config.dataset_options
    config.val_dataset_options = dict(config.val_dataset_options)
    meta = dataset_meta(config.dataset, config.data_dir, config.dataset_options)
    check_data_dir(config.dataset, config.data_dir)
    config.val_split = default_validation(config.val_split, meta)
    if config.backbone == "default":
        config.backbone = model_defaults(config.model).get("backbone")
    if config.backbone is None:
        raise ValueError(f"{config.model} needs a backbone (e.g. resnet50 or mobilenetv2).")
    kerasseg.backbones.check_backbone(config.backbone, arch=config.model)
    config.epochs = int(config.epochs)
    if config.epochs < 1 or int(config.batch_size) < 1:
        raise ValueError(
            f"epochs and batch_size must be >= 1; got {config.epochs} and {config.batch_size}."
        )
    if config.optimizer is None:
        config.optimizer = INSTANCE_OPTIMIZER
    check_output(config.output, config.overwrite)
    return meta


def load_data(config, meta, check=True):
    """-> (training batches, validation examples or None, steps per epoch, channels).
    ``check``: run the instance examples' checks (when ``config.check``)."""
    from kerasseg import data

    raw = datasets.load(
        config.dataset, data_dir=config.data_dir, split=config.train_split, **config.dataset_options
    )
    if check and config.check:  # a bad example is found in seconds, before the model is built
        through_pipeline(lambda: data.check_instances(raw, meta.num_classes, limit=16))
    steps = config.steps_per_epoch
    if steps is None:
        steps = count_steps(raw, config.batch_size, config.dataset, config.train_split)
    if isinstance(config.crop_size, str) and config.crop_size == "auto":
        # The median image size (every Mask R-CNN backbone takes multiples of 32).
        config.crop_size, why = auto_crop(image_sizes(raw), 32)
        log(f"crop {config.crop_size[0]}x{config.crop_size[1]}: {why}")
    options = {"seed": config.seed, **(config.augment or {})}
    options.setdefault("max_instances", config.max_instances)
    train_ds = data.prepare(
        raw,
        batch_size=config.batch_size,
        crop_size=config.crop_size,
        training=True,
        repeat=True,
        drop_remainder=True,
        **options,
    )
    val = None
    if config.val_split:
        val = validation_examples(
            config.dataset,
            config.data_dir,
            config.val_split,
            config.val_dataset_options,
            config.val_steps,
        )
    channels = raw.element_spec[0].shape[-1] or 3
    return train_ds, val, int(steps), channels


def build(config, meta, channels):
    import inspect

    import kerasseg
    from kerasseg.models import MODELS

    options = dict(config.model_options)
    options.setdefault("class_names", [str(name) for name in meta.class_names])
    options.setdefault("palette", [[int(c) for c in colour] for colour in meta.palette])
    if "seed" in inspect.signature(MODELS[config.model]).parameters:
        options.setdefault("seed", config.seed)
    net = kerasseg.build(
        config.model,
        int(meta.num_classes),
        backbone=config.backbone,
        weights=config.weights,
        input_shape=(None, None, channels),
        **options,
    )
    optimizer = make_optimizer(
        config.optimizer,
        config.learning_rate,
        config.epochs * config.steps_per_epoch,
        config.warmup_steps,
        config.weight_decay,
        config.end_learning_rate,
        clipnorm=INSTANCE_CLIPNORM,
    )
    # XLA is slower here (dynamic proposal and ROI counts), so "auto" means off.
    jit = False if config.jit_compile == "auto" else config.jit_compile
    net.compile(optimizer=optimizer, jit_compile=jit)
    return net


def run_record(config, meta, task="instance"):
    fields = (
        "model",
        "backbone",
        "weights",
        "crop_size",
        "batch_size",
        "epochs",
        "steps_per_epoch",
        "optimizer",
        "max_instances",
        "model_options",
        "dataset_options",
        "val_dataset_options",
        "val_split",
        "val_steps",
        "seed",
    )
    return {
        **{name: getattr(config, name) for name in fields},
        "task": task,
        "data_dir": run_data_dir(config.data_dir),
        "learning_rate": config.learning_rate or default_learning_rate(config.optimizer),
        "clipnorm": INSTANCE_CLIPNORM,
        "num_classes": int(meta.num_classes),
        "dataset": config.dataset,
        "class_names": [str(name) for name in meta.class_names],
        "palette": [[int(c) for c in colour] for colour in meta.palette],
        "keras_version": keras.__version__,
    }


def say(text):
    print(text, flush=True)


def run_own_loss(config, net, train_ds, scores, task, monitor, final_scores, write_scores):
    """Fit a model that carries its own losses and score it: the run both instance and
    panoptic runs make. ``scores``: the epoch-metric callback (None without validation);
    ``final_scores()``: its last scores, or the model scored now (a resumed run with nothing
    left to train); ``write_scores(scores, **record)`` writes them into the run folder and
    returns the file's path."""
    result = fit(
        net,
        train_ds,
        None,
        output=config.output,
        epochs=config.epochs,
        steps_per_epoch=config.steps_per_epoch,
        monitor=monitor if scores is not None else "loss",
        mode="max" if scores is not None else "min",
        epoch_metrics=[scores] if scores is not None else (),
        tensorboard=config.tensorboard,
        overwrite=config.overwrite,
        verbose=config.verbose,
    )
    result.task = task
    if scores is not None and not result.diverged:
        result.scores = final_scores()
        result.scores_path = write_scores(
            result.scores,
            dataset=config.dataset,
            split=config.val_split,
            images=config.val_steps,
            epoch=config.epochs,
            checkpoint=result.last_path,
        )
    return result


def train_instances(config):
    """``train`` for an instance model (``config``: ``train``'s arguments by name)."""
    meta = resolve(config)
    keras.utils.set_random_seed(config.seed)
    train_ds, val, config.steps_per_epoch, channels = load_data(config, meta)
    net = build(config, meta, channels)
    os.makedirs(config.output, exist_ok=True)
    write_run_json(os.path.join(config.output, "run.json"), run_record(config, meta))
    scores = None
    if val is not None:
        report = None if config.verbose == 0 else say
        scores = InstanceScores(val, every=int(config.validation_freq or 1), report=report)

    def final_scores():
        stats = scores.stats()
        return stats if stats is not None else through_pipeline(lambda: coco_evaluate(net, val))

    def write(stats, **record):
        path = os.path.join(config.output, f"coco_{config.val_split}.json")
        return write_coco_json(path, stats, **record)

    return run_own_loss(
        config, net, train_ds, scores, "instance", "val_mask_AP", final_scores, write
    )
