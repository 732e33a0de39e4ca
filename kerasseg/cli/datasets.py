"""``kerasseg datasets``: the registered datasets, their class counts and whether they read
files; its --help (and train's) says how to lay out your own data for the ``folder`` dataset."""

from kerasseg.cli.common import needs_data_dir, say

HELP = "list the registered datasets"

# The README's "Your own data" section says the same at more length.
OWN_DATA = """\
Your own data: --dataset folder --data-dir D
  D/images/<name>.jpg|png|...   your RGB images
  D/masks/<name>.png            one mask per image, same file name stem
  D/classes.txt                 optional: one class name per line (line 1 = class 0)
  or one folder per split: D/train/images, D/train/masks, D/val/images, D/val/masks
Masks: single-channel PNGs whose pixel values are class indices 0..K-1 (grey "L" PNGs, or
palette "P" PNGs: the indices are read, not the colours); 255 means "ignore this pixel".
RGB colour masks and JPEG masks are refused (JPEG compression changes the values).
Binary masks of 0 and 255 (or 0 and 1) are read as background/foreground (255 -> 1); pass
--dataset-option ignore_index=255 if 255 means ignore there.
Splits: without split folders, 20% of the images (chosen by a hash of their names, the same
on every run) are held out as "val" and the rest is "train"; --dataset-option
val_fraction=0.1 changes the fraction, --val-split none trains on all of them, and lists
D/train.txt, D/val.txt (one name stem per line) choose the files of each split.
Class names: D/classes.txt, else --dataset-option class_names="['sky','road']", else
--dataset-option num_classes=K, else the masks are scanned for their largest value."""

DESCRIPTION = OWN_DATA
FOLDER_CLASSES = "yours"  # the `folder` row: its classes come from your files


def add_arguments(parser):
    """No options of its own."""


def run(args):
    from kerasseg import datasets

    rows = []
    for name in datasets.list_datasets():
        if name == "folder":
            rows.append((name, FOLDER_CLASSES, "--data-dir: your own images and masks (--help)"))
            continue
        try:
            info = datasets.info(name)
            classes = str(info.num_classes) if info.num_classes else "?"
        except Exception:  # noqa: BLE001 - a dataset that describes itself from its files
            classes = "?"
        rows.append(
            (name, classes, "--data-dir" if needs_data_dir(name) else "generated (no files)")
        )
    width = max(len("dataset"), *(len(name) for name, _, _ in rows))
    say(f"{'dataset':<{width}} {'classes':>7}  data")
    for name, classes, where in rows:
        say(f"{name:<{width}} {classes:>7}  {where}")
    say("\nkerasseg datasets --help: how to lay out your own data for the `folder` dataset.")
    return 0
