"""``fit``: ``model.fit`` with the run's files (checkpoints, history, curves, TensorBoard,
backup), resuming an unfinished run and stopping at the first NaN."""

import dataclasses
import os
import shutil
import sys
import tempfile
import time
import types

import keras
import tensorflow as tf

from kerasseg.training.callbacks import (
    GuardedBackup,
    HistoryLogger,
    LogLearningRate,
    NaNGuard,
    RunCheckpoints,
)
from kerasseg.training.datachecks import through_pipeline
from kerasseg.training.distribute import is_chief, is_multi_worker, multi_worker_fixes
from kerasseg.training.runfiles import (
    backup_epoch,
    check_output,
    clear_run_files,
    is_stale_start,
    log,
    trim_history,
)

__all__ = ["TrainResult", "fit", "default_verbose"]


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
    task: str = "semantic"
    scores: dict = None  # instance runs: the last COCO evaluation (``coco_evaluate``'s dict)
    scores_path: str = None
    monitor: str = "val_mean_iou"  # what best.keras is the best of (``loss``: no validation)


def default_verbose():
    """Keras's progress bar on a terminal, one line per epoch in logs and pipes."""
    return 1 if sys.stdout.isatty() else 2


def _tensorboard_available(chief):
    # TensorFlow >= 2.20 no longer installs TensorBoard; its callback then fails mid-epoch.
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        if chief:
            log("TensorBoard is not installed, so no logs/ are written (pip install tensorboard).")
        return False
    return True


def _plot_curves(history_path, png_path):
    try:
        from kerasseg.training.curves import plot_history

        plot_history(history_path, png_path)
    except Exception as error:  # noqa: BLE001 - a missing plot must not fail a finished run
        log(f"could not plot the training curves ({type(error).__name__}: {error}).")


def _prepare_folder(output, epochs, chief, overwrite):
    """-> (the folder this process writes, epochs already done). A follower worker writes
    into a temporary folder; a resumed run's history loses the epochs it redoes."""
    if chief:
        check_output(output, overwrite)
        if not overwrite and is_stale_start(output):
            # Its rows (if any) are of epochs no checkpoint or backup kept: start afresh.
            log(f"starting afresh in {output}: the run there stopped within its first epoch.")
            os.remove(os.path.join(output, "history.csv"))
    folder = output if chief else tempfile.mkdtemp(prefix="kerasseg-worker-")
    os.makedirs(folder, exist_ok=True)
    resumed_from = backup_epoch(output) or 0
    if resumed_from and chief:
        log(f"resuming the run in {output} after epoch {resumed_from} of {epochs}.")
    if resumed_from:
        trim_history(os.path.join(folder, "history.csv"), resumed_from)
    elif chief and overwrite:
        clear_run_files(folder)
    return folder, resumed_from


def _run_callbacks(o, folder, resumed_from, chief):
    """-> (callbacks in order, the NaN guard, the checkpoints, the TensorBoard folder or None)
    for ``fit``'s options ``o``."""
    guard = NaNGuard()
    checkpoints = RunCheckpoints(folder, o.monitor, o.mode, guard, resume=resumed_from > 0)
    run_callbacks = [
        guard,
        LogLearningRate(),
        *o.epoch_metrics,
        checkpoints,
        HistoryLogger(
            os.path.join(folder, "history.csv"),
            validation=o.validation_data is not None or bool(o.epoch_metrics),
        ),
    ]
    logs_dir = None
    if o.tensorboard and _tensorboard_available(chief):
        logs_dir = os.path.join(o.output, "logs")
        run_callbacks.append(
            keras.callbacks.TensorBoard(
                os.path.join(folder, "logs"), write_graph=False, profile_batch=0
            )
        )
    run_callbacks += list(o.callbacks)
    # Last, so that a kill between two callbacks leaves the backup behind the other files
    # (the resumed run then redoes an epoch rather than skipping one).
    run_callbacks.append(
        GuardedBackup(
            os.path.join(folder, "backup"), guard, restore_from=os.path.join(o.output, "backup")
        )
    )
    return run_callbacks, guard, checkpoints, logs_dir


def _fit_arguments(o, run_callbacks):
    """``model.fit``'s keywords for ``fit``'s options ``o``."""
    return dict(
        validation_data=o.validation_data,
        epochs=o.epochs,
        callbacks=run_callbacks,
        steps_per_epoch=o.steps_per_epoch,
        validation_steps=o.validation_steps,
        validation_freq=o.validation_freq,
        shuffle=False,
        verbose=default_verbose() if o.verbose == "auto" else o.verbose,
    )


