"""Loading a checkpoint for evaluate / predict / export, and what it predicts: the class count,
names and colours, read from the model itself (``kerasseg.models.segmenter.describe``).

A checkpoint is a ``.keras`` file or a run folder (``kerasseg train --output``): a folder means
its ``best.keras``, else its ``last.keras`` (``resolve_checkpoint``)."""

import os

from kerasseg.cli.common import UsageError, say

# In this order: the checkpoint a run folder stands for.
RUN_CHECKPOINTS = ("best.keras", "last.keras")
CHECKPOINT_HELP = "a .keras file, or a run folder (its best.keras, else its last.keras)"


def resolve_checkpoint(path):
    """The checkpoint file ``path`` names: itself, or a run folder's best.keras (else
    last.keras); a one-line error names what is missing. Nothing heavy is imported."""
    path = os.fspath(path)
    if os.path.isfile(path):
        return path
    if not os.path.isdir(path):
        raise UsageError(f"checkpoint not found: {path!r}.")
    for name in RUN_CHECKPOINTS:
        candidate = os.path.join(path, name)
        if os.path.isfile(candidate):
            # Said, since which of the two a folder gave is not obvious from the command line.
            say(f"checkpoint: {candidate}")
            return candidate
    raise UsageError(
        f"checkpoint folder {path!r} holds neither {' nor '.join(RUN_CHECKPOINTS)} "
        f"(pass a .keras file, or the --output folder of a finished kerasseg train)."
    )


def load_checkpoint(path):
    """The checkpoint ``path`` names (``resolve_checkpoint``), uncompiled."""
    path = resolve_checkpoint(path)
    import keras

    import kerasseg

    # Asking the package for a public name imports (and so registers with Keras) everything,
    # where the console script imported it without TensorFlow.
    kerasseg.Segmenter  # noqa: B018
    return keras.models.load_model(path, compile=False)


def task_of(model):
    """The model's task ("semantic", "instance", "panoptic"), as it says itself."""
    from kerasseg.models.segmenter import describe

    return describe(model)["task"]


def num_classes(model):
    """Classes a checkpoint predicts: its output channels, 2 for a one-channel binary model;
    an instance or panoptic model's own count (its outputs are not class maps)."""
    if task_of(model) != "semantic":
        from kerasseg.models.segmenter import describe

        return int(describe(model)["num_classes"])
    return max(2, int(model.outputs[0].shape[-1]))


def _own_labels(model):
    """(names, colours) a model says about itself, or (None, None) where it says nothing of its
    own: a plain Keras model (a file saved before the Segmenter class), or a Segmenter built
    with the default names and colours. A one-channel (binary) model names its foreground
    class: its two classes are background and that one."""
    from kerasseg.models.segmenter import Segmenter, default_class_names, describe
    from kerasseg.ops.palette import default_palette

    if not isinstance(model, Segmenter):
        return None, None
    info = describe(model)
    names, colours = list(info["class_names"]), info["palette"]
    if (
        names == default_class_names(info["num_classes"])
        and colours == default_palette(info["num_classes"]).tolist()
    ):
        return None, None
    if info["num_classes"] == 1 and num_classes(model) == 2:
        pair = default_palette(2).tolist()  # black background, VOC's first class colour
        if colours != default_palette(1).tolist():  # a foreground colour of the model's own
            pair[1] = list(colours[0])
        return ["background", *names], pair
    return names, colours


def labels_of(model, checkpoint, dataset=None):
    """(class names, palette) for a checkpoint's model: those of --dataset if given, else the
    model's own, else (checkpoints of older kerasseg) the run's run.json, else generic names
    and the default palette."""
    import numpy as np

    from kerasseg.ops.palette import default_palette
    from kerasseg.training import dataset_meta, load_run_info

    count = num_classes(model)
    if dataset is not None:
        meta = dataset_meta(dataset, None, {})
        names, colours = list(meta.class_names), meta.palette
    else:
        names, colours = _own_labels(model)
        if names is None:
            run = load_run_info(checkpoint)
            names, colours = run.get("class_names"), run.get("palette")
    if not names or len(names) != count:
        names = [f"class_{i}" for i in range(count)]
    colours = None if colours is None else np.asarray(colours, np.uint8)
    if colours is None or colours.shape != (count, 3):
        colours = default_palette(count)
    return names, colours
