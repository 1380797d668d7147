"""`memderain adapt CLIP -o ADAPTED.pt`: fine-tune the model on your own rain clip.

Self-supervised test-time adaptation (no ground truth): the clip's frames are aligned (a
hand-held clip is stabilised onto one view, --stabilise), their temporal median and static
mask computed, and the shipped (or --weights) model is trained on pairs of the clip's own
frames for --minutes (default 4) or --steps. Then (the original, unwarped frames):

    memderain derain CLIP --weights ADAPTED.pt -o OUT/

(or both at once: ``memderain derain VIDEO --adapt -o OUT/``). Interrupted runs keep
ADAPTED.pt.resume and continue with --resume; ADAPTED.pt is written only when done.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from memderain.cli.options import add_clip_options, add_device_option


def add_adapt_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``adapt`` and ``derain --adapt``."""
    from memderain.training import adapt_defaults as d  # constants: no training code imported

    g = p.add_argument_group("adaptation")
    g.add_argument("--minutes", type=float, default=d.MINUTES,
                   help=f"time budget of the whole command, reading and aligning the clip "
                        f"included (default {d.MINUTES:g})")
    g.add_argument("--steps", type=int, default=0,
                   help="train exactly N steps, however long they take (reproducible; "
                        "--minutes then sets no limit; default: as many as fit in --minutes)")
    g.add_argument("--objective", default=d.DEFAULT_OBJECTIVE, choices=d.OBJECTIVE_NAMES,
                   help=f"what to optimise (default {d.DEFAULT_OBJECTIVE}: the clip's temporal "
                        "median and its edges as target on its static pixels; median: the "
                        "median only; +brightness: also its mean brightness; siamese*: the "
                        "paper's losses, which darken real footage, with a remedy; "
                        "docs/real-rain.md)")
    g.add_argument("--nonnegative-rain", action="store_true",
                   help="keep the shipped model's R >= 0 clamp (default off: the adapted "
                        "model may also lift noisy pixels toward the median; with the clamp "
                        "it can only darken them)")
    add_clip_options(g)
    g.add_argument("--crop", type=int, default=d.CROP_SIZE,
                   help=f"training crop size in pixels (default {d.CROP_SIZE})")
    g.add_argument("--batch", type=int, default=d.BATCH_SIZE,
                   help=f"pairs per step (default {d.BATCH_SIZE})")
    g.add_argument("--focus", type=float, default=d.FOCUS,
                   help=f"share of crops drawn where the frames have rain (default {d.FOCUS:g}; "
                        "0 = uniform crops)")
    g.add_argument("--lr", type=float, default=d.LR, help=f"learning rate (default {d.LR:g})")
    g.add_argument("--holdout-every", type=int, default=d.HOLDOUT_EVERY, metavar="N",
                   help=f"leave every N-th frame out of the training (default "
                        f"{d.HOLDOUT_EVERY}): the adapted model, the starting model and the "
                        "rainy input are scored on them at the end, and the adapted model is "
                        "written only if it beats both (else the better of the two; 0 = no "
                        "check)")
    g.add_argument("--seed", type=int, default=0,
                   help="random seed of crops and pairs (default 0)")


