"""Colour palettes, colour masks, overlays, side-by-side grids and training curves.

All images here are RGB uint8 arrays; ``save_image`` converts to OpenCV's BGR when writing.

    colours = kerasseg.visualize.palette(21)               # VOC colours, (21, 3) uint8
    kerasseg.visualize.save_image("mask.png", kerasseg.visualize.colorize(labels, colours))
    kerasseg.visualize.save_image("overlay.png", kerasseg.visualize.overlay(image, labels, colours))
    kerasseg.visualize.grid(images, truths, predictions, colours, path="val.png")
    kerasseg.visualize.plot_history(history, "curves.png")  # History, dict or CSVLogger file

Plots are ``matplotlib.figure.Figure`` objects drawn on the Agg canvas without pyplot, so they
work on machines without a display and leave pyplot's global state alone.
"""
import csv
import math
import os

import cv2
import numpy as np

from kerasseg.ops.palette import default_palette

__all__ = ["palette", "colorize", "overlay", "save_image", "grid", "plot_history",
           "plot_confusion_matrix", "plot_per_class_iou", "IGNORE_COLOUR"]

# The colour PASCAL VOC gives its 255 ("ignore") label: light grey, unlike any class colour.
IGNORE_COLOUR = (224, 224, 192)
_GAP_COLOUR = 255


def palette(num_classes):
    """``(num_classes, 3)`` uint8 RGB colours (``kerasseg.ops.palette.default_palette``)."""
    return default_palette(num_classes)


# The parameters named ``palette`` below shadow the function; they reach it by this name.
_make_palette = palette


def _as_palette(colours, mask):
    if colours is None:
        valid = mask[mask >= 0]
        return _make_palette(max(int(valid.max()) + 1 if valid.size else 1, 1))
    colours = np.asarray(colours)
    if colours.ndim != 2 or colours.shape[1] != 3:
        raise ValueError(f"palette must be an array of RGB colours, shape (K, 3); got shape "
                         f"{colours.shape}.")
    if colours.size and (colours.min() < 0 or colours.max() > 255):
        raise ValueError("palette colours must be in [0, 255].")
    return colours.astype(np.uint8)


def _as_mask(mask, where="mask"):
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(f"{where} must be a (H, W) array of class indices; got shape "
                         f"{mask.shape}.")
    if not np.issubdtype(mask.dtype, np.integer):
        if not np.all(np.equal(np.mod(mask, 1), 0)):
            raise ValueError(f"{where} must hold integer class indices; got dtype {mask.dtype}.")
        mask = mask.astype(np.int64)
    return mask


def colorize(mask, palette=None, ignore_index=255, ignore_colour=IGNORE_COLOUR):
    """RGB uint8 ``(H, W, 3)`` image of a class map: pixel of class c gets ``palette[c]``.

    Args:
        mask: (H, W) class indices.
        palette: (K, 3) colours; default ``palette(max label + 1)``.
        ignore_index: label drawn in ``ignore_colour`` (None: no ignored label).
        ignore_colour: RGB for ignored pixels (VOC's light grey by default).
    """
    mask = _as_mask(mask)
    colours = _as_palette(palette, mask if ignore_index is None else mask[mask != ignore_index])
    ignored = np.zeros(mask.shape, bool) if ignore_index is None else mask == ignore_index
    labels = mask[~ignored]
    if labels.size and (labels.min() < 0 or labels.max() >= len(colours)):
        bad = labels.min() if labels.min() < 0 else labels.max()
        raise ValueError(f"mask holds label {int(bad)}, outside the palette's {len(colours)} "
                         f"colours [0, {len(colours) - 1}] and not ignore_index ({ignore_index}).")
    out = np.empty(mask.shape + (3,), np.uint8)
    out[~ignored] = colours[labels]
    out[ignored] = np.asarray(ignore_colour, np.uint8)
    return out


def _as_rgb(image, where="image"):
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise ValueError(f"{where} must be RGB (H, W, 3) or grayscale (H, W); got shape "
                         f"{image.shape}.")
    image = image[..., :3]
    if image.dtype != np.uint8:
        image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


