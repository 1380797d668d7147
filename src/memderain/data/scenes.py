"""Finding time-lapse scenes on disk: ``root/<scene>/<frame>.png|jpg ...``.

A scene is one folder of frames from one static camera; frames are ordered by file name.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from memderain.data.transforms import IMAGE_EXTENSIONS
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
    except (OSError, ValueError) as exc:
        raise MemderainError(f"cannot read image {path}: {exc}") from exc
    return h, w


def find_scenes(root: str | Path, min_frames: int = 2) -> list[Scene]:
    """Scan ``root`` for scene folders holding at least ``min_frames`` frames of one size.

    Folders with too few frames are skipped with a warning; raises :class:`MemderainError`
    when ``root`` is missing or no usable scene remains, or when a scene mixes frame sizes
    (a static camera gives one size).
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
