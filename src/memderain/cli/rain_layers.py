"""`memderain rain-layers CLIP... -o BANK`: lift the real rain off static-camera clips."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from memderain.cli.options import add_clip_options
from memderain.errors import MemderainError


def register(sub: argparse._SubParsersAction) -> None:
    from memderain.data.rain_layers import BLENDS, LayerOptions

    d = LayerOptions()
    p = sub.add_parser(
        "rain-layers", help="lift real rain layers off static-camera clips into a bank",
        description="For every frame of each static-camera CLIP (video or frame folder): the "
                    "rain over the clip's temporal median on static pixels, with the noise "
                    "floor (from the negative residuals) and what is not a streak left out. "
                    "Stored losslessly in BANK (16-bit PNG + bank.json) for `memderain synth "
                    "--rain real-layers --bank BANK`. See docs/real-rain.md.")
    p.add_argument("clips", metavar="CLIP", nargs="+", help="static-camera clips")
    p.add_argument("-o", "--out", metavar="BANK", required=True, help="bank folder")
    add_clip_options(p)
    p.add_argument("--high-sigma", type=float, default=d.high_sigma,
                   help=f"a streak must reach this many noise sigmas (default {d.high_sigma:g})")
    p.add_argument("--low-sigma", type=float, default=d.low_sigma,
                   help=f"... and spans connected pixels above this many (default {d.low_sigma:g})")
    p.add_argument("--min-level", type=float, default=d.min_level,
                   help=f"grey levels a streak must reach whatever the noise (default "
                        f"{d.min_level:g})")
    p.add_argument("--min-area", type=int, default=d.min_area,
                   help=f"smaller components (px) are noise (default {d.min_area})")
    p.add_argument("--blob", type=int, default=d.blob,
                   help=f"structure wider than this (px) is not a streak (default {d.blob}; 0 off)")
    p.add_argument("--blend", choices=BLENDS, default=d.blend,
                   help=f"domain the layers are stored in (default {d.blend}, measured: "
                        "docs/real-rain.md)")
    p.add_argument("--preview", metavar="PNG",
                   help="also write a grid: real frame, its layer, the layer on a clean photo")
    p.add_argument("--clean", metavar="DIR",
                   help="with --preview: clean photos to put the layers on (default: the "
                        "clip's own median)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the preview (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace a previous bank in BANK")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from memderain.atomicfile import check_new_output, check_writable
    from memderain.data.rain_layers import LayerOptions, check_bank_out, lift_layers, write_bank
    from memderain.data.static_clip import load_static_clip

    opts = LayerOptions(high_sigma=args.high_sigma, low_sigma=args.low_sigma,
                        min_level=args.min_level, min_area=args.min_area, blob=args.blob,
                        blend=args.blend)
    out = Path(args.out)
    check_bank_out(out, args.overwrite)  # before any work
    check_writable(out, folder=True, name=f"BANK {out}")
    if args.preview:
        if not args.preview.lower().endswith(".png"):
            raise MemderainError(f"--preview must name a .png file, got {args.preview!r}")
        check_new_output(args.preview, args.overwrite)
        check_writable(args.preview, name=f"--preview {args.preview}")
    names = _clip_names(args.clips)
    tty = sys.stderr.isatty()
    lifted, clips = {}, {}
    for src, name in zip(args.clips, names, strict=True):
        def decode(it, total, _n=name):
            return tqdm(it, total=total, unit="frame", desc=f"read {_n}", disable=not tty)

        clip = load_static_clip(src, args.max_frames, args.max_shift, args.max_side or None,
                                progress=decode, upright=True, stabilise=args.stabilise)
        layers, record = lift_layers(clip, opts, name)
        lifted[name] = (layers, record)
        clips[name] = clip
        dens = sum(ly.density for ly in layers) / len(layers)
        mean = sum(ly.mean for ly in layers) / len(layers)
        print(f"{name}: {len(layers)} layers, rain on {dens:.2%} of static pixels, mean "
              f"{mean:.2f} grey levels, noise sigma {record['noise_sigma']:.2f}")
    manifest = write_bank(out, lifted, opts, overwrite=args.overwrite)
    total = sum(len(c["layers"]) for c in manifest["clips"].values())
    print(f"wrote {total} layers of {len(names)} clip(s) to {out} (blend {opts.blend})")
    if args.preview:
        from memderain.visualize.rain_preview import layer_preview

        path = layer_preview(clips, lifted, args.preview, clean_dir=args.clean, seed=args.seed,
                             blend=opts.blend, overwrite=args.overwrite)
        print(f"wrote {path}")
    return 0


def _clip_names(clips: list[str]) -> list[str]:
    names = [Path(c.rstrip("/")).stem or "clip" for c in clips]
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}-{seen[n]}")
    return out
