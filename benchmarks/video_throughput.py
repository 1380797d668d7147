"""Video frames/s of `memderain derain VIDEO` against the single-image rate, per backend/precision.

Issue 23 asks that decoding, inference and encoding overlap so that a video runs at (nearly)
the single-image rate: video frames/s >= 85 % of 1 / (one frame's ``Derainer.derain`` time).
For each size (480x320 and 1280x720 by default) and each backend/precision this CPU runs
(OpenVINO f32, bf16 where native, int8 where the weights allow it; PyTorch), it writes a
synthetic H.264 clip, times ``derain`` of one frame (median of ``--runs`` calls after a warm-up),
then ``derain_video`` of the whole clip (decode + infer + H.264 encode, the CLI's path with its
default batch size), and prints frames/s and their ratio.

    python benchmarks/video_throughput.py                      # shipped model, 2 threads
    python benchmarks/video_throughput.py --sizes 480x320 --frames 24 --json video.json

Nothing else may run on the machine meanwhile (e.g. a training run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from peaks import cpu_flags

from memderain.inference.backends import is_installed, native_bf16
from memderain.inference.int8 import nncf_installed
from memderain.inference.predictor import Derainer
from memderain.inference.video import derain_video
from memderain.weights import default_weights_path
from video_helpers import make_video


def variants(weights: Path, threads: int, torch_too: bool = True) -> dict[str, Derainer]:
    out = {}
    if is_installed("openvino"):
        precisions = (["f32"] + (["bf16"] if native_bf16() else [])
                      + (["int8"] if nncf_installed() else []))
        for prec in precisions:
            out[f"openvino {prec}"] = Derainer(weights, backend="openvino", threads=threads,
                                               precision=prec)
    if torch_too:
        out["torch f32"] = Derainer(weights, backend="torch")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", type=Path, default=None)
    p.add_argument("--sizes", nargs="+", default=["480x320", "1280x720"])
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-torch", action="store_true", help="OpenVINO rows only")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    weights = args.weights or default_weights_path()
    models = variants(weights, args.threads, not args.no_torch)
    print(f"# {args.threads} threads; CPU flags: {' '.join(cpu_flags())}; load average "
          f"{os.getloadavg()[0]:.1f}; {args.frames} frames per clip\n")
    print("| size | backend | one frame s | 1 / one frame (frames/s) | video frames/s | ratio |")
    print("|---|---|---:|---:|---:|---:|")
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="memderain-video-"))
    for size in args.sizes:
        w, h = (int(v) for v in size.split("x"))
        src = tmp / f"rain-{w}x{h}.mp4"
        make_video(src, frames=args.frames, width=w, height=h, fps=25)
        frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
        for name, m in models.items():
            m.derain(frame)  # warm-up (compilation for this shape)
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                m.derain(frame)
                times.append(time.perf_counter() - t0)
            one = statistics.median(times)
            derain_video(m, src, tmp / "warm.mp4", progress=False, overwrite=True,
                         max_frames=8)  # compiles the batch shape
            t0 = time.perf_counter()
            res = derain_video(m, src, tmp / "out.mp4", progress=False, overwrite=True)
            fps = res.frames / (time.perf_counter() - t0)
            ratio = fps * one
            rows.append({"size": size, "backend": name, "one_frame_s": one, "video_fps": fps,
                         "ratio": ratio, "cpu_flags": cpu_flags()})
            print(f"| {size} | {name} | {one:.3f} | {1 / one:.2f} | {fps:.2f} | {ratio:.2f} |",
                  flush=True)
    print(f"\n# load average at end {os.getloadavg()[0]:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
