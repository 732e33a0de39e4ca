"""Padding images up to a side multiple (edge pixels repeated), shared by evaluation, inference
and export."""

import tensorflow as tf


def pad_to_multiple(images, multiple):
    """Pad a [N, H, W, C] tensor at the bottom/right to multiples of ``multiple``.

    Edge replication by gathering clamped indices: unlike tf.pad's REFLECT/SYMMETRIC it works
    for any pad size (a 5-pixel image padded to 32) and converts to TFLite and ONNX as Gather.
    """
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    padded_h = (height + multiple - 1) // multiple * multiple
    padded_w = (width + multiple - 1) // multiple * multiple
    rows = tf.minimum(tf.range(padded_h), height - 1)
    cols = tf.minimum(tf.range(padded_w), width - 1)
    return tf.gather(tf.gather(images, rows, axis=1), cols, axis=2)


def pad_to_size(images, size):
    """Edge-replicate (or crop) a [N, H, W, C] tensor to exactly ``size`` = (height, width)."""
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    rows = tf.minimum(tf.range(size[0]), height - 1)
    cols = tf.minimum(tf.range(size[1]), width - 1)
    return tf.gather(tf.gather(images, rows, axis=1), cols, axis=2)
