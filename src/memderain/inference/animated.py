"""Animated GIFs: de-rained frame by frame, keeping each frame's duration, the loop count and
1-bit transparency (``memderain derain``).

GIF frames are palette images; each is converted to RGBA, its colour de-rained, and the frames
written back as a GIF (Pillow builds a palette per frame). Pixels that were transparent stay
transparent. The file is written atomically, like every other output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

from memderain.atomicfile import atomic_output
from memderain.inference.io import ImageReadError

GIF_EXTENSIONS = (".gif",)


def read_gif_frames(path: Path) -> tuple[list[np.ndarray], list[int], dict]:
    """(RGBA uint8 frames, per-frame durations in ms, save options: loop...)."""
    try:
        with Image.open(path) as im:
            if im.format != "GIF":
                raise ImageReadError(f"{path}: not a GIF file ({im.format or 'unknown'} data)")
            frames, durations = [], []
            for frame in ImageSequence.Iterator(im):
                frames.append(np.asarray(frame.convert("RGBA")).copy())
                durations.append(int(frame.info.get("duration", im.info.get("duration", 100))))
            options = {"loop": im.info["loop"]} if "loop" in im.info else {}
    except ImageReadError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageReadError(f"{path}: cannot read GIF: {exc}") from exc
    return frames, durations, options


def derain_gif(derainer, src: Path, dst: Path, *, overwrite: bool = False,
               tile: int | None = None) -> int:
    """De-rain every frame of ``src`` into ``dst``; returns the number of frames."""
    frames, durations, options = read_gif_frames(src)
    out = []
    for rgba in frames:
        rgb = derainer.derain(np.ascontiguousarray(rgba[..., :3]), tile=tile)
        alpha = rgba[..., 3]
        img = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
        out.append(img)
    with atomic_output(dst, overwrite) as tmp:
        out[0].save(tmp, format="GIF", save_all=True, append_images=out[1:],
                    duration=durations, disposal=2, optimize=False, **options)
    return len(out)
