"""The run's callbacks: the NaN guard, the learning-rate log, checkpoints and the backup."""

import json
import math
import os
import shutil

import keras

from kerasseg.training.runfiles import atomic_save

__all__ = [
    "NaNGuard",
    "LogLearningRate",
    "RunCheckpoints",
    "GuardedBackup",
    "HistoryLogger",
    "is_finite",
]


def is_finite(value):
    """Whether a logged value is a finite number (non-scalar logs count as finite)."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True  # a non-scalar log (e.g. a per-class vector) says nothing here


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
        bad = [k for k, v in (logs or {}).items() if not is_finite(v)]
        if bad:
            self.tripped = True
            self.where = f"{where}: {', '.join(f'{k}={logs[k]}' for k in bad)}"
            self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        self._check(
            {k: v for k, v in (logs or {}).items() if "loss" in k},
            f"epoch {self._epoch + 1}, batch {batch + 1}",
        )

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
                keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
            )


class HistoryLogger(keras.callbacks.CSVLogger):
    """history.csv. Keras's CSVLogger adds a ``val_`` column for every metric when the first
    epoch logs none (it expects validation to come later); a run without validation gets
    only the columns it logs."""

    def __init__(self, filename, validation=True):
        super().__init__(filename, append=True)
        self.validation = validation

    def on_epoch_end(self, epoch, logs=None):
        if self.keys is None and not self.validation:
            self.keys = sorted((logs or {}).keys())
        super().on_epoch_end(epoch, logs)


class RunCheckpoints(keras.callbacks.Callback):
    """Writes ``last.keras`` every epoch and ``best.keras`` when ``monitor`` improves.

    Epochs the NaN guard rejected are never written. The best value so far lives in
    ``best.json`` so a resumed run (``resume=True``) keeps comparing against it. A monitor
    missing from an epoch's logs (no validation that epoch) leaves best.keras alone.
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
        atomic_save(self.model, self.last_path)
        value = self._monitored(logs)
        if value is None or not is_finite(value):
            return
        value = float(value)
        if self._better(value):
            self.best, self.best_epoch = value, epoch + 1
            atomic_save(self.model, self.best_path)
            with open(self.record_path, "w") as f:
                json.dump({"monitor": self.monitor, "value": value, "epoch": epoch + 1}, f)


class GuardedBackup(keras.callbacks.BackupAndRestore):
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
