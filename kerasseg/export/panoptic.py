"""The serving function of a panoptic model: uint8 images in, the panoptic map out.

Signature: ``images`` uint8 ``[N, H, W, 3]`` of any size -> ``panoptic`` int32 ``[N, H, W]``
(``class * label_divisor + instance``, instance 0 on stuff, -1 void), ``labels`` int32
``[N, H, W]`` (the class of each pixel, -1 void) and ``instance_scores`` float32 ``[N, K]``
(the score of instance k + 1). Images are padded at the bottom and right with zeros to the
model's multiple, as ``kerasseg.inference.panoptic_predict`` pads them, and the maps cropped
back; the merge (or grouping) is part of the model's graph, so nothing of kerasseg is needed
to serve it.
"""

import tensorflow as tf

from kerasseg import inference
from kerasseg.models.panoptic import panoptic_classes
from kerasseg.models.segmenter import describe

__all__ = ["is_panoptic_model", "panoptic_serving_function"]


def is_panoptic_model(model):
    return describe(model)["task"] == "panoptic"


def panoptic_serving_function(model, *, multiple=None, input_size=None):
    multiple = inference.model_multiple(model, multiple)
    _, _, divisor = panoptic_classes(model)
    height, width = input_size if input_size is not None else (None, None)
    spec = tf.TensorSpec([None, height, width, 3], tf.uint8, name="images")

    def serve(images):
        x = tf.cast(images, tf.float32)
        shape = tf.shape(x)
        pad_h = (multiple - shape[1] % multiple) % multiple
        pad_w = (multiple - shape[2] % multiple) % multiple
        outputs = model(tf.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]]), training=False)
        panoptic = tf.cast(outputs["panoptic"][:, : shape[1], : shape[2]], tf.int32)
        labels = tf.where(panoptic < 0, -1, panoptic // divisor)
        return {
            "panoptic": tf.identity(panoptic, name="panoptic"),
            "labels": labels,
            "instance_scores": outputs["instance_scores"],
        }

    return tf.function(serve, input_signature=[spec])
