"""De-rain paths: files, folders, glob patterns, animated GIFs and videos, with the output rules
of ``memderain derain`` (the CLI is a thin layer over :func:`derain_paths`).

Rules:

* One input file and an ``output`` with an image/video extension: write exactly that file, in
  the format the extension names (an animated GIF only as .gif, a video only as a video:
  refused before work otherwise). Otherwise ``output`` is a folder (a media extension is
  refused); each output keeps its input's name (plus ``suffix``) and extension, hence its
  format; ``recursive`` walks sub-folders and mirrors their structure.
* Folders and glob patterns select files with image (and video) extensions; files named
  explicitly are always tried. In patterns ``*`` and ``?`` match within one folder; ``**``
  matches any depth and needs ``recursive``.
* Inputs are never overwritten; existing outputs are skipped (counted, not a failure) unless
  ``overwrite``; two inputs that would write one output are refused; files inside the output
  folder are never taken as inputs, nor inputs named as another input's output (``x_d.png``
  beside ``x.png`` with ``suffix="_d"``: an earlier run in place). Files are written atomically.
* A bad file gives one line naming it; the rest of the batch still runs.
"""

from __future__ import annotations

import errno
import glob
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from memderain.errors import MemderainError
from memderain.inference.animated import GIF_EXTENSIONS
from memderain.inference.io import IMAGE_EXTENSIONS, read_image, write_image
from memderain.inference.video import VIDEO_EXTENSIONS  # (PyAV is imported only when used)

MEDIA_EXTENSIONS = IMAGE_EXTENSIONS + GIF_EXTENSIONS + VIDEO_EXTENSIONS


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
    earlier_outputs: int = 0  # files named as another input's output (x_d.png beside x.png)


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


def _why_nothing(folder: Path, recursive: bool) -> str:
    """Why a folder gave no input; suggests --recursive only when sub-folders hold media."""
    if not any(p for p in folder.iterdir() if not p.name.startswith(".")):
        return "empty folder"
    if not recursive:
        for p in folder.rglob("*"):
            rel = p.relative_to(folder).parts
            if len(rel) > 1 and not any(part.startswith(".") for part in rel) and _is_media(p):
                return "no image files in this folder (its sub-folders have some: add --recursive)"
    return "no image or video files in this folder"


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
                scan.errors.append(f"{arg}: {_why_nothing(path, recursive)}")
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


def _is_animated_gif(path: Path) -> bool:
    try:
        with Image.open(path) as im:
            return im.format == "GIF" and getattr(im, "n_frames", 1) > 1
    except Exception:  # noqa: BLE001 - an unreadable file gets its one line when it is read
        return False


def output_kind_problem(src: Path, dst: Path) -> str | None:
    """Why ``src`` cannot be written as the file ``dst`` names (a video as .png, an animated
    GIF as .mp4...), or None. Outputs are written in the format their extension names."""
    s, d = src.suffix.lower(), dst.suffix.lower()
    if s in GIF_EXTENSIONS and d not in GIF_EXTENSIONS and _is_animated_gif(src):
        return (f"-o {dst}: {src} is an animated GIF and is written as one; name the "
                f"output .gif")
    if s in VIDEO_EXTENSIONS and d not in VIDEO_EXTENSIONS:
        return (f"-o {dst}: a video is written as a video; name the output "
                f"{' / '.join(VIDEO_EXTENSIONS)}")
    if s not in VIDEO_EXTENSIONS and d in VIDEO_EXTENSIONS:
        return f"-o {dst}: {src} is an image, not a video; name the output .png, .jpg..."
    return None


