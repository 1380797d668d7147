"""Inference backends for the de-raining network: PyTorch, OpenVINO, ONNX Runtime.

Every backend runs the same function, :class:`memderain.export.RainWrapper`: image in [-1, 1]
-> rain layer R_hat. The rest (Eq. 1, tiling, value ranges) stays in
:class:`~memderain.inference.predictor.Derainer`, so all backends share it. OpenVINO and ONNX
Runtime get the network as ONNX bytes exported in memory from the loaded checkpoint (about 1 s);
nothing is downloaded. The export and OpenVINO's compiled models are cached in the user's cache
folder (:mod:`memderain.inference.disk_cache`; ``MEMDERAIN_CACHE_DIR=off`` disables it), so a
second run of the same command starts warm.

``auto`` picks OpenVINO on CPU when it is installed, else ONNX Runtime, else PyTorch; on CUDA it
picks PyTorch. OpenVINO compiles one static-shape model per input shape (kept in a small
cache, so the tiles of a photo and the frames of a video reuse one); ONNX Runtime handles
dynamic shapes itself.

Precision (``auto`` by default): OpenVINO computes in bf16 where the CPU does bf16 natively
(AMX / AVX512-BF16; OpenVINO reports ``BF16`` among its CPU capabilities), else in fp32. bf16
ran 4x faster on a 2-core AMX Xeon and moved the Y-PSNR of every test preset by at most
0.006 dB (``benchmarks/precision.py``; the bar was 0.05 dB). ``int8`` (OpenVINO, quantised with
NNCF: :mod:`memderain.inference.int8`) is what ``auto`` picks, before bf16, for weights whose
checkpoint carries a measured int8 quality certificate (within 0.05 dB of f32 on every test
preset and the held-out real clip). ``f32`` matches PyTorch to about 1e-6; ONNX Runtime and
PyTorch always run fp32.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from memderain.choices import BACKENDS, PRECISIONS
from memderain.errors import MemderainError

# pip extra that installs each optional backend (its Python module has the backend's name)
EXTRAS = {"openvino": "openvino", "onnxruntime": "export"}
SHAPE_CACHE = 4  # compiled OpenVINO models kept (one per input shape)

RainFn = Callable[[torch.Tensor], torch.Tensor]


def is_installed(backend: str) -> bool:
    return backend == "torch" or importlib.util.find_spec(backend) is not None


def resolve_backend(name: str, device: torch.device) -> str:
    """'auto' | 'torch' | 'openvino' | 'onnxruntime' -> the backend to use on ``device``."""
    if name not in BACKENDS:
        raise MemderainError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    if name == "auto":
        if device.type != "cpu":
            return "torch"
        return next(b for b in ("openvino", "onnxruntime", "torch") if is_installed(b))
    if name != "torch":
        if device.type != "cpu":
            raise MemderainError(f"backend {name} runs on the CPU; use --device cpu or "
                                 "--backend torch")
        if not is_installed(name):
            raise MemderainError(f"backend {name} is not installed: pip install "
                                 f"\"memderain[{EXTRAS[name]}]\" (or use --backend torch)")
    return name


@functools.cache
def native_bf16() -> bool:
    """Whether OpenVINO's CPU plugin computes bf16 natively on this CPU (AMX, AVX512-BF16)."""
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def resolve_precision(precision: str, backend: str, meta: Mapping[str, Any] | None = None) -> str:
    """'auto' | 'f32' | 'bf16' | 'int8' for a resolved ``backend`` -> 'f32', 'bf16' or 'int8'.

    ``auto`` on OpenVINO is int8 when the checkpoint ``meta`` carries an int8 quality
    certificate (:func:`memderain.inference.int8.int8_certified`) and NNCF is installed, else
    bf16 when the CPU does bf16 natively, else f32; on other backends it is f32.
    """
    from memderain.inference.int8 import int8_certified, nncf_installed, require_nncf

    if precision not in PRECISIONS:
        raise MemderainError(f"unknown precision {precision!r}; choose from "
                             f"{', '.join(PRECISIONS)}")
    if precision == "auto":
        if backend != "openvino":
            return "f32"
        if int8_certified(meta) and nncf_installed():
            return "int8"
        return "bf16" if native_bf16() else "f32"
    if precision in ("bf16", "int8") and backend != "openvino":
        raise MemderainError(f"precision {precision} needs --backend openvino")
    if precision == "int8":
        require_nncf()
    return precision


