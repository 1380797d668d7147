"""Plot validation and training-loss curves from the TensorBoard logs of training runs.

A series is ``LABEL=RUN_DIR[,RUN_DIR...][@FIRST-LAST]``: the scalars of every event file under
the run folders' ``tb/``, optionally only steps FIRST..LAST (either end may be left out). Where
a resumed run logged a step twice, the later event wins. Writes ``OUT.png`` (validation Y-PSNR
over steps, and the training loss smoothed over 500 steps) and ``OUT.csv`` (every validation
point), and prints the validation points.

    python scripts/training_curve.py "no JPEG=runs/default-v2@-7656" "no JPEG=runs/default-v2a" \\
        "JPEG branch=runs/default-v2@7657-" --out docs/results/model_card/stage4_curve

A series given twice under one label is joined into one curve.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
)


def read_scalars(run_dirs: list[Path], tag: str, first: int, last: int) -> dict[int, float]:
    points: dict[int, tuple[float, float]] = {}   # step -> (wall time, value)
    for run in run_dirs:
        files = sorted((run / "tb").glob("events.out.tfevents.*"))
        if not files:
            raise SystemExit(f"error: no TensorBoard logs under {run / 'tb'}")
        for f in files:
            acc = EventAccumulator(str(f), size_guidance={"scalars": 0})
            acc.Reload()
            if tag not in acc.Tags()["scalars"]:
                continue
            for e in acc.Scalars(tag):
                if first <= e.step <= last and e.wall_time >= points.get(e.step, (-1.0, 0))[0]:
                    points[e.step] = (e.wall_time, e.value)
    return {s: v for s, (_, v) in sorted(points.items())}


def parse_series(spec: str) -> tuple[str, list[Path], int, int]:
    if "=" not in spec:
        raise SystemExit(f"error: series {spec!r} is not LABEL=RUN_DIR[,RUN_DIR...][@FIRST-LAST]")
    label, rest = spec.split("=", 1)
    dirs, _, span = rest.partition("@")
    lo, _, hi = span.partition("-")
    return label, [Path(d) for d in dirs.split(",")], int(lo or 0), int(hi or 10**9)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("series", nargs="+", help="LABEL=RUN_DIR[,RUN_DIR...][@FIRST-LAST]")
    p.add_argument("--out", type=Path, required=True, help="output path without extension")
    args = p.parse_args(argv)
    fig, (ax_val, ax_loss) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    curves: dict[str, tuple[dict[int, float], dict[int, float]]] = {}
    for spec in args.series:   # specs with the same label are joined into one curve
        label, dirs, lo, hi = parse_series(spec)
        val, loss = curves.setdefault(label, ({}, {}))
        val.update(read_scalars(dirs, "val/psnr", lo, hi))
        loss.update(read_scalars(dirs, "loss/total", lo, hi))
    rows = []
    for label, (val, loss) in curves.items():
        val = dict(sorted(val.items()))
        ax_val.plot(list(val), list(val.values()), marker="o", ms=3, label=label)
        if len(loss) > 1:
            steps = np.array(sorted(loss))
            values = np.array([loss[s] for s in steps])
            k = max(1, min(len(values), 500 // max(1, int(np.median(np.diff(steps))))))
            ax_loss.plot(steps[k - 1:], np.convolve(values, np.ones(k) / k, mode="valid"),
                         label=label)
        for s, v in val.items():
            rows.append((label, s, round(v, 3)))
            print(f"{label}\t{s}\t{v:.2f}")
    ax_val.set_ylabel("validation Y-PSNR (dB)")
    ax_val.grid(alpha=0.3)
    ax_val.legend()
    ax_loss.set_ylabel("training loss (smoothed)")
    ax_loss.set_xlabel("optimiser step")
    ax_loss.grid(alpha=0.3)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out.with_suffix(".png"), dpi=100)
    with open(args.out.with_suffix(".csv"), "w", newline="") as f:
        csv.writer(f).writerows([("series", "step", "val_psnr_y"), *rows])
    print(f"wrote {args.out.with_suffix('.png')} and .csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