def plan_jobs(
    inputs: list[str], output: str, recursive: bool = False, suffix: str = ""
) -> tuple[list[Job], list[str], Scan]:
    """Pair every input file with its output path. Returns (jobs, one-line errors, scan)."""
    scan = expand_inputs(inputs, recursive, output)
    errors = scan.errors
    sources = list(dict.fromkeys(scan.found))  # drop exact duplicates, keep order
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
    if (not single and not out.is_dir() and out.suffix.lower() in MEDIA_EXTENSIONS
            and (len(inputs) > 1 or Path(inputs[0]).is_dir() or glob.has_magic(inputs[0]))):
        raise MemderainError(f"-o {output}: several inputs (or a folder, or a pattern) need "
                             f"an output folder, not a {out.suffix} file name")
    if single and sources and (problem := output_kind_problem(sources[0][0], out)):
        raise MemderainError(problem)
    planned = [(src, out if single else out / _output_name(rel, suffix)) for src, rel in sources]
    # an input that is another input's output is the output of an earlier run in place
    # (`-o photos --suffix _d` over photos/: x_d.png beside x.png): not an input
    made_from: dict[str, set[str]] = {}
    for src, dst in planned:
        made_from.setdefault(os.path.realpath(dst), set()).add(os.path.realpath(src))
    earlier = {k for src, _ in planned
               if made_from.get(k := os.path.realpath(src), set()) - {k}}
    input_keys = {os.path.realpath(src) for src, _ in planned} - earlier
    jobs: list[Job] = []
    claimed: dict[str, Path] = {}
    for src, dst in planned:
        key = os.path.realpath(dst)
        if os.path.realpath(src) in earlier:
            scan.earlier_outputs += 1
        elif key in input_keys or (dst.exists() and os.path.samefile(src, dst)):
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
    derainer, src: Path, dst: Path, *, overwrite: bool, tile: int | None
) -> None:
    """Files with VIDEO_EXTENSIONS: de-rained frame by frame, streaming, audio kept (see
    :func:`memderain.inference.video.derain_video` and docs/video-export-web.md)."""
    from memderain.inference.video import derain_video

    res = derain_video(derainer, src, dst, overwrite=overwrite, tile=tile)
    tqdm.write(f"{src} -> {dst}: {res.frames} frames, {res.width}x{res.height} at "
               f"{float(res.fps):.3g} fps, audio {res.audio}, {res.seconds:.1f} s",
               file=sys.stderr)


def _gif_to_gif(src: Path, dst: Path) -> bool:
    return src.suffix.lower() in GIF_EXTENSIONS and dst.suffix.lower() in GIF_EXTENSIONS


def derain_file(
    derainer, src: Path, dst: Path, *, overwrite: bool = False, tile: int | None = None
) -> None:
    """De-rain one file into ``dst`` (image, or video via :func:`derain_video_file`), in the
    format ``dst``'s extension names (:func:`output_kind_problem` says what cannot be)."""
    if problem := output_kind_problem(src, dst):
        raise MemderainError(problem)
    if src.suffix.lower() in VIDEO_EXTENSIONS:
        derain_video_file(derainer, src, dst, overwrite=overwrite, tile=tile)
        return
    if _gif_to_gif(src, dst):  # animated: frame by frame; a still GIF as .png is an image
        from memderain.inference.animated import derain_gif

        derain_gif(derainer, src, dst, overwrite=overwrite, tile=tile)
        return
    data = read_image(src, integer=True)  # 8-bit photos stay uint8: never held in float
    write_image(dst, derainer.derain_imagedata(data, tile), overwrite=overwrite)


def one_line(src: Path, exc: BaseException) -> str:
    """A one-line message for a file that failed, naming it."""
    msg = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    if not isinstance(exc, MemderainError):
        msg = f"{exc.__class__.__name__}: {msg}"
    return msg if str(src) in msg else f"{src}: {msg}"


