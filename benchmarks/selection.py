"""The selection score of a training run (issue 22): data no run ever trains on, one row per
checkpoint.

Columns, each on data never trained on:

* ``foreign-light`` / ``foreign-heavy``: Y-PSNR on the sets of ``benchmarks/foreign_rain.py``
  (rendered into ``--foreign`` when absent), gain over the rainy input;
* ``clean``: the clean versions of the nine ``tests/data/quality`` crops through the model:
  PSNR against themselves and mean darkening (grey levels);
* ``news_test1``: the held-out real clip against its temporal median on static pixels
  (``memderain.evaluation.clip_score``): gain over the input, brightness change and
  high-frequency error. ``--clip-side`` downsizes it first (default 960: 4x faster than
  1080p; the model card scores full size with ``memderain eval --clip``);
  ``--clip-reference strict`` scores against the strict reference instead;
* ``real``: share of MOSS's streak removal reproduced on the 24 real photos and the detail
  change off the streaks (``benchmarks/real_peer.py``), with ``--real``.

    python benchmarks/selection.py --weights runs/stage5/best.pt runs/stage5/step_2000.pt
    python benchmarks/selection.py --weights shipped checkpoints/default-cpu-stage3.pt --real

``shipped`` names the packaged model. Prints a Markdown table and the CPU it ran on.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "benchmarks"))

from foreign_rain import STYLES, render_set

from memderain.cpu import cpu_name
from memderain.evaluation.metrics import psnr
from memderain.inference.predictor import load_model


def _pairs(folder: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for rainy in sorted(folder.glob("rain-*.png")):
        clean = folder / rainy.name.replace("rain-", "norain-")
        out.append((np.asarray(Image.open(rainy).convert("RGB")),
                    np.asarray(Image.open(clean).convert("RGB"))))
    return out


def foreign_scores(derain, sets: dict[str, list]) -> dict[str, tuple[float, float]]:
    """{set: (model Y-PSNR, input Y-PSNR)}."""
    res = {}
    for name, pairs in sets.items():
        model = statistics.mean(psnr(derain(r), c, "y") for r, c in pairs)
        rainy = statistics.mean(psnr(r, c, "y") for r, c in pairs)
        res[name] = (model, rainy)
    return res


def clean_scores(derain) -> tuple[float, float]:
    """(PSNR, darkening) of the clean quality crops through the model."""
    cleans = [np.asarray(Image.open(p).convert("RGB"))
              for p in sorted((ROOT / "tests" / "data" / "quality").glob("*_clean.png"))]
    outs = [derain(c) for c in cleans]
    return (statistics.mean(psnr(o, c) for o, c in zip(outs, cleans)),  # Y, as the tests
            float(np.mean([(c.astype(float) - o).mean() for o, c in zip(outs, cleans)])))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", nargs="+", default=["shipped"])
    p.add_argument("--foreign", type=Path, default=ROOT / "out" / "foreign")
    p.add_argument("--clip", type=Path, default=SHARED / "real_video" / "news_test1.mp4")
    p.add_argument("--clip-side", type=int, default=960)
    p.add_argument("--clip-reference", choices=["motion", "strict"], default="motion",
                   help="what the clip's frames are scored against (eval --clip --reference)")
    p.add_argument("--real", action="store_true", help="also real_peer's streak removal")
    args = p.parse_args(argv)
    for style in STYLES:
        if not (args.foreign / f"foreign-{style}" / "rain-050.png").is_file():
            render_set(SHARED / "backgrounds" / "test", args.foreign / f"foreign-{style}", style,
                       50, 2017)
    sets = {f"foreign-{s}": _pairs(args.foreign / f"foreign-{s}") for s in STYLES}
    clip = None
    if args.clip.exists():
        from memderain.data.static_clip import load_static_clip

        clip = load_static_clip(args.clip, 60, 8.0, args.clip_side or None)
    print(f"CPU: {cpu_name()}; clip {args.clip.name} at max side {args.clip_side or 'full'}, "
          f"{args.clip_reference} reference\n")
    cols = ["weights", *sets, "clean PSNR / darkening"]
    if clip is not None:
        cols.append(f"{args.clip.stem}: gain / brightness / HF (input HF)")
    if args.real:
        cols.append("real: streak removal / detail")
    print("| " + " | ".join(cols) + " | s |")
    print("|---|" + "---:|" * (len(cols)))
    for w in args.weights:
        t0 = time.time()
        model = load_model(None if w == "shipped" else w, precision="f32")
        row = [w]
        for m, r in foreign_scores(model.derain, sets).values():
            row.append(f"{m:.2f} ({m - r:+.2f})")
        cp, cd = clean_scores(model.derain)
        row.append(f"{cp:.2f} / {cd:.2f}")
        if clip is not None:
            from memderain.evaluation.clip_score import score_methods

            sc = score_methods(clip, {"input": lambda x: x, "model": model.derain},
                               kind=args.clip_reference)
            row.append(f"{sc['model'].psnr_y - sc['input'].psnr_y:+.2f} / "
                       f"{sc['model'].brightness:+.2f} / {sc['model'].hf_error:.2f} "
                       f"({sc['input'].hf_error:.2f})")
        if args.real:
            row.append(_real(model.derain))
        print("| " + " | ".join(row) + f" | {time.time() - t0:.0f} |", flush=True)
    return 0


def _real(derain) -> str:
    from memderain.evaluation.peer import PeerStreaks

    removal, detail = [], []
    for path in sorted((SHARED / "real").glob("*.jpg")):
        peer_path = SHARED / "real_moss" / path.name
        if not peer_path.is_file():
            continue
        rainy = np.asarray(Image.open(path).convert("RGB"))
        peer = np.asarray(Image.open(peer_path).convert("RGB").resize(
            (rainy.shape[1], rainy.shape[0]), Image.Resampling.BICUBIC))
        s = PeerStreaks(rainy, peer).score(derain(rainy))
        removal.append(s.removal)
        detail.append(s.detail_change)
    return f"{statistics.mean(removal):.0%} / {statistics.mean(detail):.2f}"


if __name__ == "__main__":
    sys.exit(main())
