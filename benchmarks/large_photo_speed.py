"""Large photos and HD video against the FLOP limit (issue 34): 1, 12, 24 MP, 720p and 1080p.

Every case runs in a fresh process that loads the default model (`memderain.load_model()`, the
backend and precision `memderain derain` picks; start-up is not timed), then times
``derain_paths`` on one file, which is what ``memderain derain FILE -o OUT`` runs:

* photo: read the JPEG, de-rain it with the default tiling, write a JPEG (the input's
  extension, as the CLI does); the time includes the first tile's compile (or the import of
  its cached blob), the decode and the encode;
* video (H.264, `--frames` frames): decode, de-rain each frame, encode, overlapped; frames/s.

The limit is FLOP-bound, as in benchmarks/backends.py: the network's FLOPs over the image
(``FlopCounterMode`` on the loaded model, 1 multiply-add = 2 FLOP, per pixel) divided by the
matrix-multiply peak *of the precision that runs* (benchmarks/peaks.py: the better of
torch.matmul and an OpenVINO MatMul, 2048x2048), measured in this run before and after the
cases (their mean is used). Ratio: time / limit for photos; for video, frames/s as a share of
1 / (one frame's limit). Peak RSS: ``getrusage`` of the case's process. For the photo cases it
also prints where the time went: decode, network (the first call, which compiles or imports
the compiled blob, apart), tiling and conversions, encode.

    python benchmarks/large_photo_speed.py --prepare          # write the inputs only (untimed)
    python benchmarks/large_photo_speed.py                    # the whole table
    python benchmarks/large_photo_speed.py --cases 12mp,1080p --frames 3

Nothing else may run on the machine meanwhile (e.g. a training run).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "examples" / "rainy_monarch.png"
CASES = {  # name: (kind, width, height)
    "1mp": ("photo", 1000, 1000),
    "12mp": ("photo", 4000, 3000),
    "24mp": ("photo", 6000, 4000),
    "720p": ("video", 1280, 720),
    "1080p": ("video", 1920, 1080),
}


def _scene(width: int, height: int, shift: int = 0, seed: int = 0) -> np.ndarray:
    """The README example upscaled to ``width`` x ``height`` (+ sensor-like noise): real rain
    streaks and textures at phone-photo size, so decode and encode cost what they would."""
    from PIL import Image

    im = Image.open(EXAMPLE).convert("RGB")
    im = im.resize((width + shift, height), Image.BICUBIC).crop((shift, 0, shift + width, height))
    noise = np.random.default_rng(seed).integers(-6, 7, (height, width, 3), dtype=np.int16)
    return np.clip(np.asarray(im, np.int16) + noise, 0, 255).astype(np.uint8)


def prepare(workdir: Path, cases: list[str], frames: int) -> dict[str, Path]:
    """Write each case's input (once; kept in ``workdir`` for later runs)."""
    import av
    from PIL import Image

    workdir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in cases:
        kind, w, h = CASES[name]
        if kind == "photo":
            path = workdir / f"photo_{w}x{h}.jpg"
            if not path.is_file():
                Image.fromarray(_scene(w, h)).save(path, quality=92)
        else:
            path = workdir / f"clip_{w}x{h}_{frames}f.mp4"
            if not path.is_file():
                with av.open(str(path), "w") as out:
                    vs = out.add_stream("libx264", rate=25)
                    vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
                    vs.options = {"crf": "18"}
                    for i in range(frames):
                        frame = av.VideoFrame.from_ndarray(_scene(w, h, 4 * i, i), "rgb24")
                        frame.pts = i
                        out.mux(vs.encode(frame))
                    out.mux(vs.encode(None))
        paths[name] = path
    return paths


