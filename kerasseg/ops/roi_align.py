"""ROIAlign (He et al. 2017) as gathers and pooling, one level or a whole feature pyramid.

The definition is torchvision's ``roi_align(aligned=True, sampling_ratio=S)``: a box
``(y1, x1, y2, x2)`` in image pixels is scaled to the map (``* scale``) and shifted by half a
pixel (the aligned convention: pixel centres sit at integer + 0.5), split into ``P x P`` bins,
each sampled at ``S x S`` evenly spaced points by bilinear interpolation, and the samples of a
bin averaged. A sample more than one pixel outside the map reads 0; one within a pixel of the
edge reads the edge (torchvision's clamping).

Why not ``tf.image.crop_and_resize``: it samples corner-aligned points (box corners included,
no bin averaging), which is not ROIAlign, and TFLite has no builtin for it. Here every box is
one row of index arithmetic, and every pixel that any bin of any box on any level reads comes
from one ``tf.gather`` on the maps flattened into a single table: no loop over boxes.
"""

import tensorflow as tf

__all__ = ["fpn_levels", "multilevel_roi_align", "roi_align"]


def _axis_samples(start, end, size, bins, ratio):
    """Sample coordinates along one axis -> (low index, high index, low weight, high weight),
    each [R, bins * ratio]; out-of-map samples get zero weights."""
    length = end - start
    steps = (tf.range(bins * ratio, dtype=tf.float32) + 0.5) / ratio  # in bins, [bins*ratio]
    coords = start[:, None] + steps[None, :] * (length / bins)[:, None]
    size_f = tf.cast(size, tf.float32)[:, None]
    inside = (coords >= -1.0) & (coords <= size_f)
    coords = tf.maximum(coords, 0.0)
    low = tf.floor(coords)
    at_edge = low >= size_f - 1.0
    low = tf.where(at_edge, size_f - 1.0, low)
    high = tf.where(at_edge, low, low + 1.0)
    coords = tf.where(at_edge, low, coords)
    frac = coords - low
    mask = tf.cast(inside, tf.float32)
    return tf.cast(low, tf.int32), tf.cast(high, tf.int32), (1.0 - frac) * mask, frac * mask


@tf.custom_gradient
def _gather_rows(table, index):
    """``tf.gather(table, index)`` whose gradient is a dense [T, C] tensor. tf.gather's own is
    sparse (IndexedSlices), and the pyramid's ``tf.concat`` then splits it per level by
    gathering every gradient row again before each level's segment sum: a second full copy of
    the largest tensor in a training step's ROI path."""

    def grad(upstream):
        return tf.math.unsorted_segment_sum(upstream, index, tf.shape(table)[0]), None

    return tf.gather(table, index), grad


def _sample(table, rows, heights, widths, offsets, boxes, scales, output_size, ratio):
    """Core: ``table`` [T, C] holds maps flattened row-major; per box, ``rows`` is the index of
    its image within its map's block, heights/widths/offsets/scales describe that map."""
    out_h, out_w = output_size
    boxes = boxes * scales[:, None] - 0.5
    y_lo, y_hi, wy_lo, wy_hi = _axis_samples(boxes[:, 0], boxes[:, 2], heights, out_h, ratio)
    x_lo, x_hi, wx_lo, wx_hi = _axis_samples(boxes[:, 1], boxes[:, 3], widths, out_w, ratio)

    def by_bin(low, high, w_low, w_high, bins):
        # [R, bins * ratio] each -> [R, bins, 2 * ratio]: a bin's samples, low and high pixel
        return (
            tf.reshape(tf.stack([low, high], -1), [-1, bins, 2 * ratio]),
            tf.reshape(tf.stack([w_low, w_high], -1), [-1, bins, 2 * ratio]),
        )

    ys, wys = by_bin(y_lo, y_hi, wy_lo, wy_hi, out_h)
    xs, wxs = by_bin(x_lo, x_hi, wx_lo, wx_hi, out_w)
    base = offsets + rows * heights * widths  # [R]
    # Every pixel a bin reads ([R, out_h, out_w, 2r, 2r]) in one gather, and its bilinear weight
    # (over r * r samples: the bin's mean folded in). One gather and a [1, 4r^2] x [4r^2, C]
    # product per bin: 2-3x faster than four corner gathers, each weighted and summed in turn
    # (every one of those passes wrote an [R, out_h * r, out_w * r, C] tensor).
    index = (
        base[:, None, None, None, None]
        + ys[:, :, None, :, None] * widths[:, None, None, None, None]
        + xs[:, None, :, None, :]
    )
    weight = wys[:, :, None, :, None] * wxs[:, None, :, None, :] / float(ratio * ratio)
    taps = 4 * ratio * ratio
    values = _gather_rows(table, tf.reshape(index, [-1, taps]))  # [R * out_h * out_w, taps, C]
    weight = tf.cast(tf.reshape(weight, [-1, 1, taps]), table.dtype)
    channels = table.shape[-1]
    shape = [-1, out_h, out_w, channels if channels is not None else tf.shape(table)[-1]]
    return tf.reshape(tf.matmul(weight, values), shape)


