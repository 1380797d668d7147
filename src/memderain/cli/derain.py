"""`memderain derain INPUT... -o OUT`: de-rain images, animated GIFs and videos (files,
folders and glob patterns).

* One input file and ``-o`` with an image extension: write exactly that file.
* Otherwise ``-o`` is a folder; each output keeps its input's name (plus ``--suffix``) and
  extension, hence its format. ``--recursive`` walks sub-folders and mirrors their structure.
* Folders and glob patterns (quoted patterns are expanded here) select files with image (and
  video) extensions; files named explicitly are always tried. Patterns: ``*`` and ``?``
  match within one folder; ``**`` matches any depth and needs --recursive (outputs then keep
  the sub-folders below the pattern's fixed part).
* Animated GIFs are de-rained frame by frame (frame timing and loop kept).
* A bad file prints one line naming it (unreadable, broken symbolic link, link loop...); the
  rest of the batch still runs; the exit code is 1 if any file failed. Existing outputs are
  skipped and counted in the summary (exit 0), so an interrupted batch resumes by re-running. The
  summary counts files in the folders that are not images or videos.
* Files inside the output folder are never taken as inputs (a second run over a folder that
  holds its own output folder does not de-rain its outputs again). Inputs are never
  overwritten; existing outputs only with ``--overwrite``. Files are written atomically.
"""

from __future__ import annotations

import argparse
import errno
import glob
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from memderain.cli.options import add_backend_options, add_device_option
from memderain.errors import MemderainError
from memderain.inference.animated import GIF_EXTENSIONS
from memderain.inference.io import IMAGE_EXTENSIONS, read_image, write_image
from memderain.inference.predictor import Derainer, load_model
from memderain.inference.tiling import DEFAULT_OVERLAP
from memderain.inference.video import VIDEO_EXTENSIONS  # (PyAV is imported only when used)

