"""``kerasseg predict``: a colour mask, an overlay and a label PNG for each image; for an
instance checkpoint an overlay of its detections and a JSON file of them (boxes, classes, scores,
masks as COCO RLE)."""

import json
import os

from kerasseg.cli.checkpoint import labels_of, load_checkpoint, num_classes, task_of
from kerasseg.cli.common import UsageError, check_file, crop, say

HELP = "colour masks and overlays for images"


def add_arguments(p):
    p.add_argument("--checkpoint", required=True)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--output", required=True, help="folder for the PNGs")
    p.add_argument("--dataset", help="palette of this dataset (default: the checkpoint's)")
    p.add_argument("--alpha", type=float, default=0.5, help="overlay opacity")
    p.add_argument("--tile", type=int, nargs="+", metavar="PX", help="sliding-window size")
    p.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    p.add_argument(
        "--score-threshold",
        type=float,
        default=0.5,
        help="instance checkpoints: keep detections scoring at least this (default 0.5)",
    )
    p.add_argument(
        "--max-detections", type=int, default=100, help="instance checkpoints: per image"
    )


def read_rgb(path):
    import cv2

    check_file(path, "image")
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise UsageError(f"could not read image {path!r} (not an image format OpenCV knows).")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def run(args):
    check_file(args.checkpoint, "checkpoint")
    for path in args.images:
        check_file(path, "image")
    # First: loading imports the whole package (the console script imported it lightly).
    model = load_checkpoint(args.checkpoint)
    from kerasseg import inference, visualize

    if task_of(model) == "instance":
        return _run_instances(args, model)
    count = num_classes(model)
    _, colours = labels_of(model, args.checkpoint, args.dataset)
    os.makedirs(args.output, exist_ok=True)
    for path in args.images:
        image = read_rgb(path)
        labels = inference.predict(model, image, tile=crop(args.tile, "--tile"), flip=args.flip)
        stem = os.path.join(args.output, os.path.splitext(os.path.basename(path))[0])
        written = [
            visualize.save_image(f"{stem}_mask.png", visualize.colorize(labels, colours)),
            visualize.save_image(
                f"{stem}_overlay.png", visualize.overlay(image, labels, colours, alpha=args.alpha)
            ),
        ]
        if count <= 256:
            written.append(visualize.save_image(f"{stem}_labels.png", labels.astype("uint8")))
        say(f"{path}: " + ", ".join(written))
    return 0


def _rle(mask):
    import numpy as np
    import pycocotools.mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def instances_record(path, image, result, names):
    """One image's detections as JSON-ready data: boxes y1, x1, y2, x2 in pixels, masks as
    COCO RLE (``pycocotools.mask.decode`` reads them back)."""
    height, width = image.shape[:2]
    instances = [
        {
            "box": [float(v) for v in box],
            "class": int(label),
            "class_name": names[int(label)] if 0 <= int(label) < len(names) else str(label),
            "score": float(score),
            "mask": _rle(mask),
        }
        for box, label, score, mask in zip(
            result["boxes"], result["classes"], result["scores"], result["masks"]
        )
    ]
    return {
        "image": os.path.abspath(path),
        "height": int(height),
        "width": int(width),
        "box_format": "y1, x1, y2, x2 (pixels)",
        "mask_format": "COCO RLE (pycocotools.mask)",
        "instances": instances,
    }


def _run_instances(args, model):
    from kerasseg import inference, visualize

    if args.tile or args.flip:
        raise UsageError("--tile and --flip apply to semantic models; this is an instance model.")
    names, _ = labels_of(model, args.checkpoint, args.dataset)
    os.makedirs(args.output, exist_ok=True)
    for path in args.images:
        image = read_rgb(path)
        result = inference.predict(
            model,
            image,
            score_threshold=args.score_threshold,
            max_detections=args.max_detections,
        )
        stem = os.path.join(args.output, os.path.splitext(os.path.basename(path))[0])
        overlay = visualize.save_image(
            f"{stem}_instances.png",
            visualize.draw_instances(image, result, names, alpha=args.alpha),
        )
        record = f"{stem}_instances.json"
        with open(record, "w", encoding="utf-8") as f:
            json.dump(instances_record(path, image, result, names), f)
        say(f"{path}: {len(result['scores'])} instance(s); {overlay}, {record}")
    return 0
