"""The encoder registry: networks as multi-scale feature extractors.

Every architecture takes its encoder from here. A backbone is a functional ``keras.Model`` that
takes raw RGB pixels in [0, 255], normalizes them the way the pretrained weights expect (inside
the graph) and returns five feature maps, at strides 2, 4, 8, 16 and 32 (``None`` where a network
has no map at that stride, e.g. ConvNeXt's stride-4 patchify stem has no stride-2 map).

    backbone = build_backbone("resnet50", weights=None)
    f2, f4, f8, f16, f32 = backbone(images)

Modules, each importing only those above it in this list:
registry (the BACKBONES table of BackboneSpec, the name check), graph (reading functional
configs), preprocessing (ImagePreprocessing, a registered layer), weights (the weights
argument, offline ImageNet errors, input-channel adaptation), applications (building a spec's
network and its taps), dilation (output stride 8/16), build (``build_backbone``, the entry that
validates a name once, and ``load_backbone_file``).
"""

from kerasseg.backbones.applications import construct, fold_conv_biases, with_same_padding
from kerasseg.backbones.build import build_backbone, load_backbone_file
from kerasseg.backbones.dilation import (
    DILATABLE_FAMILIES,
    OUTPUT_STRIDES,
    check_dilatable,
    check_output_stride,
    dilatable_backbones,
    dilate,
    dilate_backbone,
)
from kerasseg.backbones.graph import config_output_names, config_parents
from kerasseg.backbones.preprocessing import ImagePreprocessing
from kerasseg.backbones.registry import (
    BACKBONES,
    STRIDES,
    BackboneSpec,
    check_backbone,
    list_backbones,
    register_backbone,
)
from kerasseg.backbones.weights import (
    WeightsUnavailableError,
    adapt_channels,
    check_weights_arg,
    keras_cache_folder,
    transfer_weights,
)

__all__ = [
    # registry
    "BACKBONES",
    "STRIDES",
    "BackboneSpec",
    "check_backbone",
    "list_backbones",
    "register_backbone",
    # building
    "build_backbone",
    "construct",
    "fold_conv_biases",
    "with_same_padding",
    "ImagePreprocessing",
    # weights
    "WeightsUnavailableError",
    "adapt_channels",
    "check_weights_arg",
    "keras_cache_folder",
    "load_backbone_file",
    "transfer_weights",
    # dilation
    "DILATABLE_FAMILIES",
    "OUTPUT_STRIDES",
    "check_dilatable",
    "check_output_stride",
    "dilatable_backbones",
    "dilate",
    "dilate_backbone",
    # functional-config graph helpers
    "config_output_names",
    "config_parents",
]
