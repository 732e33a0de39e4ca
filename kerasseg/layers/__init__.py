"""Keras layers and blocks shared by the architectures, one module per kind.

conv: conv-bn-act and the fast-kernel layers (FusedBatchNormalization, DilatedConv2D);
upsampling: ResizeLike, UpsampleConv2D; pooling: ASPP, pyramid pooling; unpooling: SegNet's
argmax unpooling, FCN's bilinear kernel; dense: FC-DenseNet blocks; refine: RefineNet blocks;
attention: SegFormer's efficient self-attention, Mix-FFN, DropPath and MLP fusion; detection:
proposals, ROIAlign and detections of a two-stage detector.
Importing this package registers every custom layer with Keras.
"""

from kerasseg.layers.attention import DropPath, EfficientAttention, MixFFN, MLPFusion
from kerasseg.layers.conv import (
    DilatedConv2D,
    FusedBatchNormalization,
    bn_act,
    conv_bn_act,
    use_fast_kernels,
)
from kerasseg.layers.dense import dense_block, transition_down, transition_up
from kerasseg.layers.detection import (
    Detections,
    MaskSelect,
    MultiLevelRoiAlign,
    Proposals,
    align_boxes,
    align_pyramid,
    detect_boxes,
    level_anchors,
    propose,
)
from kerasseg.layers.panoptic import CenterGrouping, PanopticMerge
from kerasseg.layers.pooling import (
    AdaptiveAveragePooling2D,
    aspp,
    image_pooling,
    pyramid_pooling_module,
    separable_conv_bn_act,
)
from kerasseg.layers.refine import (
    chained_residual_pooling,
    multi_resolution_fusion,
    refinenet_block,
    residual_conv_unit,
)
from kerasseg.layers.unpooling import (
    BilinearUpsampling,
    MaxPoolingWithArgmax,
    MaxUnpooling,
    bilinear_kernel,
)
from kerasseg.layers.upsampling import (
    ResizeLike,
    UpsampleConv2D,
    upsample_conv_bn_act,
    upsample_like,
)

__all__ = [
    "CenterGrouping",
    "PanopticMerge",
    # attention (SegFormer's transformer blocks)
    "DropPath",
    "EfficientAttention",
    "MixFFN",
    "MLPFusion",
    # detection (two-stage detectors' inference graph)
    "Detections",
    "MaskSelect",
    "MultiLevelRoiAlign",
    "Proposals",
    "align_boxes",
    "align_pyramid",
    "detect_boxes",
    "level_anchors",
    "propose",
    # conv
    "DilatedConv2D",
    "FusedBatchNormalization",
    "bn_act",
    "conv_bn_act",
    "use_fast_kernels",
    # upsampling
    "ResizeLike",
    "UpsampleConv2D",
    "upsample_conv_bn_act",
    "upsample_like",
    # pooling
    "AdaptiveAveragePooling2D",
    "aspp",
    "image_pooling",
    "pyramid_pooling_module",
    "separable_conv_bn_act",
    # unpooling
    "BilinearUpsampling",
    "MaxPoolingWithArgmax",
    "MaxUnpooling",
    "bilinear_kernel",
    # dense
    "dense_block",
    "transition_down",
    "transition_up",
    # refine
    "chained_residual_pooling",
    "multi_resolution_fusion",
    "refinenet_block",
    "residual_conv_unit",
]
