"""`memderain report RUN_DIR...`: collect eval runs into the paper's comparison tables.

Layouts (rows = methods in the order first seen; best value of a column in bold, second
underlined, as in the paper):

* ``table2`` (Table II): one column group per data set, PSNR | SSIM (Y channel by default,
  ``--space rgb`` for RGB).
* ``table3`` (Table III): PSNR | VIF | FSIM | SSIM per data set (runs made with
  ``memderain eval --metrics all``).
* ``niqe``: real photos without ground truth, NIQE of the rainy input | of the output.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
from pathlib import Path

from memderain.atomicfile import atomic_output
from memderain.choices import EVAL_SUMMARY_KIND as SUMMARY_KIND
from memderain.errors import MemderainError

COLUMNS = {  # layout -> [(header, summary key for --space y, key for rgb, decimals, higher?)]
    "table2": [("PSNR", "psnr_y", "psnr_rgb", 2, True), ("SSIM", "ssim_y", "ssim_rgb", 3, True)],
    "table3": [("PSNR", "psnr_y", "psnr_rgb", 2, True), ("VIF", "vif_y", "vif_y", 3, True),
               ("FSIM", "fsim", "fsim", 3, True), ("SSIM", "ssim_y", "ssim_rgb", 3, True)],
    "niqe": [("NIQE input", "niqe_input", "niqe_input", 3, False),
             ("NIQE output", "niqe_output", "niqe_output", 3, False)],
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="collect eval runs into a Markdown/CSV table (Table II/III)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path,
                   help="run folders of `memderain eval` (or their summary.json files, or "
                        "folders of run folders)")
    p.add_argument("--layout", default="table2", choices=sorted(COLUMNS),
                   help="table2 = PSNR | SSIM per data set (paper Table II, default); table3 = "
                        "PSNR | VIF | FSIM | SSIM (runs made with eval --metrics all); niqe = "
                        "real photos, NIQE of input | output (eval --real runs)")
    p.add_argument("--space", default="y", choices=["y", "rgb"],
                   help="colour space of PSNR/SSIM (default: y, as the paper)")
    p.add_argument("--out", type=Path, help="write the Markdown table here")
    p.add_argument("--csv", type=Path, help="write the table as CSV here")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing --out / --csv files")
    p.set_defaults(func=run)


def load_summaries(paths: list[Path]) -> list[dict]:
    """summary.json of each run (folders of runs are searched one level down)."""
    files: list[Path] = []
    for p in paths:
        if p.is_file():
            files.append(p)
        elif (p / "summary.json").is_file():
            files.append(p / "summary.json")
        elif p.is_dir() and sorted(p.glob("*/summary.json")):
            files += sorted(p.glob("*/summary.json"))
        else:
            raise MemderainError(f"no summary.json in {p} (is it a `memderain eval` run folder?)")
    out = []
    for f in files:
        try:
            s = json.loads(f.read_text())
        except (OSError, ValueError) as exc:
            raise MemderainError(f"cannot read {f}: {exc}") from exc
        if not isinstance(s, dict) or s.get("kind") != SUMMARY_KIND:
            raise MemderainError(f"{f} is not a memderain eval summary")
        out.append(s)
    return out


def build_table(summaries: list[dict], layout: str = "table2", space: str = "y"
                ) -> tuple[list[str], list[str], list[list[float | None]]]:
    """(methods, column headers "DATASET METRIC", values[method][column] or None)."""
    cols = COLUMNS[layout]
    datasets: list[str] = []
    methods: list[str] = []
    cells: dict[tuple[str, str], dict] = {}
    for s in summaries:
        d, m = str(s.get("dataset", "?")), str(s.get("method", "?"))
        if (m, d) in cells:
            raise MemderainError(f"two runs of method {m!r} on data set {d!r}: pass only one "
                                 "(or re-run one with --name)")
        datasets += [d] if d not in datasets else []
        methods += [m] if m not in methods else []
        cells[(m, d)] = s.get("mean", {})
    headers = [f"{d} {c[0]}" for d in datasets for c in cols]
    values = []
    for m in methods:
        row = []
        for d in datasets:
            mean = cells.get((m, d), {})
            for _, key_y, key_rgb, _, _ in cols:
                v = mean.get(key_y if space == "y" else key_rgb)
                row.append(float(v) if isinstance(v, (int, float)) else None)
        values.append(row)
    return methods, headers, values


def _ranks(values: list[list[float | None]], higher: list[bool]) -> list[list[int]]:
    """Rank (0 best, 1 second, 2 other) of each cell within its column."""
    ranks = [[2] * len(r) for r in values]
    for j, hi in enumerate(higher):
        col = sorted({r[j] for r in values if r[j] is not None and not math.isnan(r[j])},
                     reverse=hi)
        for i, r in enumerate(values):
            if r[j] is not None and col and r[j] == col[0]:
                ranks[i][j] = 0
            elif r[j] is not None and len(col) > 1 and r[j] == col[1]:
                ranks[i][j] = 1
    return ranks


def to_markdown(methods, headers, values, layout: str) -> str:
    cols = COLUMNS[layout]
    decimals = [cols[j % len(cols)][3] for j in range(len(headers))]
    higher = [cols[j % len(cols)][4] for j in range(len(headers))]
    ranks = _ranks(values, higher) if len(methods) > 1 else [[2] * len(headers)] * len(methods)
    lines = ["| Method | " + " | ".join(headers) + " |",
             "|---|" + "---:|" * len(headers)]
    for m, row, rank in zip(methods, values, ranks, strict=True):
        cells = []
        for v, dec, r in zip(row, decimals, rank, strict=True):
            text = "–" if v is None else f"{v:.{dec}f}"
            cells.append(f"**{text}**" if r == 0 else f"<u>{text}</u>" if r == 1 else text)
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(methods, headers, values) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["method", *headers])
    for m, row in zip(methods, values, strict=True):
        w.writerow([m, *("" if v is None else f"{v:.6f}" for v in row)])
    return buf.getvalue()


def run(args: argparse.Namespace) -> int:
    for path in (args.out, args.csv):  # refuse before printing anything
        if path is not None and path.exists() and not args.overwrite:
            raise MemderainError(f"{path} exists; pass --overwrite to replace it")
    summaries = load_summaries(args.runs)
    methods, headers, values = build_table(summaries, args.layout, args.space)
    if all(v is None for row in values for v in row):
        keys = sorted({k for s in summaries for k in s.get("mean", {})})
        fits = [name for name, cols in COLUMNS.items()
                if any(c[1] in keys or c[2] in keys for c in cols)]
        raise MemderainError(f"--layout {args.layout}: the runs hold none of its metrics (they "
                             f"have {', '.join(keys) or 'none'}); try --layout "
                             f"{' or '.join(fits) or 'table2'}")
    md = to_markdown(methods, headers, values, args.layout)
    print(md, end="")
    for path, text in ((args.out, md), (args.csv, to_csv(methods, headers, values))):
        if path is not None:
            with atomic_output(path, overwrite=args.overwrite) as tmp:
                tmp.write_text(text)
            print(f"wrote {path}")
    return 0
