"""Export a segmentation model for serving: SavedModel, TFLite, ONNX.

    kerasseg.export.saved_model(model, "exported/unet", class_names=info.class_names)
    kerasseg.export.tflite(model, "unet.tflite", quantization="int8",
                           representative_images=images, input_size=(256, 256))
    kerasseg.export.onnx(model, "unet.onnx")                 # pip install kerasseg[onnx]
    kerasseg.export.export(model, path, format="savedmodel")

Every format wraps the model in the same serving function: uint8 images ``[N, H, W, C]`` named
``images`` in, ``labels`` (int32 ``[N, H, W]``) and ``probabilities`` (float32 ``[N, H, W, K]``)
out. Inside the graph the images are padded to the model's multiple (edge pixels repeated) and the
outputs cropped back, so any image size is served; logits are turned into probabilities the way
``kerasseg.inference.predict`` does, and the labels agree with it.

A SavedModel needs nothing from kerasseg to load::

    served = tf.saved_model.load(path)
    out = served.signatures["serving_default"](images=tf.constant(uint8_images))
    served.class_names.numpy(), served.palette.numpy()
    # the same metadata as files: assets/class_names.txt and assets/palette.json

Export never deletes a user's files: a path that exists and is not empty is refused with
``FileExistsError`` unless ``overwrite=True``, and even then only the files the export itself
writes are replaced.
"""
import contextlib
import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from kerasseg import inference

__all__ = ["saved_model", "tflite", "onnx", "export", "FORMATS"]

FORMATS = ("savedmodel", "tflite", "onnx")
QUANTIZATIONS = (None, "float16", "int8")
# A model without a fixed input size is converted to TFLite at this size unless told otherwise.
DEFAULT_TFLITE_SIZE = (512, 512)
# What tf.saved_model.save writes into its folder; overwrite=True replaces only these.
_SAVED_MODEL_ENTRIES = ("saved_model.pb", "fingerprint.pb", "variables", "assets")


# ----------------------------------------------------------------------------- the serving graph

def serving_function(model, *, multiple=None, input_size=None):
    """A tf.function uint8 images -> {"labels", "probabilities"} around ``model``.

    ``input_size`` fixes (H, W) in the signature (TFLite needs it); otherwise any size is taken.
    A model built for one input size sees its images resized to that size and its
    probabilities resized back, since it cannot be fed anything else (``inference.predict``
    slides windows of that size instead, which a single graph cannot do for any image size).
    """
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
                model(inference.pad_to_multiple(x, multiple), training=False))
            probs = inference.to_probabilities(scores, kind)[:, :size[0], :size[1]]
        probs = tf.identity(probs, name="probabilities")
        return {"labels": inference.to_labels(probs), "probabilities": probs}

    return tf.function(serve, input_signature=[spec])


def _num_classes(model):
    # One sigmoid/logit channel still labels two classes, 0 and 1.
    return max(int(model.outputs[0].shape[-1]), 2)


def _metadata(model, class_names, palette):
    """Class names (list of str) and palette (uint8 [K, 3]) with defaults and checks."""
    k = _num_classes(model)
    if class_names is None:
        names = [f"class_{i}" for i in range(k)]
    else:
        names = [str(c) for c in class_names]
    if len(names) != k:
        raise ValueError(f"class_names has {len(names)} names; the model predicts {k} classes.")
    if palette is None:
        from kerasseg.visualize import palette as default_palette

        colours = default_palette(k)
    else:
        colours = np.asarray(palette)
        if colours.ndim != 2 or colours.shape[1] != 3 or len(colours) < k:
            raise ValueError(f"palette must be {k} or more RGB colours (shape (K, 3)); "
                             f"got shape {colours.shape}.")
        if colours.min() < 0 or colours.max() > 255:
            raise ValueError("palette colours must be in [0, 255].")
        colours = colours[:k]
    return names, colours.astype(np.uint8)


# ----------------------------------------------------------------------------- file safety

