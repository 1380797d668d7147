"""`memderain eval`: score a checkpoint (or a trivial baseline) on a benchmark folder.

    memderain eval --data DIR [--weights CKPT | --baseline identity|median3|min3|opening3] ...
    memderain eval --real DIR [--weights CKPT]           # no ground truth: NIQE in vs out
    memderain eval --video --data RAINY.mp4 --clean CLEAN.mp4|FRAMES_DIR [--metrics all]
    memderain eval --clip VIDEO_OR_FRAMES [--weights CKPT]   # real rain vs the temporal median

Each source (``--data``, ``--real``, ``--video``, ``--clip``) has its own ``_run_*`` function; they
share model loading and the run-folder bookkeeping.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from memderain.choices import ALL_METRICS, LAYOUT_NAMES, STANDARD_METRICS, TRIVIAL_FILTER_NAMES
from memderain.cli.options import add_backend_options, add_clip_options, add_device_option
from memderain.errors import MemderainError

METRIC_SETS = {"standard": STANDARD_METRICS, "all": ALL_METRICS}
LABELS = {"psnr_y": "PSNR (Y)", "ssim_y": "SSIM (Y)", "psnr_rgb": "PSNR (RGB)",
          "ssim_rgb": "SSIM (RGB)", "vif_y": "VIF (Y)", "fsim": "FSIM",
          "niqe_input": "NIQE rainy input", "niqe_output": "NIQE output"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score de-raining on a benchmark folder (PSNR/SSIM, ...)",
                       description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="paired benchmark folder (layout auto-detected)")
    src.add_argument("--real", type=Path, help="folder of real rainy photos (no ground truth): "
                                               "NIQE of input and output")
    src.add_argument("--clip", type=Path,
                     help="real static-camera rain (video or folder of frames): every frame "
                          "against the clip's temporal median on its static pixels (Y-PSNR, "
                          "brightness change, high-frequency error), for the input, the 3x3 "
                          "filters and the model")
    p.add_argument("--frames", type=int,
                   help="with --clip: score N evenly spaced frames of those read (--max-frames "
                        "decides how many frames are read, aligned and make the temporal "
                        "median; --frames only how many of them are scored; default: all)")
    p.add_argument("--reference", choices=["auto", "motion", "strict"], default=None,
                   help="with --clip: what each frame is scored against. motion: the temporal "
                        "median on the static pixels of the training masks; strict: the median "
                        "of the rain-free samples on a mask that also leaves out flicker, sway "
                        "and colour change (agrees with the truth on lossless clips, flatters "
                        "compressed ones; docs/real-rain.md); auto (default): strict for PNG / "
                        "TIFF / BMP frames and lossless video (FFV1), motion otherwise")
    add_clip_options(p, note="with --clip: ")
    p.add_argument("--video", action="store_true",
                   help="--data is a rainy video scored frame by frame against --clean "
                        "(paper Table III; use --metrics all for VIF and FSIM)")
    p.add_argument("--clean", type=Path, help="with --video: clean video or folder of frames")
    p.add_argument("--weights", type=Path, help="checkpoint (default: the shipped model)")
    p.add_argument("--baseline", choices=["identity", *TRIVIAL_FILTER_NAMES],
                   help="evaluate a baseline instead of a model: the rainy input itself "
                        "(identity) or a 3x3 median / minimum / opening filter of it")
    p.add_argument("--out", type=Path,
                   help="run folder (default: runs/eval/DATASET-METHOD in the current folder; "
                        "--clip: a re-run with the same clip, weights and options shows the "
                        "stored result, other weights go to DATASET-METHOD-2, -3, ...)")
    p.add_argument("--name", help="method name in reports (default: checkpoint name / baseline)")
    p.add_argument("--dataset", help="data set name in reports (default: the folder name)")
    p.add_argument("--layout", default="auto", choices=["auto", *LAYOUT_NAMES],
                   help="benchmark layout (default: detect)")
    p.add_argument("--rain-side", default="left", choices=["left", "right"],
                   help="rainy half of DID-MDN side-by-side images (default: left)")
    p.add_argument("--frames-per-scene", type=int,
                   help="synth layout: evaluate this many evenly spaced frames per scene")
    p.add_argument("--skip-unpaired", action="store_true",
                   help="evaluate complete pairs only instead of failing on unpaired files")
    p.add_argument("--limit", type=int, help="evaluate only the first N pairs (smoke tests)")
    p.add_argument("--metrics", default="standard", choices=sorted(METRIC_SETS),
                   help="standard = PSNR/SSIM on Y and RGB; all = also VIF and FSIM (Table III)")
    p.add_argument("--save-outputs", action="store_true", help="keep the de-rained images")
    p.add_argument("--tile", type=int, help="de-rain in tiles of at most N x N pixels (large images)")
    add_device_option(p)
    # scores are reproducible across CPUs only in f32 (auto would be bf16 on AMX CPUs)
    add_backend_options(p, precision="f32")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


# ----------------------------------------------------------------------------- model
def load_derain(weights: Path | None, device: str | None, tile: int | None,
                backend: str = "auto", precision: str = "f32"):
    """(derain function uint8 HxWx3 -> uint8 HxWx3, checkpoint path) for ``weights`` or the
    shipped model, via ``memderain.load_model`` (the same code path as ``memderain derain``)."""
    import memderain
    from memderain.weights import default_weights_path

    path = weights or default_weights_path()
    if path is None:
        raise MemderainError("no weights ship with this install: pass --weights CKPT, "
                             "or --baseline identity to score the rainy input")
    if not Path(path).is_file():
        raise MemderainError(f"checkpoint not found: {path}")
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    derainer = memderain.load_model(path, device=device, backend=backend, precision=precision)
    return (lambda rgb: derainer.derain(rgb, tile=tile)), Path(path)


def _method_and_model(args) -> tuple[str, object, Path | None]:
    if args.baseline:
        if args.weights:
            raise MemderainError(f"--baseline {args.baseline} and --weights exclude each other")
        from memderain.evaluation.trivial import TRIVIAL_FILTERS

        return args.name or args.baseline, TRIVIAL_FILTERS.get(args.baseline), None
    derain, path = load_derain(args.weights, args.device, args.tile, args.backend,
                               args.precision)
    if args.name:
        return args.name, derain, path
    from memderain.checkpoint import load_checkpoint

    meta = load_checkpoint(path).get("meta", {})
    return str(meta.get("name") or path.stem), derain, path


def _run_dir(args, dataset: str, method: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{dataset}-{method}")
    out = args.out or Path("runs/eval") / safe
    if (out / "summary.json").exists() and not args.overwrite:
        raise MemderainError(f"{out} already holds an evaluation; pass --overwrite or --out")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _clip_run_dir(args, dataset: str, method: str, inputs: dict) -> tuple[Path, dict | None]:
    """The run folder of an ``eval --clip`` and the summary it already holds for these very
    ``inputs`` (or None). A re-run of the same scoring reuses its result; other inputs (a
    re-adapted model) take the next free ``runs/eval/NAME-2``, ``-3``...; an explicit --out
    that holds another scoring is refused unless --overwrite."""
    import json

    inputs = json.loads(json.dumps(inputs))  # compared with what a summary read back holds
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{dataset}-{method}")
    candidates = [args.out] if args.out else [Path("runs/eval") / safe] + [
        Path("runs/eval") / f"{safe}-{k}" for k in range(2, 1000)]
    for out in candidates:
        summary_path = out / "summary.json"
        if not summary_path.exists() or args.overwrite:
            out.mkdir(parents=True, exist_ok=True)
            return out, None
        try:
            old = json.loads(summary_path.read_text())
        except (OSError, ValueError):
            old = None
        if isinstance(old, dict) and old.get("inputs") == inputs and old.get("tables"):
            return out, old
        if args.out:
            raise MemderainError(f"--out {out} holds a scoring of other inputs; pass "
                                 "--overwrite, or leave --out out for a numbered run folder")
    raise MemderainError(f"runs/eval/{safe}: 999 run folders; clean up or pass --out")


def _fingerprint(path: Path | None) -> list | None:
    """What identifies a file or a folder of frames: name, sizes, modification times (and
    for a file below 1 GB its SHA-256, which a re-adapted model always changes)."""
    import hashlib

    if path is None:
        return None
    path = Path(path)
    if path.is_dir():
        return [str(path.resolve()),
                sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in path.iterdir()
                       if p.is_file())]
    st = path.stat()
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if st.st_size < 2**30 else None
    return [str(path.resolve()), st.st_size, st.st_mtime_ns, digest]


# ----------------------------------------------------------------------------- runs
def run(args: argparse.Namespace) -> int:
    from memderain.atomicfile import check_writable

    # the run folder is checked before the data are read and the model runs, not after
    if args.out is not None:
        check_writable(args.out, folder=True, name=f"--out {args.out}")
    else:
        check_writable("runs/eval", folder=True, name="runs/eval (the default run folder, in "
                       "the current folder; choose another with --out DIR)")
    if args.reference is not None and args.clip is None:
        raise MemderainError("--reference chooses what an --clip frame is scored against; "
                             "it needs --clip")
    if args.real is not None:
        return _run_real(args)
    if args.clip is not None:
        return _run_clip(args)
    if args.video or args.clean:
        return _run_video(args)
    return _run_paired(args)


def _run_paired(args) -> int:
    from memderain.evaluation.benchmarks import open_benchmark
    from memderain.evaluation.runner import (
        CONVENTIONS,
        base_summary,
        evaluate_benchmark,
        write_csv,
        write_summary,
    )

    bench = open_benchmark(args.data, args.layout, rain_side=args.rain_side,
                           frames_per_scene=args.frames_per_scene,
                           skip_unpaired=args.skip_unpaired)
    dataset = args.dataset or bench.root.resolve().name
    method, derain, weights = _method_and_model(args)
    out = _run_dir(args, dataset, method)
    metrics = METRIC_SETS[args.metrics]
    t0 = time.time()
    rows, mean, input_mean = evaluate_benchmark(
        bench, derain, metrics, outputs_dir=out / "outputs" if args.save_outputs else None,
        overwrite=args.overwrite, limit=args.limit, progress=not args.quiet)
    summary = base_summary() | {
        "method": method, "dataset": dataset, "layout": bench.layout,
        "data": str(bench.root.resolve()), "count": len(rows), "metrics": list(metrics),
        "mean": mean, "input_mean": input_mean, "baseline": args.baseline,
        "weights": str(weights) if weights else None, "tile": args.tile,
        "wall_time_s": round(time.time() - t0, 2), "conventions": CONVENTIONS,
        "command": shlex.join(["memderain", *sys.argv[1:]]),
    }
    write_csv(out / "per_image.csv", rows, overwrite=True)
    write_summary(out / "summary.json", summary, overwrite=True)
    print(f"{dataset} ({bench.layout} layout, {len(rows)} images): {method}")
    _print_gain_table(metrics, mean, input_mean)
    print(f"wrote {out / 'summary.json'} and per_image.csv")
    return 0


def _print_gain_table(metrics, mean, input_mean) -> None:
    """Mean of each metric for the output and the rainy input, and the gain over doing nothing."""
    print(f"{'metric':<12}{'output':>10}{'rainy input':>13}{'gain':>9}")
    for m in metrics:
        print(f"{LABELS[m]:<12}{mean[m]:>10.4f}{input_mean[m]:>13.4f}"
              f"{mean[m] - input_mean[m]:>+9.4f}")


def _run_real(args) -> int:
    from memderain.data.scenes import list_images
    from memderain.data.transforms import read_rgb
    from memderain.evaluation.runner import (
        NIQE_CONVENTION,
        base_summary,
        evaluate_real,
        write_csv,
        write_summary,
    )

    if not args.real.is_dir():
        raise MemderainError(f"folder not found: {args.real}")
    files = list_images(args.real)[: args.limit or None]
    if not files:
        raise MemderainError(f"no images in {args.real}")
    dataset = args.dataset or args.real.resolve().name
    method, derain, weights = _method_and_model(args)
    out = _run_dir(args, dataset, method)
    t0 = time.time()
    rows, mean = evaluate_real(files, read_rgb, derain,
                               outputs_dir=out / "outputs" if args.save_outputs else None,
                               overwrite=args.overwrite, progress=not args.quiet)
    summary = base_summary() | {
        "method": method, "dataset": dataset, "layout": "real",
        "data": str(args.real.resolve()), "count": len(rows),
        "metrics": ["niqe_input", "niqe_output"], "mean": mean, "baseline": args.baseline,
        "weights": str(weights) if weights else None, "tile": args.tile,
        "wall_time_s": round(time.time() - t0, 2), "conventions": NIQE_CONVENTION,
        "command": shlex.join(["memderain", *sys.argv[1:]]),
    }
    write_csv(out / "per_image.csv", rows, overwrite=True)
    write_summary(out / "summary.json", summary, overwrite=True)
    print(f"{dataset} ({len(rows)} real photos): {method}  (NIQE, lower is better)")
    for k in ("niqe_input", "niqe_output"):
        print(f"{LABELS[k]:<18}{mean[k]:>8.3f}")
    print(f"wrote {out / 'summary.json'} and per_image.csv")
    return 0


def _run_video(args) -> int:
    from memderain.evaluation.runner import CONVENTIONS, base_summary, write_csv, write_summary
    from memderain.evaluation.video import evaluate_video

    if not (args.video and args.clean):
        raise MemderainError("video evaluation needs both --video and --clean CLEAN")
    for flag, path in (("--data", args.data), ("--clean", args.clean)):
        if not path.exists():
            raise MemderainError(f"{flag} {path}: not found")
    dataset = args.dataset or args.data.stem
    method, derain, weights = _method_and_model(args)
    out = _run_dir(args, dataset, method)
    metrics = METRIC_SETS[args.metrics]
    t0 = time.time()
    rows, mean, input_mean = evaluate_video(
        args.data, args.clean, derain, metrics, limit=args.limit, progress=not args.quiet,
        outputs_dir=out / "outputs" if args.save_outputs else None, overwrite=args.overwrite)
    summary = base_summary() | {
        "method": method, "dataset": dataset, "layout": "video",
        "data": str(args.data.resolve()), "clean": str(args.clean.resolve()),
        "count": len(rows), "metrics": list(metrics), "mean": mean, "input_mean": input_mean,
        "baseline": args.baseline, "weights": str(weights) if weights else None,
        "tile": args.tile, "wall_time_s": round(time.time() - t0, 2),
        "conventions": CONVENTIONS + "; video: mean over frames",
        "command": shlex.join(["memderain", *sys.argv[1:]]),
    }
    write_csv(out / "per_frame.csv", rows, overwrite=True)
    write_summary(out / "summary.json", summary, overwrite=True)
    print(f"{dataset} (video, {len(rows)} frames): {method}")
    _print_gain_table(metrics, mean, input_mean)
    print(f"wrote {out / 'summary.json'} and per_frame.csv")
    return 0


def _run_clip(args) -> int:
    from memderain.data.static_clip import load_static_clip
    from memderain.evaluation.clip_score import (
        DEFAULT_KIND,
        ClipReference,
        format_table,
        score_subsets,
    )
    from memderain.evaluation.runner import base_summary, write_summary
    from memderain.evaluation.trivial import TRIVIAL_FILTERS

    if args.video or args.clean:
        raise MemderainError("--clip is scored against its own temporal median; "
                             "drop --video / --clean")
    if not args.clip.exists():
        raise MemderainError(f"--clip {args.clip}: not found")
    dataset = args.dataset or args.clip.resolve().stem
    kind = args.reference or DEFAULT_KIND
    method, derain, weights = _method_and_model(args)
    inputs = {"clip": _fingerprint(args.clip), "weights": _fingerprint(weights),
              "baseline": args.baseline, "frames": args.frames, "max_frames": args.max_frames,
              "max_shift": args.max_shift, "max_side": args.max_side,
              "stabilise": args.stabilise, "reference": kind}
    out, done = _clip_run_dir(args, dataset, method, inputs)
    if done is not None:
        print(done["tables"])
        print(f"{out / 'summary.json'} holds this scoring already (same clip, weights and "
              "options); shown again, not recomputed (--overwrite scores again)")
        return 0
    clip = load_static_clip(args.clip, args.max_frames, args.max_shift, args.max_side or None,
                            stabilise=args.stabilise)
    methods = dict(TRIVIAL_FILTERS)
    if derain is not None and method not in methods:
        methods[method] = derain
    step = max(1, len(clip) // args.frames) if args.frames else 1
    frames = list(range(0, len(clip), step))
    sets = {"all": frames}
    adapted = _adapted_frames(weights, clip) if weights else None
    if adapted is not None and adapted[1]:  # adapted on all frames: "all" says it
        used, held = adapted
        sets["adapted on"] = [t for t in frames if t in used]
        sets["held out of adaptation"] = [t for t in frames if t in held]
    t0 = time.time()
    from tqdm import tqdm

    def bar(it, total):
        return tqdm(it, total=total, desc=f"score {dataset}", unit="frame",
                    disable=True if args.quiet else None)

    reference = ClipReference(clip, kind)
    results, text = {}, []
    for label, scores in score_subsets(clip, methods, sets, progress=bar,
                                       reference=reference).items():
        results[label] = {k: v.as_dict() for k, v in scores.items()}
        text.append(format_table(scores, f"{dataset}: {label} frames ({len(sets[label])} of "
                                         f"{len(clip)}), {clip.static_fraction:.0%} static, "
                                         f"{reference.scored_fraction:.0%} scored "
                                         f"({reference.kind} reference)"))
    summary = base_summary() | {
        "method": method, "dataset": dataset, "layout": "clip", "data": str(args.clip.resolve()),
        "frames": len(clip), "reference": reference.kind, "reference_asked": kind,
        "scored_fraction": round(reference.scored_fraction, 4), "scores": results,
        "weights": str(weights) if weights else None,
        "wall_time_s": round(time.time() - t0, 2),
        "conventions": "MATLAB Y; pseudo ground truth = temporal median of the aligned clip, "
                       "static pixels only; 'reference' says which median and mask "
                       "(memderain.evaluation.clip_score)",
        "command": shlex.join(["memderain", *sys.argv[1:]]),
        "inputs": inputs, "tables": "\n\n".join(text),
    }
    write_summary(out / "summary.json", summary, overwrite=True)
    print("\n\n".join(text))
    print(f"wrote {out / 'summary.json'}")
    return 0


def _adapted_frames(weights: Path, clip) -> tuple[list[int], list[int]] | None:
    """(frames used, frames held out) when ``weights`` were adapted on this very clip."""
    from memderain.checkpoint import load_checkpoint

    info = load_checkpoint(weights).get("meta", {}).get("adapt")
    if not info:
        return None
    for entry in info.get("clips") or [info]:  # several clips adapted together, or one
        if (entry.get("clip") == str(Path(clip.source).resolve())
                and list(entry.get("frame_indices", [])) == list(map(int, clip.indices))):
            return list(entry.get("frames_used", [])), list(entry.get("frames_held_out", []))
    return None
