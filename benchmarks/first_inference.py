"""OpenVINO's first inference of a freshly compiled model, against the next ones (issue 23).

A one-photo ``memderain derain`` runs the network once per process, so it pays whatever the
first inference of a new compiled model costs beyond the steady state. This script times that
on the bare OpenVINO API, without memderain's pre- and post-processing, each variant in a
fresh process:

* ``cached``: compile from the disk cache (``CACHE_DIR``), what a second command does;
* ``fresh``: compile without the cache;
* ``request``: create the infer request before the first inference;
* ``warmup``: one inference of the same model at 64x64 first (another compiled shape).

    python benchmarks/first_inference.py                     # shipped model, auto precision
    python benchmarks/first_inference.py --precision f32 --repeats 3

Nothing else may run on the machine meanwhile (e.g. a training run).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peaks import cpu_flags

from memderain.cpu import cpu_name

CHILD = """
import sys, time
import numpy as np
from memderain.checkpoint import model_from_checkpoint
from memderain.export import RainWrapper, onnx_bytes
from memderain.inference.backends import OpenVINORain, resolve_precision
from memderain.inference.disk_cache import (cached_int8_model, cached_onnx, model_key,
                                            openvino_cache_dir)
from memderain.weights import default_weights_path

variant, size, precision, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
model, ckpt = model_from_checkpoint(default_weights_path(), map_location="cpu")
precision = resolve_precision(precision, "openvino", ckpt.get("meta"))
key = model_key(model)
onnx = cached_onnx(key, lambda: onnx_bytes(RainWrapper(model)))
network = cached_int8_model(key, onnx) if precision == "int8" else onnx


def runtime(cache):  # what `memderain derain` builds (backends.build_rain_fn), fresh each time
    return OpenVINORain(network, threads, precision,
                        openvino_cache_dir(key, precision) if cache else None)


if variant == "cached":  # make sure the blob is in the cache before the timed run
    runtime(True).compiled_for((1, 3, size, size))
ov_rain = runtime(variant != "fresh")
if variant == "warmup":
    ov_rain.compiled_for((1, 3, 64, 64))(np.zeros((1, 3, 64, 64), np.float32))
x = np.random.default_rng(0).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
t0 = time.perf_counter()
c = ov_rain.compiled_for((1, 3, size, size))
t1 = time.perf_counter()
run = c.create_infer_request().infer if variant == "request" else c
t2 = time.perf_counter()
times = []
for _ in range(4):
    s = time.perf_counter()
    run(x)
    times.append(time.perf_counter() - s)
print(f"RESULT {precision} {t1 - t0:.3f} {t2 - t1:.3f} " + " ".join(f"{t:.3f}" for t in times))
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=1000)
    p.add_argument("--precision", default="auto")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2, help="fresh processes per variant")
    args = p.parse_args(argv)
    print(f"CPU: {cpu_name()} ({' '.join(cpu_flags())}), {args.threads} threads, "
          f"{args.size}x{args.size}")
    print("| variant | precision | compile s | request s | 1st inference s | 2nd-4th s |")
    print("|---|---|---:|---:|---:|---:|")
    for variant in ("cached", "fresh", "request", "warmup"):
        for _ in range(args.repeats):
            out = subprocess.run([sys.executable, "-c", CHILD, variant, str(args.size),
                                  args.precision, str(args.threads)],
                                 capture_output=True, text=True, check=True).stdout
            line = next(s for s in out.splitlines() if s.startswith("RESULT")).split()[1:]
            prec, comp, req, *inf = line
            print(f"| {variant} | {prec} | {comp} | {req} | {inf[0]} | {', '.join(inf[1:])} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
