"""Plot adaptation curves written by ``benchmarks/adapt_real.py --csv``: Y-PSNR gain over the
rainy input and brightness change against adaptation steps, one line per objective, solid on
frames used by the adaptation and dashed on frames held out of it.

    python scripts/adapt_curves.py docs/results/real_rain/yard_objectives.csv \
        --out docs/results/real_rain/yard_curves.png
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from memderain.atomicfile import atomic_output


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("csv", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    series = defaultdict(list)
    for path in args.csv:
        with path.open() as fh:
            for row in csv.DictReader(fh):
                series[(row["clip"], row["objective"], row["frames"])].append(
                    (int(row["step"]), float(row["gain"]), float(row["brightness"])))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.8))
    colours = {}
    for (clip, objective, frames), points in sorted(series.items()):
        points.sort()
        steps, gain, bright = zip(*points, strict=True)
        colour = colours.setdefault((clip, objective), f"C{len(colours) % 10}")
        style = "-" if frames == "used" else "--"
        label = f"{clip}: {objective}" if frames == "used" else None
        ax1.plot(steps, gain, style, color=colour, marker="o", ms=3, label=label)
        ax2.plot(steps, bright, style, color=colour, marker="o", ms=3)
    ax1.axhline(0, color="k", lw=0.8)
    ax1.axhline(1, color="grey", lw=0.8, ls=":")
    ax1.set(xlabel="adaptation steps", ylabel="Y-PSNR gain over the rainy input (dB)",
            title="vs the temporal median (solid: used, dashed: held out)")
    ax2.axhline(0, color="k", lw=0.8)
    ax2.axhline(-0.5, color="grey", lw=0.8, ls=":")
    ax2.set(xlabel="adaptation steps", ylabel="brightness vs median (grey levels)",
            title="below -0.5: darkening")
    fig.legend(fontsize=7, loc="lower center", ncol=3)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    with atomic_output(args.out, args.overwrite) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
