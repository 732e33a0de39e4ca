"""Sparse segmentation labels: standardising them and checking their range (used by the losses
and the metrics alike)."""

import tensorflow as tf

__all__ = ["check_label_range", "first_bad_label", "sparse_labels"]


def sparse_labels(y_true):
    """Returns int32 class indices of shape (N, H, W) from (N, H, W) or (N, H, W, 1) labels."""
    y_true = tf.convert_to_tensor(y_true)
    if y_true.shape.rank == 4:
        if y_true.shape[-1] != 1:
            raise ValueError(
                "kerasseg expects sparse labels of shape (N, H, W) or (N, H, W, 1) holding class "
                f"indices; got shape {tuple(y_true.shape)} (one-hot labels are not accepted)."
            )
        y_true = tf.squeeze(y_true, axis=-1)
    if y_true.dtype.is_floating:
        # Float labels come from datasets that stored masks as float; round so 254.99 stays 255.
        y_true = tf.round(y_true)
    return tf.cast(y_true, tf.int32)


def first_bad_label(labels, bad):
    """The first label where ``bad`` holds (0 where none does), defined on empty batches too.

    A sentinel (not bad, label 0) keeps argmax defined when a replica's share of a last,
    short batch under tf.distribute holds no pixels at all.
    """
    flat_bad = tf.concat([tf.reshape(bad, [-1]), [False]], axis=0)
    flat_labels = tf.concat([tf.reshape(labels, [-1]), tf.zeros([1], labels.dtype)], axis=0)
    first = tf.argmax(tf.cast(flat_bad, tf.int32), output_type=tf.int32)
    return tf.gather(flat_labels, first)


def check_label_range(labels, valid, num_classes, ignore_index, owner):
    """Fails on a label outside [0, num_classes) that is not ignore_index.

    Eagerly this raises a ValueError naming the value; inside a graph it adds an assert that raises
    InvalidArgumentError with the same text and the value. Returns the assert op (or None) and the
    boolean mask of offending pixels.
    """
    bad = tf.logical_and(valid, tf.logical_or(labels < 0, labels >= num_classes))
    text = (
        f"{owner}: labels must lie in [0, {num_classes}) or equal ignore_index={ignore_index}; "
        "found label value"
    )
    if tf.executing_eagerly():
        if bool(tf.reduce_any(bad)):
            value = int(tf.boolean_mask(labels, bad)[0])
            raise ValueError(f"{text} {value}.")
        return None, bad
    check = tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(bad)), [text, first_bad_label(labels, bad)]
    )
    return check, bad
