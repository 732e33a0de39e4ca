"""The default class colours (NumPy only, so models and export can use them without OpenCV)."""

import colorsys

import numpy as np

_VOC_COLOURS = 256


def default_palette(num_classes):
    """``(num_classes, 3)`` uint8 RGB colours, the same for the same count.

    The first 256 are PASCAL VOC's bit-interleaved colours (index 0 black, 1 dark red, 2 green,
    ...; 255 is VOC's ignore grey), so VOC masks look as in the dataset. Beyond 256 the hue
    steps by the golden angle, which keeps consecutive colours far apart.
    """
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, (int, np.integer))
        or num_classes < 0
    ):
        raise ValueError(f"num_classes must be a non-negative integer; got {num_classes!r}.")
    colours = np.zeros((num_classes, 3), np.uint8)
    for index in range(min(num_classes, _VOC_COLOURS)):
        code, rgb = index, [0, 0, 0]
        # Bits 0, 1, 2 of each 3-bit group of the index go to R, G, B, from the top bit down.
        for bit in range(7, -1, -1):
            for channel in range(3):
                rgb[channel] |= ((code >> channel) & 1) << bit
            code >>= 3
        colours[index] = rgb
    for index in range(_VOC_COLOURS, num_classes):
        hue = (index * 137.50776) % 360 / 360
        value = (230 - 60 * (index % 2)) / 255
        colours[index] = np.round(np.array(colorsys.hsv_to_rgb(hue, 200 / 255, value)) * 255)
    return colours
