"""SegFormer (Xie et al. 2021): a Mix Transformer encoder and the all-MLP decoder.

Encoder: MiT-B0..B5 (kerasseg.backbones.mit), four maps at strides 4, 8, 16 and 32.
Decoder: each map goes through a linear layer (a dense layer over channels) to
``decoder_filters`` channels (256 for B0 and B1, 768 for B2-B5), is resized bilinearly to
the stride-4 map's size, the four are concatenated (coarsest first), fused by a 1x1
convolution with batch norm and ReLU, dropped out (0.1) and classified by a 1x1 convolution;
the scores are resized to the input (bilinear), as every kerasseg model. The linear layers and
the fusion are computed as one ``kerasseg.layers.MLPFusion`` (same weights, same function,
composed per map so that the 4 x ``decoder_filters``-channel stride-4 concatenation and its
convolution, about half of B0's FLOPs, are never made).

Sizes at 150 classes: B0 3.75 M, B1 13.7 M, B2 27.4 M, B3 47.2 M, B4 64.0 M, B5 84.6 M
parameters (the paper: 3.8 / 13.7 / 27.5 / 47.3 / 64.1 / 84.7 M).

Input sides: multiples of 32 (any size computes, each patch embedding rounding up, but at
multiples of 32 the maps sit exactly at their strides); ``kerasseg.inference.predict`` pads
other sizes. Inputs are RGB in [0, 255], normalized in the graph (ImageNet mean and std).
No Keras ImageNet weights of MiT exist, so ``weights`` defaults to None here; pretrained
SegFormers come from keras-hub's presets through ``kerasseg.from_keras_hub``.
"""

from keras import layers

from kerasseg import backbones as bb
from kerasseg.backbones.mit import VARIANTS
from kerasseg.layers import FusedBatchNormalization, MLPFusion
from kerasseg.models import base
from kerasseg.models.registry import BN_MOMENTUM, register_model

MULTIPLE = 32
DECODER_FILTERS = {"b0": 256, "b1": 256, "b2": 768, "b3": 768, "b4": 768, "b5": 768}
LEVELS = (4, 8, 16, 32)


def segformer_backbones():
    """Backbones SegFormer takes: the MiT encoders and every registry backbone with maps at
    strides 4, 8, 16 and 32."""
    return sorted(name for name, spec in bb.BACKBONES.items() if None not in spec.taps[1:])


def all_mlp_decoder(feats, filters, dropout, name="decode"):
    """SegFormer's decoder over {stride: map}: the fused stride-4 map, before the classifier.

    The linear layers and the 1x1 fusion convolution are one ``MLPFusion`` layer (the same
    weights and function, without the wide concatenation at stride 4)."""
    x = MLPFusion(filters, name=f"{name}_fusion")([feats[s] for s in LEVELS])
    x = FusedBatchNormalization(epsilon=1e-5, name=f"{name}_fuse_bn")(x)
    x = layers.Activation("relu", name=f"{name}_fuse_relu")(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


@register_model("segformer")
def segformer(
    num_classes,
    *,
    variant="b0",
    backbone=None,
    weights=None,
    input_shape=(None, None, 3),
    activation="softmax",
    freeze_backbone=False,
    decoder_filters=None,
    dropout=0.1,
    approximate_gelu=False,
    class_names=None,
    palette=None,
    bn_momentum=BN_MOMENTUM,
    name=None,
):
    """SegFormer; see the module docstring.

    variant: "b0" .. "b5", the MiT encoder and the decoder width.
    backbone: None (the MiT of ``variant``), or another registry backbone with maps at
        strides 4-32 under the same decoder (``mit_b0`` .. ``mit_b5`` name the MiTs).
    weights: None (random), or a path to a weights file of the model or of its backbone;
        "imagenet" is refused for MiT (no Keras ImageNet weights; see from_keras_hub).
    decoder_filters: the decoder's width (default 256 for B0/B1, 768 for B2-B5).
    dropout: before the classifier (0.1).
    approximate_gelu: the Mix-FFN's GELU by its tanh approximation, as keras-hub computes it
        (``from_keras_hub`` sets it); False is the paper's exact GELU.
    """
    arch = "segformer"
    if variant not in VARIANTS:
        raise ValueError(f"{arch}: variant must be one of {', '.join(VARIANTS)}; got {variant!r}.")
    input_shape = base.check_args(arch, num_classes, activation, input_shape, MULTIPLE)
    encoder_name = backbone or f"mit_{variant}"
    filters = decoder_filters or DECODER_FILTERS[variant]
    inputs = base.model_input(input_shape)
    encoder = base.encoder(
        arch, encoder_name, input_shape, weights, freeze_backbone, allowed=segformer_backbones()
    )
    if approximate_gelu:
        bb.set_approximate_gelu(encoder)
    feats = base.features_by_stride(encoder, inputs)
    x = all_mlp_decoder(feats, filters, dropout)
    outputs = base.head(x, inputs, num_classes, activation)
    default_name = f"{arch}_{variant}" if backbone is None else f"{arch}_{backbone}"
    model = base.segmenter(inputs, outputs, name=name or default_name, multiple=MULTIPLE)
    model.resolved_backbone = encoder_name  # the description names the MiT built
    return base.load_weights(model, encoder, weights, arch)
