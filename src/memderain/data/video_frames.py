"""Sample frames of a static-camera rain video into a time-lapse scene folder (PyAV).

``memderain extract-frames VIDEO DIR`` writes ``DIR/<scene>/t000.png ...`` (scene = the video's
file stem unless ``--scene``), so ``DIR`` is a :class:`~memderain.data.timelapse.TimeLapseDataset`
root. The paper's TimeLap scenes hold 30 frames each (Sec. IV-B1), the default ``count``.

The method assumes a fixed background, so the sampled frames are checked for camera motion:
they are shrunk to grey thumbnails, rain is suppressed with a temporal median over a sliding
window of 3 sampled frames, and every filtered frame is compared with the first one by

* phase correlation: the global translation (pixels at full resolution), and
* the median absolute grey difference (catches zoom, rotation, cuts, big lighting changes).

Either above its threshold gives a :class:`CameraMotionWarning` (the frames are still written).
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from memderain.errors import MemderainError

DEFAULT_COUNT = 30
SHIFT_THRESHOLD_PX = 2.0  # translation of the camera, full-resolution pixels
DIFF_THRESHOLD = 0.08  # median |grey difference| in [0, 1] of median-filtered thumbnails
THUMB_SIDE = 128


class CameraMotionWarning(UserWarning):
    """The sampled frames do not look like one static camera."""


@dataclass(frozen=True)
class MotionReport:
    max_shift_px: float  # largest translation vs the first (filtered) frame, full-res pixels
    max_median_diff: float  # largest median |grey difference| vs the first filtered frame
    moved: bool

    def message(self) -> str:
        return (f"camera seems to move (shift up to {self.max_shift_px:.1f} px, median grey "
                f"difference up to {self.max_median_diff:.3f}); time-lapse training assumes a "
                "static camera")


@dataclass(frozen=True)
class ExtractResult:
    scene_dir: Path
    frames: int  # frames written
    total_frames: int  # frames decoded from the video
    motion: MotionReport


def _thumb(rgb: np.ndarray) -> np.ndarray:
    img = Image.fromarray(rgb).convert("L")
    s = THUMB_SIDE / max(img.size)
    if s < 1:
        img = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))),
                         Image.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0


def phase_shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Integer (dy, dx) translation of grey image ``b`` relative to ``a`` (phase correlation)."""
    h, w = a.shape
    win = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    fa = np.fft.rfft2((a - a.mean()) * win)
    fb = np.fft.rfft2((b - b.mean()) * win)
    cross = fb * np.conj(fa)
    mag = np.abs(cross)
    # regularised whitening: frequencies with almost no energy (pure rain / codec noise) get
    # little weight instead of a random phase at full weight
    corr = np.fft.irfft2(cross / (mag + 0.05 * mag.max() + 1e-12), s=(h, w))
    dy, dx = np.unravel_index(int(np.argmax(corr)), corr.shape)
    return float(dy - h if dy > h // 2 else dy), float(dx - w if dx > w // 2 else dx)


def camera_motion(frames: list[np.ndarray], shift_threshold: float = SHIFT_THRESHOLD_PX,
                  diff_threshold: float = DIFF_THRESHOLD) -> MotionReport:
    """Motion check of sampled RGB frames (see the module docstring)."""
    if not frames:
        return MotionReport(0.0, 0.0, False)
    scale = max(1.0, max(frames[0].shape[:2]) / THUMB_SIDE)
    return motion_from_thumbs([_thumb(f) for f in frames], scale, shift_threshold,
                              diff_threshold)


def motion_from_thumbs(thumbs: list[np.ndarray], scale: float,
                       shift_threshold: float = SHIFT_THRESHOLD_PX,
                       diff_threshold: float = DIFF_THRESHOLD) -> MotionReport:
    """:func:`camera_motion` on grey thumbnails that are ``scale`` times smaller than frames."""
    if len(thumbs) < 2:
        return MotionReport(0.0, 0.0, False)
    t = np.stack(thumbs)
    n = len(t)
    filtered = [np.median(t[max(0, i - 1):min(n, i + 2)], axis=0) for i in range(n)]
    ref = filtered[0]
    shifts, diffs = [], []
    for f in filtered[1:]:
        dy, dx = phase_shift(ref, f)
        shifts.append(float(np.hypot(dy, dx)) * scale)
        diffs.append(float(np.median(np.abs(f - ref))))
    max_shift, max_diff = max(shifts), max(diffs)
    return MotionReport(max_shift, max_diff,
                        max_shift > shift_threshold or max_diff > diff_threshold)


def _open(video: Path):
    import av

    if not video.is_file():
        raise MemderainError(f"video not found: {video}")
    try:
        container = av.open(str(video))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise MemderainError(f"cannot read video {video}: {exc}") from exc
    if not container.streams.video:
        container.close()
        raise MemderainError(f"{video} has no video stream")
    return container


def count_frames(video: str | Path) -> int:
    """Number of video frames (from the container, else by counting packets)."""
    import av

    with _open(Path(video)) as c:
        stream = c.streams.video[0]
        if stream.frames and stream.frames > 0:
            return int(stream.frames)
        try:
            return sum(1 for p in c.demux(stream) if p.size)
        except av.FFmpegError as exc:
            raise MemderainError(f"cannot read video {video}: {exc}") from exc


def iter_frames(video: str | Path):
    """Yield (index, uint8 HxWx3 RGB) of every decoded frame."""
    import av

    with _open(Path(video)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for i, frame in enumerate(c.decode(stream)):
                yield i, frame.to_ndarray(format="rgb24")
        except av.FFmpegError as exc:
            raise MemderainError(f"cannot decode video {video}: {exc}") from exc


def extract_frames(video: str | Path, out_dir: str | Path, *, every: int | None = None,
                   count: int | None = None, scene: str | None = None, overwrite: bool = False,
                   shift_threshold: float = SHIFT_THRESHOLD_PX,
                   diff_threshold: float = DIFF_THRESHOLD,
                   progress: Callable | None = None) -> ExtractResult:
    """Write sampled frames of ``video`` to ``out_dir/<scene>/tNNN.png``.

    Sampling: ``every=N`` keeps frames 0, N, 2N, ...; ``count=T`` keeps T frames evenly spaced
    over the whole video (default: ``count=30``). Warns (:class:`CameraMotionWarning`) when the
    camera seems to move. The scene folder is written under a temporary name and renamed when
    complete; an existing non-empty scene folder is kept unless ``overwrite``.
    """
    video = Path(video)
    if every is not None and count is not None:
        raise MemderainError("give either --every or --count, not both")
    if every is not None and every < 1:
        raise MemderainError(f"--every must be >= 1, got {every}")
    if every is None and count is None:
        count = DEFAULT_COUNT
    if count is not None and count < 1:
        raise MemderainError(f"--count must be >= 1, got {count}")
    name = scene or video.stem
    if not name or name.startswith(".") or "/" in name or os.sep in name:
        raise MemderainError(f"invalid scene name {name!r}")
    out_dir = Path(out_dir)
    final = out_dir / name
    if final.exists() and (not final.is_dir() or any(final.iterdir())) and not overwrite:
        raise MemderainError(f"{final} exists and is not empty; pass --overwrite to replace it")

    if count is not None:
        total = count_frames(video)
        if total < 1:
            raise MemderainError(f"{video} has no frames")
        wanted = set(np.unique(np.linspace(0, total - 1, min(count, total)).round().astype(int)))
    else:
        total, wanted = None, None

    tmp = out_dir / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    kept = 0
    thumbs: list[np.ndarray] = []  # grey thumbnails for the motion check (not full frames)
    scale = 1.0
    decoded = 0
    try:
        frames = iter_frames(video)
        if progress is not None:
            frames = progress(frames, total)
        for i, rgb in frames:
            decoded = i + 1
            if (wanted is not None and i in wanted) or (every is not None and i % every == 0):
                Image.fromarray(rgb).save(tmp / f"t{kept:03d}.png", compress_level=1)
                kept += 1
                thumbs.append(_thumb(rgb))
                scale = max(1.0, max(rgb.shape[:2]) / THUMB_SIDE)
        if not kept:
            raise MemderainError(f"{video}: no frame decoded")
        if final.exists():
            shutil.rmtree(final) if final.is_dir() else final.unlink()
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if wanted is not None and kept < len(wanted):
        warnings.warn(f"{video}: the container announced {total} frames but {decoded} decoded; "
                      f"wrote {kept} of {len(wanted)} requested", stacklevel=2)
    motion = motion_from_thumbs(thumbs, scale, shift_threshold, diff_threshold)
    if motion.moved:
        warnings.warn(f"{video}: {motion.message()}", CameraMotionWarning, stacklevel=2)
    if kept < 2:
        warnings.warn(f"{video}: only {kept} frame written; a time-lapse scene needs >= 2",
                      stacklevel=2)
    return ExtractResult(final, kept, decoded, motion)
