"""Class colours: the palette, colour masks and overlays (RGB uint8 arrays)."""

import cv2
import numpy as np

from kerasseg.ops.palette import default_palette

__all__ = ["palette", "colorize", "overlay", "IGNORE_COLOUR", "as_mask", "as_rgb"]

# The colour PASCAL VOC gives its 255 ("ignore") label: light grey, unlike any class colour.
IGNORE_COLOUR = (224, 224, 192)


# ``palette(num_classes)``: (num_classes, 3) uint8 RGB colours, kerasseg's default ones.
palette = default_palette
# The parameters named ``palette`` below shadow the function; they reach it by this name.
make_palette = default_palette


def _as_palette(colours, mask):
    if colours is None:
        valid = mask[mask >= 0]
        return make_palette(max(int(valid.max()) + 1 if valid.size else 1, 1))
    colours = np.asarray(colours)
    if colours.ndim != 2 or colours.shape[1] != 3:
        raise ValueError(
            f"palette must be an array of RGB colours, shape (K, 3); got shape {colours.shape}."
        )
    if colours.size and (colours.min() < 0 or colours.max() > 255):
        raise ValueError("palette colours must be in [0, 255].")
    return colours.astype(np.uint8)


def as_mask(mask, where="mask"):
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(
            f"{where} must be a (H, W) array of class indices; got shape {mask.shape}."
        )
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
    mask = as_mask(mask)
    colours = _as_palette(palette, mask if ignore_index is None else mask[mask != ignore_index])
    ignored = np.zeros(mask.shape, bool) if ignore_index is None else mask == ignore_index
    labels = mask[~ignored]
    if labels.size and (labels.min() < 0 or labels.max() >= len(colours)):
        bad = labels.min() if labels.min() < 0 else labels.max()
        raise ValueError(
            f"mask holds label {int(bad)}, outside the palette's {len(colours)} "
            f"colours [0, {len(colours) - 1}] and not ignore_index ({ignore_index})."
        )
    out = np.empty(mask.shape + (3,), np.uint8)
    out[~ignored] = colours[labels]
    out[ignored] = np.asarray(ignore_colour, np.uint8)
    return out


def as_rgb(image, where="image"):
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise ValueError(
            f"{where} must be RGB (H, W, 3) or grayscale (H, W); got shape {image.shape}."
        )
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
    image = as_rgb(image)
    mask = as_mask(mask)
    if mask.shape != image.shape[:2]:
        raise ValueError(
            f"mask shape {mask.shape} differs from the image's size {image.shape[:2]}."
        )
    colours = colorize(mask, palette, ignore_index)
    blended = cv2.addWeighted(image, 1.0 - alpha, colours, alpha, 0.0)
    if ignore_index is not None:
        keep = mask == ignore_index
        blended[keep] = image[keep]
    return blended
