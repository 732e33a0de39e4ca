"""Mix Transformer (MiT) encoders B0–B5, SegFormer's (Xie et al. 2021), written here.

Four stages; each starts with an overlapping patch embedding (a ``k x k`` convolution of
stride ``s`` padded by ``k // 2``: 7/4 for the first stage, 3/2 after, so the maps sit at
strides 4, 8, 16 and 32 and any input size works) and a layer norm, then stacks transformer
blocks (layer norm, efficient self-attention with spatial reduction 8/4/2/1, layer norm,
Mix-FFN with 4x expansion; stochastic depth rising linearly to ``drop_path_rate``), and ends
with a layer norm whose output is the stage's feature map (tapped).

keras.applications has no MiT and no ImageNet weights are published for Keras:
``weights="imagenet"`` is refused with the way to pretrained weights
(``kerasseg.from_keras_hub``, which converts keras-hub's SegFormer presets).
Inputs: RGB in [0, 255], normalized in the graph with ImageNet mean and std ("torch" mode),
as keras-hub's SegFormer preprocessor and mmsegmentation do.
"""

import keras
import numpy as np
from keras import layers

from kerasseg.backbones.registry import BackboneSpec, register_backbone
from kerasseg.backbones.weights import refuse_imagenet
from kerasseg.layers.attention import DropPath, EfficientAttention, MixFFN

# Channels and blocks per stage (Xie et al. 2021, Table 6 of the appendix).
VARIANTS = {
    "b0": ((32, 64, 160, 256), (2, 2, 2, 2)),
    "b1": ((64, 128, 320, 512), (2, 2, 2, 2)),
    "b2": ((64, 128, 320, 512), (3, 4, 6, 3)),
    "b3": ((64, 128, 320, 512), (3, 4, 18, 3)),
    "b4": ((64, 128, 320, 512), (3, 8, 27, 3)),
    "b5": ((64, 128, 320, 512), (3, 6, 40, 3)),
}
HEADS = (1, 2, 5, 8)
SR_RATIOS = (8, 4, 2, 1)
PATCH_SIZES = (7, 3, 3, 3)
PATCH_STRIDES = (4, 2, 2, 2)
MLP_RATIO = 4
BLOCK_EPSILON = 1e-6  # the blocks' layer norms
EPSILON = 1e-5  # patch embeddings', stage outputs' and spatial reductions' norms


def stage_tap(stage):
    """Name of the layer whose output is stage ``stage``'s (1..4) feature map."""
    return f"stage{stage}_norm"


def mix_transformer(
    include_top=False,
    weights=None,
    input_tensor=None,
    *,
    variant="b0",
    drop_path_rate=0.1,
    approximate_gelu=False,
    name=None,
):
    """The MiT encoder ``variant`` over ``input_tensor`` (keras.applications' signature).

    approximate_gelu: the Mix-FFN's GELU as keras-hub computes it (tanh approximation)
    instead of the exact one (the paper's); ``from_keras_hub`` sets it.
    """
    if include_top:
        raise ValueError("MiT: include_top is not supported (a segmentation encoder).")
    if weights == "imagenet":
        refuse_imagenet(
            f"mit_{variant}",
            "Mix Transformer",
            "; for pretrained SegFormer weights convert a keras-hub preset with "
            "kerasseg.from_keras_hub('segformer_b0_ade20k_512')",
        )
    if variant not in VARIANTS:
        raise ValueError(f"MiT: variant must be one of {', '.join(VARIANTS)}; got {variant!r}.")
    dims, depths = VARIANTS[variant]
    rates = np.linspace(0.0, drop_path_rate, sum(depths))
    inputs = keras.utils.get_source_inputs(input_tensor)[0]
    x = input_tensor
    block = 0
    for s, (dim, depth) in enumerate(zip(dims, depths), 1):
        k = PATCH_SIZES[s - 1]
        x = layers.ZeroPadding2D(k // 2, name=f"stage{s}_patch_pad")(x)
        x = layers.Conv2D(dim, k, strides=PATCH_STRIDES[s - 1], name=f"stage{s}_patch_embed")(x)
        x = layers.LayerNormalization(epsilon=EPSILON, name=f"stage{s}_patch_norm")(x)
        for b in range(depth):
            p = f"stage{s}_block{b + 1}"
            rate = float(rates[block])
            block += 1
            y = layers.LayerNormalization(epsilon=BLOCK_EPSILON, name=f"{p}_norm1")(x)
            y = EfficientAttention(dim, HEADS[s - 1], SR_RATIOS[s - 1], name=f"{p}_attention")(y)
            y = DropPath(rate, name=f"{p}_drop_path1")(y)
            x = layers.Add(name=f"{p}_add1")([x, y])
            y = layers.LayerNormalization(epsilon=BLOCK_EPSILON, name=f"{p}_norm2")(x)
            y = MixFFN(dim, MLP_RATIO * dim, approximate_gelu, name=f"{p}_mlp")(y)
            y = DropPath(rate, name=f"{p}_drop_path2")(y)
            x = layers.Add(name=f"{p}_add2")([x, y])
        x = layers.LayerNormalization(epsilon=EPSILON, name=stage_tap(s))(x)
    return keras.Model(inputs, x, name=name or f"mit_{variant}")


def set_approximate_gelu(model, approximate=True):
    """Switch every Mix-FFN of ``model`` (nested models included) to the tanh-approximated
    GELU (or back); returns ``model``. The functional graph calls its layers anew, so the
    switch is what runs, and each layer's saved config carries it."""
    for layer in model.layers:
        if isinstance(layer, MixFFN):
            layer.approximate_gelu = bool(approximate)
        elif isinstance(layer, keras.Model):
            set_approximate_gelu(layer, approximate)
    return model


def mit_constructor(variant):
    """A keras.applications-style constructor of MiT ``variant`` (for the registry)."""

    def constructor(include_top=False, weights=None, input_tensor=None, **kwargs):
        return mix_transformer(include_top, weights, input_tensor, variant=variant, **kwargs)

    constructor.__name__ = f"MiT_{variant.upper()}"
    return constructor


MIT_TAPS = (None, stage_tap(1), stage_tap(2), stage_tap(3), stage_tap(4))

for _variant in VARIANTS:
    register_backbone(
        f"mit_{_variant}", BackboneSpec(mit_constructor(_variant), "torch", MIT_TAPS, "mit")
    )
