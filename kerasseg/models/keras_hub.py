"""Pretrained weights from keras-hub: its SegFormer and DeepLabV3+ presets as kerasseg models.

    model = kerasseg.from_keras_hub("segformer_b0_ade20k_512")   # downloads through keras-hub
    model = kerasseg.from_keras_hub(hub_segmenter, dataset="ade20k")  # a built keras-hub model

keras-hub is an optional dependency (``pip install kerasseg[keras-hub]``); it is imported only
here, inside the functions, never by ``import kerasseg``. The public ``kerasseg.from_keras_hub``
is ``kerasseg.training.pretrained``'s, which also gives the model its dataset's class names.

The converted model is the kerasseg builder's own graph (``kerasseg.segformer``) with
keras-hub's weights copied layer by layer: it takes [0, 255] pixels of any size (keras-hub's
takes preprocessed pixels at its static preset size), normalizes them in the graph as
keras-hub's preprocessor does (ImageNet mean and std of pixels / 255) and gives keras-hub's
outputs at the input's size, its Mix-FFNs computing GELU by the same tanh approximation.

``deeplab_v3_plus_resnet50_pascalvoc`` (keras-hub's DeepLabV3ImageSegmenter) becomes
``kerasseg.deeplabv3plus(backbone="resnet50_v1_5", output_stride=32, atrous_rates=(6, 12, 18),
decoder_convs=1, decoder_kernel_size=1)``: keras-hub's ResNet50 is torchvision's v1.5 layout
(kerasseg.backbones.resnet_v1_5), its head ASPP on the undilated stride-32 map and one 1x1
decoder convolution. keras-hub classifies after its last 4x upsampling, kerasseg before its
resize to the input: a 1x1 convolution commutes with bilinear resizing, so the scores agree.
"""

import re

import numpy as np

from kerasseg.backbones.mit import VARIANTS

# Preset -> (MiT variant, kerasseg dataset name); keras-hub 0.32's SegFormer presets.
SEGFORMER_PRESETS = {
    **{f"segformer_b{i}_ade20k_512": (f"b{i}", "ade20k") for i in range(5)},
    "segformer_b5_ade20k_640": ("b5", "ade20k"),
    **{f"segformer_b{i}_cityscapes_1024": (f"b{i}", "cityscapes") for i in range(6)},
}
DEEPLAB_PRESETS = {"deeplab_v3_plus_resnet50_pascalvoc": "voc2012"}
CONVERTIBLE_PRESETS = (*SEGFORMER_PRESETS, *DEEPLAB_PRESETS)
# kerasseg's DeepLabV3+ in keras-hub's preset configuration.
DEEPLAB_OPTIONS = dict(
    backbone="resnet50_v1_5",
    output_stride=32,
    atrous_rates=(6, 12, 18),
    low_level_filters=48,
    decoder_filters=256,
    decoder_convs=1,
    decoder_kernel_size=1,
)


class PresetUnavailableError(ConnectionError):
    """A keras-hub preset could not be loaded (no network and not in the Kaggle cache)."""


def _keras_hub():
    try:
        import keras_hub
    except ImportError as error:
        raise ImportError(
            "from_keras_hub needs keras-hub, an optional dependency of kerasseg: "
            "pip install 'kerasseg[keras-hub]' (or pip install keras-hub)."
        ) from error
    return keras_hub


def _kaggle_cache():
    import os

    return os.environ.get("KAGGLEHUB_CACHE", os.path.expanduser("~/.cache/kagglehub"))


