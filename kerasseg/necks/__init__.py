"""Necks: feature maps of a backbone turned into what heads read (the FPN today)."""

from kerasseg.necks.fpn import LEVELS, coarser_level, feature_pyramid

__all__ = ["LEVELS", "coarser_level", "feature_pyramid"]
