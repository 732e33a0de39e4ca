"""Writing images and side-by-side grids (image | truth | prediction)."""

import os

import cv2
import numpy as np

from kerasseg.visualize.colour import as_mask, as_rgb, colorize, make_palette

__all__ = ["save_image", "grid"]

_GAP_COLOUR = 255


def save_image(path, rgb):
    """Write an RGB (or grayscale) uint8 image; the format follows the extension (.png, .jpg)."""
    path = os.fspath(path)
    image = np.asarray(rgb)
    if image.ndim == 3 and image.shape[-1] == 3:
        image = cv2.cvtColor(as_rgb(image), cv2.COLOR_RGB2BGR)
    elif image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 1):
        image = image.reshape(image.shape[:2])
        if image.dtype not in (np.uint8, np.uint16):
            image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    else:
        raise ValueError(
            f"save_image: expected (H, W, 3) RGB or (H, W) grayscale; got shape {image.shape}."
        )
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    try:
        ok = cv2.imwrite(path, image)
    except cv2.error as error:
        raise ValueError(f"save_image: could not write {path!r}: {error}") from error
    if not ok:
        raise ValueError(
            f"save_image: could not write {path!r} (is the extension an image "
            "format OpenCV knows, e.g. .png or .jpg?)."
        )
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
        raise ValueError(
            f"grid: got {len(images)} images, "
            f"{'no' if truths is None else len(truths)} truths and "
            f"{len(predictions)} predictions; the counts must match."
        )
    if not images:
        raise ValueError("grid: no images given.")
    if palette is None:
        labels = [np.asarray(m) for m in predictions + (truths or [])]
        top = max(int(m[m != ignore_index].max(initial=0)) for m in labels)
        palette = make_palette(top + 1)
    rows = []
    for i, image in enumerate(images):
        cells = [as_rgb(image, f"images[{i}]")]
        maps = ([truths[i]] if truths is not None else []) + [predictions[i]]
        for name, labels in zip(("truths", "predictions")[-len(maps) :], maps):
            labels = as_mask(labels, f"{name}[{i}]")
            if labels.shape != cells[0].shape[:2]:
                raise ValueError(
                    f"grid: {name}[{i}] has shape {labels.shape}, its image {cells[0].shape[:2]}."
                )
            cells.append(colorize(labels, palette, ignore_index))
        rows.append(_join(cells, axis=1, gap=gap))
    width = max(row.shape[1] for row in rows)
    rows = [
        np.pad(row, ((0, 0), (0, width - row.shape[1]), (0, 0)), constant_values=_GAP_COLOUR)
        for row in rows
    ]
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
        pieces = [
            np.pad(p, ((0, height - p.shape[0]), (0, 0), (0, 0)), constant_values=_GAP_COLOUR)
            for p in pieces
        ]
    return np.concatenate(pieces, axis=axis)
