"""De-raining speed of the Table I network on a 1000x1000 image (paper Table VII setting).

For each device (CPU, and CUDA if present) and each execution variant, a fresh subprocess
loads the model, warms up, and times ``--runs`` forward passes; we report the median, the
peak memory of that process (RSS on CPU, torch.cuda.max_memory_allocated on CUDA), the max
abs difference of the output (background, [0, 1]) from plain eager fp32, the FLOP count of one
forward (torch.utils.flop_counter.FlopCounterMode, 1 multiply-add = 2 FLOP) and the achieved
FLOP/s as a fraction of the machine's fp32 matmul peak (a large torch.matmul timed in the same
worker right after, so that on a shared machine both see the same load).

    python benchmarks/speed.py                       # all variants, CPU (+ CUDA)
    python benchmarks/speed.py --variants inference_mode,channels_last --runs 7
    python benchmarks/speed.py --json speed.json     # also write the rows as JSON

Weights are random (speed does not depend on them); the input is uniform noise.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import torch

CPU_VARIANTS = [
    "no_grad",  # plain eager under torch.no_grad, NCHW
    "inference_mode",  # torch.inference_mode instead of no_grad
    "channels_last",  # + model and input in channels_last (NHWC) memory format
    "mkldnn_off",  # torch.backends.mkldnn.enabled = False (native conv kernels)
    "jit_freeze",  # torch.jit.trace + freeze + optimize_for_inference (fixed shape)
    "compile",  # torch.compile (inductor), compile time reported separately
    "bf16_autocast",  # channels_last + torch.autocast(cpu, bfloat16): changes numerics
]
CUDA_VARIANTS = [
    "no_grad",
    "inference_mode",
    "channels_last",
    "cudnn_benchmark",
    "compile",
    "fp16_autocast",
]


def _build(size: int, device: str):
    from memderain.model import build_model

    torch.manual_seed(0)
    model = build_model("paper").eval().to(device)
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1)).to(device)
    return model, x


def _background(model, x01):
    x = x01 * 2 - 1
    out = model(x)
    rain = out if isinstance(out, torch.Tensor) else out.rain
    return ((x - rain).clamp(-1, 1) + 1) / 2


class _RainOnly(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x).rain


def _prepare(variant: str, size: int, device: str):
    """Fresh model + input for ``variant`` -> (model fn, input, context factory, setup seconds).

    Every variant gets its own model (same seed, same weights) and keeps its settings in its
    context (no global flags), so several variants can be timed in one process.
    """
    model, x = _build(size, device)
    t0 = time.perf_counter()
    grad_ctx = torch.no_grad if variant == "no_grad" else torch.inference_mode
    extra = []
    if variant == "mkldnn_off":
        extra.append(lambda: torch.backends.mkldnn.flags(enabled=False))
    elif variant == "cudnn_benchmark":
        extra.append(lambda: torch.backends.cudnn.flags(enabled=True, benchmark=True))
    elif variant in ("bf16_autocast", "fp16_autocast"):
        dtype = torch.bfloat16 if variant == "bf16_autocast" else torch.float16
        extra.append(lambda: torch.autocast(device, dtype=dtype))

    def ctx():
        return _stack(grad_ctx(), *(make() for make in extra))

    if variant in ("channels_last", "bf16_autocast", "fp16_autocast", "cudnn_benchmark"):
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    fn = model
    if variant == "jit_freeze":
        with torch.no_grad():
            traced = torch.jit.trace(_RainOnly(model), x * 2 - 1, check_trace=False)
            fn = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
    elif variant == "compile":
        fn = torch.compile(model)
        with ctx():
            _background(fn, x)  # compile now, so setup time includes it
    return fn, x, ctx, time.perf_counter() - t0


class _stack:
    def __init__(self, *cms):
        self.cms = cms

    def __enter__(self):
        for cm in self.cms:
            cm.__enter__()

    def __exit__(self, *exc):
        for cm in reversed(self.cms):
            cm.__exit__(*exc)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def worker(variant: str, device: str, size: int, runs: int, reference: str) -> dict:
    fn, x, ctx, setup_s = _prepare(variant, size, device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with ctx():
        for _ in range(2):  # warm-up (oneDNN primitive creation, cuDNN autotune, ...)
            out = _background(fn, x)
        _sync(device)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            out = _background(fn, x)
            _sync(device)
            times.append(time.perf_counter() - t0)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB (Linux)
    # fp32 matmul peak measured right after, in the same process: on a shared machine the
    # ratio achieved/peak is then taken under the same load.
    matmul = matmul_peak(device)
    ref = torch.load(reference, weights_only=True)
    diff = (out.float().cpu() - ref).abs().max().item()
    return {
        "variant": variant,
        "device": device,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "runs": runs,
        "setup_s": setup_s,
        "peak_mib": peak,
        "max_abs_diff": diff,
        "matmul_peak": matmul,
    }


def interleaved(variants: list[str], device: str, size: int, runs: int) -> list[dict]:
    """Time all variants in one process, round-robin (one run of each per round), with a
    matmul-peak measurement every round: on a shared machine, all see the same load."""
    prepared = {v: _prepare(v, size, device) for v in variants}
    for fn, x, ctx, _ in prepared.values():
        with ctx():
            for _ in range(2):
                _background(fn, x)
    times: dict[str, list[float]] = {v: [] for v in variants}
    peaks = []
    for _ in range(runs):
        for v in variants:
            fn, x, ctx, _ = prepared[v]
            with ctx():
                t0 = time.perf_counter()
                _background(fn, x)
                _sync(device)
                times[v].append(time.perf_counter() - t0)
        peaks.append(matmul_peak(device, repeats=3))
    peak = statistics.median(peaks)
    return [
        {
            "variant": v,
            "device": device,
            "median_s": statistics.median(t),
            "min_s": min(t),
            "runs": runs,
            "setup_s": prepared[v][3],
            "matmul_peak": peak,
        }
        for v, t in times.items()
    ]


def flop_count(size: int) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    model, x = _build(size, "cpu")
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(x * 2 - 1)
    return counter.get_total_flops()


def matmul_peak(device: str, n: int | None = None, repeats: int = 5) -> float:
    """Best fp32 FLOP/s of an n x n matmul (TF32 off on CUDA: true fp32)."""
    n = n or (8192 if device == "cuda" else 2048)
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    a = torch.rand(n, n, device=device)
    b = torch.rand(n, n, device=device)
    torch.matmul(a, b)
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def reference_output(size: int, device: str, path: str) -> None:
    model, x = _build(size, device)
    with torch.no_grad():
        torch.save(_background(model, x).float().cpu(), path)


def _subprocess_rows(variants: list[str], device: str, args):
    """Run each variant in a fresh worker process (clean peak memory); yield result dicts."""
    with tempfile.TemporaryDirectory() as tmp:
        ref = os.path.join(tmp, "ref.pt")
        reference_output(args.size, device, ref)
        for variant in variants:
            cmd = [sys.executable, __file__, "--size", str(args.size), "--runs", str(args.runs)]
            cmd += ["--worker", variant, device, ref]
            try:
                proc = subprocess.run(
                    cmd, check=False, capture_output=True, text=True, timeout=args.timeout
                )
            except subprocess.TimeoutExpired:
                yield {"variant": variant, "error": f"timed out after {args.timeout} s"}
                continue
            lines = proc.stdout.strip().splitlines()
            if proc.returncode != 0 or not lines:
                tail = (proc.stderr.strip().splitlines() or ["?"])[-1][:120]
                yield {"variant": variant, "error": f"failed: {tail}"}
                continue
            yield json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=1000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--devices", default="cpu,cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--variants", default=None, help="comma list (default: all for the device)")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per variant")
    p.add_argument("--json", default=None)
    p.add_argument(
        "--interleaved",
        action="store_true",
        help="time all variants in one process, round-robin (fair under varying load; "
        "no per-variant peak memory)",
    )
    p.add_argument(
        "--worker", nargs=3, metavar=("VARIANT", "DEVICE", "REF"), help=argparse.SUPPRESS
    )
    args = p.parse_args(argv)
    if args.worker:
        print(
            json.dumps(worker(args.worker[0], args.worker[1], args.size, args.runs, args.worker[2]))
        )
        return 0

    from memderain.model import build_model, count_parameters

    flops = flop_count(args.size)
    params = count_parameters(build_model("paper"))
    print(
        f"# MemDerain (Table I, C=64, M=20): {params:,} parameters; "
        f"{flops / 1e9:.1f} GFLOP per {args.size}x{args.size} forward"
    )
    print(
        f"# torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    rows = []
    for device in args.devices.split(","):
        peak = matmul_peak(device)
        name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
        mode = "interleaved in one process" if args.interleaved else "one process per variant"
        print(f"\n## {device} ({name}), {mode}; fp32 matmul peak now {peak / 1e9:.0f} GFLOP/s\n")
        print(
            "| variant | median s | min s | setup s | peak MiB | GFLOP/s | matmul peak GFLOP/s "
            "| % of peak | max abs diff |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        variants = (
            args.variants.split(",")
            if args.variants
            else (CUDA_VARIANTS if device == "cuda" else CPU_VARIANTS)
        )
        if args.interleaved:
            results = interleaved(variants, device, args.size, args.runs)
        else:
            results = _subprocess_rows(variants, device, args)
        for row in results:
            if "error" in row:
                print(f"| {row['variant']} | {row['error']} | | | | | | | |", flush=True)
                continue
            row.update(flops=flops, params=params, achieved=flops / row["median_s"])
            rows.append(row)
            peak_mib = f"{row['peak_mib']:.0f}" if "peak_mib" in row else "-"
            diff = f"{row['max_abs_diff']:.1e}" if "max_abs_diff" in row else "-"
            print(
                f"| {row['variant']} | {row['median_s']:.3f} | {row['min_s']:.3f} | "
                f"{row['setup_s']:.1f} | {peak_mib} | {row['achieved'] / 1e9:.0f} | "
                f"{row['matmul_peak'] / 1e9:.0f} | "
                f"{100 * row['achieved'] / row['matmul_peak']:.0f}% | {diff} |",
                flush=True,
            )
    print(f"\n# load average at end {os.getloadavg()[0]:.1f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
