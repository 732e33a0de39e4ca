"""UPerNet (Xiao et al. 2018, "Unified Perceptual Parsing"), as mmsegmentation's UPerHead.

The backbone's maps at strides 4, 8, 16 and 32 (on ConvNeXt each through a layer norm first,
as the official ConvNeXt segmentation code does; ``tap_norm``). The pyramid pooling module
(bins 1, 2, 3, 6, 1x1 conv-BN-ReLU of ``filters`` each, concatenated with the map, 3x3
conv-BN-ReLU) replaces the stride-32 lateral; the other levels get 1x1 conv-BN-ReLU laterals.
A top-down pathway adds each coarser level, upsampled bilinearly; 3x3 conv-BN-ReLU smooths
the levels 4, 8 and 16; all four are upsampled to stride 4, concatenated and fused by a 3x3
conv-BN-ReLU (``filters``, 512), then dropout 0.1, a 1x1 classifier and a bilinear resize to
the input.

``aux_head=True`` adds the auxiliary FCN head on stage 3 (stride 16): 3x3 conv-BN-ReLU (256),
dropout, classifier; outputs ``output`` and ``aux_output``, trained with loss weights
1 and 0.4 (``kerasseg.training`` does; by hand ``compile(loss=[l, l], loss_weights=[1, 0.4])``).
Sizes at 150 classes with the auxiliary head: ConvNeXt-T 60.2 M, -S 81.9 M, -B 122.1 M
(Liu et al. 2022: 60 / 82 / 122 M). Input sides: multiples of 32.
"""

from keras import layers

from kerasseg import backbones as bb
from kerasseg.layers import ResizeLike, conv_bn_act, pyramid_pooling_module
from kerasseg.models import base
from kerasseg.models.registry import BN_MOMENTUM, register_model

MULTIPLE = 32
LEVELS = (4, 8, 16, 32)
BINS = (1, 2, 3, 6)
TAP_NORM_FAMILIES = ("convnext",)


def upernet_backbones():
    """Backbones UPerNet takes: those with maps at strides 4, 8, 16 and 32 (all, today)."""
    return sorted(name for name, spec in bb.BACKBONES.items() if None not in spec.taps[1:])


def uper_head(feats, filters, bins, name="uper"):
    """UPerHead over {stride: map}: the fused stride-4 map, before dropout and classifier."""
    top = pyramid_pooling_module(feats[32], tuple(bins), filters=filters, name=f"{name}_ppm")
    laterals = {32: conv_bn_act(top, filters, 3, name=f"{name}_ppm_bottleneck")}
    for stride in LEVELS[:-1]:
        laterals[stride] = conv_bn_act(feats[stride], filters, 1, name=f"{name}_lateral{stride}")
    for coarse, fine in zip(LEVELS[:0:-1], LEVELS[-2::-1]):
        up = ResizeLike("bilinear", name=f"{name}_topdown{fine}")(laterals[coarse], laterals[fine])
        laterals[fine] = layers.Add(name=f"{name}_merge{fine}")([laterals[fine], up])
    levels = [conv_bn_act(laterals[s], filters, 3, name=f"{name}_fpn{s}") for s in LEVELS[:-1]]
    levels.append(laterals[32])
    finest = levels[0]
    levels = [finest] + [
        ResizeLike("bilinear", name=f"{name}_up{s}")(x, finest)
        for s, x in zip(LEVELS[1:], levels[1:])
    ]
    x = layers.Concatenate(name=f"{name}_concat")(levels)
    return conv_bn_act(x, filters, 3, name=f"{name}_fpn_bottleneck")


@register_model("upernet")
def upernet(
    num_classes,
    *,
    backbone="convnext_tiny",
    weights="imagenet",
    input_shape=(None, None, 3),
    activation="softmax",
    freeze_backbone=False,
    filters=512,
    bins=BINS,
    dropout=0.1,
    aux_head=False,
    aux_filters=256,
    tap_norm=None,
    class_names=None,
    palette=None,
    bn_momentum=BN_MOMENTUM,
    name=None,
):
    """UPerNet; see the module docstring.

    backbone: a registry name with maps at strides 4-32 (default "convnext_tiny").
    filters: the head's width (512). bins: the pooling grids (1, 2, 3, 6).
    dropout: before the classifiers (0.1).
    aux_head, aux_filters: the auxiliary FCN head on stage 3 and its width (256).
    tap_norm: a layer norm on each backbone map; None: on ConvNeXt only (the official code).
    """
    arch = "upernet"
    if not bins or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in bins):
        raise ValueError(f"{arch}: bins must be positive integers; got {bins!r}.")
    input_shape = base.check_args(arch, num_classes, activation, input_shape, MULTIPLE)
    inputs = base.model_input(input_shape)
    encoder = base.encoder(
        arch, backbone, input_shape, weights, freeze_backbone, allowed=upernet_backbones()
    )
    feats = base.features_by_stride(encoder, inputs)
    if tap_norm is None:
        tap_norm = bb.BACKBONES[backbone].family in TAP_NORM_FAMILIES
    if tap_norm:
        feats = {
            s: layers.LayerNormalization(epsilon=1e-6, name=f"tap_norm{s}")(feats[s])
            for s in LEVELS
        }
    x = uper_head(feats, filters, bins)
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = base.head(x, inputs, num_classes, activation)
    if aux_head:
        aux = conv_bn_act(feats[16], aux_filters, 3, name="aux")
        if dropout:
            aux = layers.Dropout(dropout, name="aux_dropout")(aux)
        aux = base.head(aux, inputs, num_classes, activation, name="aux", output_name="aux_output")
        outputs = [outputs, aux]
    model = base.segmenter(inputs, outputs, name=name or f"{arch}_{backbone}", multiple=MULTIPLE)
    return base.load_weights(model, encoder, weights, arch)
