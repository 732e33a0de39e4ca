"""Training: the poly learning-rate schedule, optimizers and the run loop behind ``kerasseg train``.

    result = kerasseg.train.train("unet", "shapes", backbone=None, weights=None, epochs=10,
                                  batch_size=8, crop_size=96, output="runs/shapes")
    model = keras.models.load_model("runs/shapes/best.keras")

A run writes into its ``output`` folder:

- ``best.keras``: the epoch with the highest validation mIoU (``best.json`` says which epoch);
- ``last.keras``: the last epoch that ended with finite numbers;
- ``history.csv``, ``curves.png``: the per-epoch logs and a plot of them;
- ``run.json``: what was trained (model, dataset, class names, palette) for evaluate/predict/export;
- ``logs/``: TensorBoard event files;
- ``backup/``: only while a run is unfinished. Start the same run again with the same ``output``
  and it resumes from the last completed epoch (``keras.callbacks.BackupAndRestore``).

A loss that turns NaN or infinite stops the run at once; the checkpoints keep the last finite
epoch. ``fit`` is the same machinery for a model and datasets you built yourself.
"""
import csv
import dataclasses
import inspect
import json
import math
import os
import shutil
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from kerasseg.datasets._registry import DataError, files_of, pipeline_error_message

__all__ = [
    "PolyDecay",
    "make_optimizer",
    "get_strategy",
    "precision_policy",
    "NaNGuard",
    "fit",
    "train",
    "evaluate",
    "validation_batches",
    "TrainResult",
    "OPTIMIZER_DEFAULTS",
    "STRATEGIES",
    "DataError",
    "check_files",
    "check_split",
    "is_binary_loss",
]

# name -> (learning rate, weight decay). SGD follows the mmsegmentation recipe; AdamW the usual
# transformer-era fine-tuning values; Adam is the plain default for training from scratch.
OPTIMIZER_DEFAULTS = {"sgd": (0.01, 5e-4), "adamw": (1e-4, 0.01), "adam": (1e-3, None)}
STRATEGIES = ("none", "mirrored", "multiworker", "tpu")
# The poly schedule ends at this fraction of the initial rate (0.01 -> 1e-4 in the recipe).
END_LR_FRACTION = 0.01
RUN_FILES = ("last.keras", "best.keras", "history.csv")


# --------------------------------------------------------------------------- schedule, optimizer


