"""Seconds per synthetic scene: rain rendering vs PNG writing (one thread, as `memderain synth`).

    python benchmarks/synth_speed.py [--frames 8] [--size 384 512] [--scenes 10] [--rain mixed]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from memderain.data.rain import rain_config
from memderain.data.synth import render_scene, scene_generator, write_scene


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, nargs=2, default=(384, 512))
    ap.add_argument("--scenes", type=int, default=10)
    ap.add_argument("--rain", default="mixed")
    a = ap.parse_args()
    torch.set_num_threads(1)
    cfg = rain_config(a.rain)
    rng = np.random.default_rng(0)
    bg = rng.integers(0, 256, (*a.size, 3), dtype=np.uint8)
    render = write = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.scenes):
            t0 = time.perf_counter()
            frames, _ = render_scene(bg, a.frames, cfg, scene_generator(0, f"s{i}"))
            t1 = time.perf_counter()
            write_scene(Path(tmp), f"s{i}", bg, frames)
            t2 = time.perf_counter()
            render, write = render + t1 - t0, write + t2 - t1
    n = a.scenes
    print(f"{a.rain} {a.frames} frames {a.size[0]}x{a.size[1]}: render {render / n:.3f} s/scene, "
          f"write PNGs {write / n:.3f} s/scene, total {(render + write) / n:.3f} s/scene")


if __name__ == "__main__":
    main()
