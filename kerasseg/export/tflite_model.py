"""TFLite export: a flatbuffer taking uint8 images of one size (float32, float16 or int8)."""

import os

import numpy as np
import tensorflow as tf

from kerasseg import inference
from kerasseg.export.files import refuse_existing, staging_dir, write_file
from kerasseg.export.instances import is_instance_model, unfuse_padded_nms
from kerasseg.export.serving import serving_function, serving_module

__all__ = ["tflite", "QUANTIZATIONS", "DEFAULT_TFLITE_SIZE"]

QUANTIZATIONS = (None, "float16", "int8")
# A model without a fixed input size is converted to TFLite at this size unless told otherwise.
DEFAULT_TFLITE_SIZE = (512, 512)


def input_size_of(model, input_size, default):
    """The (H, W) an export takes: ``input_size``, the model's fixed size, or ``default``."""
    static = inference.model_static_size(model)
    if input_size is None:
        return static or default
    return inference.size_pair(input_size, "input_size")


def _representative(images, size, channels):
    """Calibration batches for int8: each image resized (bilinear) to the TFLite input size."""
    if images is None:
        raise ValueError(
            'quantization="int8" needs representative_images: a few dozen typical '
            "uint8 images (array (N, H, W, C) or a list) to calibrate activations."
        )
    prepared = []
    for i, image in enumerate(images):
        # The same shape and channel checks (grey repeated to the model's channels) as predict.
        array = inference.as_image_array(image, channels, f"representative_images[{i}]")
        if array.shape[:2] != tuple(size):
            array = tf.image.resize(array, size, "bilinear").numpy()
        prepared.append(np.clip(array, 0, 255).astype(np.uint8))
    if not prepared:
        raise ValueError("representative_images is empty.")

    def dataset():
        for array in prepared:
            yield [array[None]]

    return dataset


def _convert(serve, staging, quantization, calibration, instance=False):
    # Through a SavedModel: the converter then freezes the variables into constants.
    tf.saved_model.save(serving_module(serve), staging, signatures={"serving_default": serve})
    if instance:
        unfuse_padded_nms(staging)
    converter = tf.lite.TFLiteConverter.from_saved_model(staging, ["serving_default"])
    if quantization is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        converter.representative_dataset = calibration
    return converter.convert()


def tflite(
    model,
    path,
    *,
    quantization=None,
    representative_images=None,
    input_size=None,
    overwrite=False,
    multiple=None,
):
    """Write a TFLite flatbuffer taking uint8 ``images`` of one size ``(1..N, H, W, C)``.

    Args:
        quantization: None (float32), ``"float16"`` (weights stored as float16) or ``"int8"``
            (weights and activations int8, calibrated on ``representative_images``; operations
            without an int8 kernel stay float). Inputs stay uint8 and outputs stay int32 labels
            and float32 probabilities in every case.
        representative_images: uint8 images for int8 calibration (resized to ``input_size``).
        input_size: (H, W) the TFLite model takes; default the model's own fixed size, or
            512x512. Any size works: padding to the model's multiple happens inside.

    Returns:
        ``path``. Run it with ``tf.lite.Interpreter(path).get_signature_runner()`` (or the
        same API of ``ai_edge_litert.interpreter.Interpreter``, TF's successor to it).

    An instance model (task "instance") takes one image ``[1, H, W, 3]`` and returns
    ``boxes``, ``classes``, ``scores``, ``masks`` (uint8 ``[1, M, H, W]``) and
    ``num_detections`` as its SavedModel does (``kerasseg.export.instances``), with builtin
    TFLite ops only (no ``SELECT_TF_OPS``, no Flex delegate). The model's own graph would need
    ``SELECT_TF_OPS`` for one op, ``CombinedNonMaxSuppression`` (its final per-class NMS),
    which the export replaces by one builtin ``NON_MAX_SUPPRESSION_V4`` over class-shifted
    boxes. The RPN's NMS (``tf.image.non_max_suppression_padded`` in a ``tf.map_fn``) converts
    op by op to builtins (WHILE loops included) once the converter's fusion of it into
    ``NON_MAX_SUPPRESSION_V4``, which gets the output's rank wrong and fails at run time, is
    turned off (``instances.unfuse_padded_nms``). ``quantization`` None or
    ``"float16"``; ``"int8"`` is refused (box decoding and NMS need float activations).
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}; got {quantization!r}.")
    instance = is_instance_model(model)
    if instance and quantization == "int8":
        raise ValueError(
            'quantization="int8" is not supported for instance models: box decoding, NMS and '
            'mask pasting need float activations; use None or "float16" (float16 weights).'
        )
    path = os.fspath(path)
    refuse_existing(path, overwrite, "a TFLite model")
    size = input_size_of(model, input_size, DEFAULT_TFLITE_SIZE)
    calibration = None
    if quantization == "int8":
        calibration = _representative(representative_images, size, inference.model_channels(model))
    serve = serving_function(model, multiple=multiple, input_size=size, portable=True)
    with staging_dir(path) as staging:
        flatbuffer = _convert(serve, staging, quantization, calibration, instance)
    return write_file(path, flatbuffer, overwrite, "a TFLite model")
