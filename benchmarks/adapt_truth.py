"""Adapt objectives side by side on clips whose truth is known (issue 31, point 2).

The truth clips of ``benchmarks/clip_truth.py`` (a real clip's median as the rain-free scene,
moving content drawn in, the clip's own shake and noise, real rain layers or rendered streaks;
``--jpeg`` adds the yard clip stored as JPEG quality 80) are adapted on with each objective of
``memderain adapt`` for the same number of steps, from the shipped model, holding out every
``--holdout-every``-th frame as ``adapt`` does. Each adapted model (the model at its last step,
whatever the never-worse check would then write) is scored on the held-out frames against the
clean frames (the truth: every pixel whose clean content does not move) and against the clip's
median (``strict`` and ``motion`` references, what ``eval --clip`` computes), beside the rainy
input, the starting model and the 3x3 filters.

    python benchmarks/adapt_truth.py --steps 100                 # about 20 min on 2 CPU cores
    python benchmarks/adapt_truth.py --clips yard,street_r2 --objectives median median+edges

Prints Markdown tables (truth gain, brightness and detail error against the truth; the median
scores) and names the CPU it ran on.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from clip_truth import JPEG, PHOTO, SEEDS, SHARED, SPECS, bank_for, build

from memderain.cpu import cpu_name
from memderain.data.clip_pairs import holdout_split
from memderain.evaluation.clip_score import torch_method
from memderain.evaluation.clip_truth import compare, run_methods
from memderain.evaluation.trivial import TRIVIAL_FILTERS
from memderain.training.adapt import OBJECTIVES, AdaptConfig, adapt

DEFAULT_OBJECTIVES = ["median", "median+edges", "median+edges+brightness"]


def adapted_outputs(ld, objective: str, args, scratch: Path) -> tuple[np.ndarray, float]:
    """Every aligned frame through the model at the adaptation's last step; seconds taken."""
    cfg = AdaptConfig(steps=args.steps, minutes=0, objective=objective, seed=args.seed,
                      holdout_every=args.holdout_every, precision="f32", device="cpu")
    captured = {}

    def last(step: int, model: torch.nn.Module) -> None:
        if step == args.steps:
            captured["out"] = run_methods(ld.clip, {"m": torch_method(model)})["m"]

    t0 = time.monotonic()
    adapt(scratch / "clip", scratch / f"{objective}.pt", None, cfg, overwrite=True,
          clip=ld.clip, callback=last)
    return captured["out"], time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--objectives", nargs="+", default=DEFAULT_OBJECTIVES,
                   choices=list(OBJECTIVES))
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--holdout-every", type=int, default=5)
    p.add_argument("--side", type=int, default=256, help="longer side of the scenes (px)")
    p.add_argument("--clips", help="comma-separated subset of clip names (yard, night_street, "
                                   "news_test1, street_r2, photo bsd100_012, yard as JPEG q80)")
    p.add_argument("--jpeg", action="store_true", help="also the yard clip stored as JPEG q80")
    p.add_argument("--bank", type=Path, help="rain-layer bank with clips yard and night_street "
                                             "(default: built into a temporary folder)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not (SHARED / "real_video").is_dir():
        print(f"{SHARED / 'real_video'} is missing: no real clips to build truth clips from")
        return 1
    import memderain
    from memderain.weights import default_weights_path

    torch.manual_seed(args.seed)
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
          f"{args.steps} steps per objective, every {args.holdout_every}th frame held out\n")
    start = memderain.load_model(default_weights_path(), device="cpu", backend="torch",
                                 precision="f32")
    specs = [*SPECS, PHOTO] + ([JPEG] if args.jpeg else [])
    if args.clips:
        specs = [s for s in specs if s[0].split(":")[0] in args.clips.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="adapt_truth_") as tmp:
        bank = bank_for(specs, args.bank, tmp)
        for spec in specs:
            ld = build(spec, argparse.Namespace(side=args.side), bank,
                       args.seed + SEEDS[spec[1]])
            _, held = holdout_split(len(ld), args.holdout_every)
            outputs = run_methods(ld.clip, {"start (shipped)": start.derain,
                                            **{k: v for k, v in TRIVIAL_FILTERS.items()
                                               if k in ("median3", "opening3")}})
            for objective in args.objectives:
                outputs[objective], sec = adapted_outputs(ld, objective, args, Path(tmp))
                print(f"{ld.name}: {objective} adapted in {sec:.0f} s", file=sys.stderr,
                      flush=True)
            scored = {kind: compare(ld, outputs, kind, frames=held)
                      for kind in ("strict", "motion")}
            base = scored["strict"]["input"].truth
            for name in outputs:
                tru = scored["strict"][name].truth
                rows.append((ld.name.split(":")[0], name, len(held), tru.psnr_y,
                             tru.psnr_y - base.psnr_y, tru.brightness, tru.hf_error,
                             scored["strict"][name].median.psnr_y
                             - scored["strict"]["input"].median.psnr_y,
                             scored["motion"][name].median.psnr_y
                             - scored["motion"]["input"].median.psnr_y))
            print(f"{ld.name}: scored", file=sys.stderr, flush=True)
    print("| clip | method | held-out frames | truth Y-PSNR | gain over input | brightness "
          "vs truth | detail error vs truth | strict median score: gain | motion: gain |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for clip, name, n, psnr_y, gain, bright, hf, g_strict, g_motion in rows:
        print(f"| {clip} | {name} | {n} | {psnr_y:.2f} | {gain:+.2f} | {bright:+.2f} | "
              f"{hf:.2f} | {g_strict:+.2f} | {g_motion:+.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
