"""U-Net++ (Zhou et al. 2018, "UNet++: A Nested U-Net Architecture for Medical Image Segmentation").

The plain U-Net skip is replaced by a grid of nodes: node X(i, j) (level i, column j) convolves
the concatenation of every earlier node of its level, X(i, 0..j-1), with the upsampled node
X(i+1, j-1) below it. The top row X(0, 1..) therefore holds segmentations of growing depth;
with ``deep_supervision=True`` each gets its own classifier, so the model has several outputs,
all at the input's size: "output" (the deepest, X(0, depth), listed first; what predict and
export use) and "output_ds1".."output_ds{depth-1}" (from X(0, 1), X(0, 2), ...). Compile with
one loss (Keras applies it to every output and sums) and give every output the same labels:
``dataset.map(replicate_labels(model))``; metrics go to the main output,
``metrics={"output": [...]}``.

``backbone=None`` is the paper's encoder (two 3x3 convolutions per level, ``filters`` doubling
from 32, four poolings; input sides a multiple of 2**depth). With a registry backbone
(default resnet50; smp's default resnet34 is not in keras.applications) the grid stands on its
five taps, strides 2..32, and one more upsampling stage reaches the input's size; sides a
multiple of 32.
"""

from keras import layers

from kerasseg.models import base
from kerasseg.models.registry import BN_MOMENTUM, register_model
from kerasseg.models.semantic.unet import (
    DEFAULT_DECODER_FILTERS,
    double_conv,
    paper_encoder,
    setup,
    unet_multiple,
    up_and_merge,
)


def _merge_skips(skips, name):
    skips = [s for s in skips if s is not None]
    if not skips:
        return None
    if len(skips) == 1:
        return skips[0]
    return layers.Concatenate(name=f"{name}_skips")(skips)


def nested_grid(columns0, widths, batch_norm, upsampling, prefix="x"):
    """Fill the U-Net++ grid.

    columns0: X(i, 0) for levels i = 0..depth, finest first (X(0, 0) may be None: a backbone
        without a stride-2 map). widths: the node width of levels 0..depth-1.
    Returns the top row [X(0, 1), ..., X(0, depth)].
    """
    depth = len(columns0) - 1
    grid = [[node] for node in columns0]
    for j in range(1, depth + 1):
        for i in range(depth - j + 1):
            name = f"{prefix}{i}_{j}"
            skip = _merge_skips(grid[i][:j], name)
            x = up_and_merge(grid[i + 1][j - 1], skip, widths[i], upsampling, name)
            grid[i].append(double_conv(x, widths[i], batch_norm, name))
    return grid[0][1:]


def _side_output(x, inputs, num_classes, activation, index, resize):
    return base.head(
        x,
        inputs,
        num_classes,
        activation,
        name=f"ds{index}",
        resize=resize,
        output_name=f"output_ds{index}",
    )


def replicate_labels(model):
    """A ``tf.data`` map function giving every output of ``model`` the same labels.

    ``dataset.map(replicate_labels(model))`` turns (image, mask) into (image, {name: mask}).
    A single-output model gets its pairs back unchanged.
    """
    names = list(model.output_names)

    def fn(images, labels, *rest):
        if len(names) == 1:
            return (images, labels, *rest)
        return (images, {name: labels for name in names}, *rest)

    return fn


@register_model("unetpp")
def unetpp(
    num_classes,
    *,
    backbone="resnet50",
    weights="imagenet",
    input_shape=(None, None, 3),
    activation="softmax",
    freeze_backbone=False,
    deep_supervision=False,
    filters=32,
    depth=4,
    batch_norm=True,
    decoder_filters=DEFAULT_DECODER_FILTERS,
    upsampling=None,
    class_names=None,
    palette=None,
    bn_momentum=BN_MOMENTUM,
    name=None,
):
    """U-Net++.

    backbone: a registry name (default "resnet50"; sides a multiple of 32) or None for the
        paper's encoder (sides a multiple of 2**depth).
    deep_supervision: one output per top-row node (main output first, named "output").
    filters, depth: the paper encoder's first width (32) and number of poolings (4).
    decoder_filters: node widths of the backbone variant at strides 16, 8, 4, 2 and of the
        last stage at stride 1.
    upsampling: "transpose" (2x2 transposed conv, the paper's; default without a backbone) or
        "nearest" (default with a backbone).
    """
    arch = "unetpp"
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
        bottleneck, skips = paper_encoder(inputs, filters, depth, batch_norm)
        widths = [filters * 2**level for level in range(depth)]
        top = nested_grid(skips + [bottleneck], widths, batch_norm, upsampling)
        main, resize = top[-1], False
    else:
        feats = base.features_by_stride(encoder, inputs)
        columns0 = [feats.get(s) for s in (2, 4, 8, 16, 32)]
        # decoder_filters runs coarse to fine; grid levels run fine to coarse.
        widths = list(reversed(decoder_filters[:4]))
        top = nested_grid(columns0, widths, batch_norm, upsampling)
        # The top row sits at stride 2: one more stage, without a skip, reaches full size.
        x = up_and_merge(top[-1], None, decoder_filters[4], upsampling, "final", inputs)
        main = double_conv(x, decoder_filters[4], batch_norm, "final")
        resize = True
    outputs = base.head(main, inputs, num_classes, activation, resize=False)
    if deep_supervision:
        outputs = [outputs] + [
            _side_output(x, inputs, num_classes, activation, j + 1, resize)
            for j, x in enumerate(top[:-1])
        ]
    model = base.segmenter(
        inputs,
        outputs,
        name=name or f"{arch}_{backbone or 'paper'}",
        multiple=unet_multiple(backbone, depth),
    )
    return base.load_weights(model, encoder, weights, arch)
