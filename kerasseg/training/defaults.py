"""Run settings sized to the data, and what a run says about itself before and as it starts.

- ``auto_crop``: the training crop from the split's image sizes (the median, capped at
  ``MAX_CROP``, rounded to the model's input multiple), used when ``crop_size="auto"``;
- ``auto_unet_filters``: the width of the encoder-free U-Net for the number of training images
  (the paper's 64 filters make a 31 M-parameter model, hours per epoch on a CPU for a few dozen
  images that a 16-filter one learns as well);
- ``estimate_memory`` / ``check_memory``: the peak resident memory of a training step, from the
  sizes of every tensor of the model's forward graph at the run's batch and crop, against what
  the machine has; too much is a ValueError suggesting a batch and a crop that fit;
- ``format_plan``: the block a run prints before training; ``FirstSteps``: the line it prints
  after its first steps (time per step and epoch, peak memory so far).
"""

import sys
import time

import keras
import numpy as np
import tensorflow as tf

from kerasseg.datasets import files_of

__all__ = [
    "MAX_CROP",
    "image_sizes",
    "auto_crop",
    "auto_unet_filters",
    "estimate_memory",
    "available_memory",
    "check_memory",
    "format_plan",
    "FirstSteps",
    "peak_memory",
]

MAX_CROP = 512
SIZE_SAMPLE = 200  # image headers read to size the crop
SMALL_SET = 200  # fewer training images than this: a 16-filter U-Net
SMALL_UNET_FILTERS = 16
# Measured on a 2-core CPU (U-Nets of 1.9 M and 31 M parameters, a ResNet50 U-Net, 256 px): a
# training step's peak resident memory grew by 0.72-0.88 of the bytes of its forward graph's
# tensors. 1.0, plus the gradient and two optimizer slots per weight, errs on the safe side.
GRAPH_FACTOR = 1.0
WEIGHT_COPIES = 3
MEMORY_MARGIN = 0.85  # of the available memory a run may plan to use
# Forward-graph ops whose outputs are no activations (constants, variable reads, shapes).
_NOT_ACTIVATIONS = ("Const", "ReadVariableOp", "VarHandleOp", "Placeholder", "Identity", "Shape")


def image_sizes(raw, sample=SIZE_SAMPLE):
    """(height, width) of up to ``sample`` images of a loaded split, evenly spaced: read from
    the files' headers where the split's files are known, else from its first elements."""
    files = files_of(raw)
    if files is not None and files.items:
        from PIL import Image

        items = files.items
        index = np.unique(np.linspace(0, len(items) - 1, min(sample, len(items))).astype(int))
        sizes = []
        for i in index:
            with Image.open(items[i][0]) as im:
                sizes.append((im.height, im.width))
        return sizes
    return [tuple(int(v) for v in x.shape[:2]) for x, _ in raw.take(16).as_numpy_iterator()]


def _to_multiple(value, multiple):
    return max(multiple, int(round(value / multiple)) * multiple)


def auto_crop(sizes, multiple, cap=MAX_CROP):
    """-> ((height, width), why): the median image size, at most ``cap`` a side, rounded to
    ``multiple``."""
    heights, widths = np.median(np.asarray(sizes, np.float64), axis=0)
    crop = tuple(_to_multiple(min(cap, v), multiple) for v in (heights, widths))
    lo, hi = np.min(sizes, axis=0), np.max(sizes, axis=0)
    why = (
        f"the median image size {int(heights)}x{int(widths)} (images from {lo[0]}x{lo[1]} to "
        f"{hi[0]}x{hi[1]}), at most {cap} a side, a multiple of {multiple}"
    )
    return crop, why


def auto_unet_filters(n_train):
    """The encoder-free U-Net's width for ``n_train`` training images (None: the builder's)."""
    return SMALL_UNET_FILTERS if n_train < SMALL_SET else None


# --------------------------------------------------------------------------- memory


def _graph_bytes(model, batch, crop, channels):
    """Bytes of every tensor a training-mode forward pass makes at this batch and crop."""
    spec = tf.TensorSpec((batch, *crop, channels), tf.float32)
    graph = tf.function(lambda x: model(x, training=True)).get_concrete_function(spec).graph
    total = 0
    for op in graph.get_operations():
        if op.type in _NOT_ACTIVATIONS:
            continue
        for out in op.outputs:
            if out.shape.is_fully_defined() and out.dtype.size:
                total += int(np.prod(out.shape)) * out.dtype.size
    return total


def resident_memory():
    """This process's resident memory now, in bytes (0 where /proc is not there)."""
    return _status_field("VmRSS:")


def peak_memory():
    """This process's peak resident memory so far, in bytes (0 where /proc is not there)."""
    return _status_field("VmHWM:")


def _status_field(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def estimate_memory(model, batch, crop, channels=3):
    """Estimated peak resident bytes of training ``model`` on ``batch`` crops of ``crop``."""
    weights = sum(int(np.prod(w.shape)) * 4 for w in model.weights)
    activations = _graph_bytes(model, int(batch), tuple(crop), int(channels))
    return int(resident_memory() + GRAPH_FACTOR * activations + WEIGHT_COPIES * weights)


def available_memory():
    """Bytes this process may still take: the system's available memory, or the cgroup's
    limit less its usage where that is smaller (containers); None when unknown."""
    found = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read().strip())
        if limit != "max":
            found.append(int(limit) - used)
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def gb(n):
    return f"{n / 1e9:.1f} GB"


