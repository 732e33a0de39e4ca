"""Necks: feature maps of a backbone turned into what heads read (the FPN and its semantic
branch)."""

from kerasseg.necks.fpn import LEVELS, NORMS, coarser_level, feature_pyramid, semantic_head

__all__ = ["LEVELS", "NORMS", "coarser_level", "feature_pyramid", "semantic_head"]
