"""`memderain synth CLEAN_DIR OUT`: render synthetic time-lapse rain scenes from clean photos."""

from __future__ import annotations

import argparse
import sys
import time

from memderain.data.synthetic_rain import RAIN_PRESETS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth", help="render synthetic time-lapse rain scenes (OUT/frames, OUT/clean)",
        description="Turn every clean photo in CLEAN_DIR into a static scene of T rainy frames: "
                    "OUT/frames/<scene>/t000.png.., OUT/clean/<scene>.png, OUT/synth.json. "
                    "OUT/frames is a training root for `memderain train`; OUT is a --val / "
                    "evaluation folder. Deterministic for a seed.")
    p.add_argument("clean_dir", metavar="CLEAN_DIR", help="folder of clean photographs")
    p.add_argument("out", metavar="OUT", help="output folder (must be empty or new)")
    p.add_argument("--frames", "-T", type=int, default=8, help="rainy frames per scene (default 8)")
    p.add_argument("--rain", default="mixed",
                   help=f"rain preset ({', '.join(sorted(RAIN_PRESETS))}) or a YAML file of "
                        "RainConfig fields (optional `preset: NAME` to start from); default mixed "
                        "(training); use heldout for test scenes")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--max-side", type=int, default=512,
                   help="downsize photos whose longer side exceeds this (default 512; 0 = keep)")
    p.add_argument("--limit", type=int, default=None, help="only the first N photos (by name)")
    p.add_argument("--workers", type=int, default=1,
                   help="parallel processes, one scene each (default 1)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a previous `memderain synth` output in OUT")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from memderain.data.synth import SynthOptions, synthesize_folder

    opts = SynthOptions(frames=args.frames, rain=args.rain, seed=args.seed,
                        max_side=args.max_side or None, limit=args.limit,
                        overwrite=args.overwrite)

    def progress(it, total):
        return tqdm(it, total=total, unit="scene", desc="synth",
                    disable=not sys.stderr.isatty())

    t0 = time.perf_counter()
    manifest = synthesize_folder(args.clean_dir, args.out, opts, workers=args.workers,
                                 progress=progress)
    n = len(manifest["scenes"])
    dt = time.perf_counter() - t0
    cover = sum(s["rain_coverage"] for s in manifest["scenes"].values()) / max(n, 1)
    psnr = sum(s["psnr_rainy_vs_clean"] for s in manifest["scenes"].values()) / max(n, 1)
    print(f"wrote {n} scenes x {opts.frames} frames to {args.out} in {dt:.1f} s "
          f"(rain {opts.rain}, seed {opts.seed}; mean rain coverage {cover:.1%}, "
          f"rainy-vs-clean PSNR {psnr:.2f} dB)")
    return 0
