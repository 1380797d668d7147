"""`memderain synth CLEAN_DIR OUT`: render synthetic time-lapse rain scenes from clean photos."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from memderain.choices import RAIN_PRESET_NAMES
from memderain.errors import MemderainError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth", help="render synthetic time-lapse rain scenes (OUT/frames, OUT/clean)",
        description="Turn every clean photo in CLEAN_DIR into a static scene of T rainy frames: "
                    "OUT/frames/<scene>/t000.png.., OUT/clean/<scene>.png, OUT/synth.json. "
                    "OUT/frames is a training root for `memderain train`; OUT is a --val / "
                    "evaluation folder. Deterministic for a seed.")
    p.add_argument("clean_dir", metavar="CLEAN_DIR", help="folder of clean photographs")
    p.add_argument("out", metavar="OUT", nargs="?",
                   help="output folder (must be empty or new); not needed with --preview")
    p.add_argument("--frames", "-T", type=int, default=8, help="rainy frames per scene (default 8)")
    p.add_argument("--rain", default="mixed",
                   help=f"rain preset ({', '.join(RAIN_PRESET_NAMES)}) or a YAML file of "
                        "RainConfig fields (optional `preset: NAME` to start from); default mixed "
                        "(training); use heldout for test scenes")
    p.add_argument("--bank", metavar="BANK",
                   help="with --rain real-layers: a bank of real rain layers lifted off "
                        "static-camera clips (`memderain rain-layers CLIP... -o BANK`)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--max-side", type=int, default=512,
                   help="downsize photos whose longer side exceeds this (default 512; 0 = keep)")
    p.add_argument("--limit", type=int, default=None, help="only the first N photos (by name)")
    p.add_argument("--workers", type=int, default=1,
                   help="parallel processes, one scene each (default 1)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a previous `memderain synth` output in OUT (or --preview PNG)")
    p.add_argument("--preview", metavar="PNG",
                   help="instead of rendering scenes, write a grid of synthetic rainy crops "
                        "(--rain, --seed) beside crops of the real rainy photos in --real")
    p.add_argument("--real", metavar="DIR", help="with --preview: folder of real rainy photos")
    p.add_argument("--count", type=int, default=6,
                   help="with --preview: crops of each kind (default 6)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if args.preview:
        return run_preview(args)
    if args.out is None:
        raise MemderainError("synth needs OUT (a folder for the scenes) or --preview PNG")
    from memderain.atomicfile import check_writable
    from memderain.data.synth import SynthOptions, synthesize_folder

    check_writable(args.out, folder=True, name=f"OUT {args.out}")  # before any scene

    opts = SynthOptions(frames=args.frames, rain=args.rain, seed=args.seed,
                        max_side=args.max_side or None, limit=args.limit,
                        overwrite=args.overwrite, bank=args.bank)

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


def run_preview(args: argparse.Namespace) -> int:
    from memderain.data.scenes import list_images
    from memderain.data.synth import list_backgrounds
    from memderain.visualize.rain_preview import rain_preview

    if args.out is not None:
        raise MemderainError("--preview writes one PNG; leave out OUT")
    if not args.preview.lower().endswith(".png"):
        raise MemderainError(f"--preview must name a .png file, got {args.preview!r}")
    if args.count < 1:
        raise MemderainError(f"--count must be >= 1, got {args.count}")
    clean = list_backgrounds(args.clean_dir, args.limit)
    real = []
    if args.real:
        if not Path(args.real).is_dir():
            raise MemderainError(f"--real is not a folder: {args.real}")
        real = list_images(Path(args.real))
        if not real:
            raise MemderainError(f"--real {args.real}: no images")
    path = rain_preview(clean, real, args.preview, rain=args.rain, bank=args.bank,
                        count=args.count,
                        seed=args.seed, max_side=args.max_side or 512, overwrite=args.overwrite)
    print(f"wrote {path}: {args.count} synthetic ({args.rain}) and {len(real) and args.count} "
          "real crops")
    return 0
