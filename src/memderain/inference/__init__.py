"""Inference: image files (``io``), tiled forward passes (``tiling``), ``Derainer``."""
