"""Picture grid for docs/real-rain.md: input / shipped / adapted / temporal median of a clip.

    python scripts/real_clip_grid.py ../shared/data/real_video/yard.mp4 \
        --adapted scratch/yard-adapted.pt --frames 9 29 --out docs/results/real_rain/yard_grid.png

One row per frame (whole frame, or ``--crop Y X H W`` of it), four columns, labelled. The clip
is loaded like ``memderain adapt`` loads it (same frames, alignment and crop), so the
adaptation's held-out frames can be shown by index.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from memderain.atomicfile import atomic_output
from memderain.data.static_clip import load_static_clip
from memderain.inference.predictor import load_model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("clip")
    p.add_argument("--adapted", required=True, help="checkpoint written by memderain adapt")
    p.add_argument("--frames", type=int, nargs="+", default=[0])
    p.add_argument("--crop", type=int, nargs=4, metavar=("Y", "X", "H", "W"))
    p.add_argument("--max-frames", type=int, default=60)
    p.add_argument("--max-side", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    clip = load_static_clip(args.clip, args.max_frames, max_side=args.max_side or None)
    shipped = load_model(None, precision="f32")
    adapted = load_model(args.adapted, precision="f32")
    rows = []
    for t in args.frames:
        frame = clip.frames[t]
        tiles = [frame, shipped.derain(frame), adapted.derain(frame), clip.median]
        if args.crop:
            y, x, h, w = args.crop
            tiles = [im[y:y + h, x:x + w] for im in tiles]
        rows.append(np.concatenate(tiles, axis=1))
    grid = Image.fromarray(np.concatenate(rows, axis=0))
    draw = ImageDraw.Draw(grid)
    w = grid.width // 4
    for k, label in enumerate(["rainy input", "shipped model", "adapted to this clip",
                               "temporal median"]):
        draw.rectangle([k * w, 0, k * w + 7 * len(label) + 8, 16], fill=(0, 0, 0))
        draw.text((k * w + 4, 3), label, fill=(255, 255, 255))
    with atomic_output(args.out, args.overwrite) as tmp:
        grid.save(tmp)
    print(f"wrote {args.out} ({grid.width}x{grid.height}; frames {args.frames})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
