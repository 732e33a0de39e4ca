"""``kerasseg evaluate``: mIoU, accuracy and per-class IoU of a checkpoint on a split; COCO box
and mask AP for an instance checkpoint, PQ / SQ / RQ for a panoptic one (both written to JSON:
--json, else next to the checkpoint)."""

import json
import os

from kerasseg.cli.checkpoint import (
    CHECKPOINT_HELP,
    load_checkpoint,
    resolve_checkpoint,
    task_of,
)
from kerasseg.cli.common import UsageError, check_dataset, crop, options, say

HELP = (
    "mIoU, accuracy and per-class IoU of a checkpoint (COCO AP for instance models, PQ for "
    "panoptic ones)"
)


def add_arguments(p):
    p.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    p.add_argument("--dataset", help="default: the dataset the run trained on (run.json)")
    p.add_argument("--data-dir", help="the dataset's folder (default: the run's, from run.json)")
    p.add_argument("--split", default="val", help="the split to score")
    p.add_argument("--batch-size", type=int, default=1, help="images per batch")
    p.add_argument(
        "--crop-size",
        type=int,
        nargs="+",
        metavar="PX",
        help="pad/shrink images to this size (default: native size)",
    )
    p.add_argument("--steps", type=int, help="evaluate only this many batches (images)")
    p.add_argument(
        "--dataset-option",
        action="append",
        metavar="KEY=VALUE",
        help="loader argument (repeatable); default: the run's validation options (run.json)",
    )
    p.add_argument(
        "--json",
        "--output",
        dest="json",
        help="also write the results to this JSON file (instance checkpoints: default "
        "<checkpoint>_coco_<dataset>_<split>.json next to it)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="instance checkpoints: replace an existing JSON file (refused otherwise)",
    )
    p.add_argument(
        "--score-threshold",
        type=float,
        default=0.0,
        help="instance checkpoints: leave out detections scoring below this (default 0)",
    )
    p.add_argument(
        "--report",
        metavar="DIR",
        help="also write DIR/report.html: scores, per-class IoU, the confusion matrix, the "
        "worst and best images, the run's curves (one self-contained page)",
    )
    p.add_argument(
        "--report-images",
        type=int,
        default=4,
        metavar="K",
        help="--report: the K worst and K best images by their own mIoU (instance models: the "
        "first K images, truth beside the detections)",
    )
    p.add_argument(
        "--no-file-check",
        action="store_true",
        help="skip the scan of the split's image and label files before evaluating",
    )


def _dataset_and_options(args):
    """The dataset to score on and its loader options: the command line's, else those of the
    run that wrote the checkpoint (its run.json: a record of the run, not of the model)."""
    from kerasseg.training import load_run_info

    run = load_run_info(args.checkpoint)
    dataset = args.dataset or run.get("dataset")
    if args.dataset is None and args.data_dir is None:
        args.data_dir = run.get("data_dir")  # the folder the run trained on
    if dataset is None:
        raise UsageError("pass --dataset (the checkpoint's folder has no run.json naming one).")
    dataset_options = options(args.dataset_option, "--dataset-option")
    if not args.dataset_option and not args.dataset:
        # The run's validation options describe held-out splits (its training options may
        # e.g. ask for a larger generated training set).
        dataset_options = run.get("val_dataset_options", run.get("dataset_options", {}))
    return dataset, dataset_options


def run(args):
    from kerasseg import metrics
    from kerasseg.training import check_split, dataset_meta, dataset_task

    # A run folder becomes its checkpoint file here: run.json and the JSON path sit beside it.
    args.checkpoint = resolve_checkpoint(args.checkpoint)
    dataset, dataset_options = _dataset_and_options(args)
    check_dataset(dataset, args.data_dir)
    meta = dataset_meta(dataset, args.data_dir, dataset_options)
    json_path = None
    if dataset_task(meta) in ("instance", "panoptic"):
        json_path = _instance_json_path(args, dataset, dataset_task(meta))
    elif not args.no_file_check:  # before the model is loaded: a bad file is found in seconds
        check_split(dataset, args.data_dir, args.split, dataset_options)
    if args.report:
        _check_report_folder(args)
    model = load_checkpoint(args.checkpoint)
    if task_of(model) == "panoptic" or dataset_task(meta) == "panoptic":
        return _run_panoptic(args, model, dataset, dataset_options, meta, json_path)
    if task_of(model) == "instance" or dataset_task(meta) == "instance":
        return _run_instances(args, model, dataset, dataset_options, meta, json_path)
    if args.report:
        summary = _report(args, model, dataset, dataset_options)
    else:
        summary = _evaluate(args, model, dataset, dataset_options)
    say(
        f"{dataset} {args.split}: mIoU {summary['mean_iou']:.4f}  pixel accuracy "
        f"{summary['pixel_accuracy']:.4f}  mean accuracy {summary['mean_accuracy']:.4f}"
    )
    say(metrics.format_report(summary))
    if args.json:
        _write_json(args, dataset, summary)
    return 0


