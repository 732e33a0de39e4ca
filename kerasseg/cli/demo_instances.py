"""``kerasseg demo --task instance``: a small Mask R-CNN learns the synthetic
``shapes_instances`` set from scratch, then the demo scores it with COCOeval (box and mask AP on
the validation split) and draws its detections next to the truth, into one folder."""

import json
import os
import time

from kerasseg.cli.common import say
from kerasseg.cli.demo import prepare_folder

DEFAULT_OUTPUT = "kerasseg_demo_instance"

# A small Mask R-CNN (MobileNetV2 from scratch, 64-wide FPN, small heads, anchors for 64 px
# images, fewer sampled proposals and ROIs, half of them positive) sized to reach a validation
# mask AP50 above 0.7 within ten minutes on two CPU cores. Measured on a 2-core AMD EPYC with the
# console script's oneDNN on (seed 0: the outcome is fixed): 1250 steps of batch 4 at ~0.29 s,
# ~390 s in all, mask AP50 0.829 (mask AP 0.643, box AP50 0.854); ~590 s on a machine busy with
# other jobs (load 5). With 64 mask-head filters and 1500 steps: 0.877, but ~610 s. With
# TF_ENABLE_ONEDNN_OPTS=0 (and so the CLI's pooling allocator): 421 s, mask AP50 0.777.
INSTANCE_DEMO = dict(
    model="mask_rcnn",
    backbone="mobilenetv2",
    weights=None,
    model_options={
        "fpn_filters": 64,
        "box_head_units": 256,
        "mask_head_filters": 32,
        "anchor_sizes": (16, 32, 64, 128, 256),
        "rpn_pre_nms_test": 200,
        "rpn_post_nms_test": 50,
        "training_config": {
            "rpn_pre_nms_train": 300,
            "rpn_post_nms_train": 100,
            "roi_samples": 64,
            "roi_positive_fraction": 0.5,
        },
    },
    dataset_options={"num_images": 2000},
    val_dataset_options={},
    epochs=5,
    steps_per_epoch=250,
    batch_size=4,
    crop_size=64,
    optimizer="adam",
    learning_rate=2e-3,
    warmup_steps=100,
    augment={"scale_range": None, "photometric": False},
    max_instances=8,
)
SCORE_THRESHOLD = 0.5  # detections drawn on the overlays
PAIR_TITLES = ("ground truth", "prediction")


def settings_for(args, base=None):
    """The demo's ``train`` arguments (``base``: the instance demo's, or another task's)."""
    base = INSTANCE_DEMO if base is None else base
    settings = dict(
        base,
        epochs=args.epochs or base["epochs"],
        steps_per_epoch=args.steps_per_epoch or base["steps_per_epoch"],
    )
    total = settings["epochs"] * settings["steps_per_epoch"]
    settings["warmup_steps"] = min(base["warmup_steps"], total // 2)
    settings["dataset_options"] = {**base["dataset_options"], "seed": args.seed}
    settings["val_dataset_options"] = {**base["val_dataset_options"], "seed": args.seed}
    if args.train_images:
        settings["dataset_options"]["num_images"] = args.train_images
    if args.val_images:
        settings["val_dataset_options"]["num_images"] = args.val_images
    if args.lr:
        settings["learning_rate"] = args.lr
    # Scored once, after the last epoch (which also picks best.keras: that epoch).
    settings["validation_freq"] = settings["epochs"]
    return settings


def run_with(args, dataset, what, default_output, base, outputs, summary):
    """The instance and panoptic demos' run: train ``what`` (a phrase) on ``dataset`` with
    ``settings_for(args, base)``, then ``outputs(result, folder, settings, samples)`` and
    ``summary(written, run_dir, elapsed)``."""
    started = time.time()
    folder = os.path.abspath(args.output or default_output)
    prepare_folder(folder, args.overwrite)
    from kerasseg.training import train

    settings = settings_for(args, base)
    run_dir = os.path.join(folder, "run")
    say(
        f"kerasseg demo: {what} learns the synthetic {dataset!r} set "
        f"({settings['epochs']} epochs of {settings['steps_per_epoch']} steps, "
        f"batch {settings['batch_size']}, {settings['crop_size']} px); outputs go to {folder}"
    )
    result = train(
        dataset=dataset,
        output=run_dir,
        seed=args.seed,
        overwrite=True,
        tensorboard=False,
        **settings,
    )
    if result.diverged:
        return 1
    written = outputs(result, folder, settings, args.samples)
    summary(written, run_dir, elapsed=time.time() - started)
    return 0


def run(args):
    return run_with(
        args,
        "shapes_instances",
        "a small Mask R-CNN",
        DEFAULT_OUTPUT,
        INSTANCE_DEMO,
        _outputs,
        _summary,
    )


def _outputs(result, folder, settings, samples):
    """validation.json (the COCO scores) and overlays/val_XX.png (truth | prediction)."""
    from kerasseg import datasets, inference, visualize

    scores = os.path.join(folder, "validation.json")
    with open(scores, "w") as f:
        json.dump(json.load(open(result.scores_path)), f, indent=2)
    names = list(datasets.info("shapes_instances").class_names)
    examples = list(
        datasets.load("shapes_instances", split="val", **settings["val_dataset_options"])
        .take(samples)
        .as_numpy_iterator()
    )
    overlays = os.path.join(folder, "overlays")
    os.makedirs(overlays, exist_ok=True)
    for i, (image, target) in enumerate(examples):
        prediction = inference.predict(result.model, image, score_threshold=SCORE_THRESHOLD)
        truth = {"boxes": target["boxes"], "classes": target["classes"], "masks": target["masks"]}
        visualize.save_image(
            os.path.join(overlays, f"val_{i:02d}.png"),
            visualize.instance_pair(image, truth, prediction, names, PAIR_TITLES),
        )
    return dict(stats=result.scores, scores=scores, overlays=overlays)


def _summary(written, run_dir, elapsed):
    from kerasseg.training import format_coco

    stats = written["stats"]
    say("")
    say(format_coco(stats))
    say("")
    say(
        f"validation mask AP50: {stats['segm']['AP50']:.4f}  mask AP: {stats['segm']['AP']:.4f}  "
        f"box AP50: {stats['bbox']['AP50']:.4f}  ('shapes_instances' val split, COCOeval, "
        f"final model)"
    )
    say(f"time: {elapsed:.0f} s")
    say(f"run (best.keras, last.keras, coco_val.json, history.csv, curves.png): {run_dir}")
    say(f"overlays (truth | prediction): {written['overlays']}")
    say(f"scores: {written['scores']}")
    say(
        f"try: kerasseg predict --checkpoint {os.path.join(run_dir, 'last.keras')} "
        f"IMAGE --output predictions/"
    )
