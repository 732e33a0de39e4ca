"""Data checks before and during a run: a split's files (headers, sizes, label values), the
dataset's description, and pipeline errors turned into ``DataError`` naming the file."""

import gc
import os
import sys
import time

import numpy as np
import tensorflow as tf

from kerasseg import datasets
from kerasseg.datasets import DataError, files_of, pipeline_error_message

__all__ = [
    "DataError",
    "check_files",
    "check_split",
    "through_pipeline",
    "count_steps",
    "count_samples",
    "dataset_meta",
    "check_data_dir",
    "default_validation",
    "HEADER_SECONDS",
    "DECODE_SECONDS",
]

# Pillow modes that hold one value per pixel (class indices); others need the loader's decoder
# to say whether it accepts them (grey saved as RGB, colour-coded sets such as CamVid's).
_INDEX_MODES = ("1", "L", "P", "I", "I;16", "I;16L", "I;16B", "I;16N", "F")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
HEADER_SECONDS = 20.0  # at most this long reading headers (a file's first bytes) ...
DECODE_SECONDS = 3.0  # ... and this long decoding a sample of the samples in full
# datasets.info options that change what a set describes; folder's also change its class set.
INFO_OPTIONS = ("variant", "num_classes", "class_names", "task")
FOLDER_INFO_OPTIONS = ("ignore_index", "binary", "mask_suffix", "val_fraction")


# --------------------------------------------------------------------------- the dataset


def dataset_meta(name, data_dir=None, options=None):
    """``datasets.info`` of ``name`` for the options a run loads it with (those of
    ``datasets.load``'s options that change the description; ``folder`` reads ``data_dir``)."""
    options = dict(options or {})
    info_options = {k: v for k, v in options.items() if k in INFO_OPTIONS}
    if name == "folder":
        # Its options that change the class set, so that `info` and `load` agree.
        info_options.update({k: v for k, v in options.items() if k in FOLDER_INFO_OPTIONS})
        info_options["data_dir"] = data_dir
    elif name == "coco_panoptic":
        info_options["data_dir"] = data_dir  # the classes are the JSON's
    try:
        return datasets.info(name, **info_options)
    except TypeError:
        return datasets.info(name)


def check_data_dir(dataset, data_dir):
    """A clear error for a data folder that does not exist (before any loader runs)."""
    if data_dir is not None and not os.path.isdir(os.path.expanduser(os.fspath(data_dir))):
        raise FileNotFoundError(
            f"data folder for dataset {dataset!r} not found: {os.fspath(data_dir)!r}."
        )


def default_validation(val_split, meta):
    """The validation split a run uses: ``val_split``, except that the default "val" on a
    dataset without one (NYUDv2, a folder of one image, split folders train/ and test/) means
    no validation, said in one line rather than refused."""
    splits = dict(meta.splits or {})
    if val_split != "val" or not splits or splits.get("val"):
        return val_split
    others = ", ".join(s for s in splits if s != "val")
    print(
        f"kerasseg: dataset {meta.name!r} has no 'val' split (splits: {others}): training "
        f"without validation; val_split= (--val-split) names another split to validate on.",
        file=sys.stderr,
        flush=True,
    )
    return None


# --------------------------------------------------------------------------- pipeline errors


def through_pipeline(run):
    """``run()``; a TensorFlow error raised by a dataset pipeline comes out as its DataError.

    Raised outside the except clause and after a garbage collection, once the failed
    pipeline's iterator is gone: its threads would otherwise still run the loader's Python
    decoder while the interpreter shuts down (a hang at exit).
    """
    try:
        return run()
    except tf.errors.OpError as error:
        message = pipeline_error_message(error)
        if message is None:
            raise
        failure = DataError(message)
    gc.collect()
    raise failure


# --------------------------------------------------------------------------- file checks


def count_samples(raw):
    """The samples of a loaded split (counted once if its size is unknown)."""
    n = int(raw.cardinality())
    if n < 0:
        n = int(through_pipeline(lambda: raw.reduce(0, lambda count, _: count + 1)))
    return n


def count_steps(raw_train, batch_size, dataset, split, n=None):
    """Full batches in one pass over a loaded split of ``n`` samples (counted if None)."""
    n = count_samples(raw_train) if n is None else n
    steps = n // int(batch_size)
    if steps < 1:
        raise ValueError(
            f"the {split!r} split of {dataset!r} has {n} samples, fewer than one "
            f"batch of {batch_size}."
        )
    return steps


def _header(path, role):
    """(format, mode, (width, height)) read from the file's header; None for files Pillow does
    not read (e.g. .mat labels). A file Pillow cannot open raises DataError."""
    if not path.lower().endswith(_IMAGE_SUFFIXES):
        return None
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.format, im.mode, im.size
    except FileNotFoundError:
        raise DataError(f"{role} file not found: {path!r}") from None
    except Exception as error:  # noqa: BLE001 - Pillow raises several types for bad files
        reason = " ".join(str(error).split()) or type(error).__name__
        raise DataError(
            f"cannot read {role} file {path!r} (corrupt or not an image): {reason}"
        ) from None