@keras.saving.register_keras_serializable(package="kerasseg")
class PolyDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup, then polynomial decay to ``end_learning_rate`` (mmsegmentation's PolyLR).

    For step ``s`` (the optimizer's iteration count, from 0), warmup ``W`` and ``T = decay_steps``::

        s <  W:  lr = initial * (s + 1) / W
        s >= W:  lr = (initial - end) * (1 - min(s - W, T - W) / (T - W)) ** power + end

    so the rate reaches ``initial`` at the end of warmup, decays over the remaining ``T - W``
    steps and stays at ``end`` afterwards. ``decay_steps`` counts the warmup steps too: pass the
    run's total number of steps.
    """

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=None, power=0.9,
                 warmup_steps=0, name="PolyDecay"):
        super().__init__()
        decay_steps, warmup_steps = int(decay_steps), int(warmup_steps)
        if decay_steps < 1:
            raise ValueError(f"PolyDecay: decay_steps must be >= 1; got {decay_steps}.")
        if not 0 <= warmup_steps < decay_steps:
            raise ValueError(f"PolyDecay: warmup_steps must be in [0, decay_steps={decay_steps}); "
                             f"got {warmup_steps}.")
        if end_learning_rate is None:
            end_learning_rate = END_LR_FRACTION * float(initial_learning_rate)
        self.initial_learning_rate = float(initial_learning_rate)
        self.end_learning_rate = float(end_learning_rate)
        self.decay_steps = decay_steps
        self.warmup_steps = warmup_steps
        self.power = float(power)
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = float(self.warmup_steps)
        span = float(self.decay_steps - self.warmup_steps)
        progress = ops.minimum(ops.maximum(step - warm, 0.0), span) / span
        lr = (self.initial_learning_rate - self.end_learning_rate) * ops.power(
            1.0 - progress, self.power) + self.end_learning_rate
        if self.warmup_steps:
            lr = ops.where(step < warm, self.initial_learning_rate * (step + 1.0) / warm, lr)
        return lr

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
            "power": self.power,
            "warmup_steps": self.warmup_steps,
            "name": self.name,
        }


def make_optimizer(name="sgd", learning_rate=None, total_steps=None, warmup_steps=0,
                   weight_decay="default", end_learning_rate=None, momentum=0.9, power=0.9,
                   clipnorm=None):
    """An optimizer with the poly schedule over ``total_steps`` (a constant rate without it).

    name: "sgd" (momentum 0.9, lr 0.01, weight decay 5e-4: the reference recipe), "adamw"
        (lr 1e-4, weight decay 0.01) or "adam" (lr 1e-3, no weight decay).
    learning_rate, weight_decay: None or "default" take the optimizer's defaults above;
        ``weight_decay=None`` explicitly passed switches it off. Keras applies weight decay
        decoupled from the gradient (``w -= lr * wd * w``).
    end_learning_rate: where the poly decay ends (default 1% of ``learning_rate``).
    """
    key = str(name).lower()
    if key not in OPTIMIZER_DEFAULTS:
        raise ValueError(f"Unknown optimizer {name!r}; valid optimizers: "
                         f"{', '.join(OPTIMIZER_DEFAULTS)}.")
    default_lr, default_wd = OPTIMIZER_DEFAULTS[key]
    lr = default_lr if learning_rate is None else float(learning_rate)
    if not lr > 0:
        raise ValueError(f"learning_rate must be > 0; got {learning_rate!r}.")
    wd = default_wd if isinstance(weight_decay, str) and weight_decay == "default" else weight_decay
    schedule = lr
    if total_steps:
        schedule = PolyDecay(lr, total_steps, end_learning_rate, power=power,
                             warmup_steps=warmup_steps)
    common = {"learning_rate": schedule, "clipnorm": clipnorm}
    if wd:
        common["weight_decay"] = float(wd)
    if key == "sgd":
        return keras.optimizers.SGD(momentum=momentum, **common)
    if key == "adamw":
        common.setdefault("weight_decay", 0.0)
        return keras.optimizers.AdamW(**common)
    return keras.optimizers.Adam(**common)


# --------------------------------------------------------------------------- devices


def get_strategy(name="none"):
    """A ``tf.distribute.Strategy`` by name.

    "none": the default (one device). "mirrored": all local GPUs, or all logical CPU devices
    when there is no GPU. "multiworker": ``MultiWorkerMirroredStrategy`` configured by the
    ``TF_CONFIG`` environment variable (create it before any other TensorFlow work). "tpu":
    ``TPUStrategy`` on the TPU named by ``TPU_NAME`` (empty: the local or Colab TPU).
    """
    if isinstance(name, tf.distribute.Strategy):
        return name
    key = "none" if name is None else str(name).lower()
    if key == "none":
        return tf.distribute.get_strategy()
    if key == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if key == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError("strategy 'multiworker' needs the TF_CONFIG environment variable "
                             "(cluster addresses and this process's task).")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if key == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=os.environ.get("TPU_NAME", ""))
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown strategy {name!r}; valid strategies: {', '.join(STRATEGIES)}.")


def is_chief(strategy):
    """Whether this process writes the run's files (always, outside multi-worker training)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if not task_type or isinstance(strategy, tf.distribute.TPUStrategy):
        return True
    if task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and int(resolver.task_id or 0) == 0 and not has_chief


def precision_policy(mixed_precision=False):
    """The Keras dtype policy: float32, or mixed float16 on GPU and mixed bfloat16 elsewhere
    (CPUs and TPUs compute bfloat16 natively; float16 on them is slow or unsupported)."""
    if not mixed_precision:
        return "float32"
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


def default_verbose():
    """Keras's progress bar on a terminal, one line per epoch in logs and pipes."""
    return 1 if sys.stdout.isatty() else 2


# --------------------------------------------------------------------------- callbacks


def _finite(value):
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True  # a non-scalar log (e.g. a per-class vector) says nothing here


def _log(message):
    print(f"kerasseg: {message}", file=sys.stderr, flush=True)


class NaNGuard(keras.callbacks.Callback):
    """Stops training the moment a logged loss or metric becomes NaN or infinite.

    Unlike ``keras.callbacks.TerminateOnNaN`` it remembers that it fired (``tripped``), so the
    run's checkpoint and backup callbacks skip the spoiled epoch and the files on disk keep the
    last finite one. Keras still runs the epoch's validation and ``on_epoch_end`` after a stop;
    that is why the other callbacks have to ask.
    """

    def __init__(self):
        super().__init__()
        self.tripped = False
        self.where = None
        self.last_good_epoch = None  # 0-based index of the last finite epoch

    def _check(self, logs, where):
        if self.tripped:
            return
        bad = [k for k, v in (logs or {}).items() if not _finite(v)]
        if bad:
            self.tripped = True
            self.where = f"{where}: {', '.join(f'{k}={logs[k]}' for k in bad)}"
            self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        self._check({k: v for k, v in (logs or {}).items() if "loss" in k},
                    f"epoch {self._epoch + 1}, batch {batch + 1}")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, f"end of epoch {epoch + 1}")
        if not self.tripped:
            self.last_good_epoch = epoch


class LogLearningRate(keras.callbacks.Callback):
    """Adds the optimizer's current learning rate to each epoch's logs (history.csv, curves)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and getattr(self.model, "optimizer", None) is not None:
            logs["learning_rate"] = float(
                keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


def _atomic_save(model, path):
    """Save next to ``path`` and rename: a run killed while saving never leaves a torn file."""
    folder, name = os.path.split(path)
    partial = os.path.join(folder, f".partial-{name}")
    model.save(partial)
    os.replace(partial, path)


class RunCheckpoints(keras.callbacks.Callback):
    """Writes ``last.keras`` every epoch and ``best.keras`` when ``monitor`` improves.

    Epochs the NaN guard rejected are never written. The best value so far lives in
    ``best.json`` so a resumed run (``resume=True``) keeps comparing against it. A monitor
    missing from an
    epoch's logs (no validation that epoch) leaves best.keras alone.
    """

    def __init__(self, folder, monitor="val_mean_iou", mode="max", guard=None, resume=False):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min'; got {mode!r}.")
        self.folder, self.monitor, self.mode, self.guard = folder, monitor, mode, guard
        self.last_path = os.path.join(folder, "last.keras")
        self.best_path = os.path.join(folder, "best.keras")
        self.record_path = os.path.join(folder, "best.json")
        self.best = None
        self.best_epoch = None
        if resume and os.path.exists(self.record_path):
            with open(self.record_path) as f:
                record = json.load(f)
            if record.get("monitor") == monitor:
                self.best, self.best_epoch = record.get("value"), record.get("epoch")

    def _better(self, value):
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def _monitored(self, logs):
        if self.monitor in logs:
            return logs[self.monitor]
        # Multi-output models prefix metric names with the output's name.
        suffix = self.monitor[4:] if self.monitor.startswith("val_") else self.monitor
        want_val = self.monitor.startswith("val_")
        for key in logs:
            if key.endswith(suffix) and key.startswith("val_") == want_val:
                return logs[key]
        return None

    def on_epoch_end(self, epoch, logs=None):
        if self.guard is not None and self.guard.tripped:
            return
        logs = logs or {}
        _atomic_save(self.model, self.last_path)
        value = self._monitored(logs)
        if value is None or not _finite(value):
            return
        value = float(value)
        if self._better(value):
            self.best, self.best_epoch = value, epoch + 1
            _atomic_save(self.model, self.best_path)
            with open(self.record_path, "w") as f:
                json.dump({"monitor": self.monitor, "value": value, "epoch": epoch + 1}, f)


class _Backup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that skips epochs the NaN guard rejected, keeps the backup when a run
    did not finish cleanly, and (for multi-worker followers) restores from the chief's backup
    while writing its own into a private folder."""

    def __init__(self, backup_dir, guard=None, restore_from=None):
        super().__init__(backup_dir)
        self.guard = guard
        self.restore_from = restore_from

    def on_train_begin(self, logs=None):
        if self.restore_from and self.restore_from != self.backup_dir:
            os.makedirs(self.backup_dir, exist_ok=True)
            for name in ("latest.weights.h5", "training_metadata.json"):
                source = os.path.join(self.restore_from, name)
                if os.path.exists(source):
                    shutil.copyfile(source, os.path.join(self.backup_dir, name))
        super().on_train_begin(logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.guard is not None and self.guard.tripped:
            return
        super().on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        if self.guard is not None and self.guard.tripped:
            return  # keep the last good state: rerunning resumes from it
        super().on_train_end(logs)


def backup_epoch(output):
    """The number of epochs a resumable run in ``output`` has completed (None: nothing to
    resume)."""
    path = os.path.join(output, "backup", "training_metadata.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return int(json.load(f)["epoch"])
    except (OSError, ValueError, KeyError):
        return None


def _trim_history(path, keep_epochs):
    """Drop rows of epochs a resumed run is about to redo (a run killed between writing its
    history row and its backup would otherwise log that epoch twice)."""
    if not os.path.exists(path):
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    kept = [r for r in body if r and r[0].isdigit() and int(r[0]) < keep_epochs]
    if len(kept) != len(body):
        with open(path, "w", newline="") as f:
            csv.writer(f).writerows([header] + kept)


def read_history(path):
    """history.csv as {column: [values]} (floats; 'epoch' as ints)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for row in rows:
        for key, value in row.items():
            out.setdefault(key, []).append(int(value) if key == "epoch" else float(value))
    return out


# --------------------------------------------------------------------------- fit


@dataclasses.dataclass
class TrainResult:
    """What a run produced. ``history`` holds the epochs this call trained (a resumed run's
    earlier epochs are in history.csv); ``diverged`` is True when the NaN guard stopped it."""

    model: keras.Model
    history: dict
    output: str
    best_path: str
    last_path: str
    best_value: float = None
    best_epoch: int = None
    initial_epoch: int = 0
    epochs: int = 0
    diverged: bool = False
    diverged_at: str = None
    seconds: float = 0.0
    chief: bool = True
    logs_dir: str = None


def _check_output(output, overwrite):
    if os.path.exists(output) and not os.path.isdir(output):
        raise FileExistsError(f"output {output!r} exists and is not a folder.")
    if backup_epoch(output) is not None or overwrite:
        return
    found = [n for n in RUN_FILES if os.path.exists(os.path.join(output, n))]
    if found:
        raise FileExistsError(
            f"output folder {output!r} already holds a finished run ({', '.join(found)}); "
            f"choose another output folder or pass overwrite=True (--overwrite) to replace it.")


def fit(model, train_data, validation_data=None, *, output, epochs, steps_per_epoch=None,
        validation_steps=None, validation_freq=1, monitor="val_mean_iou", mode="max",
        callbacks=(), tensorboard=True, plot=True, strategy=None, overwrite=False,
        verbose="auto"):
    """``model.fit`` with the run's files: checkpoints, history, curves, TensorBoard, backup.

    ``model`` must be compiled (inside ``strategy.scope()`` when distributing). A folder holding
    an unfinished run (``output/backup``) is always resumed from its last completed epoch (the
    same model and compile settings are expected); one holding a finished run is refused
    unless ``overwrite=True``, which replaces its checkpoints and history. Under multi-worker
    training only the chief writes into ``output``; the other workers write the same files into a
    temporary folder (every worker has to take part in saving) that is removed at the end.
    A bad file met by the input pipeline (a loader's error, e.g. a colour mask) stops the run with
    a ``DataError`` carrying the loader's message. Returns a ``TrainResult``.
    """
    if not getattr(model, "compiled", False):
        raise ValueError("fit: compile the model first (model.compile(optimizer, loss, metrics)).")
    strategy = strategy or tf.distribute.get_strategy()
    output = os.fspath(output)
    chief = is_chief(strategy)
    if chief:
        _check_output(output, overwrite)
    folder = output if chief else tempfile.mkdtemp(prefix="kerasseg-worker-")
    os.makedirs(folder, exist_ok=True)
    resumed_from = backup_epoch(output) or 0
    if resumed_from and chief:
        _log(f"resuming the run in {output} after epoch {resumed_from} of {epochs}.")
    history_path = os.path.join(folder, "history.csv")
    if resumed_from:
        _trim_history(history_path, resumed_from)
    elif chief and overwrite:
        for name in RUN_FILES + ("best.json",):
            if os.path.exists(os.path.join(folder, name)):
                os.remove(os.path.join(folder, name))
    if validation_data is None and monitor.startswith("val_"):
        monitor = monitor[4:]

    guard = NaNGuard()
    checkpoints = RunCheckpoints(folder, monitor, mode, guard, resume=resumed_from > 0)
    run_callbacks = [guard, LogLearningRate(), checkpoints,
                     keras.callbacks.CSVLogger(history_path, append=True)]
    logs_dir = None
    if tensorboard and _tensorboard_available(chief):
        logs_dir = os.path.join(output, "logs")
        run_callbacks.append(keras.callbacks.TensorBoard(os.path.join(folder, "logs"),
                                                         write_graph=False, profile_batch=0))
    run_callbacks += list(callbacks)
    # Last, so that a kill between two callbacks leaves the backup behind the other files
    # (the resumed run then redoes an epoch rather than skipping one).
    run_callbacks.append(_Backup(os.path.join(folder, "backup"), guard,
                                 restore_from=os.path.join(output, "backup")))
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        _multi_worker_fixes(model)
    if verbose == "auto":
        verbose = default_verbose()
    started = time.time()
    try:
        history = through_pipeline(lambda: model.fit(
            train_data, validation_data=validation_data, epochs=epochs,
            steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
            validation_freq=validation_freq, callbacks=run_callbacks, shuffle=False,
            verbose=verbose))
    finally:
        if not chief:
            shutil.rmtree(folder, ignore_errors=True)
    seconds = time.time() - started
    if guard.tripped:
        good = guard.last_good_epoch + 1 if guard.last_good_epoch is not None else resumed_from
        kept = (f"last.keras keeps epoch {good}" if good
                else "no epoch finished cleanly, so no checkpoint was written")
        if chief:
            _log(f"training stopped: a loss or metric became NaN/inf ({guard.where}); {kept}. "
                 f"Try a lower learning rate, or turn mixed precision off.")
    if chief and plot and os.path.exists(history_path):
        _plot_curves(history_path, os.path.join(folder, "curves.png"))
    return TrainResult(
        model=model, history=dict(history.history), output=output,
        best_path=os.path.join(output, "best.keras"), last_path=os.path.join(output, "last.keras"),
        best_value=checkpoints.best, best_epoch=checkpoints.best_epoch,
        initial_epoch=resumed_from, epochs=epochs, diverged=guard.tripped,
        diverged_at=guard.where, seconds=seconds, chief=chief, logs_dir=logs_dir)


def _tensorboard_available(chief):
    # TensorFlow >= 2.20 no longer installs TensorBoard; its callback then fails mid-epoch.
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        if chief:
            _log("TensorBoard is not installed, so no logs/ are written "
                 "(pip install tensorboard).")
        return False
    return True


def _multi_worker_fixes(model):
    """Work around two places where Keras 3 (3.15) breaks under MultiWorkerMirroredStrategy
    once there are two workers:

    - it builds the model from its first batch with ``strategy.reduce`` over the whole
      ``(x, y)`` structure, which this strategy rejects (it reduces one value at a time),
      and which could not work anyway when workers hold images of different sizes;
    - it merges each step's logs with ``strategy.reduce("MEAN", value, axis=0)``, which fails
      on the scalars every loss and metric returns.

    The build only needs the batch's shapes and dtypes, so it takes this worker's own values
    (no cross-worker communication); the train/test steps return their logs with a leading
    axis of one, which that mean then removes again (the values are already synchronised
    across workers, so the mean changes nothing).
    """
    if getattr(model, "_kerasseg_multi_worker", False):
        return
    strategy = model.distribute_strategy

    def local_value(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def maybe_symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = keras.tree.map_structure(local_value, next(it))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    def with_leading_axis(step):
        def wrapped(data):
            return keras.tree.map_structure(lambda v: tf.expand_dims(v, 0), step(data))
        return wrapped

    model._maybe_symbolic_build = maybe_symbolic_build
    model.train_step = with_leading_axis(model.train_step)
    model.test_step = with_leading_axis(model.test_step)
    model._kerasseg_multi_worker = True


def _plot_curves(history_path, png_path):
    try:
        from kerasseg import visualize

        visualize.plot_history(history_path, png_path)
    except Exception as error:  # noqa: BLE001 - a missing plot must not fail a finished run
        _log(f"could not plot the training curves ({type(error).__name__}: {error}).")


# --------------------------------------------------------------------------- file checks

# Pillow modes that hold one value per pixel (class indices); others need the loader's decoder
# to say whether it accepts them (grey saved as RGB, colour-coded sets such as CamVid's).
_INDEX_MODES = ("1", "L", "P", "I", "I;16", "I;16L", "I;16B", "I;16N", "F")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
HEADER_SECONDS = 20.0  # at most this long reading headers (a file's first bytes) ...
DECODE_SECONDS = 3.0  # ... and this long decoding a sample of the samples in full


def _header(path, role):
    """(format, mode, (width, height)) read from the file's header; None for files Pillow does
    not read (e.g. .mat labels). A file Pillow cannot open raises DataError."""
    if not path.lower().endswith(_IMAGE_SUFFIXES):
        return None
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.format, im.mode, im.size
    except FileNotFoundError:
        raise DataError(f"{role} file not found: {path!r}") from None
    except Exception as error:  # noqa: BLE001 - Pillow raises several types for bad files
        reason = " ".join(str(error).split()) or type(error).__name__
        raise DataError(f"cannot read {role} file {path!r} (corrupt or not an image): "
                        f"{reason}") from None


def _spread(n, k):
    """k indices evenly spread over range(n) (all of them when n <= k)."""
    if n <= k:
        return list(range(n))
    return sorted(set(np.round(np.linspace(0, n - 1, k)).astype(int).tolist()))


def _check_values(label, path, num_classes, ignore_index):
    label = np.asarray(label)
    bad = (label < 0) | (label >= num_classes)
    if ignore_index is not None:
        bad &= label != ignore_index
    if bad.any():
        values = np.unique(label[bad])[:8].tolist()
        raise DataError(f"label value(s) {values} in {path!r} outside the classes "
                        f"0..{num_classes - 1} and ignore_index {ignore_index}")


def _raising_data_errors(decode):
    """``decode`` whose errors are ``DataError``s (a loader's own decoder raises ValueError,
    FileNotFoundError and the like, naming the file)."""
    if decode is None:
        return None

    def wrapped(*item):
        try:
            return decode(*item)
        except DataError:
            raise
        except Exception as error:  # noqa: BLE001 - any decoder failure is a data error here
            message = " ".join(str(error).split()) or type(error).__name__
            if not isinstance(error, (ValueError, OSError, KeyError)):
                message = f"{type(error).__name__}: {message}"
            raise DataError(message) from None

    return wrapped


def check_files(ds, num_classes, ignore_index=255, *, header_seconds=HEADER_SECONDS,
                decode_seconds=DECODE_SECONDS):
    """Check the files behind a loaded split before training on it; raises ``DataError`` (a
    ValueError) naming the file and the problem. Returns the number of samples whose headers
    were read, or None for datasets whose files are not known (generated sets).

    Every label and image header is read (Pillow reads only a file's first bytes): a file that is
    not an image, a JPEG label (lossy compression changes class indices at the edges) and an
    image and label of different sizes are errors. Then a sample of the samples, spread over the
    split and led by labels stored in colour, is decoded in full by the dataset's own decoder
    (its errors: colour masks, corrupt files, values its table does not know) and the class
    indices it yields are checked against ``[0, num_classes)`` and ``ignore_index``. Each stage
    stops after its time budget, so large sets cost a few seconds; errors in files left out
    still stop training, with the same message, when the pipeline reaches them.
    """
    files = files_of(ds)
    if files is None or not files.items:
        return None
    items, decode = list(files.items), _raising_data_errors(files.decode)
    decode_first, started, read = [], time.monotonic(), 0
    for index, item in enumerate(items):
        if time.monotonic() - started > header_seconds:
            break
        image_path, label_path = item[0], item[-1]
        try:
            image, label = _header(image_path, "image"), _header(label_path, "label")
        except DataError:
            if decode is None:
                raise
            decode(*item)  # the decoder (OpenCV) may read what Pillow cannot; if not it says so
            continue
        read += 1
        if label is not None:
            if label[0] in ("JPEG", "MPO"):
                raise DataError(f"label file {label_path!r} is a JPEG: its lossy compression "
                                f"changes class indices at region edges; save labels as PNG "
                                f"(grey or palette)")
            if label[1] not in _INDEX_MODES:
                decode_first.append(index)
        if image is not None and label is not None and image[2] != label[2]:
            (w, h), (lw, lh) = image[2], label[2]
            raise DataError(f"image/mask size mismatch: {image_path!r} is {w}x{h} but "
                            f"{label_path!r} is {lw}x{lh} (width x height)")
    if decode is None:
        return read
    order = list(dict.fromkeys(decode_first + _spread(len(items), 64)))
    started = time.monotonic()
    for count, index in enumerate(order):
        if count and time.monotonic() - started > decode_seconds:
            break
        _, label = decode(*items[index])
        _check_values(label, items[index][-1], int(num_classes), ignore_index)
    return read


def check_split(dataset, data_dir=None, split="train", dataset_options=None):
    """``check_files`` on one split of a registered dataset (by name), with its class count and
    ignore index; what ``kerasseg train`` and ``evaluate`` run before building a model."""
    from kerasseg import datasets

    options = dict(dataset_options or {})
    meta = _dataset_meta(dataset, data_dir, options)
    check_data_dir(dataset, data_dir)
    ds = datasets.load(dataset, data_dir=data_dir, split=split, **options)
    return check_files(ds, meta.num_classes, meta.ignore_index)


def _data_error(error):
    """The DataError for a TensorFlow error raised by a dataset pipeline (None: not one)."""
    message = pipeline_error_message(error)
    return None if message is None else DataError(message)


def through_pipeline(run):
    """``run()``; a TensorFlow error raised by a dataset pipeline comes out as its DataError.

    Raised outside the except clause and after a garbage collection, once the failed
    pipeline's iterator is gone: its threads would otherwise still run the loader's Python
    decoder while the interpreter shuts down (a hang at exit).
    """
    import gc

    try:
        return run()
    except tf.errors.OpError as error:
        failure = _data_error(error)
        if failure is None:
            raise
    gc.collect()
    raise failure


# --------------------------------------------------------------------------- train


def model_defaults(name):
    """The keyword defaults of a registered architecture's builder (e.g. its backbone)."""
    from kerasseg.models import MODELS, build

    if name not in MODELS:
        build(name, 1)  # raises the registry's ValueError naming the valid models
    params = inspect.signature(MODELS[name]).parameters
    return {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}


INFO_OPTIONS = ("variant", "num_classes", "class_names")
FOLDER_INFO_OPTIONS = ("ignore_index", "binary", "mask_suffix")


def is_binary_loss(loss):
    """Whether ``loss`` (or a term of a combined loss) is a binary one (one sigmoid channel),
    e.g. ``losses.BinaryCrossEntropy`` or any loss built with ``mode="binary"``."""
    terms = getattr(loss, "losses", None)  # a CombinedLoss's terms
    if isinstance(terms, (list, tuple)):
        return any(is_binary_loss(term) for term in terms)
    return getattr(loss, "mode", None) == "binary"


def _dataset_meta(name, data_dir, options):
    from kerasseg import datasets

    info_options = {k: v for k, v in options.items() if k in INFO_OPTIONS}
    if name == "folder":
        # Its options that change the class set, so that `info` and `load` agree.
        info_options.update({k: v for k, v in options.items() if k in FOLDER_INFO_OPTIONS})
        info_options["data_dir"] = data_dir
    try:
        return datasets.info(name, **info_options)
    except TypeError:
        return datasets.info(name)


def check_data_dir(dataset, data_dir):
    """A clear error for a data folder that does not exist (before any loader runs)."""
    if data_dir is not None and not os.path.isdir(os.path.expanduser(os.fspath(data_dir))):
        raise FileNotFoundError(f"data folder for dataset {dataset!r} not found: "
                                f"{os.fspath(data_dir)!r}.")


def validation_batches(ds, batch_size=1, crop_size=None, ignore_index=255, multiple=32):
    """Batches for validation and ``kerasseg evaluate``.

    One image per batch at its own size (the default) pads the image to a multiple of
    ``multiple`` by repeating its edge pixels, as ``kerasseg.inference.predict`` does, and the
    mask with ``ignore_index``; scores then match what users get from predict. Otherwise
    (a fixed ``crop_size`` or larger batches) it is ``data.prepare(training=False)``, whose
    padding is black: a model that never saw black borders in training scores lower there.
    """
    from kerasseg import data
    from kerasseg.inference import pad_to_multiple

    if crop_size is not None or int(batch_size) != 1:
        return data.prepare(ds, batch_size=batch_size, crop_size=crop_size, training=False,
                            pad_multiple=multiple, ignore_index=ignore_index)

    def pad(image, mask):
        image = tf.cast(image, tf.float32)
        if image.shape.rank == 2:
            image = image[..., None]
        mask = tf.cast(mask, tf.int32)
        if mask.shape.rank == 3:
            mask = tf.squeeze(mask, -1)
        padded = pad_to_multiple(image[None], multiple)
        size = tf.shape(padded)[1:3] - tf.shape(mask)
        mask = tf.pad(mask, [[0, size[0]], [0, size[1]]], constant_values=ignore_index)
        return padded, mask[None]

    return ds.map(pad, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _repeat_labels(ds, n_outputs):
    # Deep supervision: every output is trained against the same mask.
    return ds.map(lambda x, y: (x, tuple([y] * n_outputs)))


def _write_run_json(path, record):
    with open(path, "w") as f:
        json.dump(record, f, indent=2)


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
        architecture's own default and None asks for its backbone-free variant.
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
    import kerasseg
    from kerasseg import data, datasets, losses, metrics

    # A multi-worker strategy has to exist before any other TensorFlow work.
    strategy = get_strategy(strategy)
    dataset_options = dict(dataset_options or {})
    model_options = dict(model_options or {})
    meta = _dataset_meta(dataset, data_dir, dataset_options)
    check_data_dir(dataset, data_dir)
    if meta.task != "segmentation":
        raise ValueError(f"dataset {dataset!r} is a {meta.task} set; train needs segmentation "
                         f"masks.")
    num_classes, ignore_index = int(meta.num_classes), int(meta.ignore_index)
    if isinstance(binary, str) and binary == "auto":
        binary = loss is not None and is_binary_loss(loss)
    binary = bool(binary)
    from_logits = False
    if binary:
        if num_classes != 2:
            why = "the loss is binary, so " if loss is not None and is_binary_loss(loss) else ""
            raise ValueError(f"binary training: {why}the dataset needs 2 classes (background, "
                             f"foreground), but {dataset!r} has {num_classes} "
                             f"({', '.join(map(str, meta.class_names[:6]))}"
                             f"{', ...' if num_classes > 6 else ''}).")
        activation = model_options.setdefault("activation", "sigmoid")
        if activation not in ("sigmoid", None):
            raise ValueError(f"binary training needs activation 'sigmoid' (or None for logits); "
                             f"got {activation!r}.")
        from_logits = activation is None
    defaults = model_defaults(model)
    if backbone == "default":
        backbone = defaults.get("backbone")
    if backbone is not None:
        kerasseg.backbones.check_backbone(backbone, arch=model)
    epochs = int(epochs)
    if epochs < 1 or int(batch_size) < 1:
        raise ValueError(f"epochs and batch_size must be >= 1; got {epochs} and {batch_size}.")
    output = os.fspath(output)
    if is_chief(strategy):
        _check_output(output, overwrite)
    keras.utils.set_random_seed(seed)

    raw_train = datasets.load(dataset, data_dir=data_dir, split=train_split, **dataset_options)
    if check:
        check_files(raw_train, num_classes, ignore_index)
    if steps_per_epoch is None:
        n = int(raw_train.cardinality())
        if n < 0:  # unknown: count once
            n = int(through_pipeline(lambda: raw_train.reduce(0, lambda count, _: count + 1)))
        steps_per_epoch = n // int(batch_size)
        if steps_per_epoch < 1:
            raise ValueError(f"the {train_split!r} split of {dataset!r} has {n} samples, fewer "
                             f"than one batch of {batch_size}.")
    steps_per_epoch = int(steps_per_epoch)
    # RGB-D sets (with_depth=True) give 4 channels; the backbones adapt their first layer.
    channels = raw_train.element_spec[0].shape[-1] or 3
    prepare_options = {"seed": seed, "ignore_index": ignore_index, **(augment or {})}
    train_ds = data.prepare(raw_train, batch_size=batch_size, crop_size=crop_size,
                            training=True, repeat=True, drop_remainder=True, **prepare_options)
    val_ds = None
    val_options = dict(dataset_options if val_dataset_options is None else val_dataset_options)
    if val_split:
        raw_val = datasets.load(dataset, data_dir=data_dir, split=val_split, **val_options)
        if check:
            check_files(raw_val, num_classes, ignore_index)
        val_ds = validation_batches(raw_val, val_batch_size, val_crop_size, ignore_index)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # Generated and file-list datasets cannot be sharded by file: shard their elements.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = \
            tf.data.experimental.AutoShardPolicy.DATA
        train_ds = train_ds.with_options(options)
        val_ds = val_ds.with_options(options) if val_ds is not None else None

    policy = precision_policy(mixed_precision)
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        with strategy.scope():
            net = kerasseg.build(model, 1 if binary else num_classes, backbone=backbone,
                                 weights=weights,
                                 input_shape=(None, None, channels), **model_options)
            opt = make_optimizer(optimizer, learning_rate, epochs * steps_per_epoch,
                                 warmup_steps, weight_decay, end_learning_rate)
            if binary:
                main_loss = loss if loss is not None else losses.BinaryCrossEntropy(
                    ignore_index=ignore_index, from_logits=from_logits)
                scored = dict(ignore_index=ignore_index, from_logits=from_logits)
                scores = [metrics.MeanIoU(1, **scored), metrics.ForegroundIoU(1, **scored),
                          metrics.PixelAccuracy(1, **scored)]
            else:
                main_loss = loss if loss is not None else losses.CrossEntropy(
                    ignore_index=ignore_index)
                scores = [metrics.MeanIoU(num_classes, ignore_index=ignore_index),
                          metrics.PixelAccuracy(num_classes, ignore_index=ignore_index)]
            n_outputs = len(net.outputs)
            if n_outputs > 1:
                compile_args = dict(loss=[main_loss] * n_outputs,
                                    loss_weights=[1.0] + [aux_loss_weight] * (n_outputs - 1),
                                    metrics=[scores] + [[] for _ in range(n_outputs - 1)])
            else:
                compile_args = dict(loss=main_loss, metrics=scores)
            net.compile(optimizer=opt, jit_compile=jit_compile, **compile_args)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    if n_outputs > 1:
        train_ds = _repeat_labels(train_ds, n_outputs)
        val_ds = _repeat_labels(val_ds, n_outputs) if val_ds is not None else None

    if is_chief(strategy):
        os.makedirs(output, exist_ok=True)
        _write_run_json(os.path.join(output, "run.json"), {
            "model": model, "backbone": backbone, "weights": weights,
            "num_classes": num_classes, "binary": binary,
            "dataset": dataset, "class_names": list(meta.class_names),
            "palette": np.asarray(meta.palette).tolist(), "ignore_index": ignore_index,
            "crop_size": crop_size, "batch_size": batch_size, "epochs": epochs,
            "steps_per_epoch": steps_per_epoch, "optimizer": optimizer,
            "learning_rate": learning_rate or OPTIMIZER_DEFAULTS[str(optimizer).lower()][0],
            "precision": policy, "strategy": type(strategy).__name__,
            "model_options": model_options, "dataset_options": dataset_options,
            "val_dataset_options": val_options,
            "keras_version": keras.__version__, "seed": seed,
        })
    return fit(net, train_ds, val_ds, output=output, epochs=epochs,
               steps_per_epoch=steps_per_epoch, validation_steps=val_steps,
               validation_freq=validation_freq, tensorboard=tensorboard, strategy=strategy,
               overwrite=overwrite, verbose=verbose)


def evaluate(model, dataset, *, data_dir=None, split="val", batch_size=1, crop_size=None,
             steps=None, dataset_options=None, verbose=1, check=True):
    """Score ``model`` on a dataset split: the ``metrics.summarize_confusion_matrix`` dict
    (mIoU, pixel accuracy, per-class IoU/accuracy/Dice with the dataset's class names).

    A one-channel (binary sigmoid, or logit) model is scored on a 2-class set as background and
    foreground (foreground where p > 0.5, or logit > 0), both classes reported.

    Batches come from ``validation_batches`` (by default each image at its own size, padded as
    ``inference.predict`` pads it); ``steps`` limits the number of batches. ``check`` first runs
    ``check_files`` on the split (a bad file raises ``DataError`` naming it).
    """
    from kerasseg import datasets, metrics

    dataset_options = dict(dataset_options or {})
    meta = _dataset_meta(dataset, data_dir, dataset_options)
    check_data_dir(dataset, data_dir)
    num_classes = int(model.outputs[0].shape[-1])
    binary = num_classes == 1 and meta.num_classes == 2
    if num_classes == 1 and not binary:
        raise ValueError(f"the model has one output channel (binary: background and "
                         f"foreground) but dataset {dataset!r} has {meta.num_classes} classes.")
    if num_classes != meta.num_classes and not binary:
        raise ValueError(f"the model predicts {num_classes} classes but dataset {dataset!r} "
                         f"has {meta.num_classes}.")
    from_logits = False
    if binary:
        from kerasseg.inference import output_kind

        from_logits = output_kind(model) == "logits"
    raw = datasets.load(dataset, data_dir=data_dir, split=split, **dataset_options)
    if check:
        check_files(raw, meta.num_classes, meta.ignore_index)
    ds = validation_batches(raw, batch_size, crop_size, meta.ignore_index)
    if steps:
        ds = ds.take(int(steps))
    cm = metrics.ConfusionMatrix(num_classes, ignore_index=meta.ignore_index,
                                 from_logits=from_logits)

    @tf.function(reduce_retracing=True)
    def step(images, labels):
        outputs = model(images, training=False)
        if isinstance(outputs, (list, tuple)):
            outputs = outputs[0]  # the main output; the others are auxiliary heads
        cm.update_state(labels, outputs)

    total = int(ds.cardinality())
    bar = keras.utils.Progbar(total if total > 0 else None, verbose=verbose, unit_name="batch")
    def run():
        for i, (images, labels) in enumerate(ds):
            step(images, labels)
            bar.update(i + 1)

    through_pipeline(run)
    return metrics.summarize_confusion_matrix(cm.result().numpy(), meta.class_names)


def load_run_info(checkpoint):
    """run.json next to a checkpoint (class names, palette, dataset), or {} when absent."""
    path = os.path.join(os.path.dirname(os.path.abspath(os.fspath(checkpoint))), "run.json")
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}
