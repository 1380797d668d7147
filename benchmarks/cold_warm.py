"""Cold and warm `memderain derain` of one 1000x1000 photo, process start excluded (issue 23).

Each run is a fresh Python process that imports memderain first (not timed, that is process
start) and then times ``memderain derain PHOTO -o OUT --overwrite`` through the CLI's own
``main``: loading the weights, the ONNX export, OpenVINO's compilation (or the int8
quantisation), de-raining, writing the PNG. Run 1 uses an empty cache folder
(``MEMDERAIN_CACHE_DIR``) so it starts cold; the next runs reuse it, as a user's second command
does. Then one more warm process times the library calls the command makes: ``load_model``
and the first ``derain`` call (the network, warm from the cache: what the issue compares with
the limit). Then, in this process, the matrix-multiply peak of the precision ``auto`` chose
(``benchmarks/peaks.py``) and the FLOP-bound limit of one 1000x1000 forward in it.

    python benchmarks/cold_warm.py                  # shipped model, auto backend and precision
    python benchmarks/cold_warm.py --precision f32 --runs 3

Nothing else may run on the machine meanwhile (e.g. a training run).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peaks import cpu_flags, peaks
from speed import flop_count

CHILD = """
import sys, time
from memderain.cli import main
t0 = time.perf_counter()
code = main(sys.argv[1:])
print(f"SECONDS {time.perf_counter() - t0:.3f}", flush=True)
sys.exit(code)
"""
# the same process start, then the library calls the command makes: the first derain call of
# a process is what issue 23 compares with the limit (the network, warm from the disk cache)
CALL = """
import sys, time
import numpy as np
from PIL import Image
import memderain
image = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
t0 = time.perf_counter()
d = memderain.load_model(backend=sys.argv[2], precision=sys.argv[3])
t1 = time.perf_counter()
d.derain(image)
t2 = time.perf_counter()
print(f"LOAD {t1 - t0:.3f} CALL {t2 - t1:.3f}", flush=True)
"""


def photo(path: Path, size: int) -> None:
    """A photo-like test image: smooth shapes and texture plus bright streaks."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.stack([0.5 + 0.3 * np.sin(6 * xx + c) * np.cos(4 * yy - c) for c in (0, 1, 2)], -1)
    img += rng.normal(0, 0.03, img.shape)
    for _ in range(400):
        y, x = rng.integers(0, size - 30, 2)
        for k in range(25):
            img[y + k, x + k // 4] += 0.3
    Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=1000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--backend", default="auto")
    p.add_argument("--precision", default="auto")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="memderain-coldwarm-"))
    src = tmp / "photo.png"
    photo(src, args.size)
    env = {**os.environ, "MEMDERAIN_CACHE_DIR": str(tmp / "cache"),
           "OMP_NUM_THREADS": str(args.threads)}
    cmd = [sys.executable, "-c", CHILD, "derain", str(src), "-o", str(tmp / "out.png"),
           "--overwrite", "--backend", args.backend, "--precision", args.precision]
    times = []
    for i in range(args.runs):
        res = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True)
        lines = [ln for ln in res.stdout.splitlines() if ln.startswith("SECONDS")]
        if res.returncode or not lines:
            print(res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "failed")
            return 1
        times.append(float(lines[-1].split()[1]))
        print(f"run {i + 1} ({'cold' if i == 0 else 'warm'}): {times[-1]:.2f} s", flush=True)
    call = subprocess.run([sys.executable, "-c", CALL, str(src), args.backend, args.precision],
                          check=True, env=env, capture_output=True, text=True).stdout.split()
    load_s, call_s = float(call[call.index("LOAD") + 1]), float(call[call.index("CALL") + 1])
    print(f"warm process, library calls: load_model {load_s:.2f} s, first derain {call_s:.2f} s")

    import torch

    from memderain.checkpoint import load_checkpoint
    from memderain.inference.backends import resolve_backend, resolve_precision
    from memderain.weights import default_weights_path

    torch.set_num_threads(args.threads)
    backend = resolve_backend(args.backend, torch.device("cpu"))
    meta = load_checkpoint(default_weights_path()).get("meta")  # decides whether auto is int8
    precision = resolve_precision(args.precision, backend, meta)
    peak = peaks(args.threads, repeats=3)
    prec = precision if precision in peak else "f32"
    limit = flop_count(args.size) / peak[prec]["best"]
    warm = min(times[1:]) if len(times) > 1 else times[0]
    print(f"\n# CPU flags: {' '.join(cpu_flags())}; {args.threads} threads; "
          f"{backend} {precision}")
    print(f"| size | backend | command cold s | command warm s | first derain call, warm s | "
          f"{prec} peak GFLOP/s | limit s | call / limit | command / limit |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {args.size}x{args.size} | {backend} {precision} | {times[0]:.2f} | "
          f"{warm:.2f} | {call_s:.2f} | {peak[prec]['best'] / 1e9:.0f} | {limit:.2f} | "
          f"{call_s / limit:.2f}x | {warm / limit:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