def _result(o, history, checkpoints, guard, **fields):
    return TrainResult(
        model=o.model,
        history=dict(history.history),
        output=o.output,
        epochs=o.epochs,
        best_path=os.path.join(o.output, "best.keras"),
        last_path=os.path.join(o.output, "last.keras"),
        best_value=checkpoints.best,
        best_epoch=checkpoints.best_epoch,
        monitor=checkpoints.monitor,
        diverged=guard.tripped,
        diverged_at=guard.where,
        **fields,
    )


def _finish(folder, guard, resumed_from, plot):
    """The chief's end of a run: say why it stopped early, draw curves.png."""
    if guard.tripped:
        _report_divergence(guard, resumed_from)
    history_path = os.path.join(folder, "history.csv")
    if plot and os.path.exists(history_path):
        _plot_curves(history_path, os.path.join(folder, "curves.png"))


def _build_optimizer(model, strategy):
    """Create the optimizer's slots before ``fit``: made inside the first traced step instead,
    they make TensorFlow trace the whole step a second time (a DeepLabV3+ at 64 px: the first
    epoch 13.8 s -> 6.7 s on a 2-core CPU)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        with strategy.scope():
            optimizer.build(model.trainable_variables)


def _report_divergence(guard, resumed_from):
    good = guard.last_good_epoch + 1 if guard.last_good_epoch is not None else resumed_from
    kept = (
        f"last.keras keeps epoch {good}"
        if good
        else "no epoch finished cleanly, so no checkpoint was written"
    )
    log(
        f"training stopped: a loss or metric became NaN/inf ({guard.where}); {kept}. "
        f"Try a lower learning rate, or turn mixed precision off."
    )


def fit(
    model,
    train_data,
    validation_data=None,
    *,
    output,
    epochs,
    steps_per_epoch=None,
    validation_steps=None,
    validation_freq=1,
    monitor="val_mean_iou",
    mode="max",
    callbacks=(),
    epoch_metrics=(),
    tensorboard=True,
    plot=True,
    strategy=None,
    overwrite=False,
    verbose="auto",
):
    """``model.fit`` with the run's files: checkpoints, history, curves, TensorBoard, backup.

    ``model`` must be compiled (inside ``strategy.scope()`` when distributing). A folder holding
    an unfinished run (``output/backup``) is always resumed from its last completed epoch (the
    same model and compile settings are expected); one holding a finished run is refused
    unless ``overwrite=True``, which replaces its checkpoints and history. Under multi-worker
    training only the chief writes into ``output``; the other workers write the same files into a
    temporary folder (every worker has to take part in saving) that is removed at the end.
    ``epoch_metrics``: callbacks that add scores to each epoch's logs (e.g.
    ``metrics.COCOEvaluation``); they run before the checkpoints, which may monitor them (also
    without ``validation_data``), and after the NaN guard, which does not check them.
    A bad file met by the input pipeline (a loader's error, e.g. a colour mask) stops the run with
    a ``DataError`` carrying the loader's message. Returns a ``TrainResult``.
    """
    if not getattr(model, "compiled", False):
        raise ValueError("fit: compile the model first (model.compile(optimizer, loss, metrics)).")
    o = types.SimpleNamespace(**locals())  # the options, by name, for the helpers above
    strategy = o.strategy = strategy or tf.distribute.get_strategy()
    o.output = os.fspath(output)
    chief = is_chief(strategy)
    folder, resumed_from = _prepare_folder(o.output, epochs, chief, overwrite)
    if validation_data is None and monitor.startswith("val_") and not epoch_metrics:
        # Nothing scores held-out data: best.keras is the epoch of the lowest training loss
        # (a training mIoU would reward memorising the training crops just the same).
        o.monitor, o.mode = "loss", "min"
    run_callbacks, guard, checkpoints, logs_dir = _run_callbacks(o, folder, resumed_from, chief)
    if is_multi_worker(strategy):
        multi_worker_fixes(model)
    _build_optimizer(model, strategy)
    started = time.time()
    try:
        history = through_pipeline(
            lambda: model.fit(train_data, **_fit_arguments(o, run_callbacks))
        )
    finally:
        if not chief:
            shutil.rmtree(folder, ignore_errors=True)
    seconds = time.time() - started
    if chief:
        _finish(folder, guard, resumed_from, plot)
    return _result(
        o,
        history,
        checkpoints,
        guard,
        initial_epoch=resumed_from,
        seconds=seconds,
        chief=chief,
        logs_dir=logs_dir,
    )
