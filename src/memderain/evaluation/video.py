"""Per-frame scores of a de-rained video against its clean version (paper Table III).

The rainy video is decoded frame by frame; each frame is de-rained and scored (PSNR, SSIM,
VIF, FSIM with the conventions of :mod:`memderain.evaluation.metrics`) against the clean
frame of the same index, taken from a clean video or from a folder of frame images (natural
sort: ``f2.png`` before ``f10.png``). Memory stays constant whatever the length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from memderain.data.clip_frames import frame_files, natural_key  # noqa: F401 - re-exported
from memderain.errors import MemderainError
from memderain.evaluation.metrics import MetricAccumulator, compute_metrics
from memderain.inference.video import is_video_path, iter_frames

Derain = Callable[[np.ndarray], np.ndarray]  # uint8 HxWx3 -> uint8 HxWx3


def clean_frames(source: str | Path) -> Iterator[np.ndarray]:
    """uint8 HxWx3 frames of a clean video file or of a folder of frame images."""
    from memderain.data.transforms import read_rgb

    source = Path(source)
    if source.is_dir():
        files = frame_files(source)
        if not files:
            raise MemderainError(f"no image files in {source}")
        return (read_rgb(f) for f in files)
    if not source.exists():
        raise MemderainError(f"clean video or frame folder not found: {source}")
    if not is_video_path(source):
        raise MemderainError(f"--clean {source}: expected a video file or a folder of frames")
    return iter_frames(source)


def evaluate_video(
    rainy: str | Path,
    clean: str | Path,
    derain: Derain | None,
    metrics: Sequence[str],
    *,
    limit: int | None = None,
    progress: bool = True,
    outputs_dir: Path | None = None,
    overwrite: bool = False,
) -> tuple[list[dict], dict[str, float], dict[str, float]]:
    """Score ``derain(frame)`` (or the rainy frame when ``derain`` is None) against the clean
    frame, for every frame (or the first ``limit``). Returns (rows, output means, rainy-input
    means) like :func:`memderain.evaluation.runner.evaluate_benchmark`.
    """
    from memderain.evaluation.runner import _save_png

    out_acc, in_acc = MetricAccumulator(metrics), MetricAccumulator(metrics)
    rainy_it, clean_it = iter_frames(rainy), clean_frames(clean)
    bar = tqdm(desc=f"eval {Path(rainy).name}", unit="frame", total=limit,
               disable=None if progress else True)
    index = 0
    try:
        while limit is None or index < limit:
            r = next(rainy_it, None)
            c = next(clean_it, None)
            if r is None and c is None:
                break
            if r is None or c is None:
                longer = "clean" if r is None else "rainy"
                raise MemderainError(
                    f"frame counts differ: {longer} source has more than {index} frames "
                    f"(pass --limit {index} to score the common part)")
            if r.shape != c.shape:
                raise MemderainError(f"frame {index}: rainy {r.shape[1]}x{r.shape[0]} vs "
                                     f"clean {c.shape[1]}x{c.shape[0]} (WxH) differ")
            output = r if derain is None else derain(r)
            name = f"frame_{index:06d}"
            row = out_acc.update(name, compute_metrics(output, c, metrics), frame=index)
            in_vals = in_acc.update(name, compute_metrics(r, c, metrics))
            row.update({f"input_{k}": in_vals[k] for k in metrics})
            if outputs_dir is not None:
                _save_png(Path(outputs_dir) / f"{name}.png", output, overwrite)
            index += 1
            bar.update(1)
    finally:
        bar.close()
        for it in (rainy_it, clean_it):
            close = getattr(it, "close", None)
            if close:
                close()  # generators release their decoder
    if index == 0:
        raise MemderainError(f"{rainy}: no frames to evaluate")
    return out_acc.rows, out_acc.means(), in_acc.means()
