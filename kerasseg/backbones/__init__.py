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
validates a name once, and ``load_backbone_file``). The encoders written here register
themselves on import: mit (MiT B0-B5, SegFormer's), alexnet, googlenet, resnet_v1_5.
"""

# Encoders written here; importing them registers mit_b0..mit_b5, alexnet, googlenet and
# resnet50_v1_5 (keras-hub's ResNet-50 layout, for its DeepLabV3+ preset).
from kerasseg.backbones import alexnet, googlenet, mit, resnet_v1_5  # noqa: E402, F401, I001
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
from kerasseg.backbones.mit import set_approximate_gelu  # noqa: E402
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
    refuse_imagenet,
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
    "set_approximate_gelu",
    # weights
    "WeightsUnavailableError",
    "adapt_channels",
    "check_weights_arg",
    "keras_cache_folder",
    "refuse_imagenet",
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
