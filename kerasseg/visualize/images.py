"""Writing images, palette PNGs of class maps, and side-by-side grids (image | truth |
prediction), optionally titled and with a class legend."""

import os

import cv2
import numpy as np

from kerasseg.visualize.colour import IGNORE_COLOUR, as_mask, as_rgb, colorize, make_palette
from kerasseg.visualize.legend import legend, present_classes, text_scale, title_row

__all__ = ["save_image", "save_label_png", "grid"]

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


def save_label_png(path, labels, palette):
    """Write a class map as a palette ("P" mode) PNG: its pixel values are the class indices
    (``np.array(PIL.Image.open(path))`` gives ``labels`` back) and a viewer shows each class in
    its ``palette`` colour, the ignore label 255 in ``IGNORE_COLOUR`` (unless the palette has
    256 colours). Needs labels in [0, 255] and at most 256 colours."""
    from PIL import Image

    labels = as_mask(labels)
    colours = np.asarray(palette)
    if colours.ndim != 2 or colours.shape[1] != 3 or not 1 <= len(colours) <= 256:
        raise ValueError(
            f"save_label_png: palette must be 1 to 256 RGB colours (K, 3); got {colours.shape}."
        )
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError("save_label_png: a PNG palette image holds labels 0 to 255 only.")
    table = np.zeros((256, 3), np.uint8)
    table[255] = IGNORE_COLOUR
    table[: len(colours)] = np.clip(colours, 0, 255)
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    picture = Image.fromarray(labels.astype(np.uint8))  # "L"; a palette makes it "P"
    picture.putpalette(table.ravel().tolist())
    picture.save(path, format="PNG")
    return path


def grid(
    images,
    truths,
    predictions,
    palette=None,
    path=None,
    gap=4,
    ignore_index=255,
    titles=None,
    class_names=None,
):
    """One picture with a row per sample: image | ground truth | prediction.

    Args:
        images: sequence of (H, W, 3) images (rows may differ in size).
        truths: matching (H, W) class maps, or None to leave the truth column out.
        predictions: matching (H, W) class maps.
        palette: (K, 3) colours for both maps (default ``palette`` of the largest label + 1).
        path: if given, the grid is also written there (e.g. a .png).
        gap: white pixels between cells and rows.
        titles: a title per column (e.g. ``("image", "ground truth", "prediction")``), drawn
            in a strip above the grid; each column is then as wide as its widest cell (narrower
            cells padded white on the right) so that the titles sit over their columns.
        class_names: names by class index; given, a legend of the classes present in the
            truths and predictions (a swatch and a name each) is drawn below the grid.

    Returns:
        RGB uint8 array. Without titles and legend: of height ``sum(H_i) + gap * (rows - 1)``
        and width ``max(columns * W_i) + gap * (columns - 1)``; a title strip and a legend
        strip (each followed or preceded by ``gap``) add to the height.
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
        rows.append(cells)
    picture = _layout(rows, gap, titles)
    classes = []
    if class_names is not None:
        classes = present_classes(*predictions, *(truths or []), ignore_index=ignore_index)
    if classes:
        # Text as large as the titles': sized by a cell, not by the whole grid's width.
        scale = text_scale(min(cell.shape[1] for row in rows for cell in row))
        strip = legend(classes, class_names, palette, picture.shape[1], scale=scale)
        picture = _join([picture, strip], 0, gap)
    if path is not None:
        save_image(path, picture)
    return picture


def _layout(rows, gap, titles):
    """Rows of cells joined into one picture, under a strip of column titles if given."""
    widths = None
    if titles is not None:
        columns = len(rows[0])
        if len(titles) != columns:
            raise ValueError(f"grid: {len(titles)} titles for {columns} columns.")
        widths = [max(row[c].shape[1] for row in rows) for c in range(columns)]
        rows = [[_pad_to(cell, cell.shape[0], w) for cell, w in zip(row, widths)] for row in rows]
    rows = [_join(cells, axis=1, gap=gap) for cells in rows]
    width = max(row.shape[1] for row in rows)
    rows = [_pad_to(row, row.shape[0], width) for row in rows]
    if titles is not None:
        rows.insert(0, title_row(titles, widths, gap=gap))
    return _join(rows, axis=0, gap=gap)


def _pad_to(picture, height, width):
    """``picture`` padded white at the bottom and right to ``height`` x ``width``."""
    extra = ((0, height - picture.shape[0]), (0, width - picture.shape[1]), (0, 0))
    return np.pad(picture, extra, constant_values=_GAP_COLOUR)


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
        pieces = [_pad_to(p, height, p.shape[1]) for p in pieces]
    return np.concatenate(pieces, axis=axis)
