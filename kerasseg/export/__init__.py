"""Export a segmentation model for serving: SavedModel, TFLite, ONNX.

    kerasseg.export.saved_model(model, "exported/unet")     # class names from the model
    kerasseg.export.tflite(model, "unet.tflite", quantization="int8",
                           representative_images=images, input_size=(256, 256))
    kerasseg.export.onnx(model, "unet.onnx")                 # pip install kerasseg[onnx]
    kerasseg.export.export(model, path, format="savedmodel")

Every format wraps the model in the same serving function (``serving``): uint8 images
``[N, H, W, C]`` named ``images`` in, ``labels`` (int32 ``[N, H, W]``) and ``probabilities``
(float32 ``[N, H, W, K]``) out. Inside the graph the images are padded to the model's multiple
(edge pixels repeated) and the outputs cropped back, so any image size is served; logits are
turned into probabilities the way ``kerasseg.inference.predict`` does, and the labels agree
with it. Class names and colours default to the model's own (``describe(model)``).

An instance model (task "instance", ``kerasseg.mask_rcnn``) is served one image at a time:
``images`` uint8 ``[1, H, W, 3]`` in; ``boxes`` float32 ``[1, M, 4]`` (y1, x1, y2, x2 pixels),
``classes`` int32 ``[1, M]``, ``scores`` float32 ``[1, M]``, ``masks`` uint8 ``[1, M, H, W]``
(pasted at the image's size) and ``num_detections`` int32 ``[1]`` out, agreeing with
``kerasseg.inference.predict(model, image, score_threshold=0.0)``; TFLite needs no
``SELECT_TF_OPS`` (module ``instances``).

Export never deletes a user's files: a path that exists and is not empty is refused with
``FileExistsError`` unless ``overwrite=True``, and even then only the files the export itself
writes are replaced. Modules: ``savedmodel``, ``tflite_model``, ``onnx_model``, ``serving``,
``instances``, ``metadata``, ``files``. Nothing here imports OpenCV.
"""

from kerasseg.export.metadata import metadata
from kerasseg.export.onnx_model import onnx
from kerasseg.export.savedmodel import saved_model
from kerasseg.export.serving import serving_function, serving_module
from kerasseg.export.tflite_model import DEFAULT_TFLITE_SIZE, QUANTIZATIONS, tflite

__all__ = [
    "saved_model",
    "tflite",
    "onnx",
    "export",
    "FORMATS",
    "QUANTIZATIONS",
    "DEFAULT_TFLITE_SIZE",
    "serving_function",
    "serving_module",
    "metadata",
]

FORMATS = ("savedmodel", "tflite", "onnx")
_EXPORTERS = {"savedmodel": saved_model, "tflite": tflite, "onnx": onnx}


def export(model, path, format="savedmodel", **kwargs):  # noqa: A002 - the natural name
    """Export to ``format`` ("savedmodel", "tflite" or "onnx"); keyword arguments go to that
    format's function."""
    key = str(format).lower().replace("_", "").replace("-", "")
    if key not in _EXPORTERS:
        raise ValueError(f"Unknown export format {format!r}; valid formats: {', '.join(FORMATS)}.")
    return _EXPORTERS[key](model, path, **kwargs)
