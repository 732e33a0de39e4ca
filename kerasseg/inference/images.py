"""Turning what a caller passes (one image, a batch, a list; grey or colour) into float arrays
of the model's channel count, and remembering how to shape the result."""

import numpy as np

__all__ = ["as_image_array", "split_input", "size_pair"]


def as_image_array(image, channels, where):
    """One image as a float32 (H, W, C) array with the model's channel count (grey repeated)."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise ValueError(
            f"{where}: expected an image of shape (H, W), (H, W, 1) or (H, W, 3); "
            f"got shape {array.shape}."
        )
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"{where}: image has no pixels (shape {array.shape}).")
    if array.shape[-1] != channels:
        if array.shape[-1] == 1:
            array = np.repeat(array, channels, axis=-1)
        else:
            raise ValueError(
                f"{where}: the model takes {channels}-channel images; got "
                f"{array.shape[-1]} channels (shape {array.shape}). Pass "
                f"{channels}-channel or 1-channel (grayscale) images."
            )
    if array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise ValueError(f"{where}: images must hold numbers in [0, 255]; got dtype {array.dtype}.")
    return array.astype(np.float32, copy=False)


def split_input(images, channels):
    """-> (list of (H, W, C) float arrays, how to shape the result).

    Shapes: (H, W) and (H, W, C) are one image; (N, H, W) is a batch of grayscale images unless
    its last axis is 1 or the model's channel count; (N, H, W, C) is a batch; a list is a list.
    """
    if isinstance(images, (list, tuple)):
        arrays = [as_image_array(im, channels, f"images[{i}]") for i, im in enumerate(images)]
        return arrays, "list"
    array = np.asarray(images)
    if array.ndim == 2:
        return [as_image_array(array, channels, "image")], "single"
    if array.ndim == 3:
        if array.shape[-1] in (1, channels):
            return [as_image_array(array, channels, "image")], "single"
        return [as_image_array(a, channels, f"images[{i}]") for i, a in enumerate(array)], "batch"
    if array.ndim == 4:
        return [as_image_array(a, channels, f"images[{i}]") for i, a in enumerate(array)], "batch"
    raise ValueError(
        "images must be (H, W), (H, W, C), (N, H, W), (N, H, W, C) or a list of "
        f"images; got an array of shape {array.shape}."
    )


def size_pair(value, what):
    """An int or (height, width) as a pair of positive ints; a ValueError names ``what``."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value, value)
    try:
        height, width = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an int or (height, width); got {value!r}.") from None
    if height < 1 or width < 1:
        raise ValueError(f"{what} sides must be positive; got {value!r}.")
    return height, width
