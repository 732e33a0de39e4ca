"""``train``: the recipe behind ``kerasseg train`` (build by name, load the dataset, compile
with the poly schedule, ``fit`` into a run folder).

    result = kerasseg.training.train("unet", "shapes", backbone=None, weights=None, epochs=10,
                                     batch_size=8, crop_size=96, output="runs/shapes")
    model = keras.models.load_model("runs/shapes/best.keras")

A run writes into its ``output`` folder:

- ``best.keras``: the epoch with the highest validation mIoU (``best.json`` says which epoch);
- ``last.keras``: the last epoch that ended with finite numbers;
- ``history.csv``, ``curves.png``: the per-epoch logs and a plot of them;
- ``run.json``: a record of the run (model, dataset, options) for people; the model file itself
  carries its class names, palette and input multiple;
- ``logs/``: TensorBoard event files;
- ``backup/``: only while a run is unfinished. Start the same run again with the same ``output``
  and it resumes from the last completed epoch (``keras.callbacks.BackupAndRestore``).

A loss that turns NaN or infinite stops the run at once; the checkpoints keep the last finite
epoch. ``fit`` is the same machinery for a model and datasets you built yourself.
"""
import dataclasses
import inspect
import os

import keras
import numpy as np

from kerasseg.training.datachecks import (
    check_data_dir,
    check_files,
    dataset_meta,
    through_pipeline,
)
from kerasseg.training.distribute import (
    get_strategy,
    is_chief,
    is_multi_worker,
    precision_policy,
    shard_by_element,
)
from kerasseg.training.evaluation import repeat_labels, validation_batches
from kerasseg.training.fitting import fit
from kerasseg.training.optimizers import default_learning_rate, make_optimizer
from kerasseg.training.runfiles import check_output, write_run_json

__all__ = ["train", "model_defaults", "is_binary_loss"]


def model_defaults(name):
    """The keyword defaults of a registered architecture's builder (e.g. its backbone)."""
    from kerasseg.models import MODELS, build

    if name not in MODELS:
        build(name, 1)  # raises the registry's ValueError naming the valid models
    params = inspect.signature(MODELS[name]).parameters
    return {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}


def _builder_takes(name, argument):
    from kerasseg.models import MODELS

    params = inspect.signature(MODELS[name]).parameters
    return argument in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def is_binary_loss(loss):
    """Whether ``loss`` (or a term of a combined loss) is a binary one (one sigmoid channel),
    e.g. ``losses.BinaryCrossEntropy`` or any loss built with ``mode="binary"``."""
    terms = getattr(loss, "losses", None)  # a CombinedLoss's terms
    if isinstance(terms, (list, tuple)):
        return any(is_binary_loss(term) for term in terms)
    return getattr(loss, "mode", None) == "binary"


@dataclasses.dataclass
class _Task:
    """What the dataset and the loss make of a run: the classes and how they are scored."""

    dataset: str
    num_classes: int
    ignore_index: int
    class_names: list
    palette: list
    binary: bool = False
    from_logits: bool = False


def _task(dataset, meta, loss, binary, model_options):
    """The run's ``_Task``; a binary run sets ``model_options["activation"]`` (sigmoid)."""
    if meta.task != "segmentation":
        raise ValueError(f"dataset {dataset!r} is a {meta.task} set; train needs segmentation "
                         f"masks.")
    task = _Task(dataset, int(meta.num_classes), int(meta.ignore_index),
                 [str(n) for n in meta.class_names], np.asarray(meta.palette).tolist())
    if isinstance(binary, str) and binary == "auto":
        binary = loss is not None and is_binary_loss(loss)
    if not binary:
        return task
    if task.num_classes != 2:
        why = "the loss is binary, so " if loss is not None and is_binary_loss(loss) else ""
        n = task.num_classes
        raise ValueError(f"binary training: {why}the dataset needs 2 classes (background, "
                         f"foreground), but {dataset!r} has {n} "
                         f"({', '.join(task.class_names[:6])}{', ...' if n > 6 else ''}).")
    activation = model_options.setdefault("activation", "sigmoid")
    if activation not in ("sigmoid", None):
        raise ValueError(f"binary training needs activation 'sigmoid' (or None for logits); "
                         f"got {activation!r}.")
    task.binary, task.from_logits = True, activation is None
    return task


