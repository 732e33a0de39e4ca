"""Pasting box-frame instance masks (Mask R-CNN's m x m probabilities) into the image.

The convention is Detectron2's ``paste_masks_in_image`` and TF Model Garden's
``paste_instance_masks``: the ``m x m`` mask covers its box exactly (cell ``i`` spans
``[y1 + i * h / m, y1 + (i + 1) * h / m)`` of a box ``h`` pixels high), it is resized to the box
with bilinear interpolation, beyond its border it is zero (the mask padded by one zero cell, as
Model Garden does), and an image pixel is on where the value at its centre is
``>= threshold``. Only pixels whose centres lie in the box (``y1 <= y + 0.5 < y2``) can be on, so
a pasted mask is always inside its box, and inside the image (a box partly outside is clipped).

For an integer box the result is what ``cv2.resize`` of the zero-padded ``(m + 2) x (m + 2)``
mask to the box grown by one cell gives (Model Garden's scheme); for a fractional box it is the
exact bilinear value at each pixel centre, with no rounding of the box to whole pixels.

The resize is separable: ``mask_in_image = Wy @ mask @ Wx.T`` with ``Wy`` the ``(rows, m)``
bilinear weights of the image rows in the mask's rows (two non-zero weights a row), so
``paste_masks`` (NumPy, box by box, over the box's pixels only) and ``paste_masks_tf`` (TensorFlow,
all boxes at once, graph- and SavedModel-friendly, no NumPy) compute the same numbers and differ
only by float rounding, i.e. at most at pixels whose value is within ~1e-6 of the threshold.
"""

import numpy as np
import tensorflow as tf

__all__ = ["paste_masks", "paste_masks_tf", "box_pixel_range", "tight_boxes"]


def _check(masks, boxes):
    if masks.ndim != 3 or masks.shape[1] < 1 or masks.shape[2] < 1:
        raise ValueError(f"masks must be (D, m, m) box-frame masks; got shape {masks.shape}.")
    if boxes.shape != (masks.shape[0], 4):
        raise ValueError(
            f"boxes must be ({masks.shape[0]}, 4) y1, x1, y2, x2 (one per mask); "
            f"got shape {boxes.shape}."
        )


def box_pixel_range(start, stop, size):
    """The pixels ``[first, last)`` of one axis whose centres ``p + 0.5`` lie in
    ``[start, stop)``, clipped to ``[0, size)``."""
    first = int(np.clip(np.ceil(start - 0.5), 0, size))
    last = int(np.clip(np.ceil(stop - 0.5), first, size))
    return first, last


def _weights(centres, start, stop, cells):
    """(len(centres), cells) bilinear weights of pixel centres in a box side split in
    ``cells`` cells, zero beyond the mask's border (float64)."""
    span = max(stop - start, 1e-6)
    position = (centres - start) / span * cells - 0.5  # in cell units, cell centres at 0..m-1
    low = np.floor(position)
    frac = position - low
    low = low.astype(np.int64)
    weights = np.zeros((len(centres), cells + 2))  # columns: cells -1 .. m (the zero border)
    rows = np.arange(len(centres))
    weights[rows, np.clip(low + 1, 0, cells + 1)] += 1.0 - frac
    weights[rows, np.clip(low + 2, 0, cells + 1)] += frac
    return weights[:, 1:-1]


