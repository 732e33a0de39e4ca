"""Shared file reading for the loaders.

Files are listed and paired eagerly (so a missing folder or an unpaired image fails at `load` time
with the path in the message) and decoded lazily inside tf.data by OpenCV/Pillow through
`tf.numpy_function`: both release the GIL while decoding, so a parallel map scales over cores, and a
corrupt file surfaces as an error that names it. Label PNGs go through Pillow because a palette
("P" mode) PNG decoded by OpenCV or tf.io gives colours, not the class indices it stores.
"""

import os
import threading

import cv2
import numpy as np
import tensorflow as tf
from PIL import Image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
INVALID = -1  # marks a raw label value that has no meaning in a dataset's lookup table


def voc_colormap(n):
    """The PASCAL VOC colour map (bit-interleaved), used for sets without an official palette."""
    palette = np.zeros((n, 3), np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette[i] = (r, g, b)
    return palette


def check_split(dataset, split, valid):
    valid = list(valid)
    if split not in valid:
        raise ValueError(
            f"unknown split {split!r} for dataset {dataset!r}; valid splits: {', '.join(valid)}"
        )
    return split


def require_dir(path, dataset, layout):
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{dataset}: folder {path!r} not found. Expected layout:\n{layout}")
    return path


def list_images(folder, extensions=IMAGE_EXTENSIONS, suffix=""):
    """{stem: path} for the image files directly in `folder` whose name ends with suffix+extension
    (the stem has the suffix removed)."""
    out = {}
    for fname in sorted(os.listdir(folder)):
        base, ext = os.path.splitext(fname)
        if ext.lower() in extensions and base.endswith(suffix):
            out[base[: len(base) - len(suffix)] if suffix else base] = os.path.join(folder, fname)
    return out


def read_lines(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def pair_by_stem(images, masks, dataset, mask_folder):
    """Pairs (image, mask) for every image stem; an image without a mask is an error naming it."""
    missing = [stem for stem in images if stem not in masks]
    if missing:
        example = images[missing[0]]
        raise FileNotFoundError(
            f"{dataset}: {len(missing)} image(s) have no mask in {mask_folder!r}, e.g. {example!r} "
            f"(expected a mask named {missing[0]}.<ext>)"
        )
    return [(images[s], masks[s]) for s in sorted(images)]


# ----------------------------------------------------------------------------- decoding
_QUIET = {"depth": 0, "saved": None}
_QUIET_LOCK = threading.Lock()


class _QuietOpenCV:
    """OpenCV's own log lines off while decoding (a corrupt file is reported by our error, which
    names it). Counted, so overlapping decodes in parallel tf.data threads restore the user's
    level only when the last one ends."""

    _logging = getattr(getattr(cv2, "utils", None), "logging", None)

    def __enter__(self):
        if self._logging is None:
            return self
        with _QUIET_LOCK:
            if _QUIET["depth"] == 0:
                _QUIET["saved"] = self._logging.getLogLevel()
                self._logging.setLogLevel(self._logging.LOG_LEVEL_SILENT)
            _QUIET["depth"] += 1
        return self

    def __exit__(self, *exc):
        if self._logging is None:
            return False
        with _QUIET_LOCK:
            _QUIET["depth"] -= 1
            if _QUIET["depth"] == 0:
                self._logging.setLogLevel(_QUIET["saved"])
        return False


def read_rgb(path):
    """uint8 [H,W,3] RGB; raises ValueError naming the file when it cannot be decoded."""
    data = np.fromfile(path, np.uint8) if os.path.exists(path) else None
    if data is None:
        raise FileNotFoundError(f"image file not found: {path!r}")
    # EXIF orientation is ignored: label maps carry none, and rotating only the image would
    # misalign the pair.
    img = None
    if data.size:
        with _QuietOpenCV():
            img = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if img is None:
        raise ValueError(f"cannot decode image file {path!r} (corrupt or not an image)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_label(path, allow_rgb=False):
    """Raw label values as stored: palette indices for "P" PNGs, grey values otherwise
    (uint8 or uint16 [H,W]); with allow_rgb, RGB labels come back as uint8 [H,W,3]."""
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            arr = np.asarray(im)
    except FileNotFoundError:
        raise FileNotFoundError(f"label file not found: {path!r}") from None
    except Exception as e:  # PIL raises several types for truncated/garbled files
        raise ValueError(
            f"cannot decode label file {path!r} (corrupt or not an image): {e}"
        ) from None
    if mode in ("I", "I;16", "I;16B", "I;16L") and arr.dtype != np.uint16:
        arr = arr.astype(np.int64)
    if arr.ndim == 3:
        if allow_rgb:
            return arr[..., :3]
        rgb = arr[..., :3]
        # Grey labels saved as RGB(A) are accepted; true colour labels need the dataset's colour
        # table.
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            return rgb[..., 0]
        raise ValueError(
            f"label file {path!r} is a colour ({mode}) image; expected single-channel class "
            f"indices (grey or palette PNG)"
        )
    return arr


def make_lut(mapping, size=256, default=INVALID):
    """A lookup table raw value -> class index, `default` where `mapping` says nothing."""
    lut = np.full(size, default, np.int32)
    for raw, cls in mapping.items():
        lut[raw] = cls
    return lut


def identity_lut(num_classes, ignore_index=255, size=256):
    """Values 0..num_classes-1 stay, ignore_index stays, anything else is invalid."""
    mapping = {i: i for i in range(num_classes)}
    mapping[ignore_index] = ignore_index
    return make_lut(mapping, size=max(size, ignore_index + 1))


def apply_lut(raw, lut, path, valid_desc):
    """Map raw label values through `lut`; a value the table marks invalid is an error naming it."""
    raw = np.asarray(raw)
    if raw.size and (raw.min() < 0 or raw.max() >= len(lut)):
        bad = raw[(raw < 0) | (raw >= len(lut))]
        raise ValueError(f"label value {int(bad.flat[0])} in {path!r} is outside {valid_desc}")
    out = lut[raw]
    if (out == INVALID).any():
        bad = np.unique(raw[out == INVALID])
        raise ValueError(f"label value(s) {bad[:8].tolist()} in {path!r} outside {valid_desc}")
    return out


def check_same_size(image, mask, image_path, mask_path):
    if image.shape[:2] != mask.shape[:2]:
        raise ValueError(
            f"image/mask size mismatch: {image_path!r} is {image.shape[1]}x{image.shape[0]} "
            f"but {mask_path!r} is {mask.shape[1]}x{mask.shape[0]} (width x height)"
        )


def decode_pair_fn(lut, valid_desc, read_mask=read_label, read_image=read_rgb):
    """The usual decoder: RGB image + single-channel label mapped through `lut`."""

    def decode(image_path, mask_path):
        image = read_image(image_path)
        raw = read_mask(mask_path)
        check_same_size(image, raw, image_path, mask_path)
        return image, apply_lut(raw, lut, mask_path, valid_desc)

    return decode


def paths_dataset(
    items,
    decode,
    channels=3,
    label_shape=(None, None),
    shuffle_files=False,
    seed=None,
    num_parallel_calls=tf.data.AUTOTUNE,
):
    """tf.data pipeline over file tuples; `decode(*paths) -> (image uint8, label int32)` runs in
    Python (numpy_function) so its errors keep their file names. The returned dataset carries
    `kerasseg_files` (the tuples) and `kerasseg_decode` (the decoder) for `_registry.files_of`."""
    if not items:
        raise ValueError("no samples found")
    columns = tuple(list(col) for col in zip(*items))
    ds = tf.data.Dataset.from_tensor_slices(columns)
    if shuffle_files:
        ds = ds.shuffle(len(items), seed=seed, reshuffle_each_iteration=True)

    def _py(*paths):
        image, label = decode(*[p.decode("utf-8") for p in paths])
        return np.ascontiguousarray(image, np.uint8), np.ascontiguousarray(label, np.int32)

    def _map(*paths):
        image, label = tf.numpy_function(_py, list(paths), (tf.uint8, tf.int32), stateful=False)
        image.set_shape((None, None, channels))
        label.set_shape(label_shape)
        return image, label

    out = ds.map(_map, num_parallel_calls=num_parallel_calls)
    out.kerasseg_files = [tuple(item) for item in items]
    out.kerasseg_decode = decode
    return out
