"""RefineNet (Lin et al. 2017, "RefineNet: Multi-Path Refinement Networks for High-Resolution
Semantic Segmentation"), the 4-cascaded variant.

The backbone's maps at strides 32, 16, 8 and 4 are first brought to 512, 256, 256 and 256
channels by 3x3 convolutions. RefineNet-4 refines the stride-32 map alone; RefineNet-3 fuses its
output with the stride-16 map, RefineNet-2 that with stride 8, RefineNet-1 that with stride 4
(blocks in kerasseg.layers.refine: two residual conv units per path, multi-resolution fusion,
chained residual pooling with four 5x5 pooling stages, one output residual conv unit). Two more
residual conv units, a 1x1 classifier at stride 4 and a bilinear 4x upsampling finish it.

Deviation from the paper: its best models use ResNet-101 (``backbone="resnet101"`` builds it);
the default here is resnet50, like the rest of the zoo (99.1 M parameters at 21 classes;
118.2 M with resnet101). Inputs: sides a multiple of 32.
"""

from keras import layers

from kerasseg.layers import refinenet_block, residual_conv_unit
from kerasseg.models import base
from kerasseg.models.registry import BN_MOMENTUM, register_model

# The cascade runs coarse to fine: RefineNet-4 on stride 32 (512 wide, as in the paper), then
# RefineNet-3, -2, -1 on strides 16, 8, 4 (256 wide).
STRIDES = (32, 16, 8, 4)
DEFAULT_WIDTHS = (512, 256, 256, 256)


@register_model("refinenet")
def refinenet(
    num_classes,
    *,
    backbone="resnet50",
    weights="imagenet",
    input_shape=(None, None, 3),
    activation="softmax",
    freeze_backbone=False,
    widths=DEFAULT_WIDTHS,
    crp_stages=4,
    class_names=None,
    palette=None,
    bn_momentum=BN_MOMENTUM,
    name=None,
):
    """RefineNet (4-cascaded).

    backbone: a registry name (default "resnet50"; the paper's is resnet101).
    widths: channels of RefineNet-4, -3, -2 and -1 (512, 256, 256, 256).
    crp_stages: pooling stages in each chained residual pooling (4).
    """
    arch = "refinenet"
    if len(widths) != 4:
        raise ValueError(f"{arch}: widths needs 4 entries (RefineNet-4 to -1); got {widths}.")
    if crp_stages < 1:
        raise ValueError(f"{arch}: crp_stages must be >= 1; got {crp_stages}.")
    input_shape = base.check_args(arch, num_classes, activation, input_shape, 32)
    inputs = base.model_input(input_shape)
    encoder = base.encoder(arch, backbone, input_shape, weights, freeze_backbone)
    feats = base.features_by_stride(encoder, inputs)

    x = None
    for stage, (stride, width) in enumerate(zip(STRIDES, widths)):
        index = 4 - stage
        # Dimension reduction of the encoder map before it enters its RefineNet block.
        path = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"refine{index}_adapt")(
            feats[stride]
        )
        paths = [path] if x is None else [path, x]
        x = refinenet_block(paths, width, name=f"refine{index}", crp_stages=crp_stages)
    for r in range(2):
        x = residual_conv_unit(x, name=f"final_rcu{r + 1}")
    outputs = base.head(x, inputs, num_classes, activation, resize=True)
    model = base.segmenter(inputs, outputs, name=name or f"{arch}_{backbone}", multiple=32)
    return base.load_weights(model, encoder, weights, arch)