def _loss_and_scores(task, loss):
    """The main loss (``loss`` or the task's cross-entropy) and the metrics the run logs."""
    from kerasseg import losses, metrics

    if task.binary:
        scored = dict(ignore_index=task.ignore_index, from_logits=task.from_logits)
        main = loss if loss is not None else losses.BinaryCrossEntropy(**scored)
        return main, [metrics.MeanIoU(1, **scored), metrics.ForegroundIoU(1, **scored),
                      metrics.PixelAccuracy(1, **scored)]
    main = loss if loss is not None else losses.CrossEntropy(ignore_index=task.ignore_index)
    k, ignore = task.num_classes, task.ignore_index
    return main, [metrics.MeanIoU(k, ignore_index=ignore),
                  metrics.PixelAccuracy(k, ignore_index=ignore)]


def _compile(net, optimizer, loss, task, *, aux_loss_weight, jit_compile):
    """Compile ``net``; deep-supervision outputs get the same loss at ``aux_loss_weight``."""
    main_loss, scores = _loss_and_scores(task, loss)
    n_outputs = len(net.outputs)
    if n_outputs > 1:
        compile_args = dict(loss=[main_loss] * n_outputs,
                            loss_weights=[1.0] + [aux_loss_weight] * (n_outputs - 1),
                            metrics=[scores] + [[] for _ in range(n_outputs - 1)])
    else:
        compile_args = dict(loss=main_loss, metrics=scores)
    net.compile(optimizer=optimizer, jit_compile=jit_compile, **compile_args)
    return n_outputs


def _build_options(model, task, model_options):
    """Builder keywords: the run's options, and the dataset's class names and colours for a
    builder that takes them (a binary model's one channel has no per-class names)."""
    options = dict(model_options)
    if not task.binary:
        for key, value in (("class_names", task.class_names), ("palette", task.palette)):
            if key not in options and _builder_takes(model, key):
                options[key] = value
    return options


def _count_steps(raw_train, batch_size, dataset, split):
    n = int(raw_train.cardinality())
    if n < 0:  # unknown: count once
        n = int(through_pipeline(lambda: raw_train.reduce(0, lambda count, _: count + 1)))
    steps = n // int(batch_size)
    if steps < 1:
        raise ValueError(f"the {split!r} split of {dataset!r} has {n} samples, fewer than one "
                         f"batch of {batch_size}.")
    return steps


def _load_data(task, *, data_dir, batch_size, crop_size, steps_per_epoch, seed, augment, check,
               train_split, val_split, options, val_options, val_batch_size, val_crop_size):
    """-> (training batches, validation batches or None, steps per epoch, image channels)."""
    from kerasseg import data, datasets

    raw_train = datasets.load(task.dataset, data_dir=data_dir, split=train_split, **options)
    if check:
        check_files(raw_train, task.num_classes, task.ignore_index)
    if steps_per_epoch is None:
        steps_per_epoch = _count_steps(raw_train, batch_size, task.dataset, train_split)
    # RGB-D sets (with_depth=True) give 4 channels; the backbones adapt their first layer.
    channels = raw_train.element_spec[0].shape[-1] or 3
    train_ds = data.prepare(raw_train, batch_size=batch_size, crop_size=crop_size,
                            training=True, repeat=True, drop_remainder=True,
                            **{"seed": seed, "ignore_index": task.ignore_index, **(augment or {})})
    val_ds = None
    if val_split:
        raw_val = datasets.load(task.dataset, data_dir=data_dir, split=val_split, **val_options)
        if check:
            check_files(raw_val, task.num_classes, task.ignore_index)
        val_ds = validation_batches(raw_val, val_batch_size, val_crop_size, task.ignore_index)
    return train_ds, val_ds, int(steps_per_epoch), channels


