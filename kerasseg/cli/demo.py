"""``kerasseg demo``: a small U-Net learns the synthetic ``shapes`` set, then the demo scores it,
draws its predictions and exports it, into one folder. ``--task instance``: a small Mask R-CNN
learns ``shapes_instances`` instead (``kerasseg.cli.demo_instances``)."""

import argparse
import json
import os
import time

from kerasseg.cli.common import UsageError, say

HELP = (
    "train on the synthetic shapes set in under three minutes "
    "(--task instance: Mask R-CNN on shapes_instances, --task panoptic: Panoptic FPN on "
    "shapes_panoptic, each under ten)"
)
MARKER = ".kerasseg-demo"
DRAWN_SIDE = 256  # the short side, in pixels, of the images the demo draws
GRID_TITLES = ("image", "ground truth", "prediction")

# A small U-Net on the synthetic `shapes` set, sized to reach a validation mIoU above 0.8
# within three minutes on two CPU cores, oneDNN on or off (the seed fixes the outcome): 800
# steps at ~180 ms (2-core AMD EPYC, oneDNN off; ~70 ms on) plus ~25 s of data, tracing,
# validation and export.
DEMO = dict(
    model="unet",
    backbone=None,
    weights=None,
    model_options={"filters": 8},
    dataset_options={"num_images": 2000},
    val_dataset_options={},
    epochs=8,
    steps_per_epoch=100,
    batch_size=8,
    crop_size=64,
    optimizer="adam",
    learning_rate=1e-2,
    warmup_steps=50,
    augment={"scale_range": None, "photometric": False},
    val_batch_size=1,
    val_crop_size=None,
)


def add_arguments(p):
    p.add_argument(
        "--task",
        default="semantic",
        choices=("semantic", "instance", "panoptic"),
        help="semantic: a U-Net on 'shapes' (default); instance: a Mask R-CNN on "
        "'shapes_instances'; panoptic: a Panoptic FPN on 'shapes_panoptic'",
    )
    p.add_argument(
        "--output",
        help="default kerasseg_demo (--task instance: kerasseg_demo_instance, --task "
        "panoptic: kerasseg_demo_panoptic)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty folder the demo did not create",
    )
    p.add_argument("--seed", type=int, default=0, help="seeds the data and the weights")
    # For tests and quick looks: a shorter run (the README's figures are for the defaults).
    p.add_argument("--epochs", type=int, help=argparse.SUPPRESS)
    p.add_argument("--steps-per-epoch", type=int, help=argparse.SUPPRESS)
    p.add_argument("--train-images", type=int, help=argparse.SUPPRESS)
    p.add_argument("--val-images", type=int, help=argparse.SUPPRESS)
    p.add_argument("--lr", type=float, help=argparse.SUPPRESS)
    p.add_argument("--samples", type=int, default=6, help="validation images to draw")


