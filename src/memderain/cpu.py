"""Facts about the CPU this runs on (Linux /proc/cpuinfo; neutral answers elsewhere): one home
for the training precision choice, ``memderain info``-style reports and the benchmarks."""

from __future__ import annotations

import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def cpu_flags() -> set[str]:
    """The CPU feature flags Linux lists in /proc/cpuinfo (empty elsewhere)."""
    try:
        return set(CPUINFO.read_text().split())
    except OSError:
        return set()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AMX-BF16 or AVX512-BF16; Linux flags)."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def cpu_name() -> str:
    """The CPU's model name ("Intel(R) Xeon(R) ..."), else what :mod:`platform` knows."""
    try:
        for line in CPUINFO.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
