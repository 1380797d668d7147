"""Feature maps of the first encoder and last decoder layers (paper Fig. 12), via forward hooks.

Layer names follow Table I: ``conv_E1a`` is the first 3x3 conv + ReLU of the encoder and
``conv_D1b`` the last conv + ReLU of the decoder (before the output conv that gives R_hat).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from memderain.errors import MemderainError
from memderain.model.derainer import MemDerain
from memderain.visualize.common import grid_figure, save_figure, to_hwc

FEATURE_LAYERS = {  # Table I name -> submodule path in MemDerain
    "conv_E1a": "encoder.conv_E1.0",
    "conv_D1b": "decoder.conv_D1.1",
}


@torch.no_grad()
def capture_features(
    model: MemDerain, image: torch.Tensor, layers: Sequence[str] = tuple(FEATURE_LAYERS)
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Forward ``image`` (N, 3, H, W) in [-1, 1] and record the outputs of ``layers``.

    Returns ({name: (N, C, H', W') features at the padded size H' x W'}, background in [-1, 1]).
    """
    unknown = [n for n in layers if n not in FEATURE_LAYERS]
    if unknown:
        raise MemderainError(f"unknown layer(s) {unknown}; choose from {list(FEATURE_LAYERS)}")
    captured: dict[str, torch.Tensor] = {}
    handles = []
    for name in layers:
        module = model.get_submodule(FEATURE_LAYERS[name])
        hook = _make_hook(captured, name)
        handles.append(module.register_forward_hook(hook))
    try:
        background = model.eval()(image).background
    finally:
        for handle in handles:
            handle.remove()
    return captured, background


def _make_hook(store: dict, name: str):
    def hook(_module, _inputs, output):
        store[name] = output.detach().clone()  # ReLU(inplace) could change it later

    return hook


def top_channels(features: torch.Tensor, k: int) -> list[int]:
    """The ``k`` channels with the largest spatial standard deviation (most structure)."""
    std = features.float().flatten(1).std(dim=1)
    return [int(i) for i in torch.argsort(std, descending=True, stable=True)[:k]]


def plot_features(
    model: MemDerain,
    image01: torch.Tensor,
    out_path: str | Path,
    *,
    channels: Sequence[int] | None = None,
    count: int = 4,
    overwrite: bool = False,
) -> dict:
    """Write a Fig. 12 style grid: row 1 input + conv_E1a maps, row 2 result + conv_D1b maps.

    ``channels`` picks the channels of both layers; by default the ``count`` channels with
    the largest spatial spread of each layer. Returns ``{"figure": Path, "channels": {...}}``.
    """
    h, w = image01.shape[-2:]
    feats, background = capture_features(model, image01[None].float() * 2 - 1)
    c = next(iter(feats.values())).shape[1]
    if channels:
        bad = [i for i in channels if not 0 <= i < c]
        if bad:
            raise MemderainError(f"--channels {bad} out of range; layers have channels 0..{c - 1}")
    chosen, rows = {}, []
    firsts = {"conv_E1a": (to_hwc(image01), "input"),
              "conv_D1b": (to_hwc(((background[0] + 1) / 2).clamp(0, 1)), "de-rained")}
    for name, first in firsts.items():
        fmap = feats[name][0, :, :h, :w]
        chosen[name] = list(channels) if channels else top_channels(fmap, count)
        row = [first] + [
            (np.asarray(fmap[i].cpu().numpy()), f"{name} ch {i}") for i in chosen[name]
        ]
        rows.append(row)
    figure = save_figure(grid_figure(rows, cmap="viridis"), Path(out_path), overwrite)
    return {"figure": figure, "channels": chosen}
