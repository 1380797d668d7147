"""Matrix-multiply peaks per runtime and precision: the FLOP-bound limits of issue 23.

A network's time is compared with what the CPU can do *in the precision it runs*: an fp32
model with the fp32 peak, a bf16 model with the bf16 peak, an int8 model with the int8 peak.
Measured here, in the process and hour of the timings:

* ``torch.matmul`` in fp32 and bf16 (oneDNN);
* an OpenVINO ``MatMul`` of an n x n constant in f32 and bf16 (``INFERENCE_PRECISION_HINT``),
  and in int8 (both inputs through ``FakeQuantize``, the form OpenVINO's int8 kernels take).

Precisions the CPU does not do natively are skipped (bf16 needs AMX or AVX512-BF16; int8 needs
AVX2 and is faster with VNNI or AMX-INT8); :func:`cpu_flags` says which flags decided it.

    python benchmarks/peaks.py --threads 2
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from memderain.cpu import cpu_flags as linux_cpu_flags

FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu_flags() -> list[str]:
    """The SIMD / matrix flags of /proc/cpuinfo that decide the precisions (in FLAGS order)."""
    present = linux_cpu_flags()
    return [f for f in FLAGS if f in present]


def native_precisions(flags: list[str] | None = None) -> list[str]:
    flags = cpu_flags() if flags is None else flags
    out = ["f32"]
    if {"avx512_bf16", "amx_bf16"} & set(flags):
        out.append("bf16")
    if {"avx2", "avx512_vnni", "avx_vnni", "amx_int8"} & set(flags):
        out.append("int8")  # OpenVINO's int8 kernels need AVX2 at least; VNNI / AMX speed them
    return out


def _best(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def torch_peak(precision: str, n: int = 2048, repeats: int = 5) -> float | None:
    """Best FLOP/s of an n x n torch.matmul in f32 or bf16 (None for int8)."""
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16}.get(precision)
    if dtype is None:
        return None
    a, b = torch.rand(n, n).to(dtype), torch.rand(n, n).to(dtype)
    return 2 * n**3 / _best(lambda: torch.matmul(a, b), repeats)


def openvino_peak(precision: str, n: int = 2048, repeats: int = 5,
                  threads: int | None = None) -> float | None:
    """Best FLOP/s of an OpenVINO n x n MatMul in f32, bf16 or int8 (None if no OpenVINO)."""
    try:
        import openvino as ov
        import openvino.opset13 as ops
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    x = ops.parameter([n, n], np.float32, name="x")
    w = ops.constant(rng.random((n, n), dtype=np.float32) * 2 - 1)
    if precision == "int8":
        def fq(node, lo, hi, levels):
            lo, hi = ops.constant(np.float32(lo)), ops.constant(np.float32(hi))
            return ops.fake_quantize(node, lo, hi, lo, hi, levels)

        # the form NNCF writes and OpenVINO's int8 kernels take: u8 activations, symmetric
        # i8 weights (unsigned weights, [0, 1] in 256 levels, fall back to a float MatMul:
        # 182 GFLOP/s here against 696 for this form)
        y = ops.matmul(fq(x, 0, 1, 256), fq(w, -1, 1, 255), False, False)
        hint = "f32"  # int8 comes from the FakeQuantize pattern, not from the hint
    else:
        y = ops.matmul(x, w, False, False)
        hint = precision
    model = ov.Model([y], [x])
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": hint}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    compiled = ov.Core().compile_model(model, "CPU", config)
    request = compiled.create_infer_request()
    data = rng.random((n, n), dtype=np.float32)
    return 2 * n**3 / _best(lambda: request.infer({0: data}), repeats)


def peaks(threads: int | None = None, repeats: int = 5) -> dict[str, dict[str, float]]:
    """{precision: {"torch": FLOP/s, "openvino": FLOP/s, "best": FLOP/s}} for the precisions
    this CPU does natively."""
    out = {}
    for prec in native_precisions():
        row = {"torch": torch_peak(prec, repeats=repeats),
               "openvino": openvino_peak(prec, repeats=repeats, threads=threads)}
        row = {k: v for k, v in row.items() if v}
        row["best"] = max(row.values())
        out[prec] = row
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"# CPU flags: {' '.join(cpu_flags()) or 'unknown'}; {args.threads} threads")
    print("| precision | torch.matmul GFLOP/s | OpenVINO MatMul GFLOP/s | limit used |")
    print("|---|---:|---:|---:|")
    for prec, row in peaks(args.threads, args.repeats).items():
        t, o = row.get("torch"), row.get("openvino")
        print(f"| {prec} | {t / 1e9:.0f} | {o / 1e9:.0f} | {row['best'] / 1e9:.0f} |"
              if t else f"| {prec} | - | {o / 1e9:.0f} | {row['best'] / 1e9:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
