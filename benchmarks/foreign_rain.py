"""Foreign rain: test sets rendered by a recipe memderain never trains on (issue 22 point 1).

The Photoshop recipe behind Rain100L / Rain100H (Yang et al., *Deep Joint Rain Detection and
Removal from a Single Image*, CVPR 2017) and Rain12 / Rain1400 (Fu et al. 2017), as described
in those papers and the Photoshop rain tutorials they cite -- not engines v1/v2:

1. a black layer gets uniform noise; a threshold keeps the brightest ``density`` share of it
   (drop seeds of random brightness);
2. a small Gaussian blur rounds the seeds into drops;
3. *levels*: the layer is stretched so its drops saturate (``gain``) -- drops become blobs of
   uneven size, not the line kernels of the engines;
4. *motion blur*: a uniform box along the streak angle (Photoshop's motion blur), ``length`` px;
5. blend: ``screen`` (Rain100L, Rain12) or, for the heavy style, Rain100H's accumulation model
   ``I = alpha * (B + sum_k S_k) + (1 - alpha) * A``: several streak layers in different
   directions added, then a veil of airlight ``A``.

Two styles, one rainy image per background (single images, as those benchmarks are):

* ``light`` -- one layer, one direction in +-30 deg, thin short streaks, screen blend;
* ``heavy`` -- 3-5 layers, each its own direction in +-50 deg, wide long dense streaks, added,
  veil alpha 0.75-0.9.

This module lives in ``benchmarks/`` and is never imported by the package or the trainer: its
sets are a *check*, and engines v1/v2 are never tuned toward them. Render the fixed sets::

    python benchmarks/foreign_rain.py ../shared/data/backgrounds/test out/foreign --limit 50

which writes ``out/foreign/foreign-light/`` and ``out/foreign/foreign-heavy/`` in the
Rain100 layout (``rain-NNN.png`` + ``norain-NNN.png``), so ``memderain eval --data
out/foreign/foreign-heavy`` scores them (seeded: the same files on every machine).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


@dataclass(frozen=True)
class Style:
    layers: tuple[int, int]  # number of streak layers (inclusive range)
    angle: float  # directions drawn in +-angle degrees from vertical
    density: tuple[float, float]  # share of pixels seeded with a drop
    blur: tuple[float, float]  # Gaussian sigma of a drop, px at 481 px
    length: tuple[float, float]  # motion-blur length, px at 481 px
    gain: tuple[float, float]  # levels stretch: brightness of a streak
    blend: str  # "screen" or "accumulate"
    alpha: tuple[float, float] = (1.0, 1.0)  # accumulation veil: share of the scene kept
    weight: float = 1.0  # accumulation: each layer's share in the sum


STYLES = {
    "light": Style(layers=(1, 1), angle=30, density=(0.0006, 0.0015), blur=(0.5, 0.8),
                   length=(12, 30), gain=(2.5, 4.0), blend="screen"),
    "heavy": Style(layers=(3, 5), angle=50, density=(0.003, 0.008), blur=(1.0, 1.8),
                   length=(25, 60), gain=(3.0, 5.0), blend="accumulate", alpha=(0.88, 0.97),
                   weight=0.3),
}
REFERENCE_SIDE = 481  # BSD100's longer side: the recipe's pixel sizes are at this size


def _uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(*lo_hi))


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).float()
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))


def _motion_kernel(length: float, angle_deg: float) -> torch.Tensor:
    """Photoshop's motion blur: a box of ``length`` px along the angle (0 = vertical)."""
    size = math.ceil(length) | 1
    k = np.zeros((size, size))
    c = size // 2
    a = math.radians(angle_deg)
    dx, dy = math.sin(a), math.cos(a)
    for s in np.linspace(-length / 2, length / 2, 4 * size):  # sample the segment finely
        x, y = c + s * dx, c + s * dy
        x0, y0 = math.floor(x), math.floor(y)
        fx, fy = x - x0, y - y0
        for xx, yy, wgt in ((x0, y0, (1 - fx) * (1 - fy)), (x0 + 1, y0, fx * (1 - fy)),
                            (x0, y0 + 1, (1 - fx) * fy), (x0 + 1, y0 + 1, fx * fy)):
            if 0 <= xx < size and 0 <= yy < size:
                k[yy, xx] += wgt
    return torch.from_numpy(k / k.sum()).float().view(1, 1, size, size)