def _spread(n, k):
    """k indices evenly spread over range(n) (all of them when n <= k)."""
    if n <= k:
        return list(range(n))
    return sorted(set(np.round(np.linspace(0, n - 1, k)).astype(int).tolist()))


def _check_values(label, path, num_classes, ignore_index):
    label = np.asarray(label)
    bad = (label < 0) | (label >= num_classes)
    if ignore_index is not None:
        bad &= label != ignore_index
    if bad.any():
        values = np.unique(label[bad])[:8].tolist()
        raise DataError(
            f"label value(s) {values} in {path!r} outside the classes "
            f"0..{num_classes - 1} and ignore_index {ignore_index}"
        )


def _raising_data_errors(decode):
    """``decode`` whose errors are ``DataError``s (a loader's own decoder raises ValueError,
    FileNotFoundError and the like, naming the file)."""
    if decode is None:
        return None

    def wrapped(*item):
        try:
            return decode(*item)
        except DataError:
            raise
        except Exception as error:  # noqa: BLE001 - any decoder failure is a data error here
            message = " ".join(str(error).split()) or type(error).__name__
            if not isinstance(error, (ValueError, OSError, KeyError)):
                message = f"{type(error).__name__}: {message}"
            raise DataError(message) from None

    return wrapped


def _check_pair(image, label, image_path, label_path):
    """Header checks of one sample; -> whether its label needs a full decode (colour mode)."""
    if label is None:
        return False
    if label[0] in ("JPEG", "MPO"):
        raise DataError(
            f"label file {label_path!r} is a JPEG: its lossy compression "
            f"changes class indices at region edges; save labels as PNG "
            f"(grey or palette)"
        )
    if image is not None and image[2] != label[2]:
        (w, h), (lw, lh) = image[2], label[2]
        raise DataError(
            f"image/mask size mismatch: {image_path!r} is {w}x{h} but "
            f"{label_path!r} is {lw}x{lh} (width x height)"
        )
    return label[1] not in _INDEX_MODES


def _read_headers(items, decode, seconds):
    """-> (samples whose headers were read, indices of labels to decode first)."""
    decode_first, started, read = [], time.monotonic(), 0
    for index, item in enumerate(items):
        if time.monotonic() - started > seconds:
            break
        image_path, label_path = item[0], item[-1]
        try:
            image, label = _header(image_path, "image"), _header(label_path, "label")
        except DataError:
            if decode is None:
                raise
            decode(*item)  # the decoder (OpenCV) may read what Pillow cannot; if not it says so
            continue
        read += 1
        if _check_pair(image, label, image_path, label_path):
            decode_first.append(index)
    return read, decode_first


def check_files(
    ds,
    num_classes,
    ignore_index=255,
    *,
    header_seconds=HEADER_SECONDS,
    decode_seconds=DECODE_SECONDS,
):
    """Check the files behind a loaded split before training on it; raises ``DataError`` (a
    ValueError) naming the file and the problem. Returns the number of samples whose headers
    were read, or None for datasets whose files are not known (generated sets).

    Every label and image header is read (Pillow reads only a file's first bytes): a file that is
    not an image, a JPEG label (lossy compression changes class indices at the edges) and an
    image and label of different sizes are errors. Then a sample of the samples, spread over the
    split and led by labels stored in colour, is decoded in full by the dataset's own decoder
    (its errors: colour masks, corrupt files, values its table does not know) and the class
    indices it yields are checked against ``[0, num_classes)`` and ``ignore_index``. Each stage
    stops after its time budget, so large sets cost a few seconds; errors in files left out
    still stop training, with the same message, when the pipeline reaches them.
    """
    files = files_of(ds)
    if files is None or not files.items:
        return None
    items, decode = list(files.items), _raising_data_errors(files.decode)
    read, decode_first = _read_headers(items, decode, header_seconds)
    if decode is None:
        return read
    order = list(dict.fromkeys(decode_first + _spread(len(items), 64)))
    started = time.monotonic()
    for count, index in enumerate(order):
        if count and time.monotonic() - started > decode_seconds:
            break
        _, label = decode(*items[index])
        _check_values(label, items[index][-1], int(num_classes), ignore_index)
    return read


def check_split(dataset, data_dir=None, split="train", dataset_options=None):
    """``check_files`` on one split of a registered dataset (by name), with its class count and
    ignore index; what ``kerasseg train`` and ``evaluate`` run before building a model."""
    options = dict(dataset_options or {})
    meta = dataset_meta(dataset, data_dir, options)
    check_data_dir(dataset, data_dir)
    ds = datasets.load(dataset, data_dir=data_dir, split=split, **options)
    return check_files(ds, meta.num_classes, meta.ignore_index)