def load_preset(preset):
    """keras-hub's segmenter of ``preset`` (through ``from_preset``: Kaggle or its cache)."""
    keras_hub = _keras_hub()
    if preset not in CONVERTIBLE_PRESETS:
        raise ValueError(
            f"from_keras_hub: unknown preset {preset!r}; convertible presets: "
            f"{', '.join(CONVERTIBLE_PRESETS)}."
        )
    try:
        if preset in DEEPLAB_PRESETS:
            return keras_hub.models.DeepLabV3ImageSegmenter.from_preset(preset)
        return keras_hub.models.SegFormerImageSegmenter.from_preset(preset)
    except Exception as error:  # noqa: BLE001 - kagglehub/requests raise many kinds offline
        raise PresetUnavailableError(
            f"from_keras_hub: could not load keras-hub preset {preset!r} ({error}). Loading a "
            f"preset needs the network (keras-hub downloads it from Kaggle, "
            f"kaggle://keras/{'deeplabv3plus' if preset in DEEPLAB_PRESETS else 'segformer'}"
            f"/keras/{preset}) or the preset in the kagglehub cache "
            f"({_kaggle_cache()}); copy that folder from a machine with network access, or "
            f"convert a keras-hub model you built yourself: from_keras_hub(model)."
        ) from error


def _segformer_variant(encoder):
    dims, depths = tuple(encoder.hidden_dims), tuple(encoder.layerwise_depths)
    layout = (
        tuple(encoder.layerwise_num_heads),
        tuple(encoder.layerwise_sr_ratios),
        tuple(encoder.layerwise_patch_sizes),
        tuple(encoder.layerwise_strides),
    )
    if layout == ((1, 2, 5, 8), (8, 4, 2, 1), (7, 3, 3, 3), (4, 2, 2, 2)):
        for variant, (v_dims, v_depths) in VARIANTS.items():
            if (dims, depths) == (v_dims, v_depths):
                return variant
    raise ValueError(
        f"from_keras_hub: this MiT encoder (hidden_dims {list(dims)}, depths {list(depths)}, "
        f"heads/sr/patch/strides {layout}) is none of MiT-B0..B5, which kerasseg builds."
    )


def _copy(target, source):
    values = source.get_weights()
    if [w.shape for w in target.get_weights()] != [v.shape for v in values]:
        raise ValueError(
            f"from_keras_hub: {source.name!r} {[v.shape for v in values]} does not fit "
            f"{target.name!r} {[w.shape for w in target.get_weights()]}."
        )
    target.set_weights(values)


def _copy_block(model, prefix, block):
    """One keras-hub HierarchicalTransformerEncoder into kerasseg's block layers."""
    _copy(model.get_layer(f"{prefix}_norm1"), block.norm1)
    _copy(model.get_layer(f"{prefix}_norm2"), block.norm2)
    attention, hub_attention = model.get_layer(f"{prefix}_attention"), block.attn
    for mine, theirs in (("query", "q"), ("key", "k"), ("value", "v"), ("projection", "proj")):
        _copy(getattr(attention, mine), getattr(hub_attention, theirs))
    if attention.sr_ratio > 1:
        _copy(attention.reduction, hub_attention.sr)
        _copy(attention.reduction_norm, hub_attention.norm)
    mlp, hub_mlp = model.get_layer(f"{prefix}_mlp"), block.mlp
    _copy(mlp.expand, hub_mlp.fc1)
    _copy(mlp.depthwise, hub_mlp.dwconv)
    _copy(mlp.contract, hub_mlp.fc2)


def _hub_layer(model, cls_name, name):
    for layer in model.layers:
        if layer.name == name and type(layer).__name__ == cls_name:
            return layer
    raise ValueError(f"from_keras_hub: keras-hub model has no {cls_name} {name!r}.")


def _check_normalization(hub):
    """The preset's preprocessor must normalize as kerasseg's in-graph "torch" mode does."""
    converter = getattr(getattr(hub, "preprocessor", None), "image_converter", None)
    if converter is None or getattr(converter, "scale", None) is None:
        return
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    scale = np.broadcast_to(np.asarray(converter.scale, "float64"), (3,))
    offset = 0.0 if getattr(converter, "offset", None) is None else converter.offset
    offset = np.broadcast_to(np.asarray(offset, "float64"), (3,))
    if not (np.allclose(scale, 1 / (255 * std), rtol=1e-3) and np.allclose(offset, -mean / std)):
        raise ValueError(
            f"from_keras_hub: the preset's preprocessor scales by {scale.tolist()} and offsets "
            f"by {offset.tolist()}, not ImageNet mean/std of pixels / 255 as kerasseg's "
            f"SegFormer normalizes in its graph."
        )