def _refuse_existing(path, overwrite, what):
    """FileExistsError unless ``path`` is absent, an empty folder, or ``overwrite`` is set."""
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        if not os.listdir(path) or overwrite:
            return
        raise FileExistsError(
            f"Refusing to export {what} into {path!r}: the folder exists and is not empty. "
            "Choose a new path or pass overwrite=True (only the exported files are replaced).")
    if what == "a SavedModel":
        raise FileExistsError(f"Refusing to export a SavedModel to {path!r}: it is a file, and a "
                              "SavedModel is a folder. Choose another path.")
    if os.path.isdir(path):
        raise FileExistsError(f"Refusing to write {what} to {path!r}: it is a folder.")
    if not overwrite:
        raise FileExistsError(f"Refusing to overwrite {path!r} with {what}: the file exists. "
                              "Choose a new path or pass overwrite=True.")


@contextlib.contextmanager
def _staging_dir(path):
    """A scratch folder beside ``path`` (same file system, so moving out of it is a rename)."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".kerasseg-export-", dir=parent)
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_file(path, data, overwrite, what):
    """Write bytes to ``path`` atomically (temp file + rename): a failed export leaves no stub."""
    path = os.fspath(path)
    _refuse_existing(path, overwrite, what)
    with _staging_dir(path) as staging:
        temp = os.path.join(staging, "model")
        with open(temp, "wb") as f:
            f.write(data)
        os.replace(temp, path)
    return path


# ----------------------------------------------------------------------------- SavedModel

def _serving_module(serve, **attributes):
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


def _write_saved_model(model, directory, class_names, palette, multiple, scratch):
    names, colours = _metadata(model, class_names, palette)
    # Assets are copied from these files into <directory>/assets by tf.saved_model.save.
    with open(os.path.join(scratch, "class_names.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(names) + "\n")
    with open(os.path.join(scratch, "palette.json"), "w", encoding="utf-8") as f:
        json.dump({"class_names": names, "palette": colours.tolist()}, f, indent=1)
    serve = serving_function(model, multiple=multiple)

    def stored(value, dtype, name):
        # A variable, not a bare constant: only variables are saved as readable attributes.
        return tf.Variable(value, dtype=dtype, trainable=False, name=name)

    module = _serving_module(
        serve,
        class_names=stored(names, tf.string, "class_names"),
        palette=stored(colours, tf.uint8, "palette"),
        num_classes=stored(len(names), tf.int32, "num_classes"),
        multiple=stored(inference.model_multiple(model, multiple), tf.int32, "multiple"),
        class_names_file=tf.saved_model.Asset(os.path.join(scratch, "class_names.txt")),
        palette_file=tf.saved_model.Asset(os.path.join(scratch, "palette.json")))
    tf.saved_model.save(module, directory, signatures={"serving_default": serve})


def saved_model(model, path, *, overwrite=False, class_names=None, palette=None, multiple=None):
    """Write a SavedModel serving uint8 images of any size.

    Signature ``serving_default``: input ``images`` uint8 ``[N, H, W, C]``; outputs ``labels``
    int32 ``[N, H, W]`` and ``probabilities`` float32 ``[N, H, W, K]``. The loaded object also has
    ``class_names`` (tf.string [K]), ``palette`` (uint8 [K, 3]), ``num_classes``, ``multiple``
    and the assets ``class_names.txt`` (one name per line) and ``palette.json``.

    Args:
        model: the Keras segmentation model.
        path: the SavedModel folder; refused if it exists and is not empty, unless ``overwrite``.
        overwrite: replace a SavedModel already at ``path`` (other files there are kept).
        class_names: K names (default ``class_0`` ... ``class_{K-1}``).
        palette: K RGB colours (default ``kerasseg.visualize.palette(K)``).
        multiple: the side multiple images are padded to (default as in ``inference.predict``).

    Returns:
        ``path``.
    """
    path = os.fspath(path)
    _refuse_existing(path, overwrite, "a SavedModel")
    with _staging_dir(path) as staging:
        scratch = os.path.join(staging, "scratch")
        built = os.path.join(staging, "savedmodel")
        os.makedirs(scratch)
        _write_saved_model(model, built, class_names, palette, multiple, scratch)
        if not os.path.exists(path) or not os.listdir(path):
            if os.path.isdir(path):
                os.rmdir(path)
            os.replace(built, path)
        else:
            # overwrite=True on a non-empty folder: swap in only the SavedModel's own entries.
            for entry in _SAVED_MODEL_ENTRIES:
                target = os.path.join(path, entry)
                if os.path.isdir(target) and not os.path.islink(target):
                    shutil.rmtree(target)
                elif os.path.lexists(target):
                    os.remove(target)
                if os.path.lexists(os.path.join(built, entry)):
                    os.replace(os.path.join(built, entry), target)
    return path


# ----------------------------------------------------------------------------- TFLite

def _input_size(model, input_size, default):
    static = inference.model_static_size(model)
    if input_size is None:
        return static or default
    return inference.size_pair(input_size, "input_size")


def _representative(images, size, channels):
    """Calibration batches for int8: each image resized to the TFLite input size."""
    if images is None:
        raise ValueError('quantization="int8" needs representative_images: a few dozen typical '
                         "uint8 images (array (N, H, W, C) or a list) to calibrate activations.")
    import cv2

    prepared = []
    for i, image in enumerate(images):
        # The same shape and channel checks (grey repeated to the model's channels) as predict.
        array = inference._as_image_array(image, channels, f"representative_images[{i}]")
        if array.shape[:2] != tuple(size):
            array = cv2.resize(array, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
            array = array.reshape(size[0], size[1], -1)
        prepared.append(np.clip(array, 0, 255).astype(np.uint8))
    if not prepared:
        raise ValueError("representative_images is empty.")

    def dataset():
        for array in prepared:
            yield [array[None]]

    return dataset


def tflite(model, path, *, quantization=None, representative_images=None, input_size=None,
           overwrite=False, multiple=None):
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
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}; got {quantization!r}.")
    path = os.fspath(path)
    _refuse_existing(path, overwrite, "a TFLite model")
    size = _input_size(model, input_size, DEFAULT_TFLITE_SIZE)
    calibration = None
    if quantization == "int8":
        calibration = _representative(representative_images, size, inference.model_channels(model))
    serve = serving_function(model, multiple=multiple, input_size=size)
    with _staging_dir(path) as staging:
        # Through a SavedModel: the converter then freezes the variables into constants.
        tf.saved_model.save(_serving_module(serve), staging,
                            signatures={"serving_default": serve})
        converter = tf.lite.TFLiteConverter.from_saved_model(staging, ["serving_default"])
        if quantization is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        elif quantization == "int8":
            converter.representative_dataset = calibration
        flatbuffer = converter.convert()
    return _write_file(path, flatbuffer, overwrite, "a TFLite model")


# ----------------------------------------------------------------------------- ONNX

def onnx(model, path, *, opset=17, input_size=None, overwrite=False, multiple=None):
    """Write an ONNX model (through tf2onnx) with the same ``images`` -> ``labels``,
    ``probabilities`` interface; dynamic height and width unless ``input_size`` fixes them.

    Needs the optional dependency: ``pip install kerasseg[onnx]``.
    """
    try:
        import tf2onnx
    except ImportError as error:
        raise ImportError("ONNX export needs tf2onnx (and onnxruntime to run the result): "
                          "pip install kerasseg[onnx]") from error
    path = os.fspath(path)
    _refuse_existing(path, overwrite, "an ONNX model")
    size = None if input_size is None else _input_size(model, input_size, None)
    serve = serving_function(model, multiple=multiple, input_size=size)
    proto, _ = tf2onnx.convert.from_function(serve, input_signature=serve.input_signature,
                                             opset=int(opset))
    return _write_file(path, proto.SerializeToString(), overwrite, "an ONNX model")


# ----------------------------------------------------------------------------- dispatcher

_EXPORTERS = {"savedmodel": saved_model, "tflite": tflite, "onnx": onnx}


def export(model, path, format="savedmodel", **kwargs):  # noqa: A002 - the natural name
    """Export to ``format`` ("savedmodel", "tflite" or "onnx"); keyword arguments go to that
    format's function."""
    key = str(format).lower().replace("_", "").replace("-", "")
    if key not in _EXPORTERS:
        raise ValueError(f"Unknown export format {format!r}; valid formats: {', '.join(FORMATS)}.")
    return _EXPORTERS[key](model, path, **kwargs)
