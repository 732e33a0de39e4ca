"""A segmentation model's scores as probabilities and labels, whatever its last activation.

``output_kind`` reads what the main output holds off the model's graph (it imports nothing from
Keras); the other functions are plain tensor functions.
"""

import tensorflow as tf


def output_kind(model):
    """'softmax', 'sigmoid' or 'logits': what the model's main output holds.

    Read from the activation of the layer that produces the (first) output; a layer whose
    activation cannot be told is taken as already holding probabilities.
    """
    output = model.outputs[0]
    history = getattr(output, "_keras_history", None)
    layer = history[0] if history else model.layers[-1]
    name = type(layer).__name__.lower()
    if name in ("softmax", "sigmoid"):
        return name
    activation = getattr(layer, "activation", None)
    act_name = getattr(activation, "__name__", None) or (
        activation if isinstance(activation, str) else None
    )
    if act_name in ("softmax", "sigmoid"):
        return act_name
    if act_name == "linear" or (activation is None and hasattr(layer, "activation")):
        return "logits"
    return "probabilities"


def main_output(outputs):
    """Deep-supervision models return several outputs; the first is the prediction."""
    if isinstance(outputs, dict):
        return next(iter(outputs.values()))
    if isinstance(outputs, (list, tuple)):
        return outputs[0]
    return outputs


def to_probabilities(scores, kind):
    """Model output -> probabilities (float32): softmax/sigmoid applied to logits only."""
    scores = tf.cast(scores, tf.float32)
    if kind != "logits":
        return scores
    if scores.shape[-1] == 1:
        return tf.sigmoid(scores)
    return tf.nn.softmax(scores, axis=-1)


def to_labels(probabilities):
    """Class indices (int32): argmax over classes, or p > 0.5 for a single binary channel."""
    if probabilities.shape[-1] == 1:
        return tf.cast(probabilities[..., 0] > 0.5, tf.int32)
    return tf.argmax(probabilities, axis=-1, output_type=tf.int32)
