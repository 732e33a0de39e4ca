"""U-Net (Ronneberger et al. 2015): a contracting path, an expanding path, skip concatenation.

``backbone=None`` builds the paper's own encoder (``filters`` doubling over four poolings,
64 -> 1024); at 2 classes without batch norm it has the paper's 31.0 M parameters. A registry
backbone gives the now-usual variant: its five feature maps as skips, a light decoder.
"""

from keras import layers

from kerasseg.layers import conv_bn_act, upsample_conv_bn_act, upsample_like
from kerasseg.models import base
from kerasseg.models.registry import BN_MOMENTUM, register_model

DEFAULT_DECODER_FILTERS = (256, 128, 64, 32, 16)


def double_conv(x, filters, batch_norm, name):
    x = conv_bn_act(x, filters, 3, batch_norm=batch_norm, name=f"{name}_1")
    return conv_bn_act(x, filters, 3, batch_norm=batch_norm, name=f"{name}_2")


def up_and_merge(x, skip, filters, upsampling, name, reference=None):
    """Double ``x``'s resolution to ``skip``'s size and concatenate the two.

    Without a skip (the last stage, or a backbone with no stride-2 map) ``reference`` gives the
    target size. "transpose" learns the 2x upsampling (2x2 transposed conv, the paper's);
    otherwise it is a nearest-neighbour resize.
    """
    target = skip if skip is not None else reference
    if upsampling == "transpose":
        x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"{name}_up")(x)
        if target is not None:
            # Equal already when the input is a multiple of the stride; 'valid'-padded
            # encoders (Xception, Inception) are a pixel off, so snap to the target.
            x = upsample_like(x, target, "nearest", name=f"{name}_align")
    elif target is None:
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_up")(x)
    else:
        x = upsample_like(x, target, "nearest", name=f"{name}_up")
    if skip is None:
        return x
    return layers.Concatenate(name=f"{name}_concat")([x, skip])


def decoder_stage(x, skip, filters, upsampling, batch_norm, name, reference=None):
    """``up_and_merge`` then ``double_conv``.

    With nearest upsampling the resize, the concatenation and the first convolution are one
    ``UpsampleConv2D`` (same kernel, same values; at inference it skips the upsampled map).
    """
    target = skip if skip is not None else reference
    if upsampling == "nearest" and target is not None:
        x = upsample_conv_bn_act(
            x, target, filters, merge=skip is not None, batch_norm=batch_norm, name=f"{name}_1"
        )
        return conv_bn_act(x, filters, 3, batch_norm=batch_norm, name=f"{name}_2")
    x = up_and_merge(x, skip, filters, upsampling, name, reference)
    return double_conv(x, filters, batch_norm, name)


def paper_encoder(inputs, filters, depth, batch_norm):
    """The paper's contracting path: returns the bottleneck and the skips, finest first.

    Shared with U-Net++ and Attention U-Net, whose papers keep this encoder.
    """
    from kerasseg.backbones import ImagePreprocessing

    x = ImagePreprocessing("unit", name="preprocess")(inputs)
    skips = []
    for level in range(depth):
        x = double_conv(x, filters * 2**level, batch_norm, name=f"enc{level + 1}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level + 1}")(x)
    x = double_conv(x, filters * 2**depth, batch_norm, name="bottleneck")
    return x, skips


def _paper_unet(inputs, filters, depth, batch_norm, upsampling, gate=None):
    x, skips = paper_encoder(inputs, filters, depth, batch_norm)
    for level in reversed(range(depth)):
        width = filters * 2**level
        skip = skips[level]
        if gate is not None:
            skip = gate(skip, x, f"dec{level + 1}_gate")
        x = decoder_stage(x, skip, width, upsampling, batch_norm, name=f"dec{level + 1}")
    return x


def _backbone_unet(inputs, encoder, decoder_filters, batch_norm, upsampling, gate=None):
    feats = base.features_by_stride(encoder, inputs)
    x = feats[32]
    skips = [feats.get(s) for s in (16, 8, 4, 2)] + [None]
    for i, (skip, width) in enumerate(zip(skips, decoder_filters)):
        # The last stage has no skip: it lands exactly on the input's size. A missing
        # stride-2 map (ConvNeXt) just doubles.
        reference = inputs if i == len(skips) - 1 else None
        if gate is not None and skip is not None:
            skip = gate(skip, x, f"decoder{i + 1}_gate")
        x = decoder_stage(x, skip, width, upsampling, batch_norm, f"decoder{i + 1}", reference)
    return x


