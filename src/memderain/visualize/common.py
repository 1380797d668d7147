"""Shared drawing helpers: panel grids of exact pixel size, overlays, atomic PNG writes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure

from memderain.atomicfile import atomic_output

PANEL_PX = 256  # each panel of a grid figure is PANEL_PX x PANEL_PX pixels ...
TITLE_PX = 24  # ... with a title strip of TITLE_PX above it
DPI = 100

Panel = tuple[np.ndarray, str]  # (HxW or HxWx3 float array in [0, 1], title)


def save_figure(fig: Figure, path: Path, overwrite: bool = False) -> Path:
    """Write ``fig`` as PNG atomically (temporary file in the same folder, then rename)."""
    with atomic_output(path, overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return Path(path)


def save_image(array: np.ndarray, path: Path, overwrite: bool = False) -> Path:
    """Write an HxWx3 float [0, 1] array as a PNG of exactly H x W pixels (atomic)."""
    h, w = array.shape[:2]
    fig = Figure(figsize=(w / DPI, h / DPI), dpi=DPI)
    fig.figimage(np.clip(array, 0, 1), xo=0, yo=0, origin="upper")
    return save_figure(fig, path, overwrite)


def grid_figure(rows: Sequence[Sequence[Panel]], cmap: str = "viridis") -> Figure:
    """A figure of len(rows) x max(len(row)) panels, each PANEL_PX square plus a title strip.

    Pixel size: width ``ncols * PANEL_PX``, height ``nrows * (PANEL_PX + TITLE_PX)``.
    Single-channel panels use ``cmap`` scaled to their own min/max.
    """
    nrows, ncols = len(rows), max(len(r) for r in rows)
    width, height = ncols * PANEL_PX, nrows * (PANEL_PX + TITLE_PX)
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    for r, row in enumerate(rows):
        for c, (array, title) in enumerate(row):
            left = c * PANEL_PX / width
            bottom = 1 - ((r + 1) * (PANEL_PX + TITLE_PX)) / height
            ax = fig.add_axes((left, bottom, PANEL_PX / width, PANEL_PX / height))
            if array.ndim == 2:
                ax.imshow(array, cmap=cmap, interpolation="nearest")
            else:
                ax.imshow(np.clip(array, 0, 1), interpolation="nearest")
            ax.set_title(title, fontsize=8, pad=3)
            ax.set_axis_off()
    return fig


def to_hwc(image01: torch.Tensor) -> np.ndarray:
    """(3, H, W) tensor in [0, 1] -> HxWx3 float numpy array."""
    return image01.detach().float().cpu().permute(1, 2, 0).numpy()


def normalize_map(a: np.ndarray) -> np.ndarray:
    """Min-max scale a 2-D map to [0, 1] (a constant map becomes zeros)."""
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def overlay(image: np.ndarray, heat: np.ndarray, cmap: str = "jet", opacity: float = 0.5):
    """Blend a [0, 1] heat map (HxW, coloured with ``cmap``) over an HxWx3 image."""
    colored = colormaps[cmap](heat)[..., :3]
    return (1 - opacity) * image + opacity * colored