@dataclass
class BatchResult:
    """What :func:`derain_paths` did: outputs written, skipped (existed), failures."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # outputs that existed (not failures)
    failed: list[str] = field(default_factory=list)  # one line each, naming the file
    not_media: int = 0  # files in scanned folders without an image / video extension
    in_output: int = 0  # media files inside the output folder, not taken as inputs
    earlier_outputs: int = 0  # inputs named as another input's output, not taken as inputs

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self, output: str | Path) -> str:
        return (f"derained {len(self.written)} file(s) into {output}"
                + (f"; {len(self.skipped)} skipped (output exists)" if self.skipped else "")
                + (f"; {len(self.failed)} failed" if self.failed else "")
                + (f"; {self.not_media} non-image file(s) passed over" if self.not_media else "")
                + (f"; {self.in_output} file(s) inside the output folder not taken as inputs"
                   if self.in_output else "")
                + (f"; {self.earlier_outputs} earlier output(s) not taken as inputs"
                   if self.earlier_outputs else ""))


def derain_paths(derainer, inputs: str | Path | Sequence[str | Path], output: str | Path, *,
                 recursive: bool = False, suffix: str = "", overwrite: bool = False,
                 tile: int | None = None, progress: bool = False,
                 report: Callable[[str], None] | None = None) -> BatchResult:
    """De-rain files, folders, patterns, GIFs and videos into ``output`` (module rules).

    ``report(line)`` receives one line per skipped or failed file (default: nothing);
    ``progress`` shows a tqdm bar on stderr. Never raises for a bad file: see
    :attr:`BatchResult.failed`.
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    planned = plan_jobs([str(i) for i in inputs], str(output), recursive, suffix)
    return run_jobs(derainer, *planned, overwrite=overwrite, tile=tile, progress=progress,
                    report=report)


def run_jobs(derainer, jobs: list[Job], errors: list[str], scan: Scan, *,
             overwrite: bool = False, tile: int | None = None, progress: bool = False,
             report: Callable[[str], None] | None = None) -> BatchResult:
    """Run what :func:`plan_jobs` planned (its ``jobs, errors, scan``); see
    :func:`derain_paths`."""
    res = BatchResult(failed=list(errors), not_media=scan.not_media, in_output=scan.in_output,
                      earlier_outputs=scan.earlier_outputs)
    say = report or (lambda line: None)
    for msg in errors:
        say(f"error: {msg}")
    bar = tqdm(jobs, unit="file", desc="derain", disable=None if progress else True,
               file=sys.stderr)

    def todo(i: int) -> bool:
        return i < len(jobs) and (overwrite or not jobs[i].dst.exists())

    def still(job: Job) -> bool:  # still images go through the overlapped path
        return job.src.suffix.lower() not in VIDEO_EXTENSIONS and not _gif_to_gif(job.src,
                                                                                 job.dst)

    def settle(keep: int) -> None:  # record finished writes in order; wait while > keep
        while writes and (len(writes) > keep or writes[0][1].done()):
            job, future = writes.pop(0)
            try:
                future.result()
                res.written.append(job.dst)
            except Exception as exc:  # noqa: BLE001 - a bad file must not stop the batch
                res.failed.append(one_line(job.src, exc))
                say(f"error: {res.failed[-1]}")

    # the next photo is read and the previous one written while the network runs on this one
    # (PIL, numpy, torch and OpenVINO release the GIL): folders approach the single-image rate
    reads: dict[int, Future] = {}
    writes: list[tuple[Job, Future]] = []
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="memderain-io") as io:
        for i, job in enumerate(bar):
            if not todo(i):
                res.skipped.append(job.dst)
                say(f"skipped {job.src}: {job.dst} exists (pass --overwrite to replace it)")
                continue
            for k in (i, i + 1):
                if todo(k) and still(jobs[k]) and k not in reads:
                    reads[k] = io.submit(read_image, jobs[k].src, integer=True)
            try:
                if still(job):
                    out = derainer.derain_imagedata(reads.pop(i).result(), tile)
                    writes.append((job, io.submit(write_image, job.dst, out,
                                                  overwrite=overwrite)))
                else:
                    derain_file(derainer, job.src, job.dst, overwrite=overwrite, tile=tile)
                    res.written.append(job.dst)
            except Exception as exc:  # noqa: BLE001 - a bad file (or a bug) must not stop it
                res.failed.append(one_line(job.src, exc))
                say(f"error: {res.failed[-1]}")
            settle(keep=2)  # at most two outputs wait in memory
        settle(keep=0)
    bar.close()
    return res
