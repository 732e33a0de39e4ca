"""Scoring a model on a dataset split, and the validation batches a run scores on."""

import keras
import tensorflow as tf

from kerasseg.models.segmenter import default_class_names, describe
from kerasseg.ops.outputs import main_output, output_kind
from kerasseg.ops.padding import pad_to_multiple
from kerasseg.training.datachecks import (
    check_data_dir,
    check_files,
    dataset_meta,
    through_pipeline,
)

__all__ = ["evaluate", "validation_batches", "repeat_labels", "class_names_for"]


def validation_batches(ds, batch_size=1, crop_size=None, ignore_index=255, multiple=32):
    """Batches for validation and ``kerasseg evaluate``.

    One image per batch at its own size (the default) pads the image to a multiple of
    ``multiple`` by repeating its edge pixels, as ``kerasseg.inference.predict`` does, and the
    mask with ``ignore_index``; scores then match what users get from predict. Otherwise
    (a fixed ``crop_size`` or larger batches) it is ``data.prepare(training=False)``, whose
    padding is black: a model that never saw black borders in training scores lower there.
    """
    from kerasseg import data

    if crop_size is not None or int(batch_size) != 1:
        return data.prepare(
            ds,
            batch_size=batch_size,
            crop_size=crop_size,
            training=False,
            pad_multiple=multiple,
            ignore_index=ignore_index,
        )

    def pad(image, mask):
        image = tf.cast(image, tf.float32)
        if image.shape.rank == 2:
            image = image[..., None]
        mask = tf.cast(mask, tf.int32)
        if mask.shape.rank == 3:
            mask = tf.squeeze(mask, -1)
        padded = pad_to_multiple(image[None], multiple)
        size = tf.shape(padded)[1:3] - tf.shape(mask)
        mask = tf.pad(mask, [[0, size[0]], [0, size[1]]], constant_values=ignore_index)
        return padded, mask[None]

    return ds.map(pad, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def repeat_labels(ds, n_outputs):
    """Deep supervision: every output is trained against the same mask."""
    if ds is None:
        return None
    return ds.map(lambda x, y: (x, tuple([y] * n_outputs)))


def class_names_for(model, fallback):
    """The names ``model`` carries (``describe(model)``), unless they are only the defaults
    (``class_0``, ...: a model from an older file or built without names) or do not match the
    scored classes; then ``fallback`` (the dataset's names)."""
    fallback = list(fallback)
    names = describe(model)["class_names"]
    if len(names) != len(fallback) or names == default_class_names(len(names)):
        return fallback
    return names


def _check_classes(model, meta, dataset):
    """-> (classes scored, whether outputs are logits) for ``model`` on a set described by
    ``meta``; a one-channel model on a 2-class set is binary."""
    num_classes = int(model.outputs[0].shape[-1])
    binary = num_classes == 1 and meta.num_classes == 2
    if num_classes == 1 and not binary:
        raise ValueError(
            f"the model has one output channel (binary: background and "
            f"foreground) but dataset {dataset!r} has {meta.num_classes} classes."
        )
    if num_classes != meta.num_classes and not binary:
        raise ValueError(
            f"the model predicts {num_classes} classes but dataset {dataset!r} "
            f"has {meta.num_classes}."
        )
    return num_classes, binary and output_kind(model) == "logits"


def _confusion_matrix(model, ds, cm, verbose):
    @tf.function(reduce_retracing=True)
    def step(images, labels):
        cm.update_state(labels, main_output(model(images, training=False)))

    total = int(ds.cardinality())
    bar = keras.utils.Progbar(total if total > 0 else None, verbose=verbose, unit_name="batch")

    def run():
        for i, (images, labels) in enumerate(ds):
            step(images, labels)
            bar.update(i + 1)

    through_pipeline(run)
    return cm.result().numpy()


def evaluate(
    model,
    dataset,
    *,
    data_dir=None,
    split="val",
    batch_size=1,
    crop_size=None,
    steps=None,
    dataset_options=None,
    verbose=1,
    check=True,
):
    """Score ``model`` on a dataset split: the ``metrics.summarize_confusion_matrix`` dict
    (mIoU, pixel accuracy, per-class IoU/accuracy/Dice, named by the model's class names when
    it carries its own, else by the dataset's).

    A one-channel (binary sigmoid, or logit) model is scored on a 2-class set as background and
    foreground (foreground where p > 0.5, or logit > 0), both classes reported.

    Batches come from ``validation_batches`` (by default each image at its own size, padded to
    the model's input multiple as ``inference.predict`` pads it); ``steps`` limits the number of
    batches. ``check`` first runs ``check_files`` on the split (a bad file raises ``DataError``
    naming it).
    """
    from kerasseg import datasets, metrics

    dataset_options = dict(dataset_options or {})
    meta = dataset_meta(dataset, data_dir, dataset_options)
    check_data_dir(dataset, data_dir)
    num_classes, from_logits = _check_classes(model, meta, dataset)
    raw = datasets.load(dataset, data_dir=data_dir, split=split, **dataset_options)
    if check:
        check_files(raw, meta.num_classes, meta.ignore_index)
    ds = validation_batches(
        raw, batch_size, crop_size, meta.ignore_index, multiple=describe(model)["input_multiple"]
    )
    if steps:
        ds = ds.take(int(steps))
    cm = metrics.ConfusionMatrix(
        num_classes, ignore_index=meta.ignore_index, from_logits=from_logits
    )
    matrix = _confusion_matrix(model, ds, cm, verbose)
    return metrics.summarize_confusion_matrix(matrix, class_names_for(model, meta.class_names))
