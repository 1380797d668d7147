"""Command-line options shared by several subcommands."""

from __future__ import annotations

import argparse

from memderain.inference.backends import BACKENDS, PRECISIONS


def add_backend_options(p: argparse.ArgumentParser, precision: str = "auto") -> None:
    """``--backend`` and ``--precision`` (default ``precision``): which runtime runs the
    network, and in which arithmetic."""
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="inference backend: auto (OpenVINO on CPU if installed, else ONNX "
                        "Runtime, else PyTorch; PyTorch on CUDA), torch, openvino, onnxruntime")
    p.add_argument("--precision", default=precision, choices=PRECISIONS,
                   help=f"arithmetic (default {precision}): auto = bf16 on OpenVINO where the "
                        "CPU does bf16 natively (AMX / AVX512-BF16; about 4x faster, within "
                        "0.01 dB on the test presets), else f32; f32 = the same output as "
                        "PyTorch; bf16 = OpenVINO bf16")
