"""`memderain derain INPUT... -o OUT`: de-rain images, animated GIFs and videos (files,
folders and glob patterns).

* One input file and ``-o`` with an image extension: write exactly that file, in that format
  (an animated GIF stays a GIF, a video a video: another extension is refused).
* Otherwise ``-o`` is a folder; each output keeps its input's name (plus ``--suffix``) and
  extension, hence its format. ``--recursive`` walks sub-folders and mirrors their structure.
  An unwritable ``-o`` is refused before the model loads.
* Folders and glob patterns (quoted patterns are expanded here) select files with image (and
  video) extensions; files named explicitly are always tried. Patterns: ``*`` and ``?``
  match within one folder; ``**`` matches any depth and needs --recursive (outputs then keep
  the sub-folders below the pattern's fixed part).
* Animated GIFs are de-rained frame by frame (frame timing and loop kept).
* A bad file prints one line naming it (unreadable, broken symbolic link, link loop...); the
  rest of the batch still runs; the exit code is 1 if any file failed. Existing outputs are
  skipped and counted in the summary (exit 0), so an interrupted batch resumes by re-running.
  The summary counts files in the folders that are not images or videos.
* Files inside the output folder are never taken as inputs (a second run over a folder that
  holds its own output folder does not de-rain its outputs again); in place with ``--suffix
  _d``, ``x_d.png`` beside ``x.png`` is an earlier output, not an input. Inputs are never
  overwritten; existing outputs only with ``--overwrite``. Files are written atomically.

The same from Python: ``memderain.load_model().derain_path(INPUTS, OUT)``
(:mod:`memderain.inference.batch`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from memderain.choices import DEFAULT_OVERLAP, VIDEO_EXTENSIONS
from memderain.cli.options import add_backend_options, add_device_option
from memderain.errors import MemderainError

# Names this module re-exports for its callers, imported on first use (PEP 562) so that
# `memderain derain --help` does not import torch.
_BATCH_NAMES = ("MEDIA_EXTENSIONS", "Job", "derain_file", "derain_paths", "derain_video_file",
                "expand_inputs", "plan_jobs", "run_jobs")


def __getattr__(name: str):
    if name in _BATCH_NAMES:
        from memderain.inference import batch

        return getattr(batch, name)
    if name == "load_model":
        from memderain.inference.predictor import load_model

        return load_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "derain",
        help="remove rain from images, animated GIFs and videos (files, folders, globs)",
        description=__doc__.split("\n\n", 1)[1].replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image, GIF or video file, folder or glob pattern")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output folder (or output file for a single input file)",
    )
    p.add_argument(
        "-r",
        "--recursive",
        action="store_true",
        help="include sub-folders (kept as sub-folders of OUT); needed for '**' in patterns",
    )
    p.add_argument("--weights", metavar="PATH", help="checkpoint (default: the shipped model)")
    add_device_option(p)
    p.add_argument(
        "--tile",
        type=int,
        default=None,
        metavar="SIZE",
        help="largest tile side in pixels (multiple of 8; 0 = whole image; default: whole "
        "image up to 1 megapixel, above it equal tiles of at most 0.5 megapixel)",
    )
    p.add_argument(
        "--overlap",
        type=int,
        default=DEFAULT_OVERLAP,
        metavar="N",
        help=f"least overlap of neighbouring tiles in pixels; each keeps its half "
        f"(default {DEFAULT_OVERLAP})",
    )
    add_backend_options(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--adapt", action="store_true",
                   help="first fine-tune the model on INPUT itself (one rain video or "
                        "folder of frames; `memderain adapt`), save it as OUT/<name>-adapted.pt "
                        "and de-rain with it")
    from memderain.cli.adapt import add_adapt_options

    add_adapt_options(p)
    p.add_argument(
        "--suffix",
        default="",
        metavar="TEXT",
        help="append TEXT to output file names, e.g. --suffix _derained",
    )
    p.set_defaults(func=run)


def _adapt_first(args: argparse.Namespace) -> Path:
    """``--adapt``: adapt the model on the single clip INPUT; returns the adapted weights."""
    from memderain.cli.adapt import adapt_config, run_adapt
    from memderain.training.adapt import resume_path

    if len(args.inputs) != 1:
        raise MemderainError(f"--adapt needs exactly one INPUT (a static-camera video or a "
                             f"folder of its frames), got {len(args.inputs)}")
    src = Path(args.inputs[0])
    if not (src.is_dir() or src.suffix.lower() in VIDEO_EXTENSIONS):
        raise MemderainError(f"{src}: a photo is not a clip; --adapt needs a static-camera "
                             "video or a folder of its frames")
    out_dir = Path(args.output)
    if out_dir.suffix and not src.is_dir():  # -o names the output video: weights beside it
        out_dir = out_dir.parent
    weights = out_dir / f"{src.stem or src.resolve().name}-adapted.pt"
    if weights.is_file() and not args.overwrite:  # a re-run: the work is done
        _check_adapted_on(weights, src)
        print(f"reusing {weights}, adapted on {src.name} by an earlier run (--overwrite "
              "adapts again)", file=sys.stderr)
        return weights
    state = resume_path(weights)
    resume = state.is_file() and not args.overwrite
    if resume:
        print(f"resuming the interrupted adaptation in {state} (--overwrite starts again)",
              file=sys.stderr)
    res = run_adapt(str(src), weights, args.weights, adapt_config(args, args.device),
                    resume=resume, overwrite=args.overwrite)
    from memderain.cli.adapt import summary

    print(f"adapted on {len(res.frames_used)} frames in {res.seconds:.0f} s ({res.steps} "
          f"steps)", file=sys.stderr)
    print(summary(res), file=sys.stderr)
    return weights


def _check_adapted_on(weights: Path, src: Path) -> None:
    """Refuse to reuse ``weights`` that were adapted on another clip (same name, other
    folder)."""
    from memderain.checkpoint import load_checkpoint

    clip = (load_checkpoint(weights).get("meta") or {}).get("adapt", {}).get("clip")
    if clip != str(src.resolve()):
        raise MemderainError(f"{weights} exists but was adapted on {clip or 'another clip'}, "
                             f"not {src}; pass --overwrite to adapt again, or choose another -o")


def run(args: argparse.Namespace) -> int:
    from memderain.atomicfile import check_writable
    from memderain.inference.batch import plan_jobs, run_jobs
    from memderain.inference.predictor import load_model

    if args.overlap < 0:
        raise MemderainError(f"--overlap must be >= 0, got {args.overlap}")
    if args.tile is not None and args.tile < 0:
        raise MemderainError(f"--tile must be >= 0 (0 = whole image), got {args.tile}")
    jobs, errors, scan = plan_jobs(args.inputs, args.output, args.recursive, args.suffix)
    if not jobs:
        for msg in errors:
            print(f"memderain derain: error: {msg}", file=sys.stderr)
        print(f"memderain derain: nothing to do ({len(errors)} error(s))", file=sys.stderr)
        return 1
    out = Path(args.output)  # checked before the model loads (and before --adapt trains)
    check_writable(out, folder=not any(job.dst == out for job in jobs), name=f"-o {out}")
    if args.adapt:
        try:
            args.weights = str(_adapt_first(args))
        except KeyboardInterrupt:
            print("memderain derain: interrupted; the same command continues the adaptation",
                  file=sys.stderr)
            return 130
    derainer = load_model(args.weights, device=args.device, tile=args.tile, overlap=args.overlap,
                          backend=args.backend, precision=args.precision)
    name = derainer.checkpoint_meta.get("name")
    print(
        f"weights: {derainer.checkpoint_path}{f' ({name})' if name else ''}; "
        f"device: {derainer.device}; backend: {derainer.backend} ({derainer.precision})",
        file=sys.stderr,
    )
    from tqdm import tqdm

    res = run_jobs(derainer, jobs, errors, scan, overwrite=args.overwrite, progress=True,
                   report=lambda line: tqdm.write(f"memderain derain: {line}", file=sys.stderr))
    print(res.summary(args.output))
    # outputs that exist are work already done (a re-run, a resumed batch): not a failure
    return 0 if res.ok else 1
