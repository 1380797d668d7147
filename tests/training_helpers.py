"""Tiny synthetic time-lapse scenes for the training tests (independent of `memderain synth`):
smooth random backgrounds plus additive bright streaks at one random angle per frame, written
in the synth layout (OUT/frames/<scene>/tNNN.png, OUT/clean/<scene>.png)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def smooth_background(size: int, g: torch.Generator) -> torch.Tensor:
    """(3, size, size) in [0.1, 0.7]: a few octaves of upsampled noise (edges + flat areas)."""
    img = torch.zeros(3, size, size)
    for cells, amp in ((3, 1.0), (6, 0.5), (12, 0.25)):
        coarse = torch.rand(1, 3, cells, cells, generator=g)
        img += amp * F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0]
    img = (img - img.amin()) / (img.amax() - img.amin() + 1e-8)
    return 0.1 + 0.6 * img


def streaks(size: int, g: torch.Generator, density: float = 0.012, length: int = 9,
            width: int = 1) -> torch.Tensor:
    """(1, size, size) rain layer in [0, 0.5]: random points smeared along a line, ``width``
    pixels wide (a 3x3 rank filter removes 1-2 px streaks, not 4 px ones)."""
    angle = math.radians(90 + float(torch.empty(1).uniform_(-20, 20, generator=g)))
    k = torch.zeros(length, length)
    c = (length - 1) / 2
    for t in torch.linspace(-c, c, 4 * length):
        x, y = round(c + float(t) * math.cos(angle)), round(c + float(t) * math.sin(angle))
        k[y, x] = 1.0
    seeds = (torch.rand(1, 1, size, size, generator=g) < density).float()
    seeds *= torch.empty(1, 1, size, size).uniform_(0.3, 0.5, generator=g)
    layer = F.conv2d(seeds, k[None, None], padding=length // 2)
    if width > 1:  # thicken: grey dilation with a width x width square
        layer = F.max_pool2d(F.pad(layer, (width // 2, (width - 1) // 2) * 2), width, stride=1)
    return layer.clamp(0, 0.5)[0]


def _save(x: torch.Tensor, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (x.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(np.ascontiguousarray(arr)).save(path)


def make_scenes(root: Path, scenes: int = 4, frames: int = 4, size: int = 64, seed: int = 0,
                density: float = 0.012, width: int = 1) -> Path:
    """Write ``scenes`` scenes of ``frames`` rainy frames each; returns ``root``."""
    g = torch.Generator().manual_seed(seed)
    for s in range(scenes):
        bg = smooth_background(size, g)
        _save(bg, root / "clean" / f"scene{s:02d}.png")
        for t in range(frames):
            _save(bg + streaks(size, g, density, width=width), root / "frames" / f"scene{s:02d}" / f"t{t:03d}.png")
    return root