def worker(name: str, src: str, out_dir: str, threads: int) -> dict:
    """One case in this (fresh) process: load the model, then time derain_paths(src)."""
    import torch

    torch.set_num_threads(threads)
    import memderain
    from memderain.inference import batch

    model = memderain.load_model()
    from inference_memory import rss_mib  # a sibling script: benchmarks/ is sys.path[0]

    base = rss_mib()
    stages = {"decode": 0.0, "encode": 0.0, "network": 0.0, "first_call": 0.0, "calls": 0}
    read, write, rain = batch.read_image, batch.write_image, model._rain

    def timed(key, fn):
        def run(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                stages[key] += time.perf_counter() - t0
        return run

    def network(x):
        t0 = time.perf_counter()
        y = rain(x)
        dt = time.perf_counter() - t0
        stages["calls"] += 1
        stages["first_call" if stages["calls"] == 1 else "network"] += dt
        return y

    batch.read_image, batch.write_image, model._rain = (timed("decode", read),
                                                        timed("encode", write), network)
    kind, w, h = CASES[name]
    t0 = time.perf_counter()
    res = model.derain_path(src, out_dir, overwrite=True)
    seconds = time.perf_counter() - t0
    if res.failed:
        raise RuntimeError(res.failed[0])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    frames = 1
    if kind == "video":
        import av

        with av.open(str(res.written[0])) as c:
            frames = sum(1 for _ in c.decode(video=0))
    from memderain.inference.predictor import VIDEO_TILE_PIXELS

    plan = model.tile_plan(h, w, tile_pixels=VIDEO_TILE_PIXELS if kind == "video" else None)
    return {"case": name, "kind": kind, "width": w, "height": h, "seconds": seconds,
            "frames": frames, "peak_mib": peak, "base_mib": base, "plan": plan.describe(),
            "computed_pixels": plan.computed_pixels, "backend": model.backend,
            "precision": model.precision, "stages": stages}


def flops_per_pixel() -> float:
    """FLOPs of one forward of the shipped model per input pixel (256 x 256, exact: every
    layer's cost is proportional to the pixels for sizes that are multiples of 8)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from memderain.checkpoint import model_from_checkpoint
    from memderain.weights import default_weights_path

    model, _ = model_from_checkpoint(default_weights_path(), map_location="cpu")
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model.eval()(torch.zeros(1, 3, 256, 256))
    return counter.get_total_flops() / 256**2


def default_precision() -> tuple[str, str]:
    import torch

    from memderain.checkpoint import load_checkpoint
    from memderain.inference.backends import resolve_backend, resolve_precision
    from memderain.weights import default_weights_path

    meta = load_checkpoint(default_weights_path()).get("meta") or {}
    backend = resolve_backend("auto", torch.device("cpu"))
    return backend, resolve_precision("auto", backend, meta)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default=",".join(CASES), help=f"comma list of {', '.join(CASES)}")
    p.add_argument("--frames", type=int, default=4, help="frames per video clip")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workdir", type=Path,
                   default=Path(tempfile.gettempdir()) / "memderain-large-photo",
                   help="where the inputs are written once and kept")
    p.add_argument("--timeout", type=float, default=600, help="seconds per case")
    p.add_argument("--prepare", action="store_true", help="write the inputs and stop")
    p.add_argument("--json", default=None)
    p.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        name, src, out = args.worker
        print(json.dumps(worker(name, src, out, args.threads)))
        return 0
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        p.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    inputs = prepare(args.workdir, cases, args.frames)
    if args.prepare:
        print(f"inputs in {args.workdir}: {', '.join(str(v.name) for v in inputs.values())}")
        return 0

    import openvino
    import torch

    sys.path.insert(0, str(HERE))
    from peaks import cpu_flags, peaks

    from memderain.cpu import cpu_name

    torch.set_num_threads(args.threads)
    backend, precision = default_precision()
    per_px = flops_per_pixel()
    before = peaks(args.threads, repeats=5)
    print(f"# {precision} peak before the cases: {before[precision]['best'] / 1e9:.1f} GFLOP/s",
          flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for name in cases:
            cmd = [sys.executable, __file__, "--threads", str(args.threads), "--worker", name,
                   str(inputs[name]), out]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                                      timeout=args.timeout)
            except subprocess.TimeoutExpired:
                print(f"# {name}: timed out after {args.timeout:.0f} s", flush=True)
                continue
            if proc.returncode:
                err = (proc.stderr.strip().splitlines() or ["?"])[-1]
                print(f"# {name}: failed: {err}", flush=True)
                continue
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(f"# {name}: {r['seconds']:.1f} s, peak {r['peak_mib']:.0f} MiB", flush=True)
    after = peaks(args.threads, repeats=5)
    peak = (before[precision]["best"] + after[precision]["best"]) / 2
    today = datetime.date.today().isoformat()
    print(f"\n# {today}; CPU {cpu_name()}, {os.cpu_count()} logical CPUs, flags: "
          f"{' '.join(cpu_flags()) or 'none of ' + 'avx2/avx512'}; {args.threads} threads; torch "
          f"{torch.__version__}, OpenVINO {openvino.__version__.split('-')[0]}")
    print(f"# default path: {backend} {precision}; {per_px / 1e3:.1f} kFLOP per pixel "
          f"({per_px:.0f} * 1e6 = {per_px * 1e6 / 1e9:.0f} GFLOP per megapixel); {precision} "
          f"peak {before[precision]['best'] / 1e9:.1f} GFLOP/s before the cases, "
          f"{after[precision]['best'] / 1e9:.1f} after, mean {peak / 1e9:.1f} used")
    print("\n| case | input | tiling (default) | time | limit | ratio | peak RSS MiB |")
    print("|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        limit = per_px * r["width"] * r["height"] / peak  # one image / one frame
        r.update(limit_s=limit, peak_flops=peak, flops_per_pixel=per_px, date=today,
                 cpu=cpu_name(), cpu_flags=cpu_flags())
        size = f"{r['width']}x{r['height']}"
        if r["kind"] == "photo":
            r["ratio"] = r["seconds"] / limit
            print(f"| {r['case']} photo | {size} JPEG -> JPEG | {r['plan']} | {r['seconds']:.1f} s "
                  f"| {limit:.1f} s | **{r['ratio']:.2f}x** | {r['peak_mib']:.0f} |")
        else:
            fps = r["frames"] / r["seconds"]
            r.update(fps=fps, ratio=fps * limit)
            print(f"| {r['case']} video | {size} H.264, {r['frames']} frames | {r['plan']} "
                  f"| {fps:.3f} frames/s | 1 / {limit:.2f} s = {1 / limit:.3f} frames/s "
                  f"| **{100 * fps * limit:.0f} %** | {r['peak_mib']:.0f} |")
    photos = [r for r in rows if r["kind"] == "photo"]
    if photos:
        print("\nWhere a photo's time goes (s):\n")
        print("| case | total | decode | network: first call (compile or cached blob) | "
              "network: other calls | network at the limit of its computed pixels | "
              "tiling, conversions, rest | encode |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in photos:
            s = r["stages"]
            rest = r["seconds"] - s["decode"] - s["encode"] - s["first_call"] - s["network"]
            at_limit = per_px * r["computed_pixels"] / peak
            print(f"| {r['case']} ({s['calls']} tile(s)) | {r['seconds']:.2f} | {s['decode']:.2f} | "
                  f"{s['first_call']:.2f} | {s['network']:.2f} | {at_limit:.2f} | {rest:.2f} | "
                  f"{s['encode']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
