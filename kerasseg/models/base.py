"""What every builder shares: argument checks, the encoder, the head and weights loading."""

import os

import keras
from keras import layers

from kerasseg import backbones as bb
from kerasseg.layers import ResizeLike, use_fast_kernels
from kerasseg.models.segmenter import Segmenter

ACTIVATIONS = ("softmax", "sigmoid", None)


def check_args(arch, num_classes, activation, input_shape, multiple):
    """Validate the arguments every builder takes; return the input shape as a tuple."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"{arch}: num_classes must be an integer >= 1; got {num_classes!r}.")
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"{arch}: activation must be one of 'softmax', 'sigmoid' or None; got {activation!r}."
        )
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(
            f"{arch}: input_shape must be (height, width, channels); got {input_shape}."
        )
    for side, value in zip(("height", "width"), input_shape[:2]):
        if value is not None and value % multiple:
            raise ValueError(
                f"{arch}: input {side} {value} is not a multiple of {multiple}; this model "
                f"needs height and width divisible by {multiple} (or None for dynamic sizes)."
            )
    return input_shape


def is_file(weights):
    return weights is not None and weights != "imagenet"


def encoder(arch, backbone, input_shape, weights, freeze, *, allowed=None, output_stride=32):
    """The registry backbone for an architecture.

    A weights *file* may hold the backbone's or the whole model's weights; the builder
    resolves that after the model exists (``load_weights``), so the backbone starts empty.
    """
    if is_file(weights) and not os.path.exists(weights):
        raise FileNotFoundError(f"{arch}: weights file not found: {os.fspath(weights)!r}.")
    model = bb.build_backbone(
        backbone,
        input_shape=input_shape,
        weights=None if is_file(weights) else weights,
        freeze=freeze,
        output_stride=output_stride,
        allowed=allowed,
        arch=arch,
    )
    # keras.applications layers: fused batch norm and native dilated convolutions (same
    # weights and results, a good deal less time; see kerasseg.layers.conv).
    return use_fast_kernels(model)


def features_by_stride(backbone_model, x):
    """Call the backbone and return {stride: feature} (strides it lacks are absent)."""
    feats = backbone_model(x)
    if not isinstance(feats, (list, tuple)):
        feats = [feats]
    return dict(zip(backbone_model.tap_strides, feats))


def head(
    x,
    inputs,
    num_classes,
    activation,
    name="head",
    resize=True,
    classifier=True,
    output_name="output",
):
    """1x1 classifier, (bilinear) resize to the input's size, final activation in float32.

    ``resize=False`` where the decoder already ends exactly at the input's size;
    ``classifier=False`` where ``x`` already holds the class scores (FCN's upsampling);
    ``output_name`` names extra outputs (auxiliary and deep-supervision heads).
    """
    if classifier:
        x = layers.Conv2D(num_classes, 1, name=f"{name}_logits")(x)
    if resize:
        x = ResizeLike("bilinear", name=f"{name}_resize")(x, inputs)
    # float32 even under a mixed-precision policy: softmax and the loss need the range.
    return layers.Activation(activation or "linear", dtype="float32", name=output_name)(x)


def load_weights(model, backbone_model, weights, arch):
    """Load a whole-model weights file, or failing that, a backbone weights file."""
    if not is_file(weights):
        return model
    path = os.fspath(weights)
    try:
        model.load_weights(path)
        return model
    except Exception as whole_error:  # noqa: BLE001 - second try as a backbone file
        if backbone_model is None:
            raise ValueError(
                f"{arch}: could not load weights from {path!r}: {whole_error}"
            ) from whole_error
    try:
        bb.load_backbone_file(backbone_model, path)
    except Exception as error:  # noqa: BLE001
        raise ValueError(
            f"{arch}: {path!r} holds neither this model's weights nor its backbone's "
            f"({backbone_model.name}): {error}"
        ) from error
    return model


def model_input(input_shape):
    return keras.Input(shape=input_shape, name="image")


def segmenter(inputs, outputs, *, name, multiple):
    """The builder's graph as a ``Segmenter`` that knows the side multiple its input needs."""
    return Segmenter(inputs, outputs, name=name, input_multiple=multiple)