def adapt_config(args: argparse.Namespace, device: str = "auto"):
    from memderain.training.adapt import AdaptConfig

    return AdaptConfig(minutes=args.minutes, steps=args.steps, objective=args.objective,
                       crop_size=args.crop, batch_size=args.batch, lr=args.lr, seed=args.seed,
                       focus=args.focus,
                       max_frames=args.max_frames, max_side=args.max_side,
                       max_shift=args.max_shift, stabilise=args.stabilise,
                       holdout_every=args.holdout_every,
                       nonnegative_rain=bool(args.nonnegative_rain), device=device,
                       precision=getattr(args, "train_precision", "auto"))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("adapt", help="fine-tune the model on your own rain clip (tripod or hand-held)",
                       description=__doc__.split("\n\n", 1)[1].replace("``", ""),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("clip", metavar="CLIP", nargs="+",
                   help="video file or folder of frames (tripod or hand-held); several clips of one "
                        "camera adapt one model together")
    p.add_argument("-o", "--output", required=True, metavar="ADAPTED.pt",
                   help="where to write the adapted checkpoint")
    p.add_argument("--weights", metavar="PATH", help="starting checkpoint (default: shipped)")
    add_device_option(p)
    p.add_argument("--precision", dest="train_precision", default="auto",
                   choices=("auto", "f32", "bf16"),
                   help="training arithmetic (default auto: bf16 on CUDA and on CPUs with AMX "
                        "or AVX512-BF16, about twice the steps in the same minutes; f32 "
                        "elsewhere; `derain --adapt` uses auto)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from ADAPTED.pt.resume (while that file "
                        "exists, one of --resume / --overwrite is required)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing ADAPTED.pt, or start again instead of resuming")
    p.add_argument("--strict", action="store_true",
                   help="write nothing (exit 1) unless the adapted model beats the starting "
                        "model and the rainy input on the held-out frames")
    add_adapt_options(p)
    p.set_defaults(func=run)


class ProgressBars:
    """tqdm bars (on a terminal): one over the clip's frames while they are read, then one
    over the adaptation steps, made at the first step (total known after the first steps), so
    no step bar sits at 0 while an HD clip is read and aligned."""

    def __init__(self, name: str) -> None:
        self.name, self.read_bar, self.step_bar = name, None, None

    def reading(self, frames, total: int):
        from tqdm import tqdm

        self.read_bar = tqdm(frames, total=total, desc=f"read {self.name}", unit="frame",
                             disable=None)
        return self.read_bar

    def steps(self, step: int, total: int, values: dict[str, float]) -> None:
        from tqdm import tqdm

        if self.step_bar is None:
            self.step_bar = tqdm(desc=f"adapt {self.name}", unit="step", disable=None)
        bar = self.step_bar
        if total and bar.total != total:
            bar.total = total
        bar.update(step - bar.n)
        bar.set_postfix(loss=f"{values.get('loss', 0):.4f}", refresh=False)

    def close(self) -> None:
        for bar in (self.read_bar, self.step_bar):
            if bar is not None:
                bar.close()


def run_adapt(clip, out: Path, weights, cfg, *, resume: bool, overwrite: bool,
              strict: bool = False):
    from memderain.training.adapt import adapt

    clips = [clip] if isinstance(clip, (str, Path)) else list(clip)
    bars = ProgressBars(" + ".join(Path(c).name for c in clips))
    try:
        return adapt(clips if len(clips) > 1 else clips[0], out, weights, cfg, resume=resume,
                     overwrite=overwrite, strict=strict, progress=bars.steps,
                     read_progress=bars.reading)
    finally:
        bars.close()


VERDICTS = {
    "adapted": "wrote the adapted model",
    "start": "the adapted model is not better than the starting model on the held-out frames: "
             "wrote the starting model instead",
    "identity": "no model beats the rainy input on the held-out frames: wrote an identity "
                "(the clip is best left as it is)",
    "unchecked": "wrote the adapted model, unchecked",
}


def summary(res) -> str:
    """Two lines: the held-out scores and what was written."""
    return f"{res.heldout_line()}\n{VERDICTS[res.verdict]} -> {res.path}"


def run(args: argparse.Namespace) -> int:
    from memderain.training.adapt import resume_path

    out = Path(args.output)
    try:
        res = run_adapt(args.clip, out, args.weights, adapt_config(args, args.device),
                        resume=args.resume, overwrite=args.overwrite, strict=args.strict)
    except KeyboardInterrupt:
        print(f"memderain adapt: interrupted; {out} untouched; continue with --resume "
              f"(state in {resume_path(out)})", file=sys.stderr)
        return 130
    n_used, n_held = sum(map(len, res.used)), sum(map(len, res.held))
    held = f", {n_held} held out" if n_held else ""
    names = ", ".join(c.source for c in res.clips)
    static = sum(c.static_fraction for c in res.clips) / len(res.clips)
    print(f"adapted on {n_used} frames of {names}{held} ({static:.0%} static pixels): "
          f"{res.steps} steps in {res.seconds:.0f} s")
    print(summary(res))
    print(f"next: memderain derain {args.clip[0]} --weights {res.path} -o OUT/")
    return 0
