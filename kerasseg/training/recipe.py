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

import os
import types

import keras

from kerasseg.training.datachecks import (
    check_data_dir,
    check_files,
    count_samples,
    count_steps,
    dataset_meta,
    default_validation,
)
from kerasseg.training.defaults import (
    FirstSteps,
    check_memory,
    format_plan,
    plan_rows,
    resolve_crop,
    size_model_to_data,
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
from kerasseg.training.runfiles import check_output, run_data_dir, write_run_json
from kerasseg.training.task import build_compiled, is_binary_loss, model_defaults, run_task
from kerasseg.training.weak_runs import (
    check_supervision,
    uses_image,
    weak_loss,
    weak_training_set,
    write_figures,
)

__all__ = ["train", "model_defaults", "is_binary_loss"]


def _check_arguments(config):
    """-> (backbone, epochs): ``"default"`` resolved to the architecture's own, checked."""
    import kerasseg

    backbone = config.backbone
    if backbone == "default":
        backbone = model_defaults(config.model).get("backbone")
    if backbone is not None:
        kerasseg.backbones.check_backbone(backbone, arch=config.model)
    epochs, batch_size = int(config.epochs), config.batch_size
    if epochs < 1 or int(batch_size) < 1:
        raise ValueError(f"epochs and batch_size must be >= 1; got {epochs} and {batch_size}.")
    return backbone, epochs


def _load_split(task, config, split, options):
    from kerasseg import datasets

    raw = datasets.load(task.dataset, data_dir=config.data_dir, split=split, **options)
    if config.check:
        check_files(raw, task.num_classes, task.ignore_index)
    return raw


def _load_raw(task, config):
    """-> (training split, validation split or None, training samples, image channels)."""
    raw_train = _load_split(task, config, config.train_split, config.dataset_options)
    raw_val = None
    if config.val_split:
        raw_val = _load_split(task, config, config.val_split, config.val_dataset_options)
    # RGB-D sets (with_depth=True) give 4 channels; the backbones adapt their first layer.
    channels = raw_train.element_spec[0].shape[-1] or 3
    return raw_train, raw_val, count_samples(raw_train), channels


def _batches(task, config, raw_train, raw_val):
    """-> (training batches, validation batches or None)."""
    from kerasseg import data

    options = {"seed": config.seed, "ignore_index": task.ignore_index, **(config.augment or {})}
    train_ds = data.prepare(
        raw_train,
        batch_size=config.batch_size,
        crop_size=config.crop_size,
        training=True,
        repeat=True,
        drop_remainder=True,
        **options,
    )
    val_ds = None
    if raw_val is not None:
        val_ds = validation_batches(
            raw_val, config.val_batch_size, config.val_crop_size, task.ignore_index
        )
    return train_ds, val_ds


def _run_record(config, task, strategy, policy):
    """run.json: a record of the run for people (the model file describes itself)."""
    fields = (
        "model",
        "backbone",
        "weights",
        "crop_size",
        "batch_size",
        "epochs",
        "steps_per_epoch",
        "optimizer",
        "model_options",
        "dataset_options",
        "val_dataset_options",
        "seed",
        "supervision",
    )
    return {
        **{name: getattr(config, name) for name in fields},
        "learning_rate": config.learning_rate or default_learning_rate(config.optimizer),
        "num_classes": task.num_classes,
        "binary": task.binary,
        "dataset": task.dataset,
        "data_dir": run_data_dir(config.data_dir),
        "class_names": task.class_names,
        "palette": task.palette,
        "ignore_index": task.ignore_index,
        "precision": policy,
        "strategy": type(strategy).__name__,
        "keras_version": keras.__version__,
    }


def _optimizer_factory(config):
    """Makes the run's optimizer (inside the strategy's scope): the poly decay spans the run."""
    total_steps = config.epochs * config.steps_per_epoch
    return lambda: make_optimizer(
        config.optimizer,
        config.learning_rate,
        total_steps,
        config.warmup_steps,
        config.weight_decay,
        config.end_learning_rate,
    )


def _resolve(config, strategy):
    """Check the arguments and the dataset; -> the run's task. Fills in ``config``'s
    defaults (backbone, epochs as int, option dicts, the validation options)."""
    config.output = os.fspath(config.output)
    config.dataset_options = dict(config.dataset_options or {})
    config.model_options = dict(config.model_options or {})
    if config.val_dataset_options is None:
        config.val_dataset_options = config.dataset_options
    config.val_dataset_options = dict(config.val_dataset_options)
    meta = dataset_meta(config.dataset, config.data_dir, config.dataset_options)
    check_data_dir(config.dataset, config.data_dir)
    task = run_task(config.dataset, meta, config.loss, config.binary, config.model_options)
    check_supervision(config.supervision, config.superpixels)
    if config.supervision != "full" and config.loss is None:
        config.loss = weak_loss(task.ignore_index, config.crf_weight, config.crf_options)
    task.packed = config.loss is not None and uses_image(config.loss)
    config.val_split = default_validation(config.val_split, meta)
    config.backbone, config.epochs = _check_arguments(config)
    if is_chief(strategy):
        check_output(config.output, config.overwrite)
    return task


def _run(config):
    # A multi-worker strategy has to exist before any other TensorFlow work.
    strategy = get_strategy(config.strategy)
    task = _resolve(config, strategy)
    keras.utils.set_random_seed(config.seed)
    raw_train, raw_val, n_train, channels = _load_raw(task, config)
    notes = {"model": size_model_to_data(config, n_train)}
    if config.steps_per_epoch is None:
        config.steps_per_epoch = count_steps(
            raw_train, config.batch_size, task.dataset, config.train_split, n_train
        )
        notes["steps"] = "one pass over the training images"
    policy = precision_policy(config.mixed_precision)
    net, n_outputs = build_compiled(
        config, task, strategy, policy, channels, _optimizer_factory(config)
    )
    notes["crop"] = resolve_crop(config, net, raw_train)
    estimate = None
    if config.memory_check and config.crop_size is not None:
        estimate = check_memory(net, int(config.batch_size), config.crop_size, channels)
    if is_chief(strategy) and config.verbose != 0:
        # On stdout with Keras's progress: stderr is kept for warnings and errors.
        print(format_plan(plan_rows(config, task, net, n_train, notes, estimate)), flush=True)
    weak_figures = None
    if config.supervision != "full":
        from kerasseg.data import prepare

        raw_train, weak_figures = weak_training_set(raw_train, task, config, prepare)
    train_ds, val_ds = _batches(task, config, raw_train, raw_val)
    if task.packed:  # the image travels in y_true for the GatedCRFLoss (weak.pack_image)
        from kerasseg.weak import pack_image

        train_ds = pack_image(train_ds)
        val_ds = pack_image(val_ds) if val_ds is not None else None
    if is_multi_worker(strategy):
        train_ds, val_ds = shard_by_element(train_ds), shard_by_element(val_ds)
    if n_outputs > 1:
        train_ds, val_ds = repeat_labels(train_ds, n_outputs), repeat_labels(val_ds, n_outputs)
    if is_chief(strategy):
        os.makedirs(config.output, exist_ok=True)
        record = _run_record(config, task, strategy, policy)
        write_run_json(os.path.join(config.output, "run.json"), record)
        if weak_figures:
            write_figures(config.output, config.supervision, weak_figures)
    return fit(
        net,
        train_ds,
        val_ds,
        output=config.output,
        epochs=config.epochs,
        steps_per_epoch=config.steps_per_epoch,
        validation_steps=config.val_steps,
        validation_freq=config.validation_freq,
        tensorboard=config.tensorboard,
        strategy=strategy,
        overwrite=config.overwrite,
        verbose=config.verbose,
        callbacks=[FirstSteps(config.steps_per_epoch, config.epochs)]
        if is_chief(strategy) and config.verbose != 0
        else (),
    )


def train(
    model="unet",
    dataset="shapes",
    *,
    output,
    backbone="default",
    weights="imagenet",
    data_dir=None,
    epochs=50,
    batch_size=8,
    crop_size="auto",
    steps_per_epoch=None,
    val_steps=None,
    val_batch_size=1,
    val_crop_size=None,
    validation_freq=1,
    optimizer=None,
    learning_rate=None,
    weight_decay="default",
    warmup_steps=0,
    end_learning_rate=None,
    loss=None,
    binary="auto",
    aux_loss_weight=0.4,
    mixed_precision=False,
    jit_compile="auto",
    strategy="none",
    seed=0,
    train_split="train",
    val_split="val",
    model_options=None,
    dataset_options=None,
    val_dataset_options=None,
    augment=None,
    max_instances=100,
    tensorboard=True,
    overwrite=False,
    verbose="auto",
    check=True,
    size_to_data=True,
    memory_check=True,
    supervision="full",
    superpixels=None,
    crf_weight=0.1,
    cam_steps=None,
    given_labels=False,
    crf_options=None,
):
    """Build ``model`` by name, train it on ``dataset`` and write the run into ``output``.

    model, backbone, weights, model_options: what ``kerasseg.build(model, num_classes,
        backbone=..., weights=..., **model_options)`` gets; ``backbone="default"`` keeps the
        architecture's own default and None asks for its backbone-free variant. A builder that
        takes ``class_names`` (and ``palette``) gets the dataset's, so the model file carries them.
    dataset, data_dir, dataset_options: what ``kerasseg.datasets.load`` gets; the number of
        classes, their names and the ignore index come from ``datasets.info``.
        ``val_dataset_options`` replaces ``dataset_options`` for the validation split.
    batch_size: the global batch (split over the replicas of a distribution strategy).
    crop_size: training crop (int or (h, w)); "auto" (the default): the median size of the
        training images, at most 512 a side, rounded to the model's input multiple.
        ``augment`` holds further ``data.prepare`` options.
    size_to_data: the encoder-free U-Net (``model="unet", backbone=None``) without a
        ``filters`` option gets 16 filters for fewer than 200 training images (the paper's 64
        make 31 M parameters); False keeps the builder's default.
    memory_check: before training, estimate the peak memory of a step (from the forward
        graph's tensors at this batch and crop) and raise a ValueError naming a batch and crop
        that fit when it exceeds 85% of the memory available. The run prints what it chose
        (model, parameters, crop, batch, steps, epochs, memory) before training, and after its
        first steps the time per step and epoch and the peak memory (unless ``verbose=0``).
    steps_per_epoch: default one pass over the training split. val_steps: default all of it.
    val_batch_size, val_crop_size: see ``validation_batches``; the default (1, None) scores
        each image at its own size the way ``inference.predict`` sees it.
    optimizer, learning_rate, weight_decay, warmup_steps, end_learning_rate: see
        ``make_optimizer``; the poly decay spans the whole run (epochs x steps_per_epoch).
        ``optimizer=None``: "sgd" (semantic models), "adam" (instance models).
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
    Instance models (``mask_rcnn``) on instance datasets (``shapes_instances``,
    ``coco_instances``) follow ``kerasseg.training.instances``: no loss (the model carries its
    own), batches with ``max_instances`` slots, scored by COCO box and mask AP on the validation
    split every ``validation_freq`` epochs (``val_steps``: that many images); ``best.keras`` is
    the epoch with the highest ``val_mask_AP``. Panoptic models (``panoptic_fpn``,
    ``panoptic_deeplab``) on panoptic datasets (``shapes_panoptic``, ``coco_panoptic``,
    ``cityscapes`` with ``dataset_options={"task": "panoptic"}``) follow
    ``kerasseg.training.panoptic_runs`` the same way, scored by PQ (``val_PQ``); their
    ``thing_classes`` come from the dataset. A model and a dataset of different tasks are a
    ValueError saying so.
    supervision: ``"full"`` (the masks), or ``"scribbles"``, ``"points"``, ``"boxes"``,
        ``"image"``: weak labels simulated from the masks (seeded by ``seed``), trained with
        ``PartialCrossEntropy + crf_weight * GatedCRFLoss`` unless ``loss`` is given;
        ``superpixels`` ("slic", "felzenszwalb") spreads scribbles, points and box
        pseudo-masks first;
        ``cam_steps``: the CAM classifier's steps for ``"image"`` (default: the run's).
        ``crf_options``: GatedCRFLoss arguments (e.g. ``{"downsample": 4}``).
        ``given_labels=True``: the masks already are weak labels (sparse, 255 = unlabelled) or
        pseudo-masks, trained on as they are. See ``kerasseg.training.weak_runs``.
    Returns a ``TrainResult``; raises ValueError / FileNotFoundError for bad names and paths,
    ``DataError`` for bad files, and ``kerasseg.backbones.WeightsUnavailableError`` when the
    ImageNet weights can be neither found in Keras's cache nor downloaded.
    """
    # The arguments, by name, for the helpers above (nothing else is defined yet).
    config = types.SimpleNamespace(**locals())
    from kerasseg.training.instance_scores import run_kind
    from kerasseg.training.instances import train_instances
    from kerasseg.training.panoptic_runs import train_panoptic

    task = run_kind(config)
    if task != "semantic":
        if supervision != "full":
            raise ValueError(
                f"supervision={supervision!r} is for semantic models; {task} runs train on "
                f"full {task} labels (supervision='full')."
            )
        return train_instances(config) if task == "instance" else train_panoptic(config)
    if config.optimizer is None:
        config.optimizer = "sgd"
    return _run(config)
