"""Adaptation on real static-camera clips: objectives side by side, and the score curve.

For each clip, scores (against the clip's temporal median on its static pixels,
:mod:`memderain.evaluation.clip_score`) the rainy input, the 3x3 filters and the starting
model, then adapts the starting model with each objective (:data:`OBJECTIVES`) for the same
number of steps, scoring it every ``--curve-every`` steps on the evaluation frames: split into
frames used by the adaptation and frames held out of it (``--holdout-every``).

    python benchmarks/adapt_real.py --clip ../shared/data/real_video/yard.mp4 \
        --objectives siamese median siamese+median --steps 150 --curve-every 50

Prints Markdown tables and writes the curve as CSV (``--csv``). Names the CPU it ran on.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import torch

from memderain.cpu import cpu_name
from memderain.data.clip_pairs import evenly_spaced, holdout_split
from memderain.data.static_clip import load_static_clip
from memderain.evaluation.clip_score import format_table, score_methods, torch_method
from memderain.evaluation.trivial import TRIVIAL_FILTERS
from memderain.inference.predictor import load_model
from memderain.training.adapt import OBJECTIVES, AdaptConfig, adapt


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clip", action="append", required=True, help="video or frame folder")
    p.add_argument("--weights", default=None, help="starting checkpoint (default: shipped)")
    p.add_argument("--objectives", nargs="+", default=list(OBJECTIVES), choices=list(OBJECTIVES))
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--curve-every", type=int, default=50)
    p.add_argument("--eval-frames", type=int, default=20, help="frames scored (evenly spaced)")
    p.add_argument("--holdout-every", type=int, default=5)
    p.add_argument("--max-frames", type=int, default=60)
    p.add_argument("--max-side", type=int, default=960)
    p.add_argument("--max-shift", type=float, default=8)
    p.add_argument("--crop", type=int, default=96)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--baselines", action="store_true", help="also the 3x3 filters")
    p.add_argument("--nonnegative-rain", action="store_true",
                   help="adapt with the shipped model's R_hat >= 0 clamp (default: unclamped)")
    p.add_argument("--focus", type=float, default=0.0, help="AdaptConfig.focus")
    p.add_argument("--tag", default="", help="suffix of the objective names in the output")
    p.add_argument("--csv", type=Path, help="write the curve here")
    p.add_argument("--scratch", type=Path, default=Path("scratch/adapt_real"))
    args = p.parse_args(argv)
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    rows = []
    for source in args.clip:
        t0 = time.monotonic()
        clip = load_static_clip(source, args.max_frames, args.max_shift, args.max_side or None)
        name = Path(source).stem
        print(f"\n## {name}: {len(clip)} frames {clip.frames.shape[2]}x{clip.frames.shape[1]}, "
              f"static {clip.static_fraction:.1%}, loaded in {time.monotonic() - t0:.1f} s")
        used, held = holdout_split(len(clip), args.holdout_every)
        sets = {"used": evenly_spaced(used, args.eval_frames),
                "held-out": evenly_spaced(held, args.eval_frames)}
        start = load_model(args.weights, backend="torch", precision="f32")
        methods = {"start": start.derain}
        if args.baselines:
            methods.update(TRIVIAL_FILTERS)
        for label, frames in sets.items():
            if frames:
                print(format_table(score_methods(clip, methods, frames),
                                   f"\n{name}, {label} frames ({len(frames)}), before adapting"))
        for objective in args.objectives:
            cfg = AdaptConfig(steps=args.steps, minutes=0, objective=objective,
                              crop_size=args.crop, batch_size=args.batch, lr=args.lr,
                              holdout_every=args.holdout_every,
                              nonnegative_rain=bool(args.nonnegative_rain), focus=args.focus)
            objective_label = objective + args.tag
            t1 = time.monotonic()

            def curve(k: int, model: torch.nn.Module, objective=objective_label, sets=sets,
                      clip=clip, name=name) -> None:
                if k % args.curve_every and k != args.steps:
                    return
                for label, frames in sets.items():
                    if not frames:
                        continue
                    s = score_methods(clip, {"model": torch_method(model)}, frames)
                    gain = s["model"].psnr_y - s["input"].psnr_y
                    rows.append({"clip": name, "objective": objective, "step": k,
                                 "frames": label, "psnr_y": round(s["model"].psnr_y, 3),
                                 "gain": round(gain, 3),
                                 "brightness": round(s["model"].brightness, 3),
                                 "hf_error": round(s["model"].hf_error, 3),
                                 "input_hf_error": round(s["input"].hf_error, 3)})
                    print(f"  {objective} step {k} {label}: {s['model'].psnr_y:.2f} dB "
                          f"({gain:+.2f}), brightness {s['model'].brightness:+.2f}, "
                          f"HF {s['model'].hf_error:.2f} (input {s['input'].hf_error:.2f})",
                          flush=True)

            args.scratch.mkdir(parents=True, exist_ok=True)
            res = adapt(source, args.scratch / f"{name}-{objective}.pt", args.weights, cfg,
                        overwrite=True, clip=clip, callback=curve)
            print(f"  {objective}: {res.steps} steps in {time.monotonic() - t1:.0f} s "
                  f"(incl. scoring)", flush=True)
    if args.csv and rows:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with args.csv.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
