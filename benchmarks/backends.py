"""`memderain derain` speed per inference backend on a 1000x1000 photo, side by side in one run.

Times ``Derainer.derain(uint8 image)`` -- the path `memderain derain` takes once the process has
started (decode and encode excluded) -- for PyTorch, ONNX Runtime and OpenVINO (fp32, and bf16
where the CPU does bf16 natively; int8 when NNCF is installed: `--backend auto --precision
auto` picks int8 for weights certified by ``benchmarks/precision.py --record``), round-robin:
one run of each backend per round and the matrix-multiply peaks of every precision the CPU does
natively (``benchmarks/peaks.py``: torch.matmul and an OpenVINO MatMul in f32, bf16, int8; the
better of the two) measured every round, so all see the same load on a shared machine. Reports
the median of ``--runs`` rounds, each row's FLOP-bound limit *in its own precision* (FLOPs of
one forward / that precision's peak) and the ratio to it, the CPU flags that decided it, the max difference from PyTorch's
output, video frames/s (480x320 frames), and the PSNR of the README example (rainy vs clean) per
backend, so a faster, inexact precision shows its cost in dB.

    python benchmarks/backends.py                 # 5 rounds, 2 threads
    python benchmarks/backends.py --runs 7 --threads 2 --json backends.json

Uses the shipped weights. Nothing else may run on the machine meanwhile (e.g. a training run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peaks import cpu_flags, peaks
from speed import flop_count

from memderain.evaluation.metrics import psnr
from memderain.inference.backends import (
    is_installed,
    native_bf16,
    resolve_backend,
    resolve_precision,
)
from memderain.inference.int8 import nncf_installed
from memderain.inference.predictor import Derainer
from memderain.weights import default_weights_path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def candidates(threads: int) -> dict[str, Derainer]:
    w = default_weights_path()
    out = {"torch": Derainer(w, backend="torch")}
    if is_installed("onnxruntime"):
        out["onnxruntime"] = Derainer(w, backend="onnxruntime", threads=threads)
    if is_installed("openvino"):
        out["openvino f32"] = Derainer(w, backend="openvino", threads=threads, precision="f32")
        if native_bf16():
            out["openvino bf16"] = Derainer(w, backend="openvino", threads=threads,
                                            precision="bf16")
        if nncf_installed():
            out["openvino int8"] = Derainer(w, backend="openvino", threads=threads,
                                            precision="int8")
    return out


def _read(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=1000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--video-frames", type=int, default=10)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    frame = rng.integers(0, 256, (320, 480, 3), dtype=np.uint8)
    models = candidates(args.threads)
    flops = flop_count(args.size)
    auto = resolve_backend("auto", torch.device("cpu"))
    meta = models["torch"].checkpoint_meta
    print(f"# {flops / 1e9:.0f} GFLOP per {args.size}x{args.size} forward; {args.threads} "
          f"threads; torch {torch.__version__}; load average {os.getloadavg()[0]:.1f}; "
          f"`memderain derain` uses {auto} {resolve_precision('auto', auto, meta)} (auto)")
    outputs, times = {}, {k: [] for k in models}
    setup = {}
    for name, m in models.items():  # warm-up: first-call compilation / primitive creation
        t0 = time.perf_counter()
        outputs[name] = m.derain(image).astype(np.int16)
        m.derain(image)
        setup[name] = time.perf_counter() - t0
    rounds = []
    for _ in range(args.runs):
        for name, m in models.items():
            t0 = time.perf_counter()
            m.derain(image)
            times[name].append(time.perf_counter() - t0)
        rounds.append(peaks(args.threads, repeats=3))
    peak = {prec: statistics.median(r[prec]["best"] for r in rounds) for prec in rounds[0]}
    rainy, clean = _read(EXAMPLES / "rainy_monarch.png"), _read(EXAMPLES / "clean_monarch.png")
    print(f"# CPU flags: {' '.join(cpu_flags())}")
    print("# peaks (median of rounds, better of torch.matmul / OpenVINO MatMul): "
          + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s (limit {flops / v:.2f} s)"
                      for k, v in peak.items()) + "\n")
    print("| backend | median s | min s | precision | vs its limit | first 2 calls s | max diff "
          "vs torch (0-255) | video 480x320 frames/s | README example PSNR (Y) |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    rows = []
    for name, m in models.items():
        m.derain(frame)
        t0 = time.perf_counter()
        for _ in range(args.video_frames):
            m.derain(frame)
        fps = args.video_frames / (time.perf_counter() - t0)
        med = statistics.median(times[name])
        prec = name.split()[-1] if name.split()[-1] in peak else "f32"
        limit = flops / peak[prec]
        diff = int(np.abs(outputs[name] - outputs["torch"]).max())
        quality = psnr(m.derain(rainy), clean, "y")
        row = {"backend": name, "median_s": med, "min_s": min(times[name]),
               "vs_limit": med / limit, "setup_s": setup[name], "max_diff": diff,
               "video_fps": fps, "example_psnr_y": quality, "precision": prec,
               "peak": peak[prec], "flops": flops, "cpu_flags": cpu_flags()}
        rows.append(row)
        print(f"| {name} | {med:.2f} | {min(times[name]):.2f} | {prec} | {med / limit:.2f}x | "
              f"{setup[name]:.1f} | {diff} | {fps:.2f} | {quality:.2f} |", flush=True)
    print(f"\n# load average at end {os.getloadavg()[0]:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