def describe_backend(name: str, device: torch.device, precision: str = "auto",
                     meta: Mapping[str, Any] | None = None) -> str:
    """'openvino 2026.4.1, bf16 (auto; installed: torch, openvino, onnxruntime)' for `info`
    (``meta``: the checkpoint's, which decides whether ``auto`` may choose int8)."""
    chosen = resolve_backend(name, device)
    version = torch.__version__ if chosen == "torch" else importlib.metadata.version(chosen)
    have = [b for b in BACKENDS[1:] if is_installed(b)]
    arith = resolve_precision(precision, chosen, meta)
    return f"{chosen} {version}, {arith} ({name}; installed: {', '.join(have)})"


def _as_numpy(x: torch.Tensor) -> np.ndarray:
    """A contiguous float32 NCHW array, what both ONNX runtimes take as input."""
    return np.ascontiguousarray(x.detach().cpu().float().numpy())


class OpenVINORain:
    """R_hat through OpenVINO's CPU plugin, one compiled static-shape model per input shape.

    ``network``: ONNX bytes, or an ``openvino.Model`` (the int8 one of
    :func:`memderain.inference.int8.quantize`).
    ``precision``: "f32" (default; matches PyTorch), "bf16" (faster on CPUs with AMX /
    AVX512-BF16; not bit-compatible) or "int8" (``network`` must then be the quantised model;
    its int8 convolutions come from the model, the rest runs in f32). See
    :func:`resolve_precision` for "auto".
    ``threads``: inference threads (default: torch's).
    """

    def __init__(self, network, threads: int | None = None, precision: str = "f32",
                 cache_dir: str | None = None) -> None:
        import openvino as ov

        if precision not in ("f32", "bf16", "int8"):
            raise MemderainError(f"OpenVINO precision must be f32, bf16 or int8, got "
                                 f"{precision!r}")
        self._ov, self._core, self._network = ov, ov.Core(), network
        hint = "f32" if precision == "int8" else precision
        self.config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": hint,
                       "INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads())}
        if cache_dir is not None:  # compiled blobs on disk: the next process starts warm
            self.config["CACHE_DIR"] = cache_dir
        self._compiled: OrderedDict[tuple[int, ...], object] = OrderedDict()
        self._last_shape: tuple[int, ...] | None = None

    def _model(self):
        if isinstance(self._network, (bytes, bytearray)):
            return self._core.read_model(self._network)
        return self._network.clone()

    def compiled_for(self, shape: tuple[int, ...]):
        if shape in self._compiled:
            self._compiled.move_to_end(shape)
            return self._compiled[shape]
        model = self._model()
        model.reshape([self._ov.Dimension(d) for d in shape])
        try:
            compiled = self._core.compile_model(model, "CPU", self.config)
        except RuntimeError:
            if "CACHE_DIR" not in self.config:
                raise
            # a damaged or unwritable cache is never fatal: compile without it from now on
            self.config.pop("CACHE_DIR")
            compiled = self._core.compile_model(model, "CPU", self.config)
        self._compiled[shape] = compiled
        while len(self._compiled) > SHAPE_CACHE:
            self._compiled.popitem(last=False)
        return compiled

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        arr = _as_numpy(x)
        shape = tuple(arr.shape)
        if self._last_shape is not None and self._last_shape != shape:
            # a compiled model keeps its activations (about 1 GiB per megapixel in f32) after
            # inference; free those of the previous shape so that a folder of mixed sizes
            # holds one shape's, not SHAPE_CACHE shapes' (the compiled model itself stays)
            previous = self._compiled.get(self._last_shape)
            if previous is not None:
                previous.release_memory()
        self._last_shape = shape
        out = self.compiled_for(shape)(arr)[0]
        return torch.from_numpy(np.asarray(out))


class OnnxRuntimeRain:
    """R_hat through ONNX Runtime's CPU execution provider (dynamic shapes)."""

    def __init__(self, onnx: bytes, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(onnx, opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {self.input: _as_numpy(x)})[0])


def build_rain_fn(model: torch.nn.Module, backend: str, threads: int | None = None,
                  precision: str = "f32") -> RainFn:
    """The function x[-1, 1] -> R_hat of ``model`` on a non-torch ``backend``."""
    from memderain.export import RainWrapper, onnx_bytes
    from memderain.inference.disk_cache import (
        cached_int8_model,
        cached_onnx,
        model_key,
        openvino_cache_dir,
    )

    if backend not in ("openvino", "onnxruntime"):
        raise MemderainError(f"no ONNX runtime backend named {backend!r}")
    try:
        key = model_key(model)  # hashes every weight: once per build
        onnx = cached_onnx(key, lambda: onnx_bytes(RainWrapper(model)))
        if backend == "openvino":
            network = cached_int8_model(key, onnx) if precision == "int8" else onnx
            return OpenVINORain(network, threads, precision, openvino_cache_dir(key, precision))
        return OnnxRuntimeRain(onnx, threads)
    except MemderainError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MemderainError(f"backend {backend} failed to load the network ({first}); "
                             "try --backend torch") from exc
