"""``kerasseg predict``: for each image a colour mask (``_mask.png``, the image's exact size), an
overlay with a legend of the classes present in a strip below it (``_overlay.png``) and the class
map as a palette PNG (``_labels.png``: its pixel values are the class indices, a viewer shows
them in the class colours; models of at most 256 classes); for an instance checkpoint an overlay
of its detections and a JSON file of them (boxes, classes, scores, masks as COCO RLE); for a
panoptic checkpoint the panoptic overlay, the panopticapi id PNG and the segments (JSON).

An IMAGE is a file, a folder (the images directly in it, by extension: those of
``kerasseg.datasets.IMAGE_EXTENSIONS``) or a glob (``"photos/*.jpg"``, ``"photos/**/*.png"``:
expanded here where the shell did not). An image named twice is predicted once.

Output names never collide. Each keeps its image's folder relative to the folder that holds all
the images (their common parent): ``a/x.png`` and ``b/x.png`` write ``OUT/a/x_mask.png`` and
``OUT/b/x_mask.png``; the images of one folder write ``OUT/x_mask.png``. Images of one folder
that share a stem (``x.png``, ``x.jpg``) keep their extension: ``OUT/x.png_mask.png``,
``OUT/x.jpg_mask.png``.
"""

import collections
import glob
import json
import os

from kerasseg.cli.checkpoint import (
    CHECKPOINT_HELP,
    labels_of,
    load_checkpoint,
    num_classes,
    resolve_checkpoint,
    task_of,
)
from kerasseg.cli.common import UsageError, check_file, crop, say

HELP = "colour masks and overlays for images"
DESCRIPTION = """\
For each image: NAME_mask.png (the class colours, at the image's size), NAME_overlay.png (the
image under the colours, a legend of the classes present below it) and NAME_labels.png (a
palette PNG: its pixel values are the class indices, shown in the class colours); for an
instance checkpoint NAME_instances.png and NAME_instances.json; for a panoptic checkpoint
NAME_panoptic.png (stuff in class colours, things in per-instance shades), NAME_panoptic_ids.png
(panopticapi's id PNG) and NAME_panoptic.json (the segments: id, class, instance, score, area).

IMAGE: a file, a folder (the images directly in it: .jpg, .jpeg, .png, .bmp, .tif, .tiff,
.webp, .ppm, .pgm) or a glob ('photos/*.jpg', 'photos/**/*.png'; quoted, it is expanded here).

Output names never collide: each keeps its image's folder relative to the common parent of all
the images' folders (a/x.png and b/x.png -> OUT/a/x_mask.png and OUT/b/x_mask.png; the images
of one folder -> OUT/x_mask.png), and images of one folder sharing a stem keep their extension
(x.png, x.jpg -> OUT/x.png_mask.png, OUT/x.jpg_mask.png)."""
IMAGES_HELP = (
    "image files, folders (the images directly in them) or globs ('photos/*.jpg'); outputs "
    "keep each image's folder relative to the common parent of all of them (a/x.png, b/x.png "
    "-> OUT/a/x_*.png, OUT/b/x_*.png)"
)


def add_arguments(p):
    p.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    p.add_argument("images", nargs="+", metavar="IMAGE", help=IMAGES_HELP)
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


def _images_among(paths):
    """The image files among ``paths`` (by extension, hidden files left out), sorted."""
    from kerasseg.datasets import IMAGE_EXTENSIONS

    return [
        p
        for p in sorted(paths)
        if os.path.isfile(p)
        and not os.path.basename(p).startswith(".")
        and os.path.splitext(p)[1].lower() in IMAGE_EXTENSIONS
    ]


def _expand(argument):
    """The image files one IMAGE argument names: a file as given; a folder's images (its
    subfolders not searched); a glob's matching images. None found is a one-line error."""
    if os.path.isfile(argument):
        return [argument]
    if os.path.isdir(argument):
        found = _images_among(os.path.join(argument, n) for n in os.listdir(argument))
        if not found:
            raise UsageError(f"no images in folder {argument!r} (.jpg, .png, ... files).")
        return found
    if any(c in argument for c in "*?["):  # quoted, or a pattern the shell matched nothing with
        found = _images_among(glob.glob(argument, recursive=True))
        if not found:
            raise UsageError(f"no images match {argument!r}.")
        return found
    raise UsageError(f"image not found: {argument!r}.")


def image_paths(arguments):
    """Every image the IMAGE arguments name, in order, each once (one-line errors first: before
    the model loads)."""
    paths, seen = [], set()
    for argument in arguments:
        for path in _expand(os.fspath(argument)):
            key = os.path.realpath(path)
            if key not in seen:
                seen.add(key)
                paths.append(path)
    return paths


