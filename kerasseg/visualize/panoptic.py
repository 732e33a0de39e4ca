"""Panoptic overlays: stuff in its class colour, each thing instance in its own shade of its
class colour, segment outlines.

    out = kerasseg.inference.predict(model, image)          # {"panoptic": class*1000 + instance}
    picture = kerasseg.visualize.panoptic_overlay(image, out["panoptic"], info.palette,
                                                  info.thing_classes)
    kerasseg.visualize.save_image("panoptic.png", picture)

A panoptic map holds ``class * label_divisor + instance`` per pixel (int ``[H, W]``); a dataset
target ``{"semantic", "instance_ids"}`` or a ``predict`` result ``{"panoptic", ...}`` is taken
as well. A pixel is void (drawn as the image, or ``void_colour``) when its id is negative or its
class has no colour in the palette (the 255 ignore class of a 19-colour palette, for one).

Shades (`instance_shade`): instance ``n >= 1`` of a thing class of colour ``c`` gets
``c + s * OFFSETS[(n - 1) % 26]`` per channel, where ``s`` is +1 for a channel below 128 and -1
otherwise (towards mid-grey, so a shade never leaves [0, 255]) and ``OFFSETS`` are the 26
non-zero vectors of {0, 30, 60}^3: (60,0,0), (0,60,0), (0,0,60), (60,60,0), (0,60,60),
(60,0,60), (60,60,60), then the 19 that hold a 30, in lexicographic order. So every shade is
within 60 of its class colour in each channel and 30 or more away from it in at least one, and
two instances of one class whose numbers differ by less than 26 never share a colour (their
offsets differ in some channel, by 30 or more). Instance 0 of a thing class (a crowd region)
and any stuff pixel get the class colour itself.
"""

import itertools

import numpy as np

from kerasseg.ops.palette import default_palette
from kerasseg.visualize.colour import as_rgb

__all__ = ["panoptic_overlay", "colorize_panoptic", "instance_shade", "panoptic_boundaries"]

SHADE_STEP = 30
# The 26 non-zero offset vectors of {0, 30, 60}^3: first the 7 of {0, 60}^3 (R, G, B, RG, GB,
# RB, RGB; consecutive ones 60 apart in a channel), then the 19 holding a 30, in lexicographic
# order.
_STRONG = ((2, 0, 0), (0, 2, 0), (0, 0, 2), (2, 2, 0), (0, 2, 2), (2, 0, 2), (2, 2, 2))
OFFSETS = SHADE_STEP * np.array(
    list(_STRONG) + [p for p in itertools.product((0, 1, 2), repeat=3) if 1 in p], np.int64
)


def instance_shade(colour, instance):
    """The RGB uint8 shade of class colour `colour` (3 values) for instance number `instance`
    (0: the colour itself; see the module docstring). Works on arrays: `colour` [..., 3] and
    `instance` broadcast to [...]."""
    colour = np.asarray(colour, np.int64)
    instance = np.asarray(instance, np.int64)
    offset = OFFSETS[np.maximum(instance - 1, 0) % len(OFFSETS)]
    offset = np.where((instance > 0)[..., None], offset, 0)
    sign = np.where(colour < 128, 1, -1)
    return (colour + sign * offset).astype(np.uint8)


def _as_panoptic(panoptic, label_divisor):
    if isinstance(panoptic, dict):
        if "panoptic" in panoptic:
            panoptic = panoptic["panoptic"]
        elif "semantic" in panoptic and "instance_ids" in panoptic:
            semantic = np.asarray(panoptic["semantic"], np.int64)
            ids = np.asarray(panoptic["instance_ids"], np.int64)
            if semantic.shape != ids.shape:
                raise ValueError(
                    f"semantic {semantic.shape} and instance_ids {ids.shape} differ in shape."
                )
            panoptic = semantic * label_divisor + ids
        else:
            raise ValueError(
                f"panoptic must be an int (H, W) map, or a dict with 'panoptic' or with "
                f"'semantic' and 'instance_ids'; got a dict with keys {sorted(panoptic)}."
            )
    panoptic = np.asarray(panoptic)
    if panoptic.ndim == 3 and panoptic.shape[-1] == 1:
        panoptic = panoptic[..., 0]
    if panoptic.ndim != 2:
        raise ValueError(
            f"panoptic must be a (H, W) map of class * label_divisor + instance; got shape "
            f"{panoptic.shape}."
        )
    if not np.issubdtype(panoptic.dtype, np.integer):
        if panoptic.dtype == bool or not np.all(np.equal(np.mod(panoptic, 1), 0)):
            raise ValueError(f"panoptic must hold integer ids; got dtype {panoptic.dtype}.")
    return panoptic.astype(np.int64)


def _check_divisor(label_divisor):
    if isinstance(label_divisor, bool) or int(label_divisor) != label_divisor or label_divisor < 1:
        raise ValueError(f"label_divisor must be a positive integer; got {label_divisor!r}.")
    return int(label_divisor)


