"""Trivial de-raining baselines: 3x3 filters that any learned model must beat.

Bright, thin rain streaks are partly removed by a small rank filter, so PSNR gains over the
rainy input alone say little; quality claims (model card, tests) compare with the best of
these on the same images. Each maps a uint8 HxWx3 image to a uint8 HxWx3 image, channel by
channel, with edge-replicating borders (``scipy.ndimage``, mode ``nearest``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

_SIZE = (3, 3, 1)  # 3x3 window, channels independent


def median3(rgb: np.ndarray) -> np.ndarray:
    """3x3 median filter."""
    return ndimage.median_filter(rgb, size=_SIZE, mode="nearest")


def min3(rgb: np.ndarray) -> np.ndarray:
    """3x3 minimum filter (grey erosion): removes bright lines up to 2 px wide."""
    return ndimage.minimum_filter(rgb, size=_SIZE, mode="nearest")


def opening3(rgb: np.ndarray) -> np.ndarray:
    """3x3 grey opening (erosion then dilation): removes thin bright lines, keeps wide areas."""
    return ndimage.grey_opening(rgb, size=_SIZE, mode="nearest")


TRIVIAL_FILTERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "median3": median3,
    "min3": min3,
    "opening3": opening3,
}
