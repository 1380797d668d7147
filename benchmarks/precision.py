"""Does a reduced inference precision keep quality? Y-PSNR per test preset, f32 vs bf16.

The issue that added the backends allows bf16 only where "quality holds within 0.05 dB". This
script measures it: for every rendered test set (``scripts/model_card.sh`` renders them under
``out/model-card``), the mean Y-PSNR of the model's outputs against the clean photos through
OpenVINO f32 (the same pixels as PyTorch, ``tests/test_backends.py``) and OpenVINO bf16, their
difference, and the largest pixel difference between them (grey levels).

    python benchmarks/precision.py                              # shipped model, every set
    python benchmarks/precision.py --weights runs/x/best.pt --sets out/model-card/test-heavy
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

from memderain.evaluation.benchmarks import open_benchmark
from memderain.evaluation.metrics import psnr
from memderain.inference.predictor import load_model

WORK = Path("out/model-card")
VARIANTS = {"f32": ("openvino", "f32"), "bf16": ("openvino", "bf16")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default=None, help="checkpoint (default: the shipped model)")
    p.add_argument("--threads", type=int, default=None, help="inference threads")
    p.add_argument("--sets", nargs="*", type=Path, default=None,
                   help=f"rendered test sets (default: every {WORK}/test-*)")
    args = p.parse_args(argv)
    sets = args.sets or sorted(d for d in WORK.glob("test-*") if (d / "synth.json").is_file())
    if not sets:
        print(f"no rendered test sets under {WORK}: run scripts/model_card.sh first")
        return 1
    models = {name: load_model(args.weights, backend=b, precision=pr,
                             threads=args.threads)
              for name, (b, pr) in VARIANTS.items()}
    print(f"| set | images | {' | '.join(models)} | bf16 - f32 (dB) | max pixel difference |")
    print("|---|" + "---:|" * (len(models) + 3))
    worst = 0.0
    for root in sets:
        bench = open_benchmark(root)
        scores: dict[str, list[float]] = {m: [] for m in models}
        max_diff = 0
        for pair in bench:
            rainy, clean = bench.load(pair)
            outs = {m: model.derain(rainy) for m, model in models.items()}
            for m, out in outs.items():
                scores[m].append(psnr(out, clean, "y"))
            diff = np.abs(outs["bf16"].astype(int) - outs["f32"].astype(int))
            max_diff = max(max_diff, int(diff.max()))
        means = {m: statistics.mean(v) for m, v in scores.items()}
        delta = means["bf16"] - means["f32"]
        worst = max(worst, abs(delta))
        cells = " | ".join(f"{v:.3f}" for v in means.values())
        print(f"| {root.name} | {len(scores['f32'])} | {cells} | {delta:+.3f} | {max_diff} |",
              flush=True)
    print(f"\nlargest |bf16 - f32| over the sets: {worst:.3f} dB (bar: 0.05)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