def _palette(palette, classes):
    if palette is None:
        valid = classes[classes >= 0]
        return default_palette(int(valid.max()) + 1 if valid.size else 1).astype(np.int64)
    colours = np.asarray(palette)
    if colours.ndim != 2 or colours.shape[1] != 3:
        raise ValueError(
            f"palette must be an array of RGB colours, shape (K, 3); got shape {colours.shape}."
        )
    if colours.size and (colours.min() < 0 or colours.max() > 255):
        raise ValueError("palette colours must be in [0, 255].")
    return colours.astype(np.int64)


def _segments(panoptic, palette, thing_classes, label_divisor):
    """(class colours [H,W,3] int64, instance numbers [H,W], void [H,W], segment key [H,W]):
    the key is one id per drawn segment (-1 on void; stuff ignores the instance part)."""
    divisor = _check_divisor(label_divisor)
    panoptic = _as_panoptic(panoptic, divisor)
    classes = np.where(panoptic >= 0, panoptic // divisor, -1)
    colours = _palette(palette, classes)
    void = (panoptic < 0) | (classes >= len(colours))
    things = np.zeros(len(colours), bool)
    for c in thing_classes if thing_classes is not None else ():
        if isinstance(c, bool) or int(c) != c:
            raise ValueError(f"thing_classes must be class indices; got {c!r}.")
        if 0 <= int(c) < len(colours):
            things[int(c)] = True
    safe = np.where(void, 0, classes)
    is_thing = ~void & things[safe]
    instance = np.where(is_thing, panoptic % divisor, 0)
    key = np.where(void, -1, safe * divisor + instance)
    return colours[safe], instance, void, key


def panoptic_boundaries(key):
    """bool [H, W]: the outline pixels of an id map (1 px). A pixel that is not void (id -1) is
    on the outline when its right or lower neighbour has another id, or its left or upper
    neighbour is void; so between two segments the line lies in the upper / left one, and
    along void in the segment. Void pixels and the image border are never marked."""
    key = np.asarray(key)
    edge = np.zeros(key.shape, bool)
    edge[:, :-1] |= key[:, :-1] != key[:, 1:]
    edge[:-1, :] |= key[:-1, :] != key[1:, :]
    edge[:, 1:] |= key[:, :-1] == -1
    edge[1:, :] |= key[:-1, :] == -1
    return edge & (key != -1)


def colorize_panoptic(
    panoptic, palette=None, thing_classes=(), label_divisor=1000, void_colour=(0, 0, 0)
):
    """RGB uint8 ``(H, W, 3)`` picture of a panoptic map without the image: stuff (and crowd)
    in the class colour, thing instances in their shades (`instance_shade`), void in
    `void_colour`.

    Args:
        panoptic: int (H, W) ``class * label_divisor + instance``, or a dict with
            ``"panoptic"`` or with ``"semantic"`` and ``"instance_ids"``.
        palette: (K, 3) class colours (default ``palette(max class + 1)``).
        thing_classes: the class indices drawn instance by instance.
        label_divisor: the panoptic id's class multiplier (1000).
        void_colour: RGB of void pixels (negative ids, classes beyond the palette).
    """
    colours, instance, void, _ = _segments(panoptic, palette, thing_classes, label_divisor)
    out = instance_shade(colours, instance)
    out[void] = np.asarray(void_colour, np.uint8)
    return out


def panoptic_overlay(
    image,
    panoptic,
    palette=None,
    thing_classes=(),
    label_divisor=1000,
    alpha=0.5,
    outline=True,
    outline_colour=(255, 255, 255),
):
    """The image with the panoptic colours blended over it, RGB uint8 ``(H, W, 3)``.

    Each non-void pixel is ``round((1 - alpha) * image + alpha * colour)`` (numpy, round half
    to even), ``colour`` being the class colour for stuff and crowd pixels and the instance's
    shade for thing instances (see `colorize_panoptic`). Void pixels keep the image. With
    `outline`, the 1-px `panoptic_boundaries` of the segments are drawn in `outline_colour`
    (white; e.g. ``(0, 0, 0)`` for dark lines).

    Args:
        image: RGB (H, W, 3) or grayscale (H, W) image.
        panoptic: as in `colorize_panoptic`, at the image's size.
        alpha: the colour's weight, in [0, 1].
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha!r}.")
    image = as_rgb(image)
    colours, instance, void, key = _segments(panoptic, palette, thing_classes, label_divisor)
    if key.shape != image.shape[:2]:
        raise ValueError(
            f"panoptic map shape {key.shape} differs from the image's size {image.shape[:2]}."
        )
    shades = instance_shade(colours, instance).astype(np.float64)
    blended = np.rint((1.0 - alpha) * image.astype(np.float64) + alpha * shades)
    out = np.clip(blended, 0, 255).astype(np.uint8)
    out[void] = image[void]
    if outline:
        out[panoptic_boundaries(key)] = np.asarray(outline_colour, np.uint8)
    return out