def output_stems(paths, output):
    """{image path: output path without suffix}: the image's folder relative to the common
    parent of all the images' folders, then its stem, or its file name where another image of
    that folder has the same stem. No two images get one stem."""
    folders = [os.path.dirname(os.path.abspath(p)) for p in paths]
    parent = os.path.commonpath(folders) if paths else ""
    keys = [
        (os.path.relpath(f, parent), os.path.splitext(os.path.basename(p))[0])
        for f, p in zip(folders, paths)
    ]
    shared = {key for key, n in collections.Counter(keys).items() if n > 1}
    stems = {}
    for path, (folder, stem) in zip(paths, keys):
        name = os.path.basename(path) if (folder, stem) in shared else stem
        stems[path] = os.path.normpath(os.path.join(output, folder, name))
    return stems


def run(args):
    args.checkpoint = resolve_checkpoint(args.checkpoint)
    paths = image_paths(args.images)
    # First: loading imports the whole package (the console script imported it lightly).
    model = load_checkpoint(args.checkpoint)
    from kerasseg import inference, visualize

    if task_of(model) == "instance":
        return _run_instances(args, model, paths)
    if task_of(model) == "panoptic":
        return _run_panoptic(args, model, paths)
    count = num_classes(model)
    names, colours = labels_of(model, args.checkpoint, args.dataset)
    for path, stem in output_stems(paths, args.output).items():
        image = read_rgb(path)
        labels = inference.predict(model, image, tile=crop(args.tile, "--tile"), flip=args.flip)
        overlay = visualize.overlay(image, labels, colours, alpha=args.alpha)
        written = [
            visualize.save_image(f"{stem}_mask.png", visualize.colorize(labels, colours)),
            visualize.save_image(
                f"{stem}_overlay.png", visualize.with_legend(overlay, labels, names, colours)
            ),
        ]
        if count <= 256:  # a PNG palette holds 256 colours
            written.append(visualize.save_label_png(f"{stem}_labels.png", labels, colours))
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


def _run_instances(args, model, paths):
    from kerasseg import inference, visualize

    if args.tile or args.flip:
        raise UsageError("--tile and --flip apply to semantic models; this is an instance model.")
    names, _ = labels_of(model, args.checkpoint, args.dataset)
    for path, stem in output_stems(paths, args.output).items():
        image = read_rgb(path)
        result = inference.predict(
            model,
            image,
            score_threshold=args.score_threshold,
            max_detections=args.max_detections,
        )
        overlay = visualize.save_image(
            f"{stem}_instances.png",
            visualize.draw_instances(image, result, names, alpha=args.alpha),
        )
        record = f"{stem}_instances.json"  # its folder: made by save_image just now
        with open(record, "w", encoding="utf-8") as f:
            json.dump(instances_record(path, image, result, names), f)
        say(f"{path}: {len(result['scores'])} instance(s); {overlay}, {record}")
    return 0


def _run_panoptic(args, model, paths):
    """Per image: the overlay (stuff in class colours, things in per-instance shades), the id
    map as a panopticapi PNG (id = R + 256 G + 256^2 B) and its segments (JSON)."""
    from kerasseg import inference, visualize
    from kerasseg.models.panoptic import panoptic_classes
    from kerasseg.ops.panoptic_ids import id_to_rgb

    if args.tile or args.flip:
        raise UsageError("--tile and --flip apply to semantic models; this is a panoptic model.")
    _, colours = labels_of(model, args.checkpoint, args.dataset)
    things, _, divisor = panoptic_classes(model)
    for path, stem in output_stems(paths, args.output).items():
        image = read_rgb(path)
        result = inference.predict(model, image)
        panoptic = result["panoptic"]
        overlay = visualize.save_image(
            f"{stem}_panoptic.png",
            visualize.panoptic_overlay(image, panoptic, colours, things, divisor, alpha=args.alpha),
        )
        # panopticapi's id PNG: a segment's id is its panoptic value + 1, 0 is void.
        ids = visualize.save_image(f"{stem}_panoptic_ids.png", id_to_rgb(panoptic + 1))
        record = f"{stem}_panoptic.json"
        with open(record, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "image": os.path.abspath(path),
                    "label_divisor": divisor,
                    "ids_png": os.path.abspath(ids),
                    "ids_format": "R + 256 G + 256^2 B = panoptic id + 1 (0: void)",
                    "segments": result["segments"],
                },
                f,
                indent=1,
            )
        say(f"{path}: {len(result['segments'])} segment(s); {overlay}, {ids}, {record}")
    return 0
