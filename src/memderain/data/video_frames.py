"""Sample frames of a static-camera rain video into a time-lapse scene folder (PyAV).

``memderain extract-frames VIDEO DIR`` writes ``DIR/<scene>/t000.png ...`` (scene = the video's
file stem unless ``--scene``), so ``DIR`` is a :class:`~memderain.data.timelapse.TimeLapseDataset`
root. The paper's TimeLap scenes hold 30 frames each (Sec. IV-B1), the default ``count``.

Real footage is made static first (:func:`memderain.data.static_clip.load_static_clip`): the
sampled frames are aligned to a rain-free reference by phase correlation and cropped to the
region all of them cover; a camera that moves more than ``max_shift`` pixels is hand-held and
its frames are warped onto one view by homographies (``stabilise="auto"``; ``"off"`` refuses
it with the measured shift), and fewer than 3 frames are refused. VIDEO may also be a folder
of frames (a phone's burst, frames exported elsewhere). Beside the frames, the scene folder
gets ``_clip/median.png`` (the temporal median) and ``_clip/static.png`` (white where the
scene does not move: what the losses and the clip score use) for a look at what was found.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from memderain.data.clip_frames import (  # noqa: F401 - iter_frames, SIDECAR re-exported
    SIDECAR,  # a scene's sub-folder (clip.json, median, mask), ignored by the scene loaders
    count_frames,
    frame_files,
    iter_frames,
)
from memderain.data.static_clip import DEFAULT_MAX_SHIFT, load_static_clip
from memderain.errors import MemderainError

DEFAULT_COUNT = 30


@dataclass(frozen=True)
class ExtractResult:
    scene_dir: Path
    frames: int  # frames written
    total_frames: int  # frames in the video
    max_shift_px: float  # largest camera shift that was aligned away
    static_fraction: float  # share of pixels where the scene does not move
    size: tuple[int, int]  # (H, W) of the written (aligned, cropped) frames
    alignment: dict | None = None  # how the frames were aligned (StaticClip.alignment)


def extract_frames(video: str | Path, out_dir: str | Path, *, every: int | None = None,
                   count: int | None = None, scene: str | None = None, overwrite: bool = False,
                   max_shift: float = DEFAULT_MAX_SHIFT, max_side: int | None = None,
                   progress: Callable | None = None, stabilise: str = "auto") -> ExtractResult:
    """Write sampled, aligned frames of ``video`` to ``out_dir/<scene>/tNNN.png``.

    Sampling: ``every=N`` keeps frames 0, N, 2N, ...; ``count=T`` keeps T frames evenly spaced
    over the whole video (default: ``count=30``). Raises :class:`MemderainError` when the
    camera moves more than ``max_shift`` px and ``stabilise`` is "off", when a hand-held clip
    leaves too little common area, or when fewer than 3 frames result. The scene folder is
    written under a temporary name and renamed when complete; an existing non-empty scene
    folder is kept unless ``overwrite``.
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
    if video.is_dir():
        total = len(frame_files(video))
    elif video.is_file():
        total = count_frames(video)
    else:
        raise MemderainError(f"video not found: {video}")
    clip = load_static_clip(video, count, max_shift, max_side, every=every, progress=progress,
                            stabilise=stabilise)

    tmp = out_dir / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / SIDECAR).mkdir(parents=True)
    try:
        for t, frame in enumerate(clip.frames):
            Image.fromarray(frame).save(tmp / f"t{t:03d}.png", compress_level=1)
        Image.fromarray(clip.median).save(tmp / SIDECAR / "median.png")
        Image.fromarray((clip.static * 255).astype(np.uint8)).save(tmp / SIDECAR / "static.png")
        info = {"source": str(video.resolve()), "lossless": clip.lossless,
                "frame_indices": clip.indices,
                "shifts": clip.shifts.tolist(), "static_fraction": clip.static_fraction,
                "alignment": clip.alignment}
        if clip.homographies is not None:  # output pixel -> source frame pixel (x, y, 1)
            info["homographies"] = np.round(clip.homographies, 8).tolist()
        (tmp / SIDECAR / "clip.json").write_text(json.dumps(info, indent=1))
        if final.exists():
            shutil.rmtree(final) if final.is_dir() else final.unlink()
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    shift = float(np.hypot(*(clip.shifts - clip.shifts[0]).T).max())
    return ExtractResult(final, len(clip), total, shift, clip.static_fraction,
                         clip.frames.shape[1:3], clip.alignment)
