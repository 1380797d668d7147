"""`memderain train`: train MemDerain on time-lapse scenes (no ground truth), CPU or GPU,
one process or many under ``torchrun --nproc_per_node N``."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a de-raining model on time-lapse scenes (see docs/training.md)",
        description="Train on scene folders of frames of static cameras (e.g. OUT/frames of "
        "`memderain synth OUT`). The same command runs under `torchrun --nproc_per_node N`.",
    )
    from memderain.choices import config_preset_names as preset_names

    p.add_argument("--config", default="paper",
                   help=f"preset name ({', '.join(preset_names())}) or a YAML file (default: "
                   "paper); `--config list` prints the presets")
    p.add_argument("--data", help="training root: scene folders of frames (sets data.root); "
                   "real static-camera clips join with --set data.real_root=DIR")
    p.add_argument("--val", help="paired validation folder in the `memderain synth` layout "
                   "(frames/ + clean/); keeps best.pt by PSNR (sets data.val)")
    p.add_argument("--out", help="run folder (default: runs/<config name>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.steps=1000 --set "
                   "loss.lambda_w=0 (repeatable)")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/last.pt if it exists (else start; safe to repeat)")
    p.add_argument("--overwrite", action="store_true",
                   help="start again even if OUT already holds a run")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import yaml

    from memderain.training.config import experiment_to_dict, load_experiment, preset_names

    if args.config == "list":
        print("\n".join(preset_names()))
        return 0
    values = {}
    if args.data:
        values["data.root"] = args.data
    if args.val:
        values["data.val"] = args.val
    cfg = load_experiment(args.config, args.overrides, values)
    if args.print_config:
        print(yaml.safe_dump(experiment_to_dict(cfg), sort_keys=False), end="")
        return 0
    from memderain.training.trainer import Trainer

    out = Path(args.out) if args.out else Path("runs") / cfg.name
    import sys

    from memderain.atomicfile import check_writable

    check_writable(out, folder=True, name=f"--out {out}" if args.out else
                   f"{out} (the default run folder; choose another with --out DIR)")

    from memderain.cli import recorded_command

    print(f"memderain train: {cfg.name}: reading {cfg.data.root}"
          + (f" and real clips in {cfg.data.real_root}" if cfg.data.real_root else "")
          + (" (decoding every frame into memory first)" if cfg.data.cache else "") + " ...",
          file=sys.stderr, flush=True)
    trainer = Trainer(cfg, out, resume=args.resume, overwrite=args.overwrite,
                      argv=recorded_command())
    if trainer.dist.is_main:
        print(f"memderain train: {trainer.describe()}", file=sys.stderr, flush=True)
    try:
        summary = trainer.fit()
    finally:
        trainer.close()
    if trainer.dist.is_main:
        state = "stopped at" if summary["stopped_early"] else "finished"
        print(f"{state} step {summary['steps']} in {summary['wall_time_s'] / 60:.1f} min; "
              f"checkpoint: {summary['last']}")
    return 0
