"""Command-line options shared by several subcommands."""

from __future__ import annotations

import argparse
import re

from memderain.choices import BACKENDS, PRECISIONS


def add_backend_options(p: argparse.ArgumentParser, precision: str = "auto") -> None:
    """``--backend`` and ``--precision`` (default ``precision``): which runtime runs the
    network, and in which arithmetic."""
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="inference backend: auto (OpenVINO on CPU if installed, else ONNX "
                        "Runtime, else PyTorch; PyTorch on CUDA), torch, openvino, onnxruntime")
    p.add_argument("--precision", default=precision, choices=PRECISIONS,
                   help=f"arithmetic (default {precision}): auto = on OpenVINO, int8 for "
                        "weights measured within 0.05 dB of f32 in int8 (the shipped model; "
                        "needs the int8 extra), else bf16 where the CPU does bf16 natively "
                        "(AMX / AVX512-BF16), else f32; f32 = the same output as PyTorch; "
                        "bf16, int8 = OpenVINO bf16, NNCF int8")


def device_name(text: str) -> str:
    """argparse type of ``--device``: cpu, cuda, cuda:N or auto (CUDA's presence is checked
    when the device is used, with a one-line error)."""
    if re.fullmatch(r"cpu|auto|cuda(:\d+)?", text):
        return text
    raise argparse.ArgumentTypeError(f"{text!r}: use cpu, cuda, cuda:N or auto")


def add_device_option(p) -> None:
    """``--device``: one option with one meaning in every command."""
    p.add_argument("--device", default="auto", type=device_name, metavar="DEVICE",
                   help="cpu, cuda, cuda:N or auto (default: auto = the first CUDA device if "
                        "there is one, else the CPU)")


def add_clip_options(p, *, max_frames: bool = True, note: str = "") -> None:
    """How a rain clip is read (``adapt``, ``derain --adapt``, ``eval --clip``,
    ``extract-frames``, ``rain-layers``): ``--max-frames``, ``--max-side``, ``--max-shift``,
    ``--stabilise``, with the defaults of :func:`memderain.data.static_clip.load_static_clip`.
    ``note`` prefixes each help."""
    from memderain.data.stabilise import MIN_COMMON_SHARE, STABILISE_MODES
    from memderain.data.static_clip import DEFAULT_MAX_FRAMES, DEFAULT_MAX_SHIFT

    if max_frames:
        p.add_argument("--max-frames", type=int, default=DEFAULT_MAX_FRAMES,
                       help=f"{note}use at most N evenly spaced frames "
                            f"(default {DEFAULT_MAX_FRAMES})")
    p.add_argument("--max-side", type=int, default=0,
                   help=f"{note}downsize frames to this longer side first (0 = keep)")
    p.add_argument("--max-shift", type=float, default=DEFAULT_MAX_SHIFT,
                   help=f"{note}a camera that moves more than N px is hand-held: stabilised, "
                        f"or refused with --stabilise off (default {DEFAULT_MAX_SHIFT:g})")
    p.add_argument("--stabilise", default="auto", choices=STABILISE_MODES,
                   help=f"{note}hand-held footage: auto (default) warps every frame onto one "
                        "view with a homography when the camera moves more than --max-shift "
                        "px, else aligns by a shift; off refuses such clips; on always "
                        f"warps. A pan leaving less than {MIN_COMMON_SHARE * 100:.0f}%% of the frame in "
                        "common is refused (docs/real-rain.md, Hand-held footage)")
