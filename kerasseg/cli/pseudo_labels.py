"""``kerasseg pseudo-labels``: weak labels or pseudo-masks of a dataset's split, written as a
``folder`` set (``OUTPUT/images/<stem>.png``, ``OUTPUT/masks/<stem>.png``, ``classes.txt``)."""

import os

from kerasseg.cli.common import UsageError, check_dataset, crop, none_or, options, say

HELP = "write weak labels / pseudo-masks of a dataset split as a `folder` set"
DESCRIPTION = """\
Example: kerasseg pseudo-labels --dataset shapes --supervision boxes --output pseudo/

The weak labels are simulated from the split's full masks with --seed: scribbles (skeleton
strokes) and points (one per object) as sparse masks, 255 = unlabelled; boxes become GrabCut
pseudo-masks (255 where a box's pixel is not the object); image-level tags train a CAM
classifier whose CRF-refined CAMs become the masks (weak.json gets the CAM and pseudo-mask mIoU).
Output: OUTPUT/images/<stem>.png, OUTPUT/masks/<stem>.png (grey PNGs of class indices),
OUTPUT/classes.txt; train on it with `kerasseg train --dataset folder --data-dir OUTPUT`
(255 is ignored). Files that exist are never replaced unless you pass --overwrite.
"""


def add_arguments(p):
    p.add_argument("--dataset", required=True, help="dataset name (see `kerasseg datasets`)")
    p.add_argument("--data-dir", help="folder holding the dataset (not needed for `shapes`)")
    p.add_argument("--split", default="train", help="the split to label")
    p.add_argument(
        "--supervision",
        required=True,
        choices=("scribbles", "points", "boxes", "image"),
        help="kind of weak label to simulate from the split's masks",
    )
    p.add_argument("--seed", type=int, default=0, help="seeds the simulated labels")
    p.add_argument(
        "--superpixels",
        default="none",
        choices=("none", "slic", "felzenszwalb", "random_walker"),
        help="scribbles/points/boxes: spread them over superpixels (ScribbleSup) or by a "
        "random walker on the image",
    )
    p.add_argument(
        "--cam-steps", type=int, default=300, help="--supervision image: classifier steps"
    )
    p.add_argument("--batch-size", type=int, default=8, help="--supervision image: batch")
    p.add_argument(
        "--crop-size",
        type=int,
        nargs="+",
        default=[64],
        metavar="PX",
        help="--supervision image: the classifier's training crop, SIZE or HEIGHT WIDTH",
    )
    p.add_argument(
        "--backbone",
        default="none",
        help="--supervision image: the classifier's encoder (none: a small conv net)",
    )
    p.add_argument("--weights", default="none", help="--supervision image: imagenet or none")
    p.add_argument(
        "--dataset-option",
        action="append",
        metavar="KEY=VALUE",
        help="extra loader argument, e.g. num_images=200 (repeatable)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace files that exist in --output")
    p.add_argument("--output", required=True, help="folder to write (created)")


def _targets(output, n):
    stems = [f"{i:05d}" for i in range(n)]
    paths = [
        (os.path.join(output, "images", s + ".png"), os.path.join(output, "masks", s + ".png"))
        for s in stems
    ]
    return paths


def _check_free(output, paths, overwrite):
    taken = [p for pair in paths for p in pair if os.path.exists(p)]
    classes = os.path.join(output, "classes.txt")
    if os.path.exists(classes):
        taken.append(classes)
    if taken and not overwrite:
        raise UsageError(
            f"{taken[0]} exists ({len(taken)} of the files to write do); pass --overwrite to "
            "replace them, or choose another --output."
        )


def run(args):
    import types

    import cv2
    import numpy as np
    from PIL import Image

    from kerasseg import datasets
    from kerasseg.training import dataset_meta
    from kerasseg.training.weak_runs import weak_training_set, write_figures

    check_dataset(args.dataset, args.data_dir)
    dataset_options = options(args.dataset_option, "--dataset-option")
    meta = dataset_meta(args.dataset, args.data_dir, dict(dataset_options))
    if meta.task != "segmentation":
        raise UsageError(
            f"dataset {args.dataset!r} is a {meta.task} set; pseudo-labels needs masks."
        )
    raw = datasets.load(args.dataset, data_dir=args.data_dir, split=args.split, **dataset_options)
    n = sum(1 for _ in raw)
    paths = _targets(args.output, n)
    _check_free(args.output, paths, args.overwrite)
    task = types.SimpleNamespace(
        num_classes=int(meta.num_classes), ignore_index=int(meta.ignore_index), binary=False
    )
    config = types.SimpleNamespace(
        supervision=args.supervision,
        seed=args.seed,
        superpixels=none_or(args.superpixels),
        batch_size=args.batch_size,
        crop_size=crop(args.crop_size),
        augment=None,
        backbone=none_or(args.backbone),
        weights=none_or(args.weights),
        cam_steps=args.cam_steps,
        epochs=1,
        steps_per_epoch=args.cam_steps,
    )
    from kerasseg.data import prepare

    labelled, figures = weak_training_set(raw, task, config, prepare)
    os.makedirs(os.path.join(args.output, "images"), exist_ok=True)
    os.makedirs(os.path.join(args.output, "masks"), exist_ok=True)
    labelled_pixels = total = 0
    for (image_path, mask_path), (image, labels) in zip(paths, labelled.as_numpy_iterator()):
        image = np.asarray(image)
        if image.shape[-1] == 3:
            cv2.imwrite(image_path, cv2.cvtColor(image.astype(np.uint8), cv2.COLOR_RGB2BGR))
        else:
            cv2.imwrite(image_path, image.astype(np.uint8))
        Image.fromarray(labels.astype(np.uint8), mode="L").save(mask_path)
        labelled_pixels += int((labels != task.ignore_index).sum())
        total += labels.size
    with open(os.path.join(args.output, "classes.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(str(c) for c in meta.class_names) + "\n")
    if figures:
        path = write_figures(args.output, args.supervision, figures)
        say(
            f"CAM mIoU {figures['cam_miou']:.4f}, pseudo-mask mIoU "
            f"{figures['pseudo_mask_miou']:.4f} ({path})"
        )
    say(
        f"wrote {n} images and {args.supervision} labels to {args.output} "
        f"({100.0 * labelled_pixels / max(total, 1):.1f}% of the pixels labelled)"
    )
    if task.num_classes == 2:
        say(
            "2 classes: train with --dataset-option ignore_index=255 so that the folder reader "
            "keeps 255 as unlabelled (not as a 0/255 binary foreground)."
        )
    return 0
