"""Training: schedules, optimizers, distribution, the run's callbacks and files, ``fit``, the
``train`` recipe behind ``kerasseg train``, ``evaluate`` and the data checks.

    result = kerasseg.training.train("unet", "shapes", backbone=None, weights=None, epochs=10,
                                     batch_size=8, crop_size=96, output="runs/shapes")
    scores = kerasseg.training.evaluate(result.model, "shapes", split="val")

Modules: ``schedules`` (PolyDecay, registered with Keras), ``optimizers``, ``distribute``
(strategies, precision, the multi-worker patches), ``callbacks``, ``runfiles`` (run.json,
checkpoints, history, overwrite checks), ``curves``, ``fitting`` (``fit``), ``task`` (classes,
loss, metrics, build and compile), ``recipe`` (``train``), ``evaluation`` (``evaluate``) and
``datachecks`` (``check_files``, ``through_pipeline``), ``instances`` (instance runs) and
``instance_scores`` (COCO scoring, the model/dataset task check). See ``recipe`` for what a run
writes into its folder.
"""

from kerasseg.training.callbacks import (
    GuardedBackup,
    HistoryLogger,
    LogLearningRate,
    NaNGuard,
    RunCheckpoints,
    is_finite,
)
from kerasseg.training.curves import plot_history, read_history_series
from kerasseg.training.datachecks import (
    DECODE_SECONDS,
    FOLDER_INFO_OPTIONS,
    HEADER_SECONDS,
    INFO_OPTIONS,
    DataError,
    check_data_dir,
    check_files,
    check_split,
    dataset_meta,
    default_validation,
    through_pipeline,
)
from kerasseg.training.distribute import (
    STRATEGIES,
    get_strategy,
    is_chief,
    is_multi_worker,
    multi_worker_fixes,
    precision_policy,
    shard_by_element,
)
from kerasseg.training.evaluation import (
    class_names_for,
    evaluate,
    repeat_labels,
    validation_batches,
)
from kerasseg.training.fitting import TrainResult, default_verbose, fit
from kerasseg.training.instance_scores import (
    InstanceScores,
    check_task_match,
    coco_json_path,
    dataset_task,
    evaluate_instances,
    format_coco,
    model_task,
    write_coco_json,
)
from kerasseg.training.optimizers import (
    OPTIMIZER_DEFAULTS,
    default_learning_rate,
    make_optimizer,
)
from kerasseg.training.panoptic_runs import (
    PanopticScores,
    evaluate_panoptic,
    format_pq,
    panoptic_quality,
    write_pq_json,
)
from kerasseg.training.recipe import train
from kerasseg.training.runfiles import (
    RUN_FILES,
    atomic_save,
    backup_epoch,
    check_output,
    clear_run_files,
    is_stale_start,
    load_run_info,
    log,
    read_history,
    run_data_dir,
    trim_history,
    write_run_json,
)
from kerasseg.training.schedules import END_LR_FRACTION, PolyDecay
from kerasseg.training.task import (
    RunTask,
    build_compiled,
    is_binary_loss,
    model_defaults,
    run_task,
)

__all__ = [
    "DECODE_SECONDS",
    "END_LR_FRACTION",
    "FOLDER_INFO_OPTIONS",
    "HEADER_SECONDS",
    "INFO_OPTIONS",
    "OPTIMIZER_DEFAULTS",
    "RUN_FILES",
    "STRATEGIES",
    "DataError",
    "GuardedBackup",
    "HistoryLogger",
    "InstanceScores",
    "LogLearningRate",
    "NaNGuard",
    "PolyDecay",
    "RunCheckpoints",
    "RunTask",
    "TrainResult",
    "build_compiled",
    "run_task",
    "atomic_save",
    "backup_epoch",
    "check_data_dir",
    "check_files",
    "check_output",
    "check_task_match",
    "coco_json_path",
    "check_split",
    "class_names_for",
    "clear_run_files",
    "is_stale_start",
    "dataset_meta",
    "dataset_task",
    "default_learning_rate",
    "default_validation",
    "default_verbose",
    "evaluate",
    "evaluate_instances",
    "evaluate_panoptic",
    "format_pq",
    "panoptic_quality",
    "PanopticScores",
    "write_pq_json",
    "fit",
    "format_coco",
    "get_strategy",
    "is_binary_loss",
    "is_chief",
    "is_finite",
    "is_multi_worker",
    "load_run_info",
    "log",
    "make_optimizer",
    "model_defaults",
    "model_task",
    "multi_worker_fixes",
    "plot_history",
    "precision_policy",
    "read_history",
    "read_history_series",
    "repeat_labels",
    "run_data_dir",
    "shard_by_element",
    "through_pipeline",
    "train",
    "trim_history",
    "validation_batches",
    "write_coco_json",
    "write_run_json",
]
