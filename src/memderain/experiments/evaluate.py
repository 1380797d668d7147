"""Scoring the checkpoints of an experiment: Y/RGB PSNR/SSIM on a paired synthetic test set
(the code of ``memderain eval --data``, same ``summary.json`` / ``per_image.csv``, so
``memderain report`` reads the results), NIQE on real rain photos (``memderain eval --real``)
and a picture grid comparing models on real photos (paper Sec. IV-E, real-world rain images).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from memderain.errors import MemderainError

REAL_EXAMPLES = 2  # photos in the picture grid


def eval_device(device: str) -> str:
    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Set torch's CPU thread count for a block (0: leave it) and restore it afterwards."""
    saved = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def evaluate_checkpoint(ckpt: Path | None, test_root: Path, out: Path, frames: int,
                        device: str, threads: int, extra: dict) -> dict:
    """Score ``ckpt`` (None: the identity baseline) on the synth-layout test set like
    ``memderain eval`` and write ``out/summary.json`` + ``out/per_image.csv``."""
    import memderain
    from memderain.evaluation.benchmarks import open_benchmark
    from memderain.evaluation.metrics import STANDARD_METRICS
    from memderain.evaluation.runner import (
        CONVENTIONS,
        base_summary,
        evaluate_benchmark,
        write_csv,
        write_summary,
    )

    bench = open_benchmark(test_root, "synth", frames_per_scene=frames)
    t0 = time.time()
    with torch_threads(threads):
        derain = None if ckpt is None else memderain.load_model(
            ckpt, device=device, precision="f32").derain  # f32: CPU-independent scores
        rows, mean, input_mean = evaluate_benchmark(bench, derain, STANDARD_METRICS,
                                                    progress=False)
    summary = base_summary() | extra | {
        "dataset": test_root.resolve().name, "layout": "synth", "data": str(test_root.resolve()),
        "frames_per_scene": frames, "count": len(rows), "metrics": list(STANDARD_METRICS),
        "mean": mean, "input_mean": input_mean, "weights": str(ckpt) if ckpt else None,
        "baseline": None if ckpt else "identity", "wall_time_s": round(time.time() - t0, 2),
        "conventions": CONVENTIONS}
    write_csv(out / "per_image.csv", rows, overwrite=True)
    write_summary(out / "summary.json", summary, overwrite=True)
    return summary


def real_niqe(folder: Path, photos: Path, runs: dict[str, Path | None], max_side: int,
              device: str, threads: int) -> dict:
    """NIQE (lower is better) of the photos in ``photos``, downsized to ``max_side``: the rainy
    input and the output of each checkpoint in ``runs`` ({run name: last.pt}). Each goes to
    ``folder/<name>/`` (summary.json, per_image.csv; de-rained PNGs in ``outputs/`` for the
    figure); one already there is reused."""
    import memderain
    from memderain.data.scenes import list_images
    from memderain.data.synth import load_background
    from memderain.evaluation.runner import base_summary, evaluate_real, write_csv, write_summary

    files = list_images(photos)
    if not files:
        raise MemderainError(f"--real {photos}: no images")

    def read(path):
        return load_background(path, max_side)

    result = {}
    for name, ckpt in {"input": None, **runs}.items():
        out = folder / name
        if (out / "summary.json").is_file():
            done = json.loads((out / "summary.json").read_text())
            if done.get("data") == str(photos.resolve()) and done.get("max_side") == max_side:
                result[name] = done
                continue
        t0 = time.time()
        with torch_threads(threads):
            derain = None if ckpt is None else memderain.load_model(
                ckpt, device=device, precision="f32").derain
            rows, mean = evaluate_real(files, read, derain, progress=False, overwrite=True,
                                       outputs_dir=None if ckpt is None else out / "outputs")
        summary = base_summary() | {
            "method": name, "layout": "real", "data": str(photos.resolve()), "count": len(rows),
            "max_side": max_side, "mean": mean, "weights": str(ckpt) if ckpt else None,
            "wall_time_s": round(time.time() - t0, 2)}
        write_csv(out / "per_image.csv", rows, overwrite=True)
        write_summary(out / "summary.json", summary, overwrite=True)
        result[name] = summary
    return result


def real_figure(path: Path, photos: Path, folder: Path, bc_run: str | None,
                full_run: str | None, max_side: int) -> Path:
    """PNG grid of the first :data:`REAL_EXAMPLES` photos: rainy input | B_c | full model
    (outputs written by :func:`real_niqe` into ``folder/<run>/outputs``)."""
    import numpy as np
    from PIL import Image

    from memderain.data.scenes import list_images
    from memderain.data.synth import load_background
    from memderain.visualize.common import grid_figure, save_figure

    rows = []
    for f in list_images(photos)[:REAL_EXAMPLES]:
        row = [(load_background(f, max_side) / 255.0, f"{f.name} (rainy)")]
        for run, title in ((bc_run, "B_c (no memory)"), (full_run, "full model")):
            if run is not None:
                with Image.open(folder / run / "outputs" / f"{f.stem}.png") as im:
                    row.append((np.asarray(im.convert("RGB")) / 255.0, f"{title}, {run}"))
        rows.append(row)
    return save_figure(grid_figure(rows), path, overwrite=True)
