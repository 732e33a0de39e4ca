"""Semantic segmentation architectures, one module per family."""
