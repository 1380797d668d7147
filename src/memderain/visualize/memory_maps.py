"""Memory read maps (paper Figs. 3 and 11): where in the image each memory item is read.

For item m the map is the read weight alpha^{k,m} of Eq. 2 at every query position k of the
(H/8, W/8) query map, bilinearly up-sampled x8 to the padded image and cropped to H x W.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from memderain.errors import MemderainError
from memderain.model.derainer import SIZE_MULTIPLE, MemDerain
from memderain.visualize.common import (
    grid_figure,
    normalize_map,
    overlay,
    save_figure,
    save_image,
    to_hwc,
)


@dataclass
class ReadMaps:
    background01: torch.Tensor  # (3, H, W) de-rained image in [0, 1]
    maps: np.ndarray  # (M, H, W) up-sampled read weights alpha (Eq. 2)
    mean_weight: np.ndarray  # (M,) mean read weight of each item over the image


@torch.no_grad()
def compute_read_maps(model: MemDerain, image01: torch.Tensor) -> ReadMaps:
    """Run ``model`` (eval) on one (3, H, W) image in [0, 1] and up-sample its read weights."""
    if model.memory is None:
        raise MemderainError("this model has no memory (use_memory: false); no read maps to show")
    h, w = image01.shape[-2:]
    out = model.eval()(image01[None].float() * 2 - 1)
    alpha = out.read_weights.float()  # (1, M, ceil(H/8), ceil(W/8))
    up = F.interpolate(alpha, scale_factor=SIZE_MULTIPLE, mode="bilinear", align_corners=False)
    maps = up[0, :, :h, :w].cpu().numpy()
    background01 = ((out.background[0] + 1) / 2).clamp(0, 1).cpu()
    return ReadMaps(background01, maps, alpha[0].mean(dim=(1, 2)).cpu().numpy())


def choose_items(mean_weight: np.ndarray, items: Sequence[int] | None, top: int) -> list[int]:
    """The requested items (validated), or the ``top`` items with the largest mean weight."""
    m = len(mean_weight)
    if items:
        bad = [i for i in items if not 0 <= i < m]
        if bad:
            raise MemderainError(f"--items {bad} out of range; this model has items 0..{m - 1}")
        return list(items)
    return [int(i) for i in np.argsort(-mean_weight, kind="stable")[: max(1, min(top, m))]]


def plot_read_maps(
    model: MemDerain,
    image01: torch.Tensor,
    out_dir: str | Path,
    stem: str = "image",
    *,
    items: Sequence[int] | None = None,
    top: int = 3,
    overwrite: bool = False,
) -> dict:
    """Write ``<stem>_memory.png`` (input, result, one overlay per item) and one
    ``<stem>_memory_itemMM.png`` overlay of exactly the image size per item.

    Each map is min-max normalised for display; the panel titles give the raw alpha range.
    Returns ``{"items": [...], "figure": Path, "overlays": [Path, ...], "maps": ndarray}``.
    """
    out_dir = Path(out_dir)
    rm = compute_read_maps(model, image01)
    chosen = choose_items(rm.mean_weight, items, top)
    image = to_hwc(image01)
    panels = [(image, "input"), (to_hwc(rm.background01), "de-rained")]
    overlays = []
    for m in chosen:
        blended = overlay(image, normalize_map(rm.maps[m]))
        overlays.append(save_image(blended, out_dir / f"{stem}_memory_item{m:02d}.png", overwrite))
        lo, hi = rm.maps[m].min(), rm.maps[m].max()
        panels.append((blended, f"item {m}: alpha {lo:.3f}-{hi:.3f}"))
    figure = save_figure(grid_figure([panels]), out_dir / f"{stem}_memory.png", overwrite)
    return {"items": chosen, "figure": figure, "overlays": overlays, "maps": rm.maps}
