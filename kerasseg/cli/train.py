"""``kerasseg train``: train a model on a registered dataset; checkpoints go to --output."""

import argparse
import os

from kerasseg.cli.common import UsageError, check_dataset, check_model, crop, none_or, options, say
from kerasseg.cli.datasets import OWN_DATA

HELP = "train a model; checkpoints go to --output"
DESCRIPTION = (
    """\
Example: kerasseg train --dataset folder --data-dir mydata --output runs/first

The run folder gets best.keras (highest validation mIoU), last.keras, history.csv,
curves.png and run.json. Run the same command again to resume an unfinished or interrupted
run; a finished one is kept unless you pass --overwrite.

"""
    + OWN_DATA
)
BINARY_HELP = (
    "binary (background/foreground) training on a 2-class set, e.g. a folder of "
    "0/255 or 0/1 masks: a one-channel sigmoid model, loss binary_cross_entropy "
    "unless --loss says otherwise (+dice scores the foreground), metrics mIoU (both "
    "classes) and foreground IoU; also implied by a binary --loss"
)


def add_arguments(p):
    p.add_argument("--model", default="unet", help="architecture (see `kerasseg models`)")
    p.add_argument(
        "--backbone",
        default=None,
        help="encoder (default: the model's own; 'none' for the encoder-free variant)",
    )
    p.add_argument("--dataset", required=True, help="dataset name (see `kerasseg datasets`)")
    p.add_argument(
        "--data-dir",
        help="folder holding the dataset's archive top folder; for `folder`, your data's folder",
    )
    p.add_argument("--epochs", type=int, default=50, help="passes over the training split")
    p.add_argument("--batch-size", type=int, default=8, help="global batch size")
    p.add_argument(
        "--crop-size",
        type=int,
        nargs="+",
        metavar="PX",
        help="training crop: SIZE or HEIGHT WIDTH (default: the training images' median size, "
        "at most 512, a multiple of the model's input multiple)",
    )
    p.add_argument("--steps-per-epoch", type=int, help="default: one pass over the split")
    p.add_argument("--val-steps", type=int, help="default: the whole validation split")
    p.add_argument("--val-batch-size", type=int, default=1, help="validation images per batch")
    p.add_argument(
        "--val-crop-size",
        type=int,
        nargs="+",
        metavar="PX",
        help="pad/shrink validation images to this size (default: native size)",
    )
    p.add_argument(
        "--val-split",
        default="val",
        help="validation split, 'none' to train without; a dataset without a 'val' split "
        "trains without validation unless you name one",
    )
    p.add_argument("--val-every", type=int, default=1, metavar="N", help="validate every N epochs")
    p.add_argument(
        "--max-instances",
        type=int,
        default=100,
        help="instance models: object slots per training image (more: the largest are kept)",
    )
    p.add_argument("--weights", default="imagenet", help="imagenet, none or a weights file")
    _optimization_arguments(p)
    _weak_arguments(p)
    p.add_argument(
        "--model-option",
        action="append",
        metavar="KEY=VALUE",
        help="extra builder argument, e.g. filters=32 (repeatable)",
    )
    p.add_argument(
        "--dataset-option",
        action="append",
        metavar="KEY=VALUE",
        help="extra loader argument, e.g. num_images=200 (repeatable)",
    )
    p.add_argument(
        "--augment",
        action="append",
        metavar="KEY=VALUE",
        help="data.prepare option, e.g. scale_range=None (repeatable)",
    )
    p.add_argument("--no-tensorboard", action="store_true", help="write no logs/ for TensorBoard")
    p.add_argument(
        "--no-file-check",
        action="store_true",
        help="skip the scan of the split's image and label files before training",
    )
    p.add_argument(
        "--no-memory-check",
        action="store_true",
        help="start even where the estimated peak memory exceeds what the machine has",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in --output")
    p.add_argument(
        "--output", required=True, help="run folder (created; an unfinished run is resumed)"
    )


def _optimization_arguments(p):
    p.add_argument(
        "--optimizer",
        choices=("sgd", "adamw", "adam"),
        help="default sgd; adam for instance models (Mask R-CNN from scratch)",
    )
    p.add_argument(
        "--lr",
        type=float,
        help="initial learning rate (sgd 0.01, adamw 1e-4, "
        "adam 1e-3); decays with power 0.9 over the run",
    )
    p.add_argument("--weight-decay", type=float, help="default sgd 5e-4, adamw 0.01; 0 for none")
    p.add_argument(
        "--warmup-steps", type=int, default=0, help="linear warm-up of the learning rate"
    )
    p.add_argument(
        "--loss",
        help="e.g. cross_entropy, dice, cross_entropy+0.5*dice "
        "(default cross_entropy); a binary loss (binary_cross_entropy, alias bce) "
        "means --binary",
    )
    p.add_argument("--binary", action="store_true", help=BINARY_HELP)
    p.add_argument(
        "--mixed-precision",
        action="store_true",
        help="mixed_float16 on GPU, mixed_bfloat16 on CPU/TPU",
    )
    p.add_argument(
        "--jit-compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="XLA compilation (default: Keras's choice)",
    )
    p.add_argument(
        "--strategy",
        default="none",
        choices=("none", "mirrored", "multiworker", "tpu"),
        help="tf.distribute strategy",
    )
    p.add_argument("--seed", type=int, default=0, help="seeds the weights, crops and shuffling")


SUPERVISION_HELP = (
    "what the training split's labels are: full masks, or weak labels simulated from them "
    "with --seed (scribbles: skeleton strokes, points: one per object, boxes: GrabCut "
    "pseudo-masks, image: image-level tags -> CAM pseudo-masks); weak runs train with "
    "partial cross-entropy + --crf-weight x GatedCRFLoss unless --loss is given, and validate "
    "on the full masks"
)


def _weak_arguments(p):
    p.add_argument(
        "--supervision",
        default="full",
        choices=("full", "scribbles", "points", "boxes", "image"),
        help=SUPERVISION_HELP,
    )
    p.add_argument(
        "--crf-weight",
        type=float,
        default=0.1,
        help="weak runs: weight of the Gated CRF loss next to partial cross-entropy (0: none)",
    )
    p.add_argument(
        "--superpixels",
        default="none",
        choices=("none", "slic", "felzenszwalb", "random_walker"),
        help="scribbles/points/boxes: spread the (pseudo-)labels first, over superpixels "
        "(ScribbleSup) or by a random walker on the image",
    )
    p.add_argument(
        "--given-labels",
        action="store_true",
        help="with --supervision: the dataset's masks already are the weak labels (a `folder` "
        "set of sparse scribble/point PNGs, 255 = unlabelled, or `kerasseg pseudo-labels` "
        "output): train on them as they are instead of simulating",
    )
    p.add_argument(
        "--cam-steps",
        type=int,
        help="--supervision image: training steps of the CAM classifier (default: the run's "
        "epochs x steps per epoch)",
    )


def parse_loss(spec, dataset, data_dir, dataset_options=None):
    """'cross_entropy+0.5*dice' -> the combined loss, with the dataset's ignore index."""
    from kerasseg import losses
    from kerasseg.training import dataset_meta

    ignore = dataset_meta(dataset, data_dir, dict(dataset_options or {})).ignore_index
    total = None
    for term in spec.split("+"):
        weight, _, name = term.strip().rpartition("*")
        name = {"ce": "cross_entropy", "crossentropy": "cross_entropy"}.get(name, name)
        try:
            loss = losses.get(name, ignore_index=ignore)
            weight = float(weight) if weight else 1.0
        except ValueError as error:
            raise UsageError(f"--loss {spec!r}: {error}") from None
        loss = loss * weight if weight != 1.0 else loss
        total = loss if total is None else total + loss
    return total


def run(args):
    backbone = "default" if args.backbone is None else none_or(args.backbone)
    check_model(args.model, backbone)
    check_dataset(args.dataset, args.data_dir)
    weights = none_or(args.weights)
    if weights not in (None, "imagenet") and not os.path.isfile(weights):
        raise UsageError(
            f"weights file not found: {weights!r} (--weights takes imagenet, none or a path)."
        )
    dataset_options = options(args.dataset_option, "--dataset-option")
    loss = (
        parse_loss(args.loss, args.dataset, args.data_dir, dataset_options) if args.loss else None
    )
    from kerasseg.backbones import WeightsUnavailableError

    try:
        result = _train(args, backbone, weights, loss)
    except WeightsUnavailableError as error:
        raise UsageError(f"{error} On the command line: --weights none.") from None
    if result.chief:
        _report(result)
    return 1 if result.diverged else 0


def _train(args, backbone, weights, loss):
    from kerasseg.training import train

    return train(
        args.model,
        args.dataset,
        output=args.output,
        backbone=backbone,
        weights=weights,
        data_dir=args.data_dir,
        epochs=args.epochs,
        batch_size=args.batch_size,
        crop_size="auto" if args.crop_size is None else crop(args.crop_size),
        steps_per_epoch=args.steps_per_epoch,
        val_steps=args.val_steps,
        val_batch_size=args.val_batch_size,
        val_crop_size=crop(args.val_crop_size, "--val-crop-size"),
        optimizer=args.optimizer,
        learning_rate=args.lr,
        weight_decay="default" if args.weight_decay is None else (args.weight_decay or None),
        warmup_steps=args.warmup_steps,
        loss=loss,
        mixed_precision=args.mixed_precision,
        jit_compile="auto" if args.jit_compile is None else args.jit_compile,
        strategy=args.strategy,
        seed=args.seed,
        val_split=none_or(args.val_split),
        validation_freq=args.val_every,
        max_instances=args.max_instances,
        model_options=options(args.model_option, "--model-option"),
        dataset_options=options(args.dataset_option, "--dataset-option"),
        augment=options(args.augment, "--augment"),
        tensorboard=not args.no_tensorboard,
        overwrite=args.overwrite,
        check=not args.no_file_check,
        binary=True if args.binary else "auto",
        memory_check=not args.no_memory_check,
        supervision=args.supervision,
        superpixels=none_or(args.superpixels),
        crf_weight=args.crf_weight,
        cam_steps=args.cam_steps,
        given_labels=args.given_labels,
    )


def _report(result):
    say(f"trained {result.epochs - result.initial_epoch} epoch(s) in {result.seconds:.0f} s")
    if result.task == "instance":
        _report_instances(result)
    elif result.task == "panoptic":
        _report_panoptic(result)
    elif result.best_value is not None and result.monitor == "loss":
        say(
            f"no validation split: best.keras is the epoch of lowest training loss "
            f"({result.best_value:.4f}, epoch {result.best_epoch}): {result.best_path}"
        )
    elif result.best_value is not None:
        say(
            f"best validation mIoU {result.best_value:.4f} (epoch {result.best_epoch}): "
            f"{result.best_path}"
        )
    say(f"last checkpoint: {result.last_path}")
    _report_weak(result.output)
    curves = os.path.join(result.output, "curves.png")
    say(
        f"history: {os.path.join(result.output, 'history.csv')}"
        + (f", curves: {curves}" if os.path.exists(curves) else "")
        + (f", TensorBoard: {result.logs_dir}" if result.logs_dir else "")
    )


def _report_weak(output):
    import json

    path = os.path.join(output, "weak.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            figures = json.load(f)
        say(
            f"image-level labels: CAM mIoU {figures['cam_miou']:.4f}, pseudo-mask mIoU "
            f"{figures['pseudo_mask_miou']:.4f} on the training split ({path})"
        )


def _report_panoptic(result):
    from kerasseg.training import format_pq

    if result.scores is not None:
        say(format_pq(result.scores))
        say(f"panoptic quality of the last epoch: {result.scores_path}")
    if result.scores is not None and result.best_value is not None:
        say(
            f"best validation PQ {result.best_value:.4f} (epoch {result.best_epoch}): "
            f"{result.best_path}"
        )


def _report_instances(result):
    from kerasseg.training import format_coco

    if result.scores is not None:
        say(format_coco(result.scores))
        say(f"COCO scores of the last epoch: {result.scores_path}")
    if result.scores is not None and result.best_value is not None:
        say(
            f"best validation mask AP {result.best_value:.4f} (epoch {result.best_epoch}): "
            f"{result.best_path}"
        )
