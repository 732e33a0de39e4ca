"""Necks: feature maps of a backbone turned into what heads read (the FPN today)."""

from kerasseg.necks.fpn import LEVELS, feature_pyramid

__all__ = ["LEVELS", "feature_pyramid"]
