"""The serving function every format wraps: uint8 images in; labels and probabilities out."""

import tensorflow as tf

from kerasseg import inference
from kerasseg.export.instances import instance_serving_function, is_instance_model
from kerasseg.export.panoptic import is_panoptic_model, panoptic_serving_function

__all__ = ["serving_function", "serving_module"]


def serving_function(model, *, multiple=None, input_size=None, portable=False):
    """A tf.function uint8 images -> {"labels", "probabilities"} around ``model``.

    An instance model (task "instance") gets ``instances.instance_serving_function`` instead:
    one image ``[1, H, W, 3]`` -> boxes, classes, scores, masks, num_detections (``portable``:
    without CombinedNonMaxSuppression, for TFLite and ONNX). A panoptic model gets
    ``panoptic.panoptic_serving_function``: images ``[N, H, W, 3]`` -> panoptic, labels,
    instance_scores.

    ``input_size`` fixes (H, W) in the signature (TFLite needs it); otherwise any size is taken.
    Images are padded to the model's multiple (``describe(model)["input_multiple"]`` unless
    ``multiple`` is given). A model built for one input size sees its images resized to that
    size and its probabilities resized back, since it cannot be fed anything else
    (``inference.predict`` slides windows of that size instead, which a single graph cannot do
    for any image size).
    """
    if is_panoptic_model(model):
        if portable:
            raise ValueError(
                "A panoptic model exports as a SavedModel only (its merge runs a loop over "
                "the detections that TFLite and ONNX conversion do not take here)."
            )
        return panoptic_serving_function(model, multiple=multiple, input_size=input_size)
    if is_instance_model(model):
        return instance_serving_function(
            model, multiple=multiple, input_size=input_size, portable=portable
        )
    multiple = inference.model_multiple(model, multiple)
    channels = inference.model_channels(model)
    kind = inference.output_kind(model)
    static = inference.model_static_size(model)
    height, width = input_size if input_size is not None else (None, None)
    spec = tf.TensorSpec([None, height, width, channels], tf.uint8, name="images")

    def serve(images):
        x = tf.cast(images, tf.float32)
        size = tf.shape(x)[1:3]
        if static is not None:
            scores = inference.main_output(model(tf.image.resize(x, static), training=False))
            probs = tf.image.resize(inference.to_probabilities(scores, kind), size)
        else:
            scores = inference.main_output(
                model(inference.pad_to_multiple(x, multiple), training=False)
            )
            probs = inference.to_probabilities(scores, kind)[:, : size[0], : size[1]]
        probs = tf.identity(probs, name="probabilities")
        return {"labels": inference.to_labels(probs), "probabilities": probs}

    return tf.function(serve, input_signature=[spec])


def serving_module(serve, **attributes):
    """A tf.Module holding ``serve``, the variables it reads, and ``attributes``.

    The module keeps the tf.Variables the traced function captures rather than the Keras model
    (as keras.export.ExportArchive does): saving the Keras object graph itself leaves variables
    the TFLite converter cannot freeze ("READ_VARIABLE failed" in TF 2.21).
    """
    module = tf.Module(name="kerasseg_serving")
    module.serve = serve
    module.model_variables = list(serve.get_concrete_function().variables)
    for name, value in attributes.items():
        setattr(module, name, value)
    return module