def streak_layer(h: int, w: int, style: Style, angle: float, rng: np.random.Generator,
                 scale: float) -> torch.Tensor:
    """One (1, 1, H, W) streak layer in [0, 1] by the Photoshop recipe (steps 1-4)."""
    density = _uniform(rng, style.density)
    noise = rng.random((h, w))
    seeds = np.where(noise > 1.0 - density, rng.uniform(0.5, 1.0, (h, w)), 0.0)
    x = torch.from_numpy(seeds).float().view(1, 1, h, w)
    x = _gaussian_blur(x, _uniform(rng, style.blur) * scale)
    x = x / x.amax().clamp(min=1e-6)
    x = (x * _uniform(rng, style.gain)).clamp(0, 1)  # levels
    k = _motion_kernel(max(3.0, _uniform(rng, style.length) * scale), angle)
    p = k.shape[-1] // 2
    x = F.conv2d(F.pad(x, (p, p, p, p), mode="reflect"), k)
    # levels again after the blur (the tutorials' last step): the brightest streaks reach
    # ``peak``, faint ones stay faint
    peak = float(rng.uniform(0.6, 0.9))
    return (x / torch.quantile(x.flatten()[::7], 0.999).clamp(min=1e-6) * peak).clamp(0, 1)


def render(clean: np.ndarray, style: Style, rng: np.random.Generator) -> np.ndarray:
    """clean H x W x 3 uint8 -> rainy H x W x 3 uint8."""
    h, w = clean.shape[:2]
    scale = max(h, w) / REFERENCE_SIDE
    b = torch.from_numpy(clean).float().permute(2, 0, 1)[None] / 255.0
    n = int(rng.integers(style.layers[0], style.layers[1] + 1))
    base = float(rng.uniform(-style.angle, style.angle))
    angles = [base] if n == 1 else [float(rng.uniform(-style.angle, style.angle))
                                    for _ in range(n)]
    layers = [streak_layer(h, w, style, a, rng, scale) for a in angles]
    if style.blend == "screen":
        out = b
        for s in layers:
            out = 1 - (1 - out) * (1 - s)
    else:
        alpha = _uniform(rng, style.alpha)
        airlight = float(rng.uniform(0.7, 0.9))
        out = alpha * (b + style.weight * sum(layers)) + (1 - alpha) * airlight
    return (out.clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def render_set(backgrounds: Path, out: Path, style_name: str, limit: int, seed: int) -> int:
    files = sorted(p for p in backgrounds.iterdir()
                   if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[:limit]
    if not files:
        raise SystemExit(f"error: no images in {backgrounds}")
    out.mkdir(parents=True, exist_ok=True)
    style = STYLES[style_name]
    for k, path in enumerate(files, 1):
        rng = np.random.default_rng([seed, k])
        clean = np.array(Image.open(path).convert("RGB"))
        rainy = render(clean, style, rng)
        Image.fromarray(clean).save(out / f"norain-{k:03d}.png")
        Image.fromarray(rainy).save(out / f"rain-{k:03d}.png")
    return len(files)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("backgrounds", type=Path, help="clean test photos (backgrounds/test)")
    p.add_argument("out", type=Path, help="writes OUT/foreign-light and OUT/foreign-heavy")
    p.add_argument("--styles", nargs="+", default=list(STYLES), choices=list(STYLES))
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--seed", type=int, default=2017)
    args = p.parse_args(argv)
    if "train" in args.backgrounds.resolve().parts:
        print("error: foreign sets are test sets; render them from backgrounds/test",
              file=sys.stderr)
        return 2
    for name in args.styles:
        n = render_set(args.backgrounds, args.out / f"foreign-{name}", name, args.limit,
                       args.seed)
        print(f"foreign-{name}: {n} pairs in {args.out / f'foreign-{name}'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