def roi_align(features, boxes, box_indices, output_size, scale=1.0, sampling_ratio=2):
    """ROIAlign on one map. ``features`` [B, H, W, C]; ``boxes`` [R, 4] (y1, x1, y2, x2) in
    image pixels; ``box_indices`` [R] int32 the image of each box; ``scale`` map / image size
    (1 / stride). Returns [R, out_h, out_w, C]."""
    return multilevel_roi_align(
        [features], boxes, box_indices, output_size, [scale], sampling_ratio, levels=None
    )


def fpn_levels(boxes, min_level=2, max_level=5, canonical_size=224.0, canonical_level=4):
    """FPN level of each box (Lin et al. 2017, eq. 1): ``floor(4 + log2(sqrt(wh) / 224))``,
    clamped to [min_level, max_level] (torchvision's ``LevelMapper``, eps 1e-6 included)."""
    area = tf.maximum(boxes[..., 2] - boxes[..., 0], 0.0) * tf.maximum(
        boxes[..., 3] - boxes[..., 1], 0.0
    )
    level = tf.floor(
        canonical_level + tf.math.log(tf.sqrt(area) / canonical_size + 1e-6) / tf.math.log(2.0)
    )
    return tf.cast(tf.clip_by_value(level, min_level, max_level), tf.int32)


def multilevel_roi_align(
    features, boxes, box_indices, output_size, scales, sampling_ratio=2, levels=None
):
    """ROIAlign over a pyramid: each box read from the map ``levels[r]`` (an index into
    ``features``; ``None`` means one map, all boxes level 0). ``features`` is a list of
    [B, H_l, W_l, C] maps with the same C, ``scales`` their map / image size ratios."""
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    flat, heights, widths, offsets = [], [], [], []
    offset = tf.constant(0, tf.int32)
    for level_map in features:
        shape = tf.shape(level_map)
        flat.append(tf.reshape(level_map, [-1, level_map.shape[-1]]))
        heights.append(shape[1])
        widths.append(shape[2])
        offsets.append(offset)
        offset = offset + shape[0] * shape[1] * shape[2]
    table = tf.concat(flat, axis=0) if len(flat) > 1 else flat[0]
    if levels is None:
        levels = tf.zeros(tf.shape(boxes)[:1], tf.int32)
    pick = lambda values, dtype: tf.gather(tf.cast(tf.stack(values), dtype), levels)  # noqa: E731
    return _sample(
        table,
        tf.cast(box_indices, tf.int32),
        pick(heights, tf.int32),
        pick(widths, tf.int32),
        pick(offsets, tf.int32),
        tf.cast(boxes, tf.float32),
        pick(scales, tf.float32),
        tuple(output_size),
        sampling_ratio,
    )
