"""Peak memory (RSS) and time of `memderain derain` on one large photo, CPU.

Each case runs in a fresh subprocess doing what the CLI does for one file: read the JPEG,
de-rain it with the Table I network (random weights), write the PNG. Reports the RSS after
loading the model (``base``), the peak RSS (``peak``, getrusage ru_maxrss) and the seconds.

    python benchmarks/inference_memory.py                     # 4000x3000, default tiling
    python benchmarks/inference_memory.py --size 4000x3000 --tiles auto,1024 --overlap 64
    python benchmarks/inference_memory.py --backends torch,auto    # also OpenVINO (bf16 on AMX)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time


def rss_mib() -> float:
    """Current resident set size of this process in MiB (Linux /proc)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def worker(src: str, ckpt: str, tile: str, overlap: int, dst: str, backend: str) -> dict:
    from memderain.inference.io import read_image, write_image
    from memderain.inference.predictor import Derainer

    derainer = Derainer(ckpt, tile=None if tile == "auto" else int(tile), overlap=overlap,
                        backend=backend)
    base = rss_mib()
    t0 = time.perf_counter()
    data = read_image(src, integer=True)  # as `memderain derain` reads 8-bit photos
    used = derainer.tile_plan(data.height, data.width).describe()
    write_image(dst, derainer.derain_imagedata(data), overwrite=True)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "tile": tile,
        "backend": f"{derainer.backend} {derainer.precision}",
        "tile_used": used,
        "overlap": overlap,
        "base_mib": base,
        "peak_mib": peak,
        "seconds": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="4000x3000", help="WIDTHxHEIGHT")
    p.add_argument("--tiles", default="auto", help="comma list: auto, 0 (whole image) or sizes")
    p.add_argument("--overlap", type=int, default=64)
    p.add_argument("--backends", default="torch",
                   help="comma list: torch, auto, openvino, onnxruntime (precision auto)")
    p.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        src, ckpt, tile, dst, backend = args.worker
        print(json.dumps(worker(src, ckpt, tile, args.overlap, dst, backend)))
        return 0

    import numpy as np
    import torch
    from PIL import Image

    from memderain.checkpoint import save_checkpoint
    from memderain.model import build_model

    w, h = (int(v) for v in args.size.lower().split("x"))
    print(
        f"# {w}x{h} JPEG -> PNG, Table I net (C=64), CPU, {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print("| backend | tile | overlap | tile used | RSS after model load MiB | peak RSS MiB "
          "| seconds |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 127 // (w + h)], -1)
        img = np.clip(img + rng.integers(-20, 21, img.shape), 0, 255).astype(np.uint8)
        src = os.path.join(tmp, "photo.jpg")
        Image.fromarray(img).save(src, quality=92)
        del img, yy, xx
        ckpt = str(save_checkpoint(os.path.join(tmp, "paper.pt"), build_model("paper")))
        cases = [(b, t) for b in args.backends.split(",") for t in args.tiles.split(",")]
        for backend, tile in cases:
            cmd = [
                sys.executable,
                __file__,
                "--overlap",
                str(args.overlap),
                "--worker",
                src,
                ckpt,
                tile,
                os.path.join(tmp, "out.png"),
                backend,
            ]
            proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
            if proc.returncode != 0:
                err = (proc.stderr.strip().splitlines() or ["?"])[-1]
                print(f"| {backend} | {tile} | failed: {err} |")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(
                f"| {r['backend']} | {tile} | {args.overlap} | {r['tile_used']} | "
                f"{r['base_mib']:.0f} | {r['peak_mib']:.0f} | {r['seconds']:.1f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
