"""`memderain experiment ablations`: reproduce the paper's ablation Tables IV and V at small
scale with one resumable command (see docs/experiments.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from memderain.cli.options import add_device_option
from memderain.experiments.scale import SCALES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="run a paper experiment end to end "
                       "(ablations: Tables IV and V)")
    kinds = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    a = kinds.add_parser(
        "ablations", help="train + evaluate every row of Tables IV and V, write ablations.md",
        description="Train every variant of the paper's Tables IV (B_a..B_d) and V (loss "
        "terms) with the same small-scale settings for each seed, evaluate each on a paired "
        "synthetic test set (Y PSNR/SSIM) and write OUT/ablations.md, ablations.csv and "
        "summary.json. Rerun the same command to resume after an interruption.")
    a.add_argument("--out", type=Path, required=True, help="experiment folder (new, empty, or "
                   "one made by this command with the same settings: then it resumes)")
    a.add_argument("--scale", default="cpu", choices=sorted(SCALES),
                   help="named scale: cpu (default, ~110 min on 2 "
                   "CPU cores) or smoke (seconds, for tests)")
    a.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds "
                   "(default: 0 1)")
    a.add_argument("--steps", type=int, help="training steps per run (overrides the scale's)")
    a.add_argument("--term-weights", choices=["paper", "official"], help="weights of the "
                   "loss terms a variant switches on: paper (lambda_s 0.1, lambda_c 0.001) or "
                   "official (the authors' code: 1, 1); default: the scale's (official; the "
                   "paper's weights collapse in short runs)")
    a.add_argument("--only", nargs="+", metavar="VARIANT", default=[],
                   help="subset of variants: Ba Bb Bc Bd loss_sb loss_sbw loss_bc loss_bcw "
                   "loss_sbc loss_sbcw (default: all)")
    a.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="extra config override for every variant, as in `memderain train "
                   "--set` (repeatable)")
    a.add_argument("--train", type=Path, help="training root: scene folders of frames (e.g. "
                   "OUT/frames of `memderain synth`)")
    a.add_argument("--test", type=Path, help="paired test folder in the `memderain synth` "
                   "layout (frames/ + clean/)")
    a.add_argument("--backgrounds-train", type=Path, help="clean photos to build the training "
                   "scenes from (`mixed` rain) when --train is not given")
    a.add_argument("--backgrounds-test", type=Path, help="clean photos to build the test "
                   "scenes from (`heldout` rain) when --test is not given")
    a.add_argument("--real", type=Path, help="folder of real rainy photos: NIQE of B_c and the "
                   "full model, and a picture grid")
    add_device_option(a)
    a.add_argument("--threads", type=int, help="torch CPU threads (default: the scale's; "
                   "0 = torch's default)")
    a.add_argument("--jobs", type=int, default=1, help="runs trained side by side in worker "
                   "processes (default 1; e.g. 6 on one GPU or on many CPU cores)")
    a.add_argument("--overwrite", action="store_true", help="discard results in --out that "
                   "were made with other settings")
    a.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from memderain.errors import MemderainError
    from memderain.experiments.ablations import AblationOptions, run_ablations
    from memderain.experiments.scale import get_scale

    scale = get_scale(args.scale)
    if args.steps is not None:
        if args.steps < 1:
            raise MemderainError(f"--steps must be >= 1, got {args.steps}")
        scale = scale.with_changes(steps=args.steps)
    scale = scale.with_changes(term_weights=args.term_weights)
    from memderain.cli import recorded_command

    argv = recorded_command()
    opts = AblationOptions(
        out=args.out, scale=scale, seeds=tuple(args.seeds), only=tuple(args.only),
        overrides=tuple(args.overrides), train=args.train, test=args.test,
        backgrounds_train=args.backgrounds_train, backgrounds_test=args.backgrounds_test,
        real=args.real, device=args.device, threads=args.threads, overwrite=args.overwrite,
        progress=sys.stderr.isatty() and args.jobs == 1, jobs=args.jobs, argv=tuple(argv))
    run_ablations(opts, log=lambda line: print(line, flush=True))
    return 0
