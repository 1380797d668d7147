"""Names the command line offers as choices and defaults, kept free of torch so that
``memderain --help`` (and every subcommand's ``--help``) starts without importing it.

The modules that implement these names import them from here, so each has one source; the
few lists whose entries are defined in heavy modules (rain presets, benchmark layouts,
3x3 filters) are spelled here and checked against those modules by tests/test_cli_startup.py.
"""

from __future__ import annotations

# inference (memderain.inference.backends, tiling, io, video)
BACKENDS = ("auto", "torch", "openvino", "onnxruntime")
PRECISIONS = ("auto", "f32", "bf16", "int8")  # arithmetic of the network (bf16, int8: OpenVINO)
DEFAULT_OVERLAP = 64  # tile overlap in pixels
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")

# export (memderain.export)
EXPORT_FORMATS = ("onnx", "torchscript")
EXPORT_SUFFIXES = {"onnx": (".onnx",), "torchscript": (".pt", ".pth", ".ts")}  # what -o may end in

# evaluation (memderain.evaluation.metrics, benchmarks, trivial, runner)
STANDARD_METRICS = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")
ALL_METRICS = STANDARD_METRICS + ("vif_y", "fsim")
LAYOUT_NAMES = ("synth", "ddn", "rain100", "spa", "paired", "didmdn")
TRIVIAL_FILTER_NAMES = ("median3", "min3", "opening3")
EVAL_SUMMARY_KIND = "memderain.eval"

# data (memderain.data.rain: every engine's presets)
RAIN_PRESET_NAMES = ("heavy", "heavy-streaks", "heldout", "light", "mixed", "mixed-streaks",
                     "real-layers", "test-heavy", "test-light", "test-unseen", "v2",
                     "v2-streaks", "v2-timelapse", "v2-timelapse-jpeg")


def config_preset_names() -> list[str]:
    """Names of the training presets shipped as YAML in ``memderain/configs`` (``train --config``)."""
    from importlib import resources

    folder = resources.files("memderain") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))
