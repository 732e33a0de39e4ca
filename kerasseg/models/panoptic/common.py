"""What both panoptic models share: their class lists and their pixel cross-entropy."""

import tensorflow as tf

from kerasseg.models.segmenter import describe

LABEL_DIVISOR = 1000


def check_classes(arch, num_classes, thing_classes):
    """-> (thing classes, stuff classes): the things as given (checked), the stuff every other
    class. A panoptic model needs at least one thing class."""
    try:
        things = [int(c) for c in thing_classes]
    except (TypeError, ValueError):
        raise ValueError(
            f"{arch}: thing_classes must be class indices; got {thing_classes!r}."
        ) from None
    bad = [c for c in things if not 0 <= c < num_classes]
    if bad:
        raise ValueError(
            f"{arch}: thing_classes {bad} are outside 0..{num_classes - 1} "
            f"(num_classes={num_classes})."
        )
    if not things or len(set(things)) != len(things):
        raise ValueError(
            f"{arch}: thing_classes must list at least one class, each once; got {things}."
        )
    stuff = tuple(c for c in range(num_classes) if c not in things)
    return tuple(things), stuff


def panoptic_classes(model):
    """(thing classes, stuff classes, label divisor) of a panoptic model, from its
    description (the builder's arguments)."""
    info = describe(model)
    if info["task"] != "panoptic":
        raise ValueError(f"{model.name} is a {info['task']} model, not a panoptic one.")
    args = info["builder_args"]
    things = tuple(int(c) for c in args["thing_classes"])
    stuff = tuple(c for c in range(info["num_classes"]) if c not in things)
    return things, stuff, int(args.get("label_divisor", LABEL_DIVISOR))


def pixel_cross_entropy(labels, logits, ignore_index=255, top_k_fraction=None):
    """Mean softmax cross-entropy over the labelled pixels (``labels`` int [B, H, W],
    ``logits`` [B, H, W, C]); with ``top_k_fraction`` the mean of the hardest that share of
    all pixels only (Panoptic-DeepLab's hard pixel mining; unlabelled pixels count as 0)."""
    logits = tf.cast(logits, tf.float32)
    labels = tf.cast(labels, tf.int32)
    valid = tf.not_equal(labels, ignore_index)
    safe = tf.where(valid, labels, 0)
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=logits)
    loss = tf.where(valid, loss, 0.0)
    if top_k_fraction is None:
        return tf.reduce_sum(loss) / tf.maximum(tf.reduce_sum(tf.cast(valid, tf.float32)), 1.0)
    flat = tf.reshape(loss, [-1])
    k = tf.maximum(tf.cast(tf.cast(tf.size(flat), tf.float32) * top_k_fraction, tf.int32), 1)
    return tf.reduce_mean(tf.math.top_k(flat, k=k, sorted=False).values)
