"""Panoptic segmentation models (task "panoptic"): Panoptic FPN and Panoptic-DeepLab."""

from kerasseg.models.panoptic.common import panoptic_classes
from kerasseg.models.panoptic.panoptic_deeplab import PanopticDeepLab, panoptic_deeplab
from kerasseg.models.panoptic.panoptic_fpn import PanopticFPN, panoptic_fpn

__all__ = ["PanopticDeepLab", "PanopticFPN", "panoptic_classes", "panoptic_deeplab", "panoptic_fpn"]
