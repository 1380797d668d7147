"""How far a model moves real rainy photos toward a peer's de-rained outputs (no ground truth).

For every photo in ``--real`` with a same-named file in ``--peer`` (MOSS's published outputs in
``../shared/data/real_moss``), prints the Y-PSNR of the rainy input and of our output against
the peer's output, and the gain. A model that removes the rain the peer removes gains; one that
only blurs moves away (the peer keeps detail). The peer is not a ground truth: the number is a
proxy for visible real-rain removal, never a training signal.

That PSNR is dominated by the peer's global colour and contrast changes, so the script also
prints the share of the peer's *streak* removal each method reproduces and how much fine
structure it changes off the streaks (:func:`memderain.evaluation.peer.streak_removal`).

    python benchmarks/real_peer.py                                  # shipped model
    python benchmarks/real_peer.py --weights runs/default-v2/best.pt --max-side 512
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from memderain.evaluation.metrics import psnr
from memderain.evaluation.peer import PeerStreaks
from memderain.evaluation.trivial import TRIVIAL_FILTERS
from memderain.inference.predictor import load_model

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _load(path: Path, max_side: int | None, size: tuple[int, int] | None = None) -> np.ndarray:
    img = Image.open(path).convert("RGB")
    if size is None and max_side and max(img.size) > max_side:
        s = max_side / max(img.size)
        size = (round(img.width * s), round(img.height * s))
    if size is not None and img.size != size:
        img = img.resize(size, Image.Resampling.BICUBIC, reducing_gap=None)
    return np.asarray(img)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--real", type=Path, default=SHARED / "real")
    p.add_argument("--peer", type=Path, default=SHARED / "real_moss")
    p.add_argument("--weights", default=None, help="checkpoint (default: the shipped model)")
    p.add_argument("--max-side", type=int, default=0,
                   help="downsize photos to this longer side first (0 = native size)")
    p.add_argument("--baselines", action="store_true", help="also the 3x3 trivial filters")
    args = p.parse_args(argv)
    if not args.real.is_dir() or not args.peer.is_dir():
        print(f"needs --real and --peer folders (not found: {args.real} / {args.peer})")
        return 1
    model = load_model(args.weights)
    methods = {"model": model.derain}
    if args.baselines:
        methods.update(TRIVIAL_FILTERS)
    gains: dict[str, list[float]] = {m: [] for m in methods}
    removal: dict[str, list[float]] = {m: [] for m in methods}
    detail: dict[str, list[float]] = {m: [] for m in ("peer", *methods)}
    print("gain: Y-PSNR toward the peer minus the input's; removal: share of the peer's streak "
          "removal reproduced; detail: fine-structure change off the streaks (grey levels)\n")
    print(f"| photo | input vs peer | {' | '.join(f'{m} gain / removal / detail' for m in methods)}"
          " | peer detail |")
    print("|---|---:|" + "---:|" * len(methods) + "---:|")
    for path in sorted(args.real.glob("*.jpg")):
        peer_path = args.peer / path.name
        if not peer_path.is_file():
            continue
        rainy = _load(path, args.max_side or None)
        peer = _load(peer_path, None, (rainy.shape[1], rainy.shape[0]))
        base = psnr(rainy, peer, "y")
        streaks = PeerStreaks(rainy, peer)
        row = []
        for name, fn in methods.items():
            out = fn(rainy)
            g = psnr(out, peer, "y") - base
            s = streaks.score(out)
            gains[name].append(g)
            removal[name].append(s.removal)
            detail[name].append(s.detail_change)
            row.append(f"{g:+.2f} / {s.removal:.0%} / {s.detail_change:.2f}")
        detail["peer"].append(streaks.peer_detail_change)
        print(f"| {path.stem} | {base:.2f} | {' | '.join(row)} | "
              f"{streaks.peer_detail_change:.2f} |", flush=True)
    n = len(gains["model"])
    print(f"\nmeans over {n} photos:")
    for m in methods:
        print(f"  {m:>9}: gain {statistics.mean(gains[m]):+.2f} dB, streak removal "
              f"{statistics.mean(removal[m]):.0%}, detail change {statistics.mean(detail[m]):.2f}")
    print(f"  {'peer':>9}: detail change {statistics.mean(detail['peer']):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
