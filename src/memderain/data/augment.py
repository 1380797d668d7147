"""Pair augmentations that a rain renderer cannot give (stage 5, issue 22 point 2).

Both frames of a training pair get the *same* geometry and colour change (they show one
static scene, and the Siamese losses compare them pixel by pixel); JPEG uses one quality per
pair but encodes each frame on its own, as a camera does:

* rotation of the whole crop by any angle (steep and even horizontal streaks);
* scale jitter (zoom in or out: streak widths and lengths change), antialiased;
* brightness and per-channel colour gain;
* JPEG re-compression at one quality per pair.

All off by default: the paper trains on plain crops (Sec. III-E).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from memderain.config import ConfigError
from memderain.data.transforms import jpeg_roundtrip


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations a pair gets and how strong (``data.augment`` in a run's config)."""

    rotate_prob: float = 0.0  # share of pairs rotated by an angle uniform in +-rotate_max deg
    rotate_max: float = 180.0
    scale: tuple[float, float] = (1.0, 1.0)  # zoom range (log-uniform; > 1 enlarges streaks)
    brightness: float = 0.0  # common gain uniform in [1 - b, 1 + b]
    color: float = 0.0  # each channel's gain uniform in [1 - c, 1 + c] on top
    jpeg_prob: float = 0.0  # share of pairs JPEG re-compressed
    jpeg_quality: tuple[int, int] = (60, 95)  # one quality per pair, uniform in this range

    def __post_init__(self) -> None:
        lo, hi = self.scale
        q0, q1 = self.jpeg_quality
        if not (0 < lo <= hi <= 4):
            raise ConfigError(f"data.augment.scale must be 0 < lo <= hi <= 4, got {self.scale}")
        if not (0 <= self.rotate_prob <= 1 and 0 <= self.jpeg_prob <= 1):
            raise ConfigError("data.augment.rotate_prob and jpeg_prob must be in [0, 1]")
        if not (0 <= self.brightness < 1 and 0 <= self.color < 1):
            raise ConfigError("data.augment.brightness and color must be in [0, 1)")
        if not (1 <= q0 <= q1 <= 100):
            raise ConfigError(f"data.augment.jpeg_quality must be 1 <= lo <= hi <= 100, "
                              f"got {self.jpeg_quality}")

    @property
    def enabled(self) -> bool:
        return (self.rotate_prob > 0 or self.scale != (1.0, 1.0) or self.brightness > 0
                or self.color > 0 or self.jpeg_prob > 0)


def _rand(g: torch.Generator, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def augmented_crops(frames: list[np.ndarray], crop: int, cfg: AugmentConfig,
                    g: torch.Generator, targets: int = 0) -> list[torch.Tensor]:
    """``crop`` x ``crop`` crops of H x W x 3 uint8 ``frames`` (one scene, one size) with one
    random geometry and colour change -> (3, crop, crop) float32 in [-1, 1] each. The last
    ``targets`` frames (e.g. a temporal median) get the geometry and colour but no JPEG."""
    h, w = frames[0].shape[:2]
    lo, hi = cfg.scale
    scale = math.exp(_rand(g, math.log(lo), math.log(hi)))
    angle = _rand(g, -cfg.rotate_max, cfg.rotate_max) if _rand(g) < cfg.rotate_prob else 0.0
    a = math.radians(angle)
    spread = abs(math.cos(a)) + abs(math.sin(a))  # a rotated square's bounding box / its side
    # the source square (crop / scale) rotated must fit in the frame: zoom in when it does not
    scale = max(scale, crop * spread / min(h, w) * 1.001)
    side = crop / scale
    half = side * spread / 2  # half of the source region's bounding box
    # whole-pixel centres: without rotation and zoom the crop is the frame's pixels exactly
    cy = float(min(max(round(_rand(g, half, h - half)), math.ceil(half)), math.floor(h - half)))
    cx = float(min(max(round(_rand(g, half, w - half)), math.ceil(half)), math.floor(w - half)))
    y0, x0 = max(0, math.floor(cy - half) - 1), max(0, math.floor(cx - half) - 1)
    y1, x1 = min(h, math.ceil(cy + half) + 2), min(w, math.ceil(cx + half) + 2)
    window = torch.from_numpy(np.stack([f[y0:y1, x0:x1] for f in frames]).copy())
    window = window.permute(0, 3, 1, 2).float() / 255.0  # (T, 3, h', w') in [0, 1]
    if scale != 1.0:  # resample first (antialiased when shrinking), rotate at the crop's scale
        window = F.interpolate(window, scale_factor=scale, mode="bilinear", antialias=scale < 1,
                               align_corners=False)
    wh, ww = window.shape[-2:]
    sy, sx = (cy - y0) * wh / (y1 - y0), (cx - x0) * ww / (x1 - x0)  # centre, resampled px
    t = torch.arange(crop, dtype=torch.float32) + 0.5 - crop / 2
    gy, gx = torch.meshgrid(t, t, indexing="ij")
    px = sx + math.cos(a) * gx - math.sin(a) * gy
    py = sy + math.sin(a) * gx + math.cos(a) * gy
    grid = torch.stack([px / ww * 2 - 1, py / wh * 2 - 1], dim=-1)[None].expand(len(frames), -1,
                                                                                 -1, -1)
    out = F.grid_sample(window, grid, mode="bilinear", padding_mode="border",
                        align_corners=False)
    if cfg.brightness > 0 or cfg.color > 0:
        gain = _rand(g, 1 - cfg.brightness, 1 + cfg.brightness)
        gains = torch.tensor([gain * _rand(g, 1 - cfg.color, 1 + cfg.color) for _ in range(3)])
        out = out * gains.view(1, 3, 1, 1)
    out = out.clamp(0, 1)
    if cfg.jpeg_prob > 0 and _rand(g) < cfg.jpeg_prob:
        q0, q1 = cfg.jpeg_quality
        quality = round(_rand(g, q0, q1))
        keep = len(out) - targets
        out = torch.stack([jpeg_roundtrip(x, quality) if i < keep else x
                           for i, x in enumerate(out)])
    return list(out * 2 - 1)


__all__ = ["AugmentConfig", "augmented_crops"]
