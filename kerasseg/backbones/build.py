"""``build_backbone``: the one entry that turns a backbone name into a feature extractor, and
``load_backbone_file``, which loads a weights file into one.

``build_backbone`` validates the name (once: the functions it calls take the checked spec),
the weights argument and the output stride, then builds, loads weights, dilates and freezes.
"""

import os

from kerasseg.backbones.applications import construct
from kerasseg.backbones.dilation import OUTPUT_STRIDES, check_dilatable, check_output_stride, dilate
from kerasseg.backbones.registry import BACKBONES, check_backbone
from kerasseg.backbones.weights import check_weights_arg, transfer_weights


def build_backbone(
    name,
    *,
    input_shape=(None, None, 3),
    weights="imagenet",
    freeze=False,
    output_stride=32,
    allowed=None,
    arch=None,
):
    """Build a registered backbone.

    Returns a functional model mapping [0, 255] images of ``input_shape`` to a list of
    feature maps; ``model.tap_strides`` says the stride of each (a subset of STRIDES).
    ``weights``: "imagenet", None, or the path of a weights file saved from this backbone
    (``backbone.save_weights``) — a file saved from a 3-channel build also loads into a build
    with other channel counts, its first kernel adapted.
    ``output_stride`` 8 or 16 dilates the last stages instead of striding (see dilation.py).
    ``allowed`` / ``arch``: a builder's own choice of backbones and its name, so that its
    encoder checks the name here, once, with the builder named in the message.
    """
    check_output_stride(arch or "build_backbone", output_stride, OUTPUT_STRIDES)
    spec = check_backbone(name, allowed, arch)
    check_dilatable(spec, name, output_stride)
    check_weights_arg(weights)
    input_shape = tuple(input_shape)
    channels = input_shape[-1]
    if channels is None or channels < 1:
        raise ValueError(f"input_shape must give the channel count; got {input_shape}.")

    if weights == "imagenet" and channels != 3:
        # keras.applications only ships RGB weights: load them into an RGB build, then adapt.
        rgb = construct(spec, name, input_shape[:-1] + (3,), "imagenet")
        model = construct(spec, name, input_shape, None)
        transfer_weights(rgb, model)
    elif weights == "imagenet":
        model = construct(spec, name, input_shape, "imagenet")
    else:
        model = construct(spec, name, input_shape, None)
        if weights is not None:
            _load_file(model, spec, weights)

    model = dilate(model, output_stride)
    if freeze:
        model.trainable = False
    return model


def load_backbone_file(model, path):
    """Load a backbone weights file (``backbone.save_weights``) into the backbone ``model``, a
    build of the registry (named as registered, as ``build_backbone`` names it).

    Where the file does not load as it is (``model`` has another input channel count, or
    ``kerasseg.layers.use_fast_kernels`` changed its layer classes and so the file's layout),
    it is read into a fresh RGB build of the same backbone and transferred layer by layer,
    the first kernel adapted to ``model``'s channels.
    """
    spec = BACKBONES.get(model.name)
    if spec is None:
        raise ValueError(
            f"load_backbone_file: {model.name!r} is not a registry backbone; "
            f"load a whole model's weights with model.load_weights."
        )
    _load_file(model, spec, path)


def _load_file(model, spec, path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Weights file not found: {path!r}.")
    try:
        model.load_weights(path)
        return
    except Exception:  # noqa: BLE001 - retried below through a fresh RGB build
        pass
    rgb = construct(spec, model.name, tuple(model.inputs[0].shape[1:-1]) + (3,), None)
    try:
        rgb.load_weights(path)
        transfer_weights(rgb, model)
    except Exception as error:  # noqa: BLE001
        raise ValueError(
            f"Could not load backbone weights from {path!r} into {model.name!r}: {error}"
        ) from error
