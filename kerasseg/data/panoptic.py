"""Panoptic targets through ``prepare``: ``{"semantic", "instance_ids"}`` ride the mask path.

A panoptic example's two maps must follow the image through exactly the same resizing,
cropping, flipping and padding. Rather than a third copy of those steps, ``encode`` packs both
into one int32 map that the semantic path carries (nearest-neighbour resizing keeps every value
intact, padding writes ``ignore_index``), and ``decode`` unpacks the batches:

    packed = semantic * LABEL_DIVISOR + instance_ids + ignore_index + 1   (valid pixels)
    packed = ignore_index                                                 (void pixels)

Every valid value is above ``ignore_index``, so padding can never be read as a segment. Instance
numbers must stay below ``LABEL_DIVISOR`` (1000, Cityscapes' convention; the loaders number the
instances of an image 1, 2, ...).
"""

import tensorflow as tf

LABEL_DIVISOR = 1000
KEYS = ("semantic", "instance_ids")


def is_panoptic_spec(element_spec):
    """Whether ``(image, {"semantic", "instance_ids"})`` is what the dataset yields."""
    if not isinstance(element_spec, tuple) or len(element_spec) != 2:
        return False
    target = element_spec[1]
    return isinstance(target, dict) and set(target) == set(KEYS)


def encoder(ignore_index):
    def encode(image, target):
        semantic = tf.cast(target["semantic"], tf.int32)
        instance_ids = tf.cast(target["instance_ids"], tf.int32)
        if semantic.shape.rank == 3:
            semantic, instance_ids = semantic[..., 0], instance_ids[..., 0]
        tf.debugging.assert_less(
            instance_ids,
            LABEL_DIVISOR,
            message=f"prepare: a panoptic instance number is >= {LABEL_DIVISOR}; number the "
            "instances of an image 1, 2, ...",
        )
        void = tf.equal(semantic, ignore_index) | (semantic < 0)
        packed = semantic * LABEL_DIVISOR + instance_ids + (ignore_index + 1)
        return image, tf.where(void, tf.cast(ignore_index, tf.int32), packed)

    return encode


def decoder(ignore_index):
    def decode(images, packed):
        void = packed <= ignore_index
        value = tf.maximum(packed - (ignore_index + 1), 0)
        semantic = tf.where(void, ignore_index, value // LABEL_DIVISOR)
        instance_ids = tf.where(void, 0, value % LABEL_DIVISOR)
        return images, {"semantic": semantic, "instance_ids": instance_ids}

    return decode
