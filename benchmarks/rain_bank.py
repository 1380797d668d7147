"""What the rain-layer bank lifts off each real clip, and which blend fits real rain.

For every clip (default: the static clips of ../shared/data/real_video that may be trained on:
yard.mp4, night_street.mp4, street_r2; news_test1.mp4 stays out as the held-out check):

* layers: count, rain density on static pixels, mean kept residual (grey levels), noise sigma,
  the measured rain direction;
* reproduction: each layer put back on the clip's median against the real frame on valid
  pixels (Y-PSNR), beside the rainy frame's own Y-PSNR against the median: how much of what
  separates a frame from its background the layer carries;
* blend: for add / screen / linear, the ratio of the largest to the smallest mean rain value
  over bands of background luminance (:func:`memderain.data.rain_layers.blend_dependence`;
  1 = rain independent of what is behind it, the physically right blend).

    python benchmarks/rain_bank.py
    python benchmarks/rain_bank.py --clips ../shared/data/real_video/yard.mp4 --max-side 640
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from memderain.data.rain_layers import (
    BLENDS,
    LayerOptions,
    apply_blend,
    blend_dependence,
    lift_layers,
)
from memderain.data.static_clip import load_static_clip, luminance

VIDEO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real_video"
CLIPS = [VIDEO / "yard.mp4", VIDEO / "night_street.mp4", VIDEO / "street_r2"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", nargs="+", type=Path, default=CLIPS)
    p.add_argument("--max-side", type=int, default=960)
    p.add_argument("--max-frames", type=int, default=60)
    args = p.parse_args(argv)
    opts = LayerOptions(blend="add")  # lifted as sRGB residuals; every blend from those
    print("| clip | layers | density | mean (grey) | noise sigma | direction (deg) | "
          "layer on median vs frame (dB) | frame vs median (dB) | "
          + " | ".join(f"{b}: max/min band mean" for b in BLENDS) + " |")
    print("|---|" + "---:|" * (7 + len(BLENDS)))
    for src in args.clips:
        if not src.exists():
            print(f"| {src.name} | missing |")
            continue
        clip = load_static_clip(src, args.max_frames, 8.0, args.max_side, upright=True)
        layers, rec = lift_layers(clip, opts, src.stem)
        med = clip.median.astype(np.float32) / 255
        back, raw = [], []
        for t, ly in enumerate(layers):
            v = clip.valid(t)
            y = luminance(clip.frames[t])
            rebuilt = luminance((apply_blend(med, ly.layer[..., None], "add") * 255).round())
            back.append(np.mean((rebuilt - y)[v] ** 2))
            raw.append(np.mean((luminance(clip.median) - y)[v] ** 2))
        db = lambda mse: 10 * np.log10(255 ** 2 / max(float(np.mean(mse)), 1e-10))
        dep = blend_dependence(clip, layers, "add")
        dens = np.mean([ly.density for ly in layers])
        mean = np.mean([ly.mean for ly in layers])
        print(f"| {src.stem} | {len(layers)} | {dens:.2%} | {mean:.2f} | {rec['noise_sigma']:.2f} "
              f"| {rec['rain_direction_deg']} | {db(back):.2f} | {db(raw):.2f} | "
              + " | ".join(f"{dep[b]:.2f}" for b in BLENDS) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
