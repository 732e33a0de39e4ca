"""Instance segmentation models (task "instance"): Mask R-CNN."""

from kerasseg.models.instance.mask_rcnn import MaskRCNN, mask_rcnn

__all__ = ["MaskRCNN", "mask_rcnn"]
