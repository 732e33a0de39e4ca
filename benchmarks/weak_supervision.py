"""Weak supervision on the generated `shapes` set: val mIoU of each kind of label as a fraction of
the fully supervised run.

The same model (the demo's encoder-free U-Net, 8 filters), the same steps, crop, batch, optimizer
and seed for every run; only the training labels differ, simulated from the full masks with a
fixed seed
(``kerasseg.training.train(..., supervision=...)``): scribbles (skeleton strokes), points (one per
object), boxes (GrabCut pseudo-masks), image-level tags (CAM classifier -> CRF-refined pseudo-masks;
its CAM and pseudo-mask mIoU on the training split are reported too). Points and scribbles are
first spread over Felzenszwalb superpixels (ScribbleSup; ``--superpixels none`` turns it off).
Weak runs use partial cross-entropy + 0.1 x GatedCRFLoss. Validation is always on the full masks
of the val split.

    python benchmarks/weak_supervision.py [--steps 600] [--num-images 400] [--crop 64]
                                          [--kinds full scribbles points boxes image]
                                          [--output benchmarks/results/weak_supervision.md]

Goals (issue 17): scribbles >= 0.95, boxes >= 0.90, points >= 0.85, image-level >= 0.75 of full.
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

GOALS = {"scribbles": 0.95, "boxes": 0.90, "points": 0.85, "image": 0.75}


def run_one(kind, args, root):
    from kerasseg import training

    steps_per_epoch = args.steps // args.epochs
    start = time.time()
    result = training.train(
        "unet",
        "shapes",
        output=os.path.join(root, kind),
        backbone=None,
        weights=None,
        epochs=args.epochs,
        batch_size=args.batch_size,
        crop_size=args.crop,
        steps_per_epoch=steps_per_epoch,
        val_batch_size=10,
        val_crop_size=128,
        optimizer="adam",
        learning_rate=args.lr,
        warmup_steps=min(50, args.steps // 2),
        augment={"scale_range": None, "photometric": False},
        seed=args.seed,
        model_options={"filters": args.filters},
        dataset_options={"num_images": args.num_images},
        val_dataset_options={"num_images": args.num_val},
        tensorboard=False,
        verbose=0,
        supervision=kind,
        cam_steps=args.cam_steps,
        crf_weight=args.crf_weight,
        superpixels=args.superpixels if kind in ("points", "scribbles", "boxes") else None,
        crf_options={"downsample": args.crf_downsample},
        memory_check=False,
    )
    miou = float(result.history["val_mean_iou"][-1])
    figures = {}
    path = os.path.join(root, kind, "weak.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            figures = json.load(f)
    return miou, time.time() - start, figures


def table(rows, full):
    lines = [
        "| labels | val mIoU | fraction of full | goal | seconds |",
        "|---|---|---|---|---|",
    ]
    for kind, miou, seconds, _ in rows:
        goal = GOALS.get(kind)
        lines.append(
            f"| {kind} | {miou:.3f} | {miou / full:.2f} | "
            f"{'' if goal is None else f'>= {goal:.2f}'} | {seconds:.0f} |"
        )
    for kind, _, _, figures in rows:
        if figures:
            lines.append("")
            lines.append(
                f"{kind}: CAM mIoU {figures['cam_miou']:.3f}, pseudo-mask mIoU "
                f"{figures['pseudo_mask_miou']:.3f} (training split, {figures['cam_steps']} "
                "classifier steps)"
            )
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kinds", nargs="+", default=["full", "scribbles", "points", "boxes", "image"])
    p.add_argument("--steps", type=int, default=600, help="training steps of every run")
    p.add_argument("--epochs", type=int, default=3, help="validation after each")
    p.add_argument("--cam-steps", type=int, default=800, help="CAM classifier steps (image)")
    p.add_argument("--num-images", type=int, default=400, help="training images")
    p.add_argument("--num-val", type=int, default=50, help="validation images")
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--filters", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--crf-weight", type=float, default=0.1, help="GatedCRFLoss weight")
    p.add_argument("--crf-downsample", type=int, default=4, help="GatedCRFLoss resolution")
    p.add_argument(
        "--superpixels",
        default="felzenszwalb",
        help="points and scribbles: spread over these superpixels first (none: off)",
    )
    p.add_argument("--output", default=None, help="also write the table to this file")
    args = p.parse_args(argv)
    args.superpixels = None if args.superpixels == "none" else args.superpixels
    if "full" not in args.kinds:
        args.kinds = ["full"] + args.kinds
    start = time.time()
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for kind in args.kinds:
            miou, seconds, figures = run_one(kind, args, root)
            rows.append((kind, miou, seconds, figures))
            print(f"{kind}: val mIoU {miou:.4f} ({seconds:.0f} s)", flush=True)
    full = rows[0][1]
    text = table(rows, full)
    text += f"\n\nTotal {time.time() - start:.0f} s; command: python benchmarks/weak_supervision.py"
    text += " " + " ".join(argv if argv is not None else sys.argv[1:])
    print(text)
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
