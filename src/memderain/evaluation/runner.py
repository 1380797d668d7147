"""Evaluation runs: de-rain every pair of a benchmark (or every real photo), score, record.

A *run folder* holds one method on one data set::

    RUN_DIR/summary.json     method, data set, layout, count, means, conventions, command
    RUN_DIR/per_image.csv    one row per image: name, files, metrics of the output and of the
                             rainy input (``input_*``, i.e. the identity baseline)
    RUN_DIR/outputs/...      the de-rained images (``--save-outputs``), exactly the uint8
                             arrays that were scored

``memderain report`` reads ``summary.json`` files; :data:`SUMMARY_KIND` marks them.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from memderain.atomicfile import atomic_output
from memderain.choices import EVAL_SUMMARY_KIND as SUMMARY_KIND
from memderain.evaluation.benchmarks import Benchmark
from memderain.evaluation.metrics import MetricAccumulator, compute_metrics

SUMMARY_VERSION = 1
CONVENTIONS = (
    "PSNR/SSIM on Y of MATLAB rgb2ycbcr(uint8) (rounded) and on RGB; outputs quantised to "
    "uint8; SSIM: 11x11 Gaussian sigma 1.5, K=(0.01,0.03), L=255, 'valid' window, no "
    "down-sampling; VIF: vifp_mscale on Y; FSIM: FeatureSIM.m (luminance); mean over images")
NIQE_CONVENTION = (
    "NIQE (Mittal et al. 2013) with MATLAB features and the memderain pristine model fitted "
    "to the project's clean training photos (not MATLAB's model); lower is better")

Derain = Callable[[np.ndarray], np.ndarray]  # uint8 HxWx3 -> uint8 HxWx3


def _save_png(path: Path, rgb: np.ndarray, overwrite: bool) -> None:
    with atomic_output(path, overwrite=overwrite) as tmp:
        Image.fromarray(rgb, "RGB").save(tmp, format="PNG")


def evaluate_benchmark(bench: Benchmark, derain: Derain | None, metrics: Sequence[str], *,
                       outputs_dir: Path | None = None, overwrite: bool = False,
                       limit: int | None = None, progress: bool = True
                       ) -> tuple[list[dict], dict[str, float], dict[str, float]]:
    """Score ``derain(rainy)`` (or the rainy image itself when ``derain`` is None) against
    the clean image for every pair. Returns (rows, mean of outputs, mean of rainy inputs)."""
    out_acc, in_acc = MetricAccumulator(metrics), MetricAccumulator(metrics)
    pairs = bench.pairs[:limit] if limit else bench.pairs
    bar = tqdm(pairs, desc=f"eval {bench.root.name}", unit="img",
               disable=None if progress else True)  # None: off when not a TTY
    for pair in bar:
        rainy, clean = bench.load(pair)
        output = rainy if derain is None else derain(rainy)
        in_vals = compute_metrics(rainy, clean, metrics)
        row = out_acc.update(pair.name, compute_metrics(output, clean, metrics),
                             rainy=str(pair.rainy), clean=str(pair.clean))
        in_acc.update(pair.name, in_vals)
        row.update({f"input_{k}": v for k, v in in_vals.items()})
        if outputs_dir is not None:
            _save_png(outputs_dir / f"{pair.name}.png", output, overwrite)
    return out_acc.rows, out_acc.means(), in_acc.means()


def evaluate_real(files: Sequence[Path], read: Callable[[Path], np.ndarray],
                  derain: Derain | None, *, outputs_dir: Path | None = None,
                  overwrite: bool = False, progress: bool = True
                  ) -> tuple[list[dict], dict[str, float]]:
    """NIQE of each real rainy photo and of its de-rained output (no ground truth)."""
    from memderain.evaluation.no_reference import niqe

    rows = []
    for f in tqdm(files, desc="eval real", unit="img", disable=None if progress else True):
        rainy = read(f)
        output = rainy if derain is None else derain(rainy)
        rows.append({"name": f.stem, "rainy": str(f), "niqe_input": niqe(rainy),
                     "niqe_output": niqe(output)})
        if outputs_dir is not None:
            _save_png(outputs_dir / f"{f.stem}.png", output, overwrite)
    means = {k: float(np.mean([r[k] for r in rows])) if rows else math.nan
             for k in ("niqe_input", "niqe_output")}
    return rows, means


def write_csv(path: Path, rows: list[dict], overwrite: bool = False) -> None:
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    with atomic_output(path, overwrite=overwrite) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v)
                             for k, v in row.items()})


def write_summary(path: Path, summary: dict, overwrite: bool = False) -> None:
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, allow_nan=True) + "\n")


def base_summary(kind: str = SUMMARY_KIND) -> dict:
    from memderain.version import __version__

    return {"kind": kind, "format_version": SUMMARY_VERSION, "memderain_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