def prepare_folder(folder, overwrite):
    """Create the demo's folder, or reuse one an earlier demo made; never clobber a user's."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UsageError(f"demo output {folder!r} exists and is not a folder.")
    if (
        os.path.isdir(folder)
        and os.listdir(folder)
        and not overwrite
        and not os.path.exists(os.path.join(folder, MARKER))
    ):
        raise UsageError(
            f"demo output folder {folder!r} is not empty and was not made by the "
            f"demo; choose another with --output, or pass --overwrite to write "
            f"into it anyway."
        )
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, MARKER), "w") as f:
        f.write("Written by `kerasseg demo`; the demo may overwrite its files here.\n")


def settings_for(args):
    settings = dict(
        DEMO,
        epochs=args.epochs or DEMO["epochs"],
        steps_per_epoch=args.steps_per_epoch or DEMO["steps_per_epoch"],
    )
    total = settings["epochs"] * settings["steps_per_epoch"]
    settings["warmup_steps"] = min(DEMO["warmup_steps"], total // 2)
    if args.lr:
        settings["learning_rate"] = args.lr
    settings["dataset_options"] = {**DEMO["dataset_options"], "seed": args.seed}
    settings["val_dataset_options"] = {**DEMO["val_dataset_options"], "seed": args.seed}
    if args.train_images:
        settings["dataset_options"]["num_images"] = args.train_images
    if args.val_images:
        settings["val_dataset_options"]["num_images"] = args.val_images
    return settings


def run(args):
    if args.task == "instance":
        from kerasseg.cli import demo_instances

        return demo_instances.run(args)
    if args.task == "panoptic":
        from kerasseg.cli import demo_panoptic

        return demo_panoptic.run(args)
    started = time.time()
    folder = os.path.abspath(args.output or "kerasseg_demo")
    prepare_folder(folder, args.overwrite)
    from kerasseg import losses
    from kerasseg.training import train

    settings = settings_for(args)
    run_dir = os.path.join(folder, "run")
    say(
        f"kerasseg demo: a small U-Net learns the synthetic 'shapes' set "
        f"({settings['epochs']} epochs of {settings['steps_per_epoch']} steps, "
        f"{settings['crop_size']} px crops); outputs go to {folder}"
    )
    result = train(
        dataset="shapes",
        output=run_dir,
        seed=args.seed,
        overwrite=True,
        tensorboard=False,
        loss=losses.CrossEntropy() + losses.DiceLoss(),
        **settings,
    )
    if result.diverged:
        return 1
    # The last epoch's weights (last.keras): no choice made on the validation split.
    written = _outputs(result.model, folder, settings, args.samples)
    _summary(written, run_dir, elapsed=time.time() - started)
    return 0


def _outputs(model, folder, settings, samples):
    """Scores, overlays, the image | truth | prediction grid and the SavedModel."""
    from kerasseg import datasets, export, inference, visualize
    from kerasseg.training import evaluate

    info = datasets.info("shapes")
    # Each validation image at its own size, padded the way inference.predict pads it.
    summary = evaluate(
        model, "shapes", split="val", verbose=0, dataset_options=settings["val_dataset_options"]
    )
    scores = os.path.join(folder, "validation.json")
    with open(scores, "w") as f:
        json.dump(summary, f, indent=2)
    pairs = list(
        datasets.load("shapes", split="val", **settings["val_dataset_options"])
        .take(samples)
        .as_numpy_iterator()
    )
    images, truths = [image for image, _ in pairs], [mask for _, mask in pairs]
    predictions = inference.predict(model, images)
    # The validation images are ~100 px: enlarged (labels by repeating pixels) to be legible.
    shown = [
        visualize.enlarge(*sample, min_side=DRAWN_SIDE)
        for sample in zip(images, truths, predictions)
    ]
    names = list(info.class_names)
    overlays = os.path.join(folder, "overlays")
    os.makedirs(overlays, exist_ok=True)
    for i, (image, _, labels) in enumerate(shown):
        overlay = visualize.overlay(image, labels, info.palette)
        visualize.save_image(
            os.path.join(overlays, f"val_{i:02d}.png"),
            visualize.with_legend(overlay, labels, names, info.palette),
        )
    grid = os.path.join(folder, "predictions.png")
    big_images, big_truths, big_predictions = zip(*shown)
    visualize.grid(
        big_images,
        big_truths,
        big_predictions,
        info.palette,
        path=grid,
        titles=GRID_TITLES,
        class_names=names,
    )
    saved = os.path.join(folder, "savedmodel")
    export.saved_model(
        model, saved, overwrite=True, class_names=list(info.class_names), palette=info.palette
    )
    return dict(summary=summary, scores=scores, overlays=overlays, grid=grid, saved=saved)


def _summary(written, run_dir, elapsed):
    from kerasseg import metrics

    summary = written["summary"]
    say("")
    say(metrics.format_report(summary))
    say("")
    say(
        f"validation mIoU: {summary['mean_iou']:.4f}  pixel accuracy: "
        f"{summary['pixel_accuracy']:.4f}  ('shapes' val split, "
        f"{summary['total_pixels']:.0f} pixels, final model)"
    )
    say(f"time: {elapsed:.0f} s")
    say(f"run (best.keras, last.keras, history.csv, curves.png): {run_dir}")
    say(f"overlays: {written['overlays']}")
    say(f"image | truth | prediction: {written['grid']}")
    say(f"SavedModel: {written['saved']}")
    say(f"scores: {written['scores']}")
    say(
        f"try: kerasseg predict --checkpoint {os.path.join(run_dir, 'last.keras')} "
        f"IMAGE --output predictions/"
    )
