"""int8 inference: post-training quantisation of the rain network with NNCF (issue 23).

On CPUs without native bf16 (AVX2 only) OpenVINO f32 is the fastest float path; int8 runs the
convolutions on 8-bit integers (VNNI / AMX-INT8 where the CPU has them, AVX2 otherwise). The
network is quantised here, never downloaded:

1. **Calibration** (:func:`calibration_inputs`): 32 rendered *training-style* scenes, 256 px:
   procedural "dead leaves" backgrounds (random occluding discs with power-law sizes, shading
   and fine texture: the statistics of natural photos, no data files needed) under rain of the
   training presets of both engines. Never test scenes, never a user's image; seeded, so the
   same weights always give the same int8 model.
2. **Quantisation**: ``nncf.quantize`` of the ONNX network read by OpenVINO (mixed preset:
   symmetric int8 weights, asymmetric activations; fast bias correction).
3. **Cache**: the quantised model is saved as OpenVINO IR under
   ``<cache>/int8/<model key>-<calibration id>.xml`` (:mod:`memderain.inference.disk_cache`),
   so only the first run per checkpoint pays the ~10 s of calibration.

``precision="auto"`` picks int8 only for weights that carry a measured quality certificate
(``meta["int8"]``: the largest Y-PSNR loss against f32 over the test presets and the held-out
real clip, written by ``benchmarks/precision.py --record``) of at most
:data:`MAX_LOSS_DB` for the current :data:`CALIBRATION_ID`; any other checkpoint stays f32/bf16.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from memderain.errors import MemderainError

CALIBRATION_ID = "deadleaves-v1"  # bump when the calibration recipe changes
CALIBRATION_SCENES = 32
CALIBRATION_SIZE = 256
CALIBRATION_PRESETS = ("mixed-streaks", "heavy-streaks", "v2", "v2-streaks")  # training rain
MAX_LOSS_DB = 0.05  # the bar: int8 within 0.05 dB of f32 on every preset and clip


def nncf_installed() -> bool:
    return importlib.util.find_spec("nncf") is not None


def require_nncf() -> None:
    if not nncf_installed():
        raise MemderainError("precision int8 needs NNCF: pip install \"memderain[int8]\" "
                             "(or use --precision f32)")


def int8_certified(meta: Mapping[str, Any] | None) -> bool:
    """Whether checkpoint ``meta`` carries an int8 quality certificate that ``auto`` may trust:
    measured with the current calibration and within :data:`MAX_LOSS_DB` of f32."""
    cert = (meta or {}).get("int8")
    if not isinstance(cert, Mapping):
        return False
    loss = cert.get("max_loss_db")
    return (cert.get("calibration") == CALIBRATION_ID and isinstance(loss, (int, float))
            and loss <= MAX_LOSS_DB)


def dead_leaves(size: int, rng: np.random.Generator) -> np.ndarray:
    """A (size, size, 3) float32 image in [0, 1]: the dead-leaves model of natural images
    (occluding discs, radii ~ r^-3 between 2 px and size/3), with smooth shading per disc,
    a global illumination gradient and a little sensor-like texture."""
    img = np.empty((size, size, 3), np.float32)
    img[:] = rng.uniform(0.1, 0.9, 3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r_min, r_max = 2.0, size / 3
    for _ in range(400):
        # inverse-CDF sample of p(r) ~ r^-3 on [r_min, r_max]
        u = rng.uniform()
        r = (r_min**-2 - u * (r_min**-2 - r_max**-2)) ** -0.5
        cy, cx = rng.uniform(-r, size + r, 2)
        y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 1, size)
        x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 1, size)
        if y0 >= y1 or x0 >= x1:
            continue
        dy, dx = yy[y0:y1, x0:x1] - cy, xx[y0:y1, x0:x1] - cx
        inside = dy * dy + dx * dx <= r * r
        grey = rng.uniform(0.0, 1.0)
        colour = np.clip(grey + rng.normal(0, 0.12, 3), 0, 1).astype(np.float32)
        shade = 1 + rng.normal(0, 0.15) * (dy / r) + rng.normal(0, 0.15) * (dx / r)
        img[y0:y1, x0:x1][inside] = (colour[None, None] * shade[..., None])[inside]
    gy, gx = rng.normal(0, 0.25, 2)
    img *= (1 + gy * (yy / size - 0.5) + gx * (xx / size - 0.5))[..., None]
    img += rng.normal(0, 0.01, img.shape).astype(np.float32)
    return np.clip(img, 0, 1)


def calibration_inputs(n: int = CALIBRATION_SCENES, size: int = CALIBRATION_SIZE,
                       seed: int = 0) -> list[np.ndarray]:
    """``n`` network inputs (1, 3, size, size) float32 in [-1, 1]: dead-leaves backgrounds under
    the training rain presets, cycling through :data:`CALIBRATION_PRESETS`."""
    from memderain.data.rain import synthesize

    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        background = torch.from_numpy(dead_leaves(size, rng)).permute(2, 0, 1).contiguous()
        frame = synthesize(background, 1, CALIBRATION_PRESETS[i % len(CALIBRATION_PRESETS)],
                           gen).frames[0]
        out.append((frame.unsqueeze(0).numpy() * 2 - 1).astype(np.float32))
    return out


def quantize(onnx: bytes):
    """The int8 OpenVINO model (``openvino.Model``, dynamic H and W) of ONNX bytes, quantised in
    a child process (:func:`quantize_to_file`): importing NNCF patches torch functions, which
    crashed later torch work in the same process (the test suite's rendering), so NNCF never
    runs in the caller's process."""
    import os
    import subprocess
    import sys
    import tempfile

    require_nncf()
    with tempfile.TemporaryDirectory(prefix="memderain-int8-") as tmp:
        src, dst = os.path.join(tmp, "fp32.onnx"), os.path.join(tmp, "int8.xml")
        with open(src, "wb") as f:
            f.write(onnx)
        code = ("import sys; from memderain.inference.int8 import quantize_to_file; "
                "quantize_to_file(sys.argv[1], sys.argv[2])")
        res = subprocess.run([sys.executable, "-c", code, src, dst], check=False,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if res.returncode or not os.path.isfile(dst):
            lines = res.stderr.strip().splitlines()
            raise MemderainError("int8 quantisation failed ("
                                 f"{lines[-1] if lines else f'exit {res.returncode}'})")
        return read_ir(dst)


def read_ir(xml_path) -> Any:
    """An OpenVINO IR model read fully into memory. ``read_model(path)`` maps the .bin file
    instead, and a model whose file is deleted later (a temporary or cache folder) crashes
    the process when it is compiled or freed."""
    import openvino as ov

    with open(xml_path, encoding="utf-8") as f:
        xml = f.read()
    weights = np.fromfile(str(xml_path)[:-4] + ".bin", dtype=np.uint8)
    return ov.Core().read_model(xml, ov.Tensor(weights))


def quantize_to_file(onnx_path: str, xml_path: str) -> None:
    """Quantise the ONNX file (:func:`_quantize_here`) and save the int8 model as IR."""
    import openvino as ov

    with open(onnx_path, "rb") as f:
        model = _quantize_here(f.read())
    ov.save_model(model, xml_path, compress_to_fp16=False)


def _quantize_here(onnx: bytes):
    """``nncf.quantize`` in this process (see :func:`quantize` for why it runs in a child)."""
    require_nncf()
    import logging

    import nncf
    import openvino as ov

    logging.getLogger("nncf").setLevel(logging.ERROR)
    model = ov.Core().read_model(onnx)
    data = calibration_inputs()
    return nncf.quantize(model, nncf.Dataset(data), preset=nncf.QuantizationPreset.MIXED,
                         subset_size=len(data), fast_bias_correction=True,
                         model_type=None)


__all__ = ["CALIBRATION_ID", "MAX_LOSS_DB", "calibration_inputs", "dead_leaves",
           "int8_certified", "nncf_installed", "quantize", "require_nncf"]
