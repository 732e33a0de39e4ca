"""``kerasseg predict``: a colour mask, an overlay and a label PNG for each image."""

import os

from kerasseg.cli.checkpoint import labels_of, load_checkpoint, num_classes
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


def read_rgb(path):
    import cv2

    check_file(path, "image")
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise UsageError(f"could not read image {path!r} (not an image format OpenCV knows).")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def run(args):
    from kerasseg import inference, visualize

    check_file(args.checkpoint, "checkpoint")
    for path in args.images:
        check_file(path, "image")
    model = load_checkpoint(args.checkpoint)
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