def _check_arguments(model, backbone, epochs, batch_size):
    """-> (backbone, epochs): ``"default"`` resolved to the architecture's own, checked."""
    import kerasseg

    if backbone == "default":
        backbone = model_defaults(model).get("backbone")
    if backbone is not None:
        kerasseg.backbones.check_backbone(backbone, arch=model)
    epochs = int(epochs)
    if epochs < 1 or int(batch_size) < 1:
        raise ValueError(f"epochs and batch_size must be >= 1; got {epochs} and {batch_size}.")
    return backbone, epochs


def _build_compiled(model, task, strategy, policy, *, channels, backbone, weights,
                    model_options, optimizer, loss, aux_loss_weight, jit_compile):
    """Build and compile the network under ``strategy`` and dtype ``policy``; -> (net, its
    number of outputs)."""
    import kerasseg

    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        with strategy.scope():
            net = kerasseg.build(model, 1 if task.binary else task.num_classes,
                                 backbone=backbone, weights=weights,
                                 input_shape=(None, None, channels),
                                 **_build_options(model, task, model_options))
            n_outputs = _compile(net, optimizer(), loss, task, aux_loss_weight=aux_loss_weight,
                                 jit_compile=jit_compile)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    return net, n_outputs


def _run_record(task, strategy, policy, **fields):
    """run.json: a record of the run for people (the model file describes itself)."""
    return {"model": fields.pop("model"), "backbone": fields.pop("backbone"),
            "weights": fields.pop("weights"), "num_classes": task.num_classes,
            "binary": task.binary, "dataset": task.dataset, "class_names": task.class_names,
            "palette": task.palette, "ignore_index": task.ignore_index, **fields,
            "precision": policy, "strategy": type(strategy).__name__,
            "keras_version": keras.__version__}


