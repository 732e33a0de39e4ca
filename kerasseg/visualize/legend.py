"""Text drawn on pictures with OpenCV: column titles and a class legend (a colour swatch and the
class name for each class shown), each a white strip to stack with a picture; and the
enlargement of tiny images, so that what is drawn on them can be read.

    strip = kerasseg.visualize.title_row(["image", "prediction"], [256, 256], gap=4)
    picture = kerasseg.visualize.with_legend(overlay, labels, class_names, colours)
    image, labels = kerasseg.visualize.enlarge(image, labels, min_side=256)
"""

import math

import cv2
import numpy as np

from kerasseg.visualize.colour import as_mask, as_rgb

__all__ = [
    "title_row",
    "legend",
    "with_legend",
    "present_classes",
    "enlarge",
    "text_scale",
]

BACKGROUND = 255  # white, as the gaps of ``grid``
INK = (0, 0, 0)
BORDER = (128, 128, 128)  # around swatches: a white or black class still shows on white
FONT = cv2.FONT_HERSHEY_SIMPLEX
MIN_SCALE = 0.35  # below this the Hershey font is no longer legible


def text_scale(width):
    """The font scale for text on a picture ``width`` pixels wide: 0.5 up to 225 px (text about
    12 px high), growing with the picture so that a photo's legend is not a speck."""
    return float(np.clip(width / 450, 0.5, 2.5))


def _thickness(scale):
    return max(1, int(round(scale * 1.5)))


def _fit(text, scale, thickness, room):
    """The largest scale (<= ``scale``) at which ``text`` fits in ``room`` pixels."""
    width = cv2.getTextSize(text, FONT, scale, thickness)[0][0]
    if width <= room:
        return scale
    return max(MIN_SCALE, scale * room / width)


def _strip(height, width):
    return np.full((height, width, 3), BACKGROUND, np.uint8)


def title_row(titles, widths, gap=0, scale=None):
    """A white strip with each title centred over its column (columns ``widths`` pixels wide,
    ``gap`` pixels apart): RGB uint8 ``(height, sum(widths) + gap * (len - 1), 3)``.

    ``scale`` is the font scale (default ``text_scale`` of the narrowest column); a title too
    wide for its column is drawn smaller.
    """
    titles, widths = [str(t) for t in titles], [int(w) for w in widths]
    if len(titles) != len(widths):
        raise ValueError(f"title_row: {len(titles)} titles for {len(widths)} columns.")
    if scale is None:
        scale = text_scale(min(widths, default=0))
    thickness = _thickness(scale)
    (_, text_h), base = cv2.getTextSize("Ag", FONT, scale, thickness)
    pad = max(3, text_h // 2)
    strip = _strip(text_h + base + 2 * pad, sum(widths) + gap * max(len(widths) - 1, 0))
    left = 0
    for title, width in zip(titles, widths):
        size = _fit(title, scale, thickness, width - 4)
        text_w = cv2.getTextSize(title, FONT, size, thickness)[0][0]
        x = left + max((width - text_w) // 2, 0)
        cv2.putText(strip, title, (x, pad + text_h), FONT, size, INK, thickness, cv2.LINE_AA)
        left += width + gap
    return strip


def present_classes(*label_maps, ignore_index=255):
    """The sorted class indices found in any of ``label_maps`` (``ignore_index`` left out)."""
    found = set()
    for labels in label_maps:
        found.update(int(c) for c in np.unique(as_mask(labels)))
    found.discard(ignore_index)
    return sorted(found)


def _class_name(names, index):
    return str(names[index]) if names is not None and 0 <= index < len(names) else f"class_{index}"


def legend(classes, names, palette, width, scale=None):
    """A white strip naming ``classes``: a swatch of ``palette[c]`` and ``names[c]`` for each,
    left to right, wrapped into rows ``width`` pixels wide (wider when one entry needs more).

    Returns RGB uint8 ``(height, max(width, widest entry), 3)``; ``(0, width, 3)`` for no
    classes.
    """
    palette = np.asarray(palette)
    if scale is None:
        scale = text_scale(width)
    thickness = _thickness(scale)
    (_, text_h), base = cv2.getTextSize("Ag", FONT, scale, thickness)
    pad, side = max(3, text_h // 2), text_h + base
    entries = []
    for index in classes:
        text = _class_name(names, int(index))
        text_w = cv2.getTextSize(text, FONT, scale, thickness)[0][0]
        entries.append((int(index), text, side + pad + text_w))
    width = max([int(width)] + [w + 2 * pad for _, _, w in entries])
    places, x, y = [], pad, pad
    for entry in entries:
        if x > pad and x + entry[2] > width - pad:  # no room left on this row: the next one
            x, y = pad, y + side + pad
        places.append((entry, x, y))
        x += entry[2] + 2 * pad
    strip = _strip(y + side + pad if entries else 0, width)
    for (index, text, _), x, y in places:
        colour = tuple(int(c) for c in palette[index]) if index < len(palette) else INK
        cv2.rectangle(strip, (x, y), (x + side - 1, y + side - 1), colour, -1)
        cv2.rectangle(strip, (x, y), (x + side - 1, y + side - 1), BORDER, 1)
        origin = (x + side + pad, y + text_h)
        cv2.putText(strip, text, origin, FONT, scale, INK, thickness, cv2.LINE_AA)
    return strip


def with_legend(picture, labels, names, palette, ignore_index=255, gap=4):
    """``picture`` above a legend of the classes present in ``labels``: the picture keeps its
    pixels at the top left; a narrow one is padded white on the right when the legend needs
    more width. RGB uint8."""
    picture = as_rgb(picture)
    classes = present_classes(labels, ignore_index=ignore_index)
    if not classes:
        return picture
    strip = legend(classes, names, palette, picture.shape[1])
    extra = strip.shape[1] - picture.shape[1]
    picture = np.pad(picture, ((0, gap), (0, extra), (0, 0)), constant_values=BACKGROUND)
    return np.concatenate([picture, strip], axis=0)


def enlarge(image, *label_maps, min_side=256):
    """``image`` and its ``label_maps`` scaled up by the smallest whole factor that makes the
    image's short side at least ``min_side`` (unchanged when it already is): the image
    bilinearly, the label maps by repeating pixels, so labels stay labels and stay aligned.

    Returns ``(image, *label_maps)``.
    """
    image = np.asarray(image)
    factor = max(1, math.ceil(min_side / max(min(image.shape[:2]), 1)))
    if factor == 1:
        return (image, *label_maps)
    height, width = image.shape[:2]
    big = cv2.resize(image, (width * factor, height * factor), interpolation=cv2.INTER_LINEAR)
    if image.ndim == 3 and big.ndim == 2:  # OpenCV drops a single channel axis
        big = big[..., None]
    maps = [np.asarray(m).repeat(factor, axis=0).repeat(factor, axis=1) for m in label_maps]
    return (big, *maps)
