"""Dilated (atrous) backbones: trade the last strides for dilation, keep the pretrained weights.

DeepLab and PSPNet want dense features at stride 8 or 16 without retraining the encoder. The
trick (Chen et al., "atrous algorithm") is to drop the stride of every downsampling layer that
would take the network past the wanted output stride and to widen every later spatial kernel by
the stride given up, so each kernel still sees the same neighbourhood it was trained on.

The rewrite works on the functional config of a registry backbone, so it needs no per-network
code: walk the layers in topological order, track per tensor its nominal stride (the original
network's) and its actual stride, and patch the layer configs as they come. Kernel shapes are
unchanged, so the weights are copied over one for one.

    model = build_backbone("resnet50", weights=None)
    dense = dilate_backbone(model, "resnet50", 8)   # dense.tap_strides == (2, 4, 8, 8, 8)
"""

import keras

from kerasseg.backbones.graph import config_output_names, config_parents_and_consumers
from kerasseg.backbones.registry import BACKBONES, check_backbone, list_backbones

# Families checked to dilate cleanly (tests/test_dilate.py). VGG and DenseNet downsample with
# 2x2 pooling windows and ConvNeXt with 2x2 stride-2 kernels: at stride 1 those shift the map
# by half a pixel per stage, so they are left out; InceptionV3 is simply not checked.
DILATABLE_FAMILIES = (
    "resnet",
    "resnet_v2",
    "xception",
    "mobilenet_v2",
    "mobilenet_v3",
    "efficientnet",
    "efficientnet_v2",
)
OUTPUT_STRIDES = (8, 16, 32)

_CONVS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D")
_POOLS = ("MaxPooling2D", "AveragePooling2D")


def dilatable_backbones():
    """Registry names ``dilate_backbone`` (and so ``output_stride`` 8/16) accepts."""
    return [name for name in list_backbones() if BACKBONES[name].family in DILATABLE_FAMILIES]


def check_output_stride(arch, output_stride, valid=(8, 16)):
    """A ValueError naming the valid output strides of ``arch`` unless ``output_stride`` is one."""
    if isinstance(output_stride, bool) or output_stride not in valid:
        raise ValueError(f"{arch}: output_stride must be one of {valid}; got {output_stride!r}.")
    return output_stride


def check_dilatable(spec, name, output_stride):
    """A ValueError unless the backbone ``name`` (its checked ``spec``) dilates to
    ``output_stride``; no name lookup: the caller validated the name."""
    if output_stride != 32 and spec.family not in DILATABLE_FAMILIES:
        raise ValueError(
            f"Backbone {name!r} cannot be dilated to output_stride {output_stride}; "
            f"dilatable backbones: {', '.join(dilatable_backbones())}."
        )


def _pair(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


def _layer_step(name, kind, cfg):
    """The stride of a convolution or pooling layer (1 for others)."""
    if kind not in _CONVS and kind not in _POOLS:
        return 1
    strides = _pair(cfg.get("strides") or cfg.get("pool_size"))
    if strides[0] != strides[1]:
        raise ValueError(f"dilate_backbone: layer {name!r} has unequal strides {strides}.")
    return strides[0]


def _rewrite(config, output_stride):
    """Patch ``config`` in place; return {layer name: actual stride of its output}."""
    by_name = {layer["name"]: layer for layer in config["layers"]}
    parents, consumers = config_parents_and_consumers(config)
    nominal, actual = {}, {}
    for layer in config["layers"]:
        name, kind, cfg = layer["name"], layer["class_name"], layer["config"]
        nom_in = max((nominal[p] for p in parents[name]), default=1)
        act_in = max((actual[p] for p in parents[name]), default=1)
        rate = nom_in // act_in  # the stride given up so far along this path
        step = step_kept = _layer_step(name, kind, cfg)
        if kind in _CONVS and max(_pair(cfg["kernel_size"])) > 1 and rate > 1:
            cfg["dilation_rate"] = tuple(d * rate for d in _pair(cfg["dilation_rate"]))
            _pad_same(layer, by_name, parents, consumers)
        if step > 1 and act_in * step > output_stride:
            cfg["strides"] = (1, 1)
            _pad_same(layer, by_name, parents, consumers)
            step_kept = 1
        nominal[name] = nom_in * step
        actual[name] = act_in * step_kept
    return actual


def _pad_same(layer, by_name, parents, consumers):
    """Make ``layer`` pad 'same'; zero an explicit ZeroPadding2D that only fed it.

    keras.applications pads strided convolutions by hand (ZeroPadding2D + 'valid'), and
    ResNetV2 every 3x3 convolution; that fixed padding is wrong once the stride or dilation
    changes, while 'same' is right for any of them.
    """
    cfg = layer["config"]
    if cfg.get("padding") != "valid":
        return
    cfg["padding"] = "same"
    for parent in parents[layer["name"]]:
        pad = by_name[parent]
        if pad["class_name"] == "ZeroPadding2D" and consumers[parent] == [layer["name"]]:
            pad["config"]["padding"] = ((0, 0), (0, 0))


def dilate(model, output_stride):
    """``model`` (a dilatable backbone) rebuilt to ``output_stride`` 8 or 16: the rewrite
    itself, trusting its caller's checks (``dilate_backbone`` is the checked entry)."""
    if output_stride == 32:
        return model
    config = model.get_config()
    actual = _rewrite(config, output_stride)
    outputs = config_output_names(config)  # read first: from_config consumes the dict
    dilated = keras.Model.from_config(config)
    dilated.set_weights(model.get_weights())
    dilated.trainable = model.trainable
    dilated.tap_strides = tuple(actual[out] for out in outputs)
    return dilated


def dilate_backbone(model, name, output_stride):
    """The registry backbone ``model`` (built as ``name``) rebuilt to ``output_stride`` 8 or 16.

    Same layers, names and weights; strides past ``output_stride`` become dilations.
    ``tap_strides`` of the result gives the new stride of each tap, e.g. (2, 4, 8, 8, 8) at 8.
    """
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}; got {output_stride!r}.")
    spec = check_backbone(name)
    check_dilatable(spec, name, output_stride)
    return dilate(model, output_stride)
