"""Multi-scale de-raining at inference: does estimating rain at a reduced scale help?

Real streaks can be wider than anything a training crop shows. This script tries estimating the
rain layer R at a reduced scale s (bilinear, antialiased), upsampling it, and combining it with
the full-scale estimate, and reports Y-PSNR per variant:

* ``single``     R = R_1 (what memderain does)
* ``coarse@s``   R = up(R_s)
* ``max@s``      R = max(R_1, up(R_s)) (the shipped model's R is >= 0)
* ``c2f@s``      R = up(R_s) + R_1(I - up(R_s)): coarse, then refine the remainder

on the rendered test sets (``scripts/model_card.sh`` renders them under ``out/model-card``) and,
for the real photos, the gain toward a peer's outputs (``benchmarks/real_peer.py``'s proxy).

    python benchmarks/multiscale.py                          # shipped model, real + 3 test sets
    python benchmarks/multiscale.py --weights runs/x/best.pt --every 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from memderain.evaluation.benchmarks import open_benchmark
from memderain.evaluation.metrics import psnr
from memderain.inference import io
from memderain.inference.predictor import load_model

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
VARIANTS = ("single", "coarse@0.5", "max@0.5", "c2f@0.5", "max@0.75", "c2f@0.75")


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)


@torch.inference_mode()
def derain_variant(model, variant: str, rgb: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 -> uint8 HxWx3 de-rained with one of :data:`VARIANTS`."""
    x = io.to_network(io.rgb_to_tensor01(rgb / 255.0).float())
    h, w = x.shape[-2:]
    if variant == "single":
        rain = model._rain(x)
    else:
        kind, scale = variant.split("@")
        s = float(scale)
        small = _resize(x, (max(8, round(h * s)), max(8, round(w * s))))
        coarse = _resize(model._rain(small), (h, w))
        if kind == "coarse":
            rain = coarse
        elif kind == "max":
            rain = torch.maximum(model._rain(x), coarse)
        else:
            rain = coarse + model._rain(x - coarse)
    background = io.from_network((x - rain).clamp(-1, 1)).clamp(0, 1)
    return io.from_float01(io.tensor01_to_rgb(background), 8)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default=None, help="checkpoint (default: the shipped model)")
    p.add_argument("--sets", nargs="*", type=Path,
                   default=[Path("out/model-card") / s for s in
                            ("test-light", "test-heavy", "test-heldout")])
    p.add_argument("--every", type=int, default=2, help="score every N-th test image")
    p.add_argument("--real", type=Path, default=SHARED / "real")
    p.add_argument("--peer", type=Path, default=SHARED / "real_moss")
    args = p.parse_args(argv)
    model = load_model(args.weights)  # auto backend and precision, as `memderain derain`
    print(f"| data | {' | '.join(VARIANTS)} |")
    print("|---|" + "---:|" * len(VARIANTS))
    if args.real.is_dir() and args.peer.is_dir():
        gains: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for path in sorted(args.real.glob("*.jpg")):
            if not (args.peer / path.name).is_file():
                continue
            rainy = np.asarray(Image.open(path).convert("RGB"))
            peer = np.asarray(Image.open(args.peer / path.name).convert("RGB"))
            base = psnr(rainy, peer, "y")
            for v in VARIANTS:
                gains[v].append(psnr(derain_variant(model, v, rainy), peer, "y") - base)
        print(f"| real, gain toward peer ({len(gains['single'])} photos) | "
              + " | ".join(f"{statistics.mean(g):+.2f}" for g in gains.values()) + " |",
              flush=True)
    for root in args.sets:
        if not (root / "synth.json").is_file():
            print(f"| {root} | not rendered (scripts/model_card.sh) |")
            continue
        bench = open_benchmark(root)
        scores: dict[str, list[float]] = {v: [] for v in VARIANTS}
        pairs = list(bench)[:: args.every]
        for pair in pairs:
            rainy, clean = bench.load(pair)
            for v in VARIANTS:
                scores[v].append(psnr(derain_variant(model, v, rainy), clean, "y"))
        print(f"| {root.name} ({len(pairs)} images) | "
              + " | ".join(f"{statistics.mean(s):.2f}" for s in scores.values()) + " |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