def _check_report_folder(args):
    from kerasseg.visualize.report import REPORT_NAME

    if args.crop_size or args.batch_size != 1:
        raise UsageError(
            "--report scores each image at its own size: leave out --crop-size and --batch-size."
        )
    path = os.path.join(args.report, REPORT_NAME)
    if os.path.exists(path) and not args.overwrite:
        raise UsageError(f"{path} exists; pass --overwrite to replace it, or another --report DIR.")


def _report(args, model, dataset, dataset_options):
    """The evaluation as one pass image by image, and the report page from it."""
    from kerasseg.visualize import evaluation_report

    history = os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), "history.csv")
    summary, path = evaluation_report(
        model,
        dataset,
        args.report,
        data_dir=args.data_dir,
        split=args.split,
        dataset_options=dataset_options,
        keep=args.report_images,
        steps=args.steps,
        history=history if os.path.isfile(history) else None,
    )
    say(f"wrote {path}")
    return summary


def _evaluate(args, model, dataset, dataset_options):
    from kerasseg.training import default_verbose, evaluate

    return evaluate(
        model,
        dataset,
        data_dir=args.data_dir,
        split=args.split,
        batch_size=args.batch_size,
        crop_size=crop(args.crop_size),
        steps=args.steps,
        dataset_options=dataset_options,
        verbose=1 if default_verbose() == 1 else 0,
        check=False,
    )


def _write_json(args, dataset, summary):
    record = {
        "checkpoint": os.path.abspath(args.checkpoint),
        "dataset": dataset,
        "split": args.split,
        **summary,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(record, f, indent=2)
    say(f"wrote {args.json}")


def _instance_json_path(args, dataset, task="instance"):
    """Where the COCO (panoptic: PQ) scores go; an existing file is refused unless --overwrite
    (checked before the model is loaded)."""
    from kerasseg.training import coco_json_path

    path = args.json or coco_json_path(args.checkpoint, dataset, args.split)
    if task == "panoptic" and not args.json:
        path = path.replace(f"_coco_{dataset}_", f"_pq_{dataset}_")
    if os.path.exists(path) and not args.overwrite:
        raise UsageError(
            f"{path} exists; pass --overwrite to replace it, or --json PATH to write elsewhere."
        )
    return path


def _run_instances(args, model, dataset, dataset_options, meta, json_path):
    """COCO box and mask AP of an instance checkpoint: a table, and the JSON file."""
    from kerasseg.training import check_task_match, evaluate_instances, format_coco, write_coco_json

    check_task_match(task_of(model), f"checkpoint {args.checkpoint!r}", dataset, meta)
    stats = evaluate_instances(
        model,
        dataset,
        data_dir=args.data_dir,
        split=args.split,
        steps=args.steps,
        dataset_options=dataset_options,
        score_threshold=args.score_threshold,
    )
    say(f"{dataset} {args.split}: COCO box and mask AP (pycocotools)")
    say(format_coco(stats))
    write_coco_json(
        json_path,
        stats,
        checkpoint=os.path.abspath(args.checkpoint),
        dataset=dataset,
        split=args.split,
        images=args.steps,
    )
    say(f"wrote {json_path}")
    if args.report:
        _instance_report(args, model, stats, dataset, dataset_options)
    return 0


def _run_panoptic(args, model, dataset, dataset_options, meta, json_path):
    """PQ, SQ and RQ of a panoptic checkpoint (all, things, stuff, per class), and the JSON."""
    from kerasseg.training import check_task_match, evaluate_panoptic, format_pq, write_pq_json

    check_task_match(task_of(model), f"checkpoint {args.checkpoint!r}", dataset, meta)
    if args.report:
        raise UsageError("--report is not available for panoptic checkpoints yet.")
    report = evaluate_panoptic(
        model,
        dataset,
        data_dir=args.data_dir,
        split=args.split,
        steps=args.steps,
        dataset_options=dataset_options,
    )
    say(f"{dataset} {args.split}: panoptic quality (PQ = SQ x RQ)")
    say(format_pq(report))
    write_pq_json(
        json_path,
        report,
        checkpoint=os.path.abspath(args.checkpoint),
        dataset=dataset,
        split=args.split,
        images=args.steps,
    )
    say(f"wrote {json_path}")
    return 0


def _instance_report(args, model, stats, dataset, dataset_options):
    from kerasseg.training import through_pipeline
    from kerasseg.training.instance_scores import validation_examples
    from kerasseg.visualize.report import instance_report

    examples = through_pipeline(
        lambda: list(
            validation_examples(
                dataset, args.data_dir, args.split, dataset_options, args.report_images
            ).as_numpy_iterator()
        )
    )
    history = os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), "history.csv")
    path = instance_report(
        model,
        stats,
        examples,
        args.report,
        title=f"{model.name} on {dataset} ({args.split})",
        history=history if os.path.isfile(history) else None,
    )
    say(f"wrote {path}")