def convert_segformer(
    hub, *, class_names=None, palette=None, activation="softmax", name=None, suffix=""
):
    """kerasseg's SegFormer with the weights of keras-hub's ``SegFormerImageSegmenter``."""
    from kerasseg.models.semantic.segformer import segformer

    _check_normalization(hub)
    backbone = hub.backbone
    encoder = backbone.image_encoder
    variant = _segformer_variant(encoder)
    num_classes = int(hub.num_classes)
    model = segformer(
        num_classes,
        variant=variant,
        weights=None,
        activation=activation,
        decoder_filters=int(backbone.projection_filters),
        approximate_gelu=True,
        class_names=class_names,
        palette=palette,
        name=name or f"segformer_{variant}{suffix}",
    )
    mit = model.get_layer(f"mit_{variant}")
    for i, depth in enumerate(encoder.layerwise_depths):
        s = i + 1
        embed = _hub_layer(encoder, "OverlappingPatchingAndEmbedding", f"patch_and_embed_{i}")
        _copy(mit.get_layer(f"stage{s}_patch_embed"), embed.proj)
        _copy(mit.get_layer(f"stage{s}_patch_norm"), embed.norm)
        for b in range(depth):
            block = _hub_layer(
                encoder, "HierarchicalTransformerEncoder", f"hierarchical_encoder_{i}_{b}"
            )
            _copy_block(mit, f"stage{s}_block{b + 1}", block)
    # The stage norms are auto-named: take them in order, as the encoder applies them.
    norms = [layer for layer in encoder.layers if type(layer).__name__ == "LayerNormalization"]
    if len(norms) != len(encoder.layerwise_depths):
        raise ValueError("from_keras_hub: unexpected layout of keras-hub's MiT stage norms.")
    for s, norm in enumerate(norms, 1):
        _copy(mit.get_layer(f"stage{s}_norm"), norm)
    # MLPFusion holds keras-hub's decoder weights as they are: each linear layer's kernel
    # and bias (finest map first), then the fusion convolution's kernel.
    conv, norm = backbone.linear_fuse.layers[0], backbone.linear_fuse.layers[1]
    fusion = model.get_layer("decode_fusion")
    values = [v for linear in backbone.mlp_blocks for v in linear.get_weights()]
    if len(backbone.mlp_blocks) != 4 or conv.get_weights()[1:]:
        raise ValueError("from_keras_hub: unexpected layout of keras-hub's SegFormer decoder.")
    fusion.set_weights([*values, conv.get_weights()[0]])
    _copy(model.get_layer("decode_fuse_bn"), norm)
    _copy(model.get_layer("head_logits"), hub.output_segmentation_head)
    return model


def _check_deeplab(hub):
    backbone, encoder = hub.backbone, hub.backbone.image_encoder
    size = backbone.upsampling_size
    config = (
        backbone.spatial_pyramid_pooling_key,
        backbone.low_level_feature_key,
        tuple(size) if isinstance(size, (list, tuple)) else (size, size),
        tuple(backbone.dilation_rates),
        backbone.projection_filters,
    )
    resnet = (
        type(encoder).__name__,
        getattr(encoder, "block_type", None),
        tuple(getattr(encoder, "stackwise_num_blocks", ())),
        tuple(getattr(encoder, "stackwise_num_filters", ())),
        tuple(getattr(encoder, "stackwise_num_strides", ())),
        tuple(getattr(encoder, "input_conv_filters", ())),
        tuple(getattr(encoder, "input_conv_kernel_sizes", ())),
        getattr(encoder, "use_pre_activation", None),
    )
    want_config = ("P5", "P2", (8, 8), (6, 12, 18), 48)
    want_resnet = (
        "ResNetBackbone",
        "bottleneck_block",
        (3, 4, 6, 3),
        (64, 128, 256, 512),
        (1, 2, 2, 2),
        (64,),
        (7,),
        False,
    )
    if config != want_config or resnet != want_resnet:
        raise ValueError(
            f"from_keras_hub: kerasseg converts keras-hub's DeepLabV3+ preset configuration "
            f"(ASPP on P5 at rates 6/12/18, P2 decoder features projected to 48, ResNet-50 "
            f"bottlenecks without pre-activation); this model has {config} and {resnet}."
        )