def check_memory(model, batch, crop, channels, available=None):
    """-> the estimate (bytes). Raises ValueError when it exceeds MEMORY_MARGIN of the
    ``available`` bytes (default: ``available_memory()``), naming a batch and a crop that fit."""
    estimate = estimate_memory(model, batch, crop, channels)
    available = available_memory() if available is None else available
    if available is None or estimate <= MEMORY_MARGIN * available:
        return estimate
    budget = MEMORY_MARGIN * available
    per_sample = max(1.0, (estimate - resident_memory()) / batch)
    fits = int((budget - resident_memory()) // per_sample)
    ideas = []
    if fits >= 1:
        ideas.append(f"--batch-size {2 ** int(np.log2(fits))}")
    scale = max(0.0, (budget - resident_memory()) / max(1.0, estimate - resident_memory()))
    side = [max(32, int(v * scale**0.5) // 32 * 32) for v in crop]
    if side != list(crop):
        ideas.append(f"--crop-size {side[0]} {side[1]}")
    raise ValueError(
        f"training at batch {batch} on {crop[0]}x{crop[1]} crops needs about {gb(estimate)} of "
        f"memory at its peak (estimated), more than the {gb(available)} this machine has "
        f"available; try {' or '.join(ideas) or 'a smaller model'} (train(memory_check=False), "
        f"--no-memory-check: start anyway)."
    )


# --------------------------------------------------------------------------- what a run says


def format_plan(rows):
    """The start-up block: ``rows`` of (what, value, why or flag), aligned."""
    width = max(len(what) for what, _, _ in rows)
    lines = ["kerasseg: the run:"]
    for what, value, why in rows:
        lines.append(f"  {what:<{width}}  {value}" + (f"  ({why})" if why else ""))
    return "\n".join(lines)


class FirstSteps(keras.callbacks.Callback):
    """After ``after`` training steps of the first epoch, one line: seconds per step (timed
    from the end of the first step, which also builds the graph), the epoch and the run they
    make, and the peak memory so far."""

    def __init__(self, steps_per_epoch, epochs, after=3, stream=None):
        super().__init__()
        self.steps_per_epoch, self.epochs = int(steps_per_epoch), int(epochs)
        self.after = max(2, min(int(after), self.steps_per_epoch))
        self.stream = stream
        self._start = None
        self.said = None

    def on_train_batch_end(self, batch, logs=None):
        if self.said is not None:
            return
        if batch == 0:
            self._start = time.perf_counter()
        elif batch + 1 >= self.after and self._start is not None:
            per_step = (time.perf_counter() - self._start) / batch
            epoch = per_step * self.steps_per_epoch
            self.said = (
                f"kerasseg: after {batch + 1} steps: {per_step:.2f} s per step, about "
                f"{_duration(epoch)} per epoch and {_duration(epoch * self.epochs)} for "
                f"{self.epochs} epoch(s) (validation not counted); peak memory "
                f"{gb(peak_memory())}"
            )
            print(self.said, file=self.stream or sys.stdout, flush=True)


def _duration(seconds):
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# --------------------------------------------------------------------------- the recipe's use


def size_model_to_data(config, n_train):
    """The encoder-free U-Net's width for a small set, unless the run chose one; -> why, or
    None when nothing was chosen."""
    if config.model != "unet" or config.backbone is not None:
        return None
    if "filters" in config.model_options or not config.size_to_data:
        return None
    filters = auto_unet_filters(n_train)
    if filters is None:
        return None
    config.model_options["filters"] = filters
    return (
        f"{filters} filters for {n_train} training images, fewer than {SMALL_SET}; the "
        f"paper's 64 (31 M parameters): --model-option filters=64"
    )


def resolve_crop(config, model, raw_train):
    """``config.crop_size`` as (h, w); "auto" sized to the images. -> why, or None."""
    from kerasseg.models.segmenter import describe

    if isinstance(config.crop_size, str) and config.crop_size == "auto":
        multiple = int(describe(model)["input_multiple"])
        config.crop_size, why = auto_crop(image_sizes(raw_train), multiple)
        return why
    if config.crop_size is not None and np.ndim(config.crop_size) == 0:
        config.crop_size = (int(config.crop_size), int(config.crop_size))
    return None


def plan_rows(config, task, model, n_train, notes, estimate):
    """The start-up block's rows for a semantic run."""
    crop = config.crop_size
    val = f"validation on {config.val_split!r}" if config.val_split else "no validation"
    rows = [
        (
            "model",
            f"{config.model} (backbone {config.backbone or 'none'}), "
            f"{model.count_params() / 1e6:.2f} M parameters",
            notes.get("model"),
        ),
        (
            "data",
            f"{task.dataset}: {n_train} training images, {task.num_classes} classes, {val}",
            None,
        ),
        (
            "crop",
            "native size" if crop is None else f"{crop[0]}x{crop[1]}",
            notes.get("crop") or "--crop-size",
        ),
        (
            "batch",
            f"{config.batch_size}, {config.steps_per_epoch} steps per epoch",
            notes.get("steps") or "--batch-size, --steps-per-epoch",
        ),
        ("epochs", f"{config.epochs} ({config.epochs * config.steps_per_epoch} steps)", "--epochs"),
    ]
    if estimate is not None:
        available = available_memory()
        of = f"; {gb(available)} available" if available else ""
        rows.append(("memory", f"about {gb(estimate)} at the peak{of}", "estimated"))
    return rows
