"""ONNX export through tf2onnx (the optional dependency ``kerasseg[onnx]``)."""

import os

from kerasseg.export.files import refuse_existing, write_file
from kerasseg.export.instances import fix_onnx_loop_shapes, is_instance_model
from kerasseg.export.serving import serving_function
from kerasseg.export.tflite_model import input_size_of

__all__ = ["onnx"]


def onnx(model, path, *, opset=17, input_size=None, overwrite=False, multiple=None):
    """Write an ONNX model (through tf2onnx) with the same ``images`` -> ``labels``,
    ``probabilities`` interface; dynamic height and width unless ``input_size`` fixes them.

    Needs the optional dependency: ``pip install kerasseg[onnx]``.

    An instance model (task "instance") takes one image ``[1, H, W, 3]`` (any size unless
    ``input_size``) and returns ``boxes``, ``classes``, ``scores``, ``masks`` (uint8
    ``[1, M, H, W]``) and ``num_detections`` as its SavedModel does, its final NMS as one
    standard ``NonMaxSuppression`` over class-shifted boxes (tf2onnx cannot convert
    CombinedNonMaxSuppression for class-specific boxes; ``kerasseg.export.instances``).
    """
    try:
        import tf2onnx
    except ImportError as error:
        raise ImportError(
            "ONNX export needs tf2onnx (and onnxruntime to run the result): "
            "pip install kerasseg[onnx]"
        ) from error
    path = os.fspath(path)
    refuse_existing(path, overwrite, "an ONNX model")
    size = None if input_size is None else input_size_of(model, input_size, None)
    serve = serving_function(model, multiple=multiple, input_size=size, portable=True)
    proto, _ = tf2onnx.convert.from_function(
        serve, input_signature=serve.input_signature, opset=int(opset)
    )
    if is_instance_model(model):
        fix_onnx_loop_shapes(proto.graph)
    return write_file(path, proto.SerializeToString(), overwrite, "an ONNX model")
