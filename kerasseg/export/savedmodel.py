"""SavedModel export: a folder that needs nothing from kerasseg to load.

served = tf.saved_model.load(path)
out = served.signatures["serving_default"](images=tf.constant(uint8_images))
served.class_names.numpy(), served.palette.numpy()
# the same metadata as files: assets/class_names.txt and assets/palette.json

An instance model (task "instance", e.g. ``kerasseg.mask_rcnn``) is served one image at a time:
``images`` uint8 [1, H, W, 3] of any size -> ``boxes`` float32 [1, M, 4] (y1, x1, y2, x2
pixels), ``classes`` int32 [1, M], ``scores`` float32 [1, M], ``masks`` uint8 [1, M, H, W] and
``num_detections`` int32 [1] (``kerasseg.export.instances``).
"""

import json
import os
import shutil

import tensorflow as tf

from kerasseg import inference
from kerasseg.export.files import refuse_existing, staging_dir
from kerasseg.export.metadata import metadata
from kerasseg.export.panoptic import is_panoptic_model
from kerasseg.export.serving import serving_function, serving_module
from kerasseg.models.panoptic import panoptic_classes
from kerasseg.models.segmenter import describe

__all__ = ["saved_model"]

# What tf.saved_model.save writes into its folder; overwrite=True replaces only these.
_SAVED_MODEL_ENTRIES = ("saved_model.pb", "fingerprint.pb", "variables", "assets")


def _write_saved_model(model, directory, class_names, palette, multiple, scratch):
    names, colours = metadata(model, class_names, palette)
    # Assets are copied from these files into <directory>/assets by tf.saved_model.save.
    with open(os.path.join(scratch, "class_names.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(names) + "\n")
    with open(os.path.join(scratch, "palette.json"), "w", encoding="utf-8") as f:
        json.dump({"class_names": names, "palette": colours.tolist()}, f, indent=1)
    serve = serving_function(model, multiple=multiple)

    def stored(value, dtype, name):
        # A variable, not a bare constant: only variables are saved as readable attributes.
        return tf.Variable(value, dtype=dtype, trainable=False, name=name)

    extra = {}
    if is_panoptic_model(model):
        things, _, divisor = panoptic_classes(model)
        extra["thing_classes"] = stored(list(things), tf.int32, "thing_classes")
        extra["label_divisor"] = stored(divisor, tf.int32, "label_divisor")
    module = serving_module(
        serve,
        **extra,
        class_names=stored(names, tf.string, "class_names"),
        palette=stored(colours, tf.uint8, "palette"),
        num_classes=stored(len(names), tf.int32, "num_classes"),
        multiple=stored(inference.model_multiple(model, multiple), tf.int32, "multiple"),
        task=stored(describe(model)["task"], tf.string, "task"),
        class_names_file=tf.saved_model.Asset(os.path.join(scratch, "class_names.txt")),
        palette_file=tf.saved_model.Asset(os.path.join(scratch, "palette.json")),
    )
    tf.saved_model.save(module, directory, signatures={"serving_default": serve})


def _swap_entries(built, path):
    """overwrite=True on a non-empty folder: replace only the SavedModel's own entries."""
    for entry in _SAVED_MODEL_ENTRIES:
        target = os.path.join(path, entry)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        elif os.path.lexists(target):
            os.remove(target)
        if os.path.lexists(os.path.join(built, entry)):
            os.replace(os.path.join(built, entry), target)


def saved_model(model, path, *, overwrite=False, class_names=None, palette=None, multiple=None):
    """Write a SavedModel serving uint8 images of any size.

    Signature ``serving_default``: input ``images`` uint8 ``[N, H, W, C]``; outputs ``labels``
    int32 ``[N, H, W]`` and ``probabilities`` float32 ``[N, H, W, K]``. The loaded object also has
    ``class_names`` (tf.string [K]), ``palette`` (uint8 [K, 3]), ``num_classes``, ``multiple``,
    ``task`` (tf.string, the model's task) and the assets ``class_names.txt`` (one name per
    line) and ``palette.json``.

    An instance model's signature takes one image, uint8 ``[1, H, W, 3]`` of any size, and
    returns ``boxes`` float32 ``[1, M, 4]`` (y1, x1, y2, x2 in the image's pixels, clipped to
    it), ``classes`` int32 ``[1, M]`` (0..K-1), ``scores`` float32 ``[1, M]`` (descending),
    ``masks`` uint8 ``[1, M, H, W]`` (0/1) and ``num_detections`` int32 ``[1]`` (= M): what
    ``kerasseg.inference.predict(model, image, score_threshold=0.0)`` returns, with a batch
    axis of 1 (``kerasseg.export.instances``).

    A panoptic model's signature takes uint8 ``[N, H, W, 3]`` of any size and returns
    ``panoptic`` int32 ``[N, H, W]`` (class * label_divisor + instance, -1 void), ``labels``
    and ``instance_scores`` (``kerasseg.export.panoptic``); the loaded object also has
    ``thing_classes`` and ``label_divisor``.

    Args:
        model: the Keras segmentation model.
        path: the SavedModel folder; refused if it exists and is not empty, unless ``overwrite``.
        overwrite: replace a SavedModel already at ``path`` (other files there are kept).
        class_names: K names (default the model's own, ``describe(model)["class_names"]``:
            ``class_0`` ... ``class_{K-1}`` for a model that carries none).
        palette: K RGB colours (default the model's own, else
            ``kerasseg.ops.palette.default_palette(K)``).
        multiple: the side multiple images are padded to (default the model's own, as in
            ``inference.predict``).

    Returns:
        ``path``.
    """
    path = os.fspath(path)
    refuse_existing(path, overwrite, "a SavedModel")
    with staging_dir(path) as staging:
        scratch = os.path.join(staging, "scratch")
        built = os.path.join(staging, "savedmodel")
        os.makedirs(scratch)
        _write_saved_model(model, built, class_names, palette, multiple, scratch)
        if not os.path.exists(path) or not os.listdir(path):
            if os.path.isdir(path):
                os.rmdir(path)
            os.replace(built, path)
        else:
            _swap_entries(built, path)
    return path
