"""What a run trains: the dataset's classes (binary or not), the loss and metrics that score
them, and the network built and compiled for them."""

import dataclasses
import inspect

import keras
import numpy as np

__all__ = ["RunTask", "run_task", "is_binary_loss", "model_defaults", "build_compiled"]


def model_defaults(name):
    """The keyword defaults of a registered architecture's builder (e.g. its backbone)."""
    from kerasseg.models import MODELS, build

    if name not in MODELS:
        build(name, 1)  # raises the registry's ValueError naming the valid models
    params = inspect.signature(MODELS[name]).parameters
    return {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}


def is_binary_loss(loss):
    """Whether ``loss`` (or a term of a combined loss) is a binary one (one sigmoid channel),
    e.g. ``losses.BinaryCrossEntropy`` or any loss built with ``mode="binary"``."""
    terms = getattr(loss, "losses", None)  # a CombinedLoss's terms
    if isinstance(terms, (list, tuple)):
        return any(is_binary_loss(term) for term in terms)
    return getattr(loss, "mode", None) == "binary"


@dataclasses.dataclass
class RunTask:
    """What the dataset and the loss make of a run: the classes and how they are scored."""

    dataset: str
    num_classes: int
    ignore_index: int
    class_names: list
    palette: list
    binary: bool = False
    from_logits: bool = False
    packed: bool = False  # targets carry the image (weak supervision's GatedCRFLoss)


def _binary_error(dataset, task, loss):
    why = "the loss is binary, so " if loss is not None and is_binary_loss(loss) else ""
    n = task.num_classes
    return ValueError(
        f"binary training: {why}the dataset needs 2 classes (background, "
        f"foreground), but {dataset!r} has {n} "
        f"({', '.join(task.class_names[:6])}{', ...' if n > 6 else ''})."
    )


def run_task(dataset, meta, loss, binary, model_options):
    """The run's ``RunTask`` for a dataset described by ``meta``; a binary run (``binary``
    True, or "auto" with a binary loss) sets ``model_options["activation"]`` (sigmoid)."""
    if meta.task != "segmentation":
        raise ValueError(
            f"dataset {dataset!r} is a {meta.task} set; train needs segmentation masks."
        )
    task = RunTask(
        dataset,
        int(meta.num_classes),
        int(meta.ignore_index),
        [str(n) for n in meta.class_names],
        np.asarray(meta.palette).tolist(),
    )
    if isinstance(binary, str) and binary == "auto":
        binary = loss is not None and is_binary_loss(loss)
    if not binary:
        return task
    if task.num_classes != 2:
        raise _binary_error(dataset, task, loss)
    activation = model_options.setdefault("activation", "sigmoid")
    if activation not in ("sigmoid", None):
        raise ValueError(
            f"binary training needs activation 'sigmoid' (or None for logits); got {activation!r}."
        )
    task.binary, task.from_logits = True, activation is None
    return task


def _loss_and_scores(task, loss):
    """The main loss (``loss`` or the task's cross-entropy) and the metrics the run logs."""
    from kerasseg import losses, metrics

    if task.binary:
        scored = dict(ignore_index=task.ignore_index, from_logits=task.from_logits)
        main = loss if loss is not None else losses.BinaryCrossEntropy(**scored)
        return main, [
            metrics.MeanIoU(1, **scored),
            metrics.ForegroundIoU(1, **scored),
            metrics.PixelAccuracy(1, **scored),
        ]
    main = loss if loss is not None else losses.CrossEntropy(ignore_index=task.ignore_index)
    k, ignore = task.num_classes, task.ignore_index
    if task.packed:
        from kerasseg import weak

        return main, [
            weak.PackedMeanIoU(k, ignore_index=ignore),
            weak.PackedPixelAccuracy(k, ignore_index=ignore),
        ]
    return main, [
        metrics.MeanIoU(k, ignore_index=ignore),
        metrics.PixelAccuracy(k, ignore_index=ignore),
    ]


def _compile(net, optimizer, loss, task, aux_loss_weight, jit_compile):
    """Compile ``net``; deep-supervision outputs get the same loss at ``aux_loss_weight``."""
    main_loss, scores = _loss_and_scores(task, loss)
    n = len(net.outputs)
    if n > 1:
        compile_args = dict(
            loss=[main_loss] * n,
            loss_weights=[1.0] + [aux_loss_weight] * (n - 1),
            metrics=[scores] + [[] for _ in range(n - 1)],
        )
    else:
        compile_args = dict(loss=main_loss, metrics=scores)
    net.compile(optimizer=optimizer, jit_compile=jit_compile, **compile_args)
    return n


def _build_options(model, task, model_options):
    """Builder keywords: the run's options, and the dataset's class names and colours (every
    builder takes them). A binary model's one channel is the foreground: it gets that class's
    name and colour, so the checkpoint alone says what it finds."""
    options = dict(model_options)
    names, colours = task.class_names, task.palette
    if task.binary:
        names, colours = names[1:], colours[1:]
    options.setdefault("class_names", names)
    options.setdefault("palette", colours)
    return options


def build_compiled(config, task, strategy, policy, channels, optimizer):
    """Build ``config.model`` for ``task`` and compile it under ``strategy`` and dtype
    ``policy``; ``optimizer()`` makes the optimizer inside the scope. -> (net, its outputs)."""
    import kerasseg

    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        with strategy.scope():
            net = kerasseg.build(
                config.model,
                1 if task.binary else task.num_classes,
                backbone=config.backbone,
                weights=config.weights,
                input_shape=(None, None, channels),
                **_build_options(config.model, task, config.model_options),
            )
            n_outputs = _compile(
                net, optimizer(), config.loss, task, config.aux_loss_weight, config.jit_compile
            )
    finally:
        keras.config.set_dtype_policy(previous_policy)
    return net, n_outputs