MEDIA_EXTENSIONS = IMAGE_EXTENSIONS + GIF_EXTENSIONS + VIDEO_EXTENSIONS


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
        help="tile size in pixels (multiple of 8; 0 = whole image; default: whole "
        "image up to 1 megapixel, 512 px tiles above)",
    )
    p.add_argument(
        "--overlap",
        type=int,
        default=DEFAULT_OVERLAP,
        metavar="N",
        help=f"tile overlap in pixels (default {DEFAULT_OVERLAP})",
    )
    add_backend_options(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--adapt", action="store_true",
                   help="first fine-tune the model on INPUT itself (one static-camera video or "
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


@dataclass(frozen=True)
class Job:
    src: Path
    dst: Path


# -- planning: inputs -> (source, destination) pairs -----------------------------------------
def _is_media(path: Path) -> bool:
    return path.suffix.lower() in MEDIA_EXTENSIONS


@dataclass
class Scan:
    """What the INPUT arguments name: files to de-rain, one-line errors, files passed over."""

    found: list[tuple[Path, Path]]  # (source file, path relative to the output folder)
    errors: list[str]
    not_media: int = 0  # files in scanned folders without an image / video extension
    in_output: int = 0  # media files inside the output folder (never inputs)


def _link_problem(path: Path) -> str | None:
    """Why a symbolic link cannot be read (dangling, loop), or None for a readable entry."""
    if not path.is_symlink():
        return None
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
        return f"broken symbolic link (target {os.readlink(path)} not found)"
    return None


def _below(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def _output_below(scanned: Path, out_dir: str | None) -> str | None:
    """``out_dir`` if it lies strictly inside the scanned folder (its files are then earlier
    outputs, not inputs), else None: an output folder that is the scanned folder itself (used
    with --suffix) or lies elsewhere excludes nothing."""
    if out_dir is not None and _below(out_dir, os.path.realpath(scanned)):
        return out_dir
    return None


def _inside(path: Path, folder: str | None) -> bool:
    return folder is not None and _below(os.path.realpath(path), folder)


def _scan_folder(folder: Path, recursive: bool, scan: Scan, out_dir: str | None) -> int:
    """Add the media files of ``folder`` to ``scan``; returns how many were added."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    out_dir = _output_below(folder, out_dir)
    added = 0
    for p in sorted(found):
        if p.name.startswith(".") or (p.is_dir() and not p.is_symlink()):
            continue
        if recursive and any(part.startswith(".") for part in p.relative_to(folder).parts):
            continue
        if not _is_media(p):
            if p.is_file():
                scan.not_media += 1
            continue
        if _inside(p, out_dir):
            scan.in_output += 1
            continue
        problem = _link_problem(p)
        if problem:
            scan.errors.append(f"{p}: {problem}")
            continue
        if not p.is_file():
            continue  # a folder named like an image
        scan.found.append((p, p.relative_to(folder) if recursive else Path(p.name)))
        added += 1
    return added


def _glob_base(pattern: str) -> Path:
    """The folder part of a pattern before its first wildcard ('a/b/*/c.png' -> 'a/b')."""
    parts = []
    for part in Path(pattern).parts:
        if glob.has_magic(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def expand_inputs(inputs: list[str], recursive: bool, output: str | None = None) -> Scan:
    """INPUT arguments -> :class:`Scan`. Folders and patterns never yield files inside the
    ``output`` folder."""
    out_dir = os.path.realpath(output) if output is not None else None
    scan = Scan([], [])
    for arg in inputs:
        path = Path(arg)
        if path.is_dir():
            if not _scan_folder(path, recursive, scan, out_dir):
                scan.errors.append(
                    f"{arg}: no image files in this folder"
                    + ("" if recursive else " (use --recursive for sub-folders)")
                )
        elif path.is_file():
            scan.found.append((path, Path(path.name)))
        elif problem := _link_problem(path):
            scan.errors.append(f"{arg}: {problem}")
        elif glob.has_magic(arg) and "**" in arg and not recursive:
            scan.errors.append(f"{arg}: '**' matches sub-folders only with --recursive "
                               "(add -r; '*' matches within one folder)")
        elif glob.has_magic(arg):
            base = _glob_base(arg)
            matches = sorted(Path(m) for m in glob.glob(arg, recursive=recursive))
            below = _output_below(base, out_dir)
            before = len(scan.found)
            for m in matches:
                if m.is_dir():
                    _scan_folder(m, recursive, scan, out_dir)
                elif not _is_media(m):
                    continue
                elif _inside(m, below):
                    scan.in_output += 1
                elif problem := _link_problem(m):
                    scan.errors.append(f"{m}: {problem}")
                else:
                    scan.found.append((m, m.relative_to(base) if recursive else Path(m.name)))
            if len(scan.found) == before:
                scan.errors.append(f"{arg}: pattern matched no image files")
        else:
            scan.errors.append(f"{arg}: no such file or folder")
    return scan


def _output_name(rel: Path, suffix: str) -> Path:
    ext = rel.suffix if rel.suffix.lower() in MEDIA_EXTENSIONS else ".png"
    return rel.with_name(rel.stem + suffix + ext)


def plan_jobs(
    inputs: list[str], output: str, recursive: bool = False, suffix: str = ""
) -> tuple[list[Job], list[str], Scan]:
    """Pair every input file with its output path. Returns (jobs, one-line errors, scan)."""
    scan = expand_inputs(inputs, recursive, output)
    sources, errors = scan.found, scan.errors
    out = Path(output)
    single = (
        len(inputs) == 1
        and Path(inputs[0]).is_file()
        and not out.is_dir()
        and out.suffix.lower() in MEDIA_EXTENSIONS
    )
    if not single and out.is_file():
        raise MemderainError(
            f"-o {output}: is an existing file; with these inputs -o must be a folder"
        )
    input_keys = {os.path.realpath(src) for src, _ in sources}
    jobs: list[Job] = []
    claimed: dict[str, Path] = {}
    for src, rel in dict.fromkeys(sources):  # drop exact duplicates, keep order
        dst = out if single else out / _output_name(rel, suffix)
        key = os.path.realpath(dst)
        if key in input_keys or (dst.exists() and os.path.samefile(src, dst)):
            errors.append(
                f"{src}: output {dst} is an input file; refusing to overwrite inputs "
                "(choose another -o or a --suffix)"
            )
        elif key in claimed:
            errors.append(
                f"{src}: output {dst} would also be written for {claimed[key]} (two inputs "
                f"named {dst.name}); de-rain them in separate runs with different -o folders"
            )
        else:
            claimed[key] = src
            jobs.append(Job(src, dst))
    return jobs, errors, scan


# -- running ---------------------------------------------------------------------------------
def derain_video_file(
    derainer: Derainer, src: Path, dst: Path, *, overwrite: bool, tile: int | None
) -> None:
    """Files with VIDEO_EXTENSIONS: de-rained frame by frame, streaming, audio kept (see
    :func:`memderain.inference.video.derain_video` and docs/video-export-web.md)."""
    from memderain.inference.video import derain_video

    res = derain_video(derainer, src, dst, overwrite=overwrite, tile=tile)
    tqdm.write(f"{src} -> {dst}: {res.frames} frames, {res.width}x{res.height} at "
               f"{float(res.fps):.3g} fps, audio {res.audio}, {res.seconds:.1f} s",
               file=sys.stderr)


def derain_file(
    derainer: Derainer, src: Path, dst: Path, *, overwrite: bool = False, tile: int | None = None
) -> None:
    """De-rain one file into ``dst`` (image, or video via :func:`derain_video_file`)."""
    if src.suffix.lower() in VIDEO_EXTENSIONS:
        derain_video_file(derainer, src, dst, overwrite=overwrite, tile=tile)
        return
    if src.suffix.lower() in GIF_EXTENSIONS:
        from memderain.inference.animated import derain_gif

        derain_gif(derainer, src, dst, overwrite=overwrite, tile=tile)
        return
    data = read_image(src)
    write_image(dst, derainer.derain_imagedata(data, tile), overwrite=overwrite)


def _one_line(src: Path, exc: BaseException) -> str:
    msg = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    if not isinstance(exc, MemderainError):
        msg = f"{exc.__class__.__name__}: {msg}"
    return msg if str(src) in msg else f"{src}: {msg}"


def _adapt_first(args: argparse.Namespace) -> Path:
    """``--adapt``: adapt the model on the single clip INPUT; returns the adapted weights."""
    from memderain.cli.adapt import adapt_config, run_adapt

    if len(args.inputs) != 1 or not (Path(args.inputs[0]).is_dir()
                                     or Path(args.inputs[0]).suffix.lower() in VIDEO_EXTENSIONS):
        raise MemderainError("--adapt needs exactly one INPUT: a static-camera video or a "
                             "folder of its frames")
    src = Path(args.inputs[0])
    out_dir = Path(args.output)
    if out_dir.suffix and not src.is_dir():  # -o names the output video: weights beside it
        out_dir = out_dir.parent
    weights = out_dir / f"{src.stem or src.resolve().name}-adapted.pt"
    res = run_adapt(str(src), weights, args.weights, adapt_config(args, args.device),
                    resume=False, overwrite=args.overwrite)
    print(f"adapted on {len(res.frames_used)} frames in {res.seconds:.0f} s ({res.steps} "
          f"steps) -> {weights}", file=sys.stderr)
    return weights


def run(args: argparse.Namespace) -> int:
    if args.overlap < 0:
        raise MemderainError(f"--overlap must be >= 0, got {args.overlap}")
    if args.tile is not None and args.tile < 0:
        raise MemderainError(f"--tile must be >= 0 (0 = whole image), got {args.tile}")
    jobs, errors, scan = plan_jobs(args.inputs, args.output, args.recursive, args.suffix)
    if args.adapt and jobs:
        args.weights = str(_adapt_first(args))
    for msg in errors:
        print(f"memderain derain: error: {msg}", file=sys.stderr)
    if not jobs:
        print(f"memderain derain: nothing to do ({len(errors)} error(s))", file=sys.stderr)
        return 1
    derainer = load_model(args.weights, device=args.device, tile=args.tile, overlap=args.overlap,
                          backend=args.backend, precision=args.precision)
    name = derainer.checkpoint_meta.get("name")
    print(
        f"weights: {derainer.checkpoint_path}{f' ({name})' if name else ''}; "
        f"device: {derainer.device}; backend: {derainer.backend} ({derainer.precision})",
        file=sys.stderr,
    )
    written = skipped = failed = 0
    bar = tqdm(jobs, unit="file", desc="derain", disable=None, file=sys.stderr)
    for job in bar:
        if job.dst.exists() and not args.overwrite:
            skipped += 1
            tqdm.write(
                f"memderain derain: skipped {job.src}: {job.dst} exists "
                "(pass --overwrite to replace it)",
                file=sys.stderr,
            )
            continue
        try:
            derain_file(derainer, job.src, job.dst, overwrite=args.overwrite)
            written += 1
        except Exception as exc:  # noqa: BLE001 - a bad file (or a bug) must not stop the batch
            failed += 1
            tqdm.write(f"memderain derain: error: {_one_line(job.src, exc)}", file=sys.stderr)
    bar.close()
    failed += len(errors)
    print(
        f"derained {written} file(s) into {args.output}"
        + (f"; {skipped} skipped (output exists)" if skipped else "")
        + (f"; {failed} failed" if failed else "")
        + (f"; {scan.not_media} non-image file(s) passed over" if scan.not_media else "")
        + (f"; {scan.in_output} file(s) inside the output folder not taken as inputs"
           if scan.in_output else "")
    )
    # outputs that exist are work already done (a re-run, a resumed batch): not a failure
    return 1 if failed else 0