def _spp_layer(backbone):
    for layer in backbone.layers:
        if type(layer).__name__ == "SpatialPyramidPooling":
            return layer
    raise ValueError("from_keras_hub: keras-hub's DeepLabV3 backbone has no ASPP layer.")


def _hub_resnet_name(name):
    """keras-hub's name of a resnet50_v1_5 layer: conv3_block1_2_conv -> stack1_block0_2_conv."""
    match = re.match(r"conv(\d)_block(\d+)_(.*)", name)
    if match is None:
        return name  # the stem: conv1_conv, conv1_bn
    stage, block, rest = match.groups()
    return f"stack{int(stage) - 2}_block{int(block) - 1}_{rest}"


def convert_deeplab(
    hub, *, class_names=None, palette=None, activation="softmax", name=None, suffix=""
):
    """kerasseg's DeepLabV3+ (``DEEPLAB_OPTIONS``) with the weights of keras-hub's
    ``DeepLabV3ImageSegmenter`` in its preset configuration."""
    from kerasseg.models.semantic.deeplab import deeplabv3plus

    _check_normalization(hub)
    _check_deeplab(hub)
    backbone, encoder = hub.backbone, hub.backbone.image_encoder
    model = deeplabv3plus(
        int(hub.num_classes),
        weights=None,
        activation=activation,
        class_names=class_names,
        palette=palette,
        name=name or f"deeplabv3plus_resnet50_v1_5{suffix}",
        **DEEPLAB_OPTIONS,
    )
    for layer in model.get_layer("resnet50_v1_5").layers:
        if layer.weights:
            _copy(layer, encoder.get_layer(_hub_resnet_name(layer.name)))
    spp = _spp_layer(backbone)
    names = ["aspp_1x1", *(f"aspp_rate{r}" for r in spp.dilation_rates), "aspp_pooling"]
    for branch, prefix in zip(spp.aspp_parallel_channels, names):
        conv, norm = [layer for layer in branch.layers if layer.weights]
        _copy(model.get_layer(f"{prefix}_conv"), conv)
        _copy(model.get_layer(f"{prefix}_bn"), norm)
    conv, norm = [layer for layer in spp.projection.layers if layer.weights]
    _copy(model.get_layer("aspp_projection_conv"), conv)
    _copy(model.get_layer("aspp_projection_bn"), norm)
    for ours, theirs in (
        ("decoder_low_level_conv", "decoder_conv"),
        ("decoder_low_level_bn", "decoder_norm"),
        ("decoder_conv1_conv", "segmentation_head_conv"),
        ("decoder_conv1_bn", "segmentation_head_norm"),
    ):
        _copy(model.get_layer(ours), backbone.get_layer(theirs))
    # keras-hub classifies without a bias, after its last upsampling (they commute).
    kernel = hub.output_conv.get_weights()[0]
    model.get_layer("head_logits").set_weights([kernel, np.zeros(kernel.shape[-1], kernel.dtype)])
    return model


def convert(
    preset_or_model, *, class_names=None, palette=None, activation="softmax", name=None, suffix=""
):
    """The conversion behind ``kerasseg.from_keras_hub`` (kerasseg.training.pretrained, which
    also resolves a dataset's class names and palette): a preset name or a keras-hub model."""
    keras_hub = _keras_hub()
    hub = load_preset(preset_or_model) if isinstance(preset_or_model, str) else preset_or_model
    if isinstance(hub, keras_hub.models.DeepLabV3ImageSegmenter):
        convert_model = convert_deeplab
    elif isinstance(hub, keras_hub.models.SegFormerImageSegmenter):
        convert_model = convert_segformer
    else:
        raise ValueError(
            f"from_keras_hub: expected a preset name, a keras_hub.models.SegFormerImageSegmenter "
            f"or a DeepLabV3ImageSegmenter; got {type(hub).__name__}."
        )
    return convert_model(
        hub,
        class_names=class_names,
        palette=palette,
        activation=activation,
        name=name,
        suffix=suffix,
    )