def paste_masks(masks, boxes, height, width, threshold=0.5):
    """Box-frame masks to full-image boolean masks (NumPy).

    Args:
        masks: (D, m, m) (or (D, mh, mw)) mask probabilities, each covering its box.
        boxes: (D, 4) boxes y1, x1, y2, x2 in image pixels (fractional, may leave the image).
        height, width: the image's size.
        threshold: a pixel is on where the interpolated probability is ``>= threshold``.

    Returns:
        bool (D, height, width); a mask is empty for a box with no pixel centre inside it.
    """
    masks = np.asarray(masks, np.float64)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4) if np.size(boxes) else np.zeros((0, 4))
    if masks.ndim == 3 and masks.shape[0] == 0:
        return np.zeros((0, int(height), int(width)), bool)
    _check(masks, boxes)
    height, width = int(height), int(width)
    out = np.zeros((len(masks), height, width), bool)
    for index, (mask, (y1, x1, y2, x2)) in enumerate(zip(masks, boxes)):
        top, bottom = box_pixel_range(y1, y2, height)
        left, right = box_pixel_range(x1, x2, width)
        if bottom <= top or right <= left:
            continue
        wy = _weights(np.arange(top, bottom) + 0.5, y1, y2, mask.shape[0])
        wx = _weights(np.arange(left, right) + 0.5, x1, x2, mask.shape[1])
        out[index, top:bottom, left:right] = (wy @ mask @ wx.T) >= threshold
    return out


def _weights_tf(size, start, stop, cells):
    """(D, size, cells) bilinear weights of every pixel centre of one axis, zero for pixels
    whose centre is outside the box (float32)."""
    centres = tf.cast(tf.range(size), tf.float32)[None, :] + 0.5  # (1, size)
    start, stop = start[:, None], stop[:, None]  # (D, 1)
    span = tf.maximum(stop - start, 1e-6)
    position = (centres - start) / span * tf.cast(cells, tf.float32) - 0.5
    low = tf.floor(position)
    frac = position - low
    low = tf.cast(low, tf.int32)
    # one_hot of -1 or m is all zeros: the mask's zero border.
    weights = tf.one_hot(low, cells) * (1.0 - frac)[..., None]
    weights += tf.one_hot(low + 1, cells) * frac[..., None]
    inside = tf.logical_and(centres >= start, centres < stop)
    return weights * tf.cast(inside, tf.float32)[..., None]


def paste_masks_tf(masks, boxes, height, width, threshold=0.5):
    """``paste_masks`` in TensorFlow ops only (usable in a ``tf.function`` / SavedModel).

    Args:
        masks: float (D, mh, mw) box-frame probabilities (static mh, mw).
        boxes: float (D, 4) y1, x1, y2, x2 in image pixels.
        height, width: ints or scalar int tensors.
        threshold: a pixel is on where the probability is ``>= threshold``.

    Returns:
        bool tensor (D, height, width). Memory is ``D * height * width`` floats; call it per
        image (or in chunks of detections) for big images.
    """
    masks = tf.convert_to_tensor(masks, tf.float32)
    boxes = tf.reshape(tf.cast(boxes, tf.float32), [-1, 4])
    cells_y, cells_x = masks.shape[1], masks.shape[2]
    if cells_y is None or cells_x is None:
        cells_y, cells_x = tf.shape(masks)[1], tf.shape(masks)[2]
    wy = _weights_tf(height, boxes[:, 0], boxes[:, 2], cells_y)  # (D, H, mh)
    wx = _weights_tf(width, boxes[:, 1], boxes[:, 3], cells_x)  # (D, W, mw)
    values = tf.matmul(tf.matmul(wy, masks), wx, transpose_b=True)  # (D, H, W)
    return values >= threshold


def tight_boxes(masks):
    """float32 [M,4] (y1, x1, y2, x2) tight boxes of masks [M,H,W] (y2, x2 one past the last
    row / column), and bool [M]: the mask is non-empty (its box is 0 when empty)."""
    rows = tf.cast(tf.reduce_any(masks > 0, axis=2), tf.int32)  # [M, H]
    cols = tf.cast(tf.reduce_any(masks > 0, axis=1), tf.int32)  # [M, W]
    present = tf.reduce_any(rows > 0, axis=1)

    def span(hits):
        first = tf.argmax(hits, axis=1, output_type=tf.int32)
        last = tf.shape(hits)[1] - tf.argmax(tf.reverse(hits, [1]), axis=1, output_type=tf.int32)
        return first, last

    y1, y2 = span(rows)
    x1, x2 = span(cols)
    boxes = tf.cast(tf.stack([y1, x1, y2, x2], axis=1), tf.float32)
    return tf.where(present[:, None], boxes, 0.0), present
