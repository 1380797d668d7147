"""Command-line options shared by several subcommands."""

from __future__ import annotations

import argparse

from memderain.inference.backends import BACKENDS, PRECISIONS


def add_backend_options(p: argparse.ArgumentParser, precision: bool = True) -> None:
    """``--backend`` (and ``--precision``): which runtime runs the network."""
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="inference backend: auto (OpenVINO on CPU if installed, else ONNX "
                        "Runtime, else PyTorch; PyTorch on CUDA), torch, openvino, onnxruntime")
    if precision:
        p.add_argument("--precision", default="f32", choices=PRECISIONS,
                       help="OpenVINO arithmetic: f32 (default, same output as PyTorch) or "
                            "bf16 (about 4x faster on CPUs with AMX-BF16; within 1 grey level)")