@register_model("unet")
def unet(
    num_classes,
    *,
    backbone=None,
    weights="imagenet",
    input_shape=(None, None, 3),
    activation="softmax",
    freeze_backbone=False,
    filters=64,
    depth=4,
    batch_norm=True,
    decoder_filters=DEFAULT_DECODER_FILTERS,
    upsampling=None,
    class_names=None,
    palette=None,
    bn_momentum=BN_MOMENTUM,
    name=None,
):
    """U-Net.

    backbone: None for the paper's encoder (input sides a multiple of 2**depth), or a registry
        name (input sides a multiple of 32).
    filters, depth: the paper encoder's first width and number of poolings (64 and 4).
    decoder_filters: the five decoder widths of the backbone variant.
    upsampling: "transpose" (2x2 transposed convolution, the paper's, default without a
        backbone) or "nearest" (default with a backbone).
    """
    return build_unet(
        "unet",
        num_classes,
        backbone=backbone,
        weights=weights,
        input_shape=input_shape,
        activation=activation,
        freeze_backbone=freeze_backbone,
        filters=filters,
        depth=depth,
        batch_norm=batch_norm,
        decoder_filters=decoder_filters,
        upsampling=upsampling,
        name=name,
    )


def unet_multiple(backbone, depth):
    """The side multiple of the U-Net family: 2**depth on the paper's encoder, else 32."""
    return 2**depth if backbone is None else 32


def setup(
    arch,
    num_classes,
    backbone,
    weights,
    input_shape,
    activation,
    freeze_backbone,
    depth,
    decoder_filters,
    upsampling,
):
    """Checks and inputs shared by the U-Net family; returns (inputs, encoder, upsampling).

    ``encoder`` is None for the paper's own encoder (input sides a multiple of 2**depth);
    a registry backbone needs sides a multiple of 32.
    """
    if upsampling is None:
        upsampling = "transpose" if backbone is None else "nearest"
    if upsampling not in ("transpose", "nearest"):
        raise ValueError(
            f"{arch}: upsampling must be 'transpose' or 'nearest'; got {upsampling!r}."
        )
    input_shape = base.check_args(
        arch, num_classes, activation, input_shape, unet_multiple(backbone, depth)
    )
    inputs = base.model_input(input_shape)
    if backbone is None:
        if freeze_backbone:
            raise ValueError(f"{arch}: freeze_backbone needs a backbone; backbone is None.")
        return inputs, None, upsampling
    if len(decoder_filters) != 5:
        raise ValueError(f"{arch}: decoder_filters needs 5 widths; got {decoder_filters}.")
    return inputs, base.encoder(arch, backbone, input_shape, weights, freeze_backbone), upsampling


def build_unet(
    arch,
    num_classes,
    *,
    backbone,
    weights,
    input_shape,
    activation,
    freeze_backbone,
    filters,
    depth,
    batch_norm,
    decoder_filters,
    upsampling,
    name=None,
    gate=None,
):
    """The U-Net builder behind ``unet`` and its variants.

    gate: None, or ``gate(skip, gating, name) -> skip`` applied to every skip before it is
        merged, ``gating`` being the coarser decoder feature (Attention U-Net's gates).
    """
    inputs, encoder, upsampling = setup(
        arch,
        num_classes,
        backbone,
        weights,
        input_shape,
        activation,
        freeze_backbone,
        depth,
        decoder_filters,
        upsampling,
    )
    if encoder is None:
        x = _paper_unet(inputs, filters, depth, batch_norm, upsampling, gate)
    else:
        x = _backbone_unet(inputs, encoder, decoder_filters, batch_norm, upsampling, gate)
    # Both decoders end exactly at the input's size: no final resize needed.
    outputs = base.head(x, inputs, num_classes, activation, resize=False)
    model = base.segmenter(
        inputs,
        outputs,
        name=name or f"{arch}_{backbone or 'paper'}",
        multiple=unet_multiple(backbone, depth),
    )
    return base.load_weights(model, encoder, weights, arch)
