"""Finding time-lapse scenes on disk: ``root/<scene>/<frame>.png|jpg ...``.

A scene is one folder of frames from one static camera; frames are ordered by file name.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from memderain.data.transforms import IMAGE_EXTENSIONS, IMAGE_READ_ERRORS
from memderain.errors import MemderainError


@dataclass(frozen=True)
class Scene:
    name: str  # folder name
    frames: tuple[Path, ...]  # sorted frame files
    size: tuple[int, int]  # (H, W) of the frames on disk


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (hidden files ignored)."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in IMAGE_EXTENSIONS)


def _frame_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as img:  # reads the header only
            w, h = img.size
    except IMAGE_READ_ERRORS as exc:
        raise MemderainError(f"cannot read image {path}: {exc}") from exc
    return h, w


# A scene whose frames share no background: measured on 4-frame scenes of 128 px
# (scratch study, 2026-12-04): 552 synthetic rainy scenes of every preset (test-heavy and
# v2-timelapse included) scored a median pairwise correlation >= 0.26 with at least one
# frame that has structure, while 72 % of 200 random sets of 4 different photos scored below
# 0.15 with structure in every frame. So only *clearly* different photos are refused.
MIN_BACKGROUND_CORRELATION = 0.15
MIN_STRUCTURE = 20.0  # grey levels (std of the thumbnail): flatter frames cannot be judged
_THUMB = 16  # thumbnail side, in blocks
_SAMPLED_FRAMES = 6


def _background_thumbnail(path: Path) -> np.ndarray:
    """16x16 grey thumbnail that rain hardly touches: the 10th percentile of each block.

    Rain only adds light, so the darker pixels of a block are its background; an affine
    change of the light (veil, exposure) is left to the correlation below.
    """
    try:
        with Image.open(path) as img:
            img.draft("L", (4 * _THUMB, 4 * _THUMB))  # JPEG: decode at a reduced size
            grey = np.asarray(img.convert("L"), np.float64)
    except IMAGE_READ_ERRORS as exc:
        raise MemderainError(f"cannot read image {path}: {exc}") from exc
    h, w = grey.shape
    bh, bw = h // _THUMB, w // _THUMB
    if bh < 4 or bw < 4:  # under 64 px: too few pixels per block to see past the rain
        return np.zeros((1, 1))
    blocks = grey[: bh * _THUMB, : bw * _THUMB].reshape(_THUMB, bh, _THUMB, bw)
    return np.percentile(blocks, 10, axis=(1, 3))


def shared_background(frames: list[Path] | tuple[Path, ...]) -> tuple[float, float]:
    """(median pairwise correlation, least structure) of up to 6 evenly spaced frames.

    Frames of one static scene correlate strongly on their rain-free thumbnails; different
    photos do not. ``least structure`` is the smallest thumbnail std (grey levels): a flat
    frame correlates with nothing, so low correlation only means something when it is high.
    """
    n = len(frames)
    picks = sorted({round(i * (n - 1) / (_SAMPLED_FRAMES - 1)) for i in range(_SAMPLED_FRAMES)})
    thumbs = [_background_thumbnail(frames[i]) for i in picks] if n > 1 else []
    if len(thumbs) < 2 or min(t.size for t in thumbs) < 4:
        return 1.0, 0.0
    structure = min(float(t.std()) for t in thumbs)
    if structure < 1e-6:
        return 1.0, structure
    corr = [float(np.corrcoef(a.ravel(), b.ravel())[0, 1]) for a, b in
            itertools.combinations(thumbs, 2)]
    return float(np.median(corr)), structure


def _check_shared_background(folder: Path, frames: list[Path]) -> None:
    corr, structure = shared_background(frames)
    if corr < MIN_BACKGROUND_CORRELATION and structure > MIN_STRUCTURE:
        raise MemderainError(
            f"scene {folder} looks like different photos, not one static camera: its frames' "
            f"backgrounds correlate {corr:.2f} (one scene: >= {MIN_BACKGROUND_CORRELATION}); "
            "put each scene's frames in a folder of their own")


def find_scenes(root: str | Path, min_frames: int = 2, *,
                check_background: bool = True) -> list[Scene]:
    """Scan ``root`` for scene folders holding at least ``min_frames`` frames of one size.

    Folders with too few frames are skipped with a warning; raises :class:`MemderainError`
    when ``root`` is missing or no usable scene remains, when a scene mixes frame sizes
    (a static camera gives one size), or (``check_background``) when its frames are clearly
    different photos (:func:`shared_background`).
    """
    root = Path(root)
    if min_frames < 1:
        raise MemderainError(f"min_frames must be >= 1, got {min_frames}")
    if not root.is_dir():
        raise MemderainError(f"time-lapse root is not a folder: {root}")
    if (root / "frames").is_dir() and (root / "clean").is_dir():
        # `memderain synth OUT` writes OUT/frames/<scene>/ and OUT/clean/: OUT itself would
        # read as two "scenes", the clean one made of different photos
        raise MemderainError(f"{root} is a `memderain synth` output folder (frames/ + clean/); "
                             f"train on its scenes: --data {root / 'frames'}")
    scenes, skipped = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        frames = list_images(folder)
        if len(frames) < min_frames:
            skipped.append(f"{folder.name} ({len(frames)})")
            continue
        sizes = {_frame_size(f) for f in frames}
        if len(sizes) != 1:
            raise MemderainError(f"scene {folder} mixes frame sizes {sorted(sizes)}; "
                                 "frames of one static camera must share one size")
        if check_background:
            _check_shared_background(folder, frames)
        scenes.append(Scene(folder.name, tuple(frames), sizes.pop()))
    if not scenes:
        what = f"; too few frames in: {', '.join(skipped[:5])}" if skipped else ""
        raise MemderainError(f"no scene folder with >= {min_frames} frames under {root}{what} "
                             "(expected ROOT/<scene>/<frame>.png ...)")
    if skipped:
        warnings.warn(f"{root}: skipped {len(skipped)} scene folder(s) with fewer than "
                      f"{min_frames} frames: {', '.join(skipped[:5])}"
                      + (" ..." if len(skipped) > 5 else ""), stacklevel=2)
    return scenes
