"""Models: the ``Segmenter`` task class, the registry, and the architectures by task.

Importing this package imports every family module (each registers its builders).
"""

from kerasseg.models.instance import MaskRCNN, mask_rcnn  # noqa: F401  (registers it)
from kerasseg.models.panoptic import (  # noqa: F401  (registers them)
    PanopticDeepLab,
    PanopticFPN,
    panoptic_deeplab,
    panoptic_fpn,
)
from kerasseg.models.registry import (
    BN_MOMENTUM,
    MODELS,
    build,
    list_models,
    register_model,
    set_bn_momentum,
)
from kerasseg.models.segmenter import Segmenter, describe
from kerasseg.models.semantic import (  # noqa: F401  (registers the semantic builders)
    attention_unet,
    deeplab,
    fc_densenet,
    fcn,
    fpn,
    linknet,
    pspnet,
    refinenet,
    segformer,
    segnet,
    unet,
    unetpp,
    upernet,
)

__all__ = [
    "BN_MOMENTUM",
    "MODELS",
    "MaskRCNN",
    "Segmenter",
    "build",
    "describe",
    "list_models",
    "mask_rcnn",
    "PanopticDeepLab",
    "PanopticFPN",
    "panoptic_deeplab",
    "panoptic_fpn",
    "register_model",
    "set_bn_momentum",
]
