"""Picture grid of de-raining results: one row per image, columns input / output / rain layer.

The rain column shows the estimated rain R = I - B (Eq. 1) as its per-pixel magnitude
(mean |R| over the colour channels), scaled to the brightest rain in that image.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from memderain.visualize.common import Panel, grid_figure, normalize_map, save_figure, to_hwc


def derain_rows(derainer, images: Sequence[tuple[str, torch.Tensor]],
                clean: Sequence[torch.Tensor | None] | None = None,
                peer: Sequence[torch.Tensor] | None = None, peer_label: str = "peer"
                ) -> list[list[Panel]]:
    """Panels for :func:`derain_grid`. ``images``: (name, (3, H, W) tensor in [0, 1]);
    ``peer``: another method's output per image, shown right of ours."""
    rows = []
    for i, (name, image) in enumerate(images):
        background, rain = derainer.derain_tensor(image[None])
        rain_mag = rain_magnitude(rain[0])
        row: list[Panel] = [(to_hwc(image), f"{name}: input"),
                            (to_hwc(background[0]), "de-rained (memderain)")]
        if peer is not None:
            row.append((to_hwc(peer[i]), peer_label))
        row.append((rain_mag, "estimated rain |R|"))
        if clean is not None and clean[i] is not None:
            row.append((to_hwc(clean[i]), "clean (ground truth)"))
        rows.append(row)
    return rows


def derain_grid(derainer, images: Sequence[tuple[str, torch.Tensor]], path: str | Path,
                clean: Sequence[torch.Tensor | None] | None = None,
                overwrite: bool = False, peer: Sequence[torch.Tensor] | None = None,
                peer_label: str = "peer") -> Path:
    """De-rain ``images`` with a :class:`~memderain.inference.predictor.Derainer` and write a
    PNG grid (rows = images; columns = input, de-rained[, peer], rain magnitude[, clean])."""
    rows = derain_rows(derainer, images, clean, peer, peer_label)
    return save_figure(grid_figure(rows, cmap="magma"), Path(path), overwrite)


def rain_magnitude(rain: torch.Tensor) -> np.ndarray:
    """HxW mean |R| over channels of a (3, H, W) rain layer, min-max scaled to [0, 1]."""
    return normalize_map(rain.abs().mean(0).cpu().numpy())