def overlay(image, mask, palette=None, alpha=0.5, ignore_index=255):
    """The image with the colour mask blended over it: ``(1 - alpha) * image + alpha * colour``.

    Pixels labelled ``ignore_index`` show the image unchanged. Returns RGB uint8.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha!r}.")
    image = _as_rgb(image)
    mask = _as_mask(mask)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} differs from the image's size "
                         f"{image.shape[:2]}.")
    colours = colorize(mask, palette, ignore_index)
    blended = cv2.addWeighted(image, 1.0 - alpha, colours, alpha, 0.0)
    if ignore_index is not None:
        keep = mask == ignore_index
        blended[keep] = image[keep]
    return blended


def save_image(path, rgb):
    """Write an RGB (or grayscale) uint8 image; the format follows the extension (.png, .jpg)."""
    path = os.fspath(path)
    image = np.asarray(rgb)
    if image.ndim == 3 and image.shape[-1] == 3:
        image = cv2.cvtColor(_as_rgb(image), cv2.COLOR_RGB2BGR)
    elif image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 1):
        image = image.reshape(image.shape[:2])
        if image.dtype not in (np.uint8, np.uint16):
            image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    else:
        raise ValueError(f"save_image: expected (H, W, 3) RGB or (H, W) grayscale; got shape "
                         f"{image.shape}.")
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    try:
        ok = cv2.imwrite(path, image)
    except cv2.error as error:
        raise ValueError(f"save_image: could not write {path!r}: {error}") from error
    if not ok:
        raise ValueError(f"save_image: could not write {path!r} (is the extension an image "
                         "format OpenCV knows, e.g. .png or .jpg?).")
    return path


def grid(images, truths, predictions, palette=None, path=None, gap=4, ignore_index=255):
    """One picture with a row per sample: image | ground truth | prediction.

    Args:
        images: sequence of (H, W, 3) images (rows may differ in size).
        truths: matching (H, W) class maps, or None to leave the truth column out.
        predictions: matching (H, W) class maps.
        palette: (K, 3) colours for both maps (default ``palette`` of the largest label + 1).
        path: if given, the grid is also written there (e.g. a .png).
        gap: white pixels between cells and rows.

    Returns:
        RGB uint8 array of height ``sum(H_i) + gap * (rows - 1)`` and width
        ``max(columns * W_i) + gap * (columns - 1)``.
    """
    images, predictions = list(images), list(predictions)
    truths = None if truths is None else list(truths)
    if len(predictions) != len(images) or (truths is not None and len(truths) != len(images)):
        raise ValueError(f"grid: got {len(images)} images, "
                         f"{'no' if truths is None else len(truths)} truths and "
                         f"{len(predictions)} predictions; the counts must match.")
    if not images:
        raise ValueError("grid: no images given.")
    if palette is None:
        labels = [np.asarray(m) for m in predictions + (truths or [])]
        top = max(int(m[m != ignore_index].max(initial=0)) for m in labels)
        palette = _make_palette(top + 1)
    rows = []
    for i, image in enumerate(images):
        cells = [_as_rgb(image, f"images[{i}]")]
        maps = ([truths[i]] if truths is not None else []) + [predictions[i]]
        for name, labels in zip(("truths", "predictions")[-len(maps):], maps):
            labels = _as_mask(labels, f"{name}[{i}]")
            if labels.shape != cells[0].shape[:2]:
                raise ValueError(f"grid: {name}[{i}] has shape {labels.shape}, its image "
                                 f"{cells[0].shape[:2]}.")
            cells.append(colorize(labels, palette, ignore_index))
        rows.append(_join(cells, axis=1, gap=gap))
    width = max(row.shape[1] for row in rows)
    rows = [np.pad(row, ((0, 0), (0, width - row.shape[1]), (0, 0)),
                   constant_values=_GAP_COLOUR) for row in rows]
    picture = _join(rows, axis=0, gap=gap)
    if path is not None:
        save_image(path, picture)
    return picture


def _join(parts, axis, gap):
    """Concatenate images along ``axis`` with ``gap`` white pixels between them."""
    pieces = []
    for i, part in enumerate(parts):
        if i and gap:
            shape = list(part.shape)
            shape[axis] = gap
            pieces.append(np.full(shape, _GAP_COLOUR, np.uint8))
        pieces.append(part)
    if axis == 1:
        height = max(p.shape[0] for p in pieces)
        pieces = [np.pad(p, ((0, height - p.shape[0]), (0, 0), (0, 0)),
                         constant_values=_GAP_COLOUR) for p in pieces]
    return np.concatenate(pieces, axis=axis)


# ----------------------------------------------------------------------------- training curves

def _read_history(history):
    """-> (epochs, {name: values}) from a History, a dict of lists or a CSVLogger file."""
    if hasattr(history, "history") and isinstance(history.history, dict):
        epochs = getattr(history, "epoch", None)
        history = history.history
    elif isinstance(history, dict):
        epochs = None
    elif isinstance(history, (str, os.PathLike)):
        path = os.fspath(history)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"plot_history: no such history file: {path!r}.")
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            raise ValueError(f"plot_history: {path!r} has no rows (expected a CSVLogger file).")
        history = {key: [float(r[key]) if r[key] not in ("", None) else math.nan for r in rows]
                   for key in rows[0]}
        epochs = history.pop("epoch", None)
    else:
        raise ValueError("plot_history takes a keras History, a dict of per-epoch lists or the "
                         f"path of a CSVLogger file; got {type(history).__name__}.")
    series = {str(k): np.asarray(v, np.float64).ravel() for k, v in history.items()}
    series = {k: v for k, v in series.items() if v.size}
    if not series:
        raise ValueError("plot_history: the history holds no values.")
    length = max(len(v) for v in series.values())
    if epochs is None or len(epochs) != length:
        epochs = range(length)
    # Epochs are shown counting from 1, as Keras prints them.
    return np.asarray(epochs, np.float64) + 1, series


def plot_history(history, path=None):
    """Training curves, one panel per metric with its ``val_`` counterpart on the same axes.

    Args:
        history: ``model.fit``'s History, its ``.history`` dict, or a CSVLogger file path.
        path: if given, the figure is written there (format from the extension).

    Returns:
        The ``matplotlib.figure.Figure``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs, series = _read_history(history)
    names = [k for k in series if not k.startswith("val_")]
    # A validation metric logged without its training twin still gets a panel.
    names += [k for k in series if k.startswith("val_") and k[4:] not in series]
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        curves = [(name, "validation" if name.startswith("val_") else "train")]
        if f"val_{name}" in series:
            curves.append((f"val_{name}", "validation"))
        for key, label in curves:
            values = series[key]
            ax.plot(epochs[:len(values)], values, marker="o" if len(values) < 30 else None,
                    markersize=3, label=label)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        if name in ("lr", "learning_rate") and np.all(series[name] > 0):
            ax.set_yscale("log")
        if len(ax.lines) > 1:
            ax.legend()
    if path is not None:
        path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=100)
    return fig


# ----------------------------------------------------------------------------- evaluation plots

from kerasseg.visualize_metrics import plot_confusion_matrix, plot_per_class_iou  # noqa: E402,F401
