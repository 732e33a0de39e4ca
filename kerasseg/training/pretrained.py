"""``from_keras_hub``: keras-hub's pretrained SegFormers as kerasseg models, named and coloured
with their dataset's classes.

The conversion itself is ``kerasseg.models.keras_hub`` (weights layer by layer into
``kerasseg.segformer``); this joins it with the dataset registry, as the training recipe joins a
builder with a dataset's class names.
"""

import numpy as np

from kerasseg import datasets
from kerasseg.models import keras_hub as conversion


def from_keras_hub(preset_or_model, *, dataset=None, activation="softmax", name=None):
    """Convert a keras-hub segmenter, or the keras-hub preset of that name, to kerasseg.

    preset_or_model: a preset name (``kerasseg.models.keras_hub.CONVERTIBLE_PRESETS``:
        ``segformer_b0..b4_ade20k_512``, ``segformer_b5_ade20k_640``,
        ``segformer_b0..b5_cityscapes_1024``), loaded through keras-hub (network or the
        kagglehub cache; offline a ``PresetUnavailableError``, a ConnectionError, names the
        preset), or a built ``keras_hub.models.SegFormerImageSegmenter``.
    dataset: the kerasseg dataset whose class names and palette the model carries (default:
        the preset's, "ade20k" or "cityscapes"; none for a model object).
    activation: the output's, as every builder ("softmax"; None gives keras-hub's logits).
    Returns a ``kerasseg.Segmenter`` (``kerasseg.segformer``, input sides multiples of 32 or
    padded by ``inference.predict``) whose outputs are the keras-hub model's at the input's
    size, for [0, 255] RGB images (it normalizes them in its graph as keras-hub's
    preprocessor does). keras-hub is optional: ``pip install "kerasseg[keras-hub]"``.
    """
    if isinstance(preset_or_model, str):
        if preset_or_model in conversion.SEGFORMER_PRESETS:
            dataset = dataset or conversion.SEGFORMER_PRESETS[preset_or_model][1]
        elif preset_or_model in conversion.DEEPLAB_PRESETS:
            dataset = dataset or conversion.DEEPLAB_PRESETS[preset_or_model]
    class_names = palette = None
    if dataset:
        info = datasets.info(dataset)
        class_names = list(info.class_names)
        palette = np.asarray(info.palette)[: len(class_names)].tolist()
    model = conversion.convert(
        preset_or_model,
        class_names=class_names,
        palette=palette,
        activation=activation,
        name=name,
        suffix=f"_{dataset}" if dataset else "",
    )
    if dataset and model.num_classes != len(class_names):
        raise ValueError(
            f"from_keras_hub: the model predicts {model.num_classes} classes, dataset "
            f"{dataset!r} has {len(class_names)}."
        )
    return model