def train(model="unet", dataset="shapes", *, output, backbone="default", weights="imagenet",
          data_dir=None, epochs=50, batch_size=8, crop_size=512, steps_per_epoch=None,
          val_steps=None, val_batch_size=1, val_crop_size=None, validation_freq=1,
          optimizer="sgd", learning_rate=None, weight_decay="default", warmup_steps=0,
          end_learning_rate=None, loss=None, binary="auto", aux_loss_weight=0.4,
          mixed_precision=False,
          jit_compile="auto", strategy="none", seed=0, train_split="train", val_split="val",
          model_options=None, dataset_options=None, val_dataset_options=None, augment=None,
          tensorboard=True, overwrite=False, verbose="auto", check=True):
    """Build ``model`` by name, train it on ``dataset`` and write the run into ``output``.

    model, backbone, weights, model_options: what ``kerasseg.build(model, num_classes,
        backbone=..., weights=..., **model_options)`` gets; ``backbone="default"`` keeps the
        architecture's own default and None asks for its backbone-free variant. A builder that
        takes ``class_names`` (and ``palette``) gets the dataset's, so the model file carries them.
    dataset, data_dir, dataset_options: what ``kerasseg.datasets.load`` gets; the number of
        classes, their names and the ignore index come from ``datasets.info``.
        ``val_dataset_options`` replaces ``dataset_options`` for the validation split.
    batch_size: the global batch (split over the replicas of a distribution strategy).
    crop_size: training crop (int or (h, w)); ``augment`` holds further ``data.prepare`` options.
    steps_per_epoch: default one pass over the training split. val_steps: default all of it.
    val_batch_size, val_crop_size: see ``validation_batches``; the default (1, None) scores
        each image at its own size the way ``inference.predict`` sees it.
    optimizer, learning_rate, weight_decay, warmup_steps, end_learning_rate: see
        ``make_optimizer``; the poly decay spans the whole run (epochs x steps_per_epoch).
    loss: a ``keras.losses.Loss`` (default ``CrossEntropy(ignore_index)``, or
        ``BinaryCrossEntropy(ignore_index)`` for a binary run).
    binary: train a binary (background/foreground) model: ``num_classes=1`` with
        ``activation="sigmoid"`` (unless ``model_options`` sets ``activation=None``: logits),
        scored by ``metrics.MeanIoU(1)`` (mIoU over background and foreground, the monitored
        ``val_mean_iou``), ``ForegroundIoU`` and ``PixelAccuracy(1)``. The dataset must have
        2 classes (e.g. a ``folder`` set of 0/255 or 0/1 masks); otherwise it is a ValueError.
        "auto" (the default): binary when ``loss`` is or contains a binary loss
        (``BinaryCrossEntropy``, or any loss built with ``mode="binary"``); region losses such
        as ``DiceLoss`` on the one-channel output score the foreground.
    mixed_precision: mixed_float16 on GPU, mixed_bfloat16 elsewhere. jit_compile: XLA
        (True/False/"auto"). strategy: "none", "mirrored", "multiworker", "tpu" or a Strategy.
    check: before the model is built, ``check_files`` reads the headers of the training and
        validation files and decodes a sample of them; a bad file raises ``DataError`` (a
        ValueError) naming it, in seconds rather than mid-epoch.
    Returns a ``TrainResult``; raises ValueError / FileNotFoundError for bad names and paths,
    ``DataError`` for bad files, and ``kerasseg.backbones.WeightsUnavailableError`` when the
    ImageNet weights can be neither found in Keras's cache nor downloaded.
    """
    # A multi-worker strategy has to exist before any other TensorFlow work.
    strategy = get_strategy(strategy)
    options, model_options = dict(dataset_options or {}), dict(model_options or {})
    meta = dataset_meta(dataset, data_dir, options)
    check_data_dir(dataset, data_dir)
    task = _task(dataset, meta, loss, binary, model_options)
    backbone, epochs = _check_arguments(model, backbone, epochs, batch_size)
    output = os.fspath(output)
    if is_chief(strategy):
        check_output(output, overwrite)
    keras.utils.set_random_seed(seed)
    val_options = dict(options if val_dataset_options is None else val_dataset_options)
    train_ds, val_ds, steps_per_epoch, channels = _load_data(
        task, data_dir=data_dir, batch_size=batch_size, crop_size=crop_size,
        steps_per_epoch=steps_per_epoch, seed=seed, augment=augment, check=check,
        train_split=train_split, val_split=val_split, options=options,
        val_options=val_options, val_batch_size=val_batch_size, val_crop_size=val_crop_size)
    if is_multi_worker(strategy):
        train_ds, val_ds = shard_by_element(train_ds), shard_by_element(val_ds)
    policy = precision_policy(mixed_precision)
    net, n_outputs = _build_compiled(
        model, task, strategy, policy, channels=channels, backbone=backbone, weights=weights,
        model_options=model_options, loss=loss, aux_loss_weight=aux_loss_weight,
        jit_compile=jit_compile, optimizer=lambda: make_optimizer(
            optimizer, learning_rate, epochs * steps_per_epoch, warmup_steps, weight_decay,
            end_learning_rate))
    if n_outputs > 1:
        train_ds, val_ds = repeat_labels(train_ds, n_outputs), repeat_labels(val_ds, n_outputs)
    if is_chief(strategy):
        os.makedirs(output, exist_ok=True)
        write_run_json(os.path.join(output, "run.json"), _run_record(
            task, strategy, policy, model=model, backbone=backbone, weights=weights,
            crop_size=crop_size, batch_size=batch_size, epochs=epochs,
            steps_per_epoch=steps_per_epoch, optimizer=optimizer,
            learning_rate=learning_rate or default_learning_rate(optimizer),
            model_options=model_options, dataset_options=options,
            val_dataset_options=val_options, seed=seed))
    return fit(net, train_ds, val_ds, output=output, epochs=epochs,
               steps_per_epoch=steps_per_epoch, validation_steps=val_steps,
               validation_freq=validation_freq, tensorboard=tensorboard, strategy=strategy,
               overwrite=overwrite, verbose=verbose)

