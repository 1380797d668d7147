"""Deployment formats: ONNX and TorchScript files of the de-raining network.

The exported graph is :class:`ExportWrapper`: image in [0, 1] (N, 3, H, W) with dynamic N, H, W
-> de-rained image B_hat = clamp(I - R_hat) (Eq. 1) in [0, 1]. Padding to a multiple of 8 (the
three max-pools of Table I) is done with index arithmetic on the traced shape, so the same
file is correct for every H, W, including sizes the trace never saw and images smaller than
the padding (where :func:`memderain.model.derainer.pad_to_multiple` switches to replicate).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from memderain.atomicfile import atomic_output, check_writable
from memderain.checkpoint import model_from_checkpoint
from memderain.choices import EXPORT_FORMATS as FORMATS
from memderain.choices import EXPORT_SUFFIXES as SUFFIXES
from memderain.errors import MemderainError
from memderain.model.derainer import SIZE_MULTIPLE, MemDerain
from memderain.weights import default_weights_path

ONNX_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "image", "derained"


class ExportError(MemderainError):
    """Export failed or its requirements (onnx) are missing."""


def _pad_index(n: torch.Tensor, target: torch.Tensor, reflect: torch.Tensor) -> torch.Tensor:
    """Source row/column for each of ``target`` padded positions of a length-``n`` axis."""
    idx = torch.arange(target)
    reflected = torch.where(idx < n, idx, 2 * (n - 1) - idx)  # mirror without repeating the edge
    replicated = torch.clamp(idx, max=n - 1)
    return torch.where(reflect, reflected, replicated)


def pad_to_multiple_traceable(x: torch.Tensor, multiple: int = SIZE_MULTIPLE) -> torch.Tensor:
    """Same values as :func:`~memderain.model.derainer.pad_to_multiple`, with no Python branch.

    Bottom/right padding up to a multiple; reflect, or replicate when a pad is not smaller than
    its axis (as ``pad_to_multiple`` does). Works on dynamic shapes in ONNX and TorchScript.
    """
    shape = torch._shape_as_tensor(x)
    h, w = shape[2], shape[3]
    th = (h + multiple - 1) // multiple * multiple
    tw = (w + multiple - 1) // multiple * multiple
    reflect = torch.logical_and(th - h < h, tw - w < w)
    x = x.index_select(2, _pad_index(h, th, reflect))
    return x.index_select(3, _pad_index(w, tw, reflect))


class RainWrapper(nn.Module):
    """The network part that inference backends run: image in [-1, 1] (N, 3, H, W), any H and
    W -> rain layer R_hat (N, 3, H, W) in the same units (output constraints applied), i.e.
    ``MemDerain(image).rain`` in eval mode. Eq. 1 and the tiling stay in
    :class:`~memderain.inference.predictor.Derainer`, shared by every backend."""

    def __init__(self, model: MemDerain) -> None:
        super().__init__()
        self.model = model.eval()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        m = self.model
        skips, query = m.encoder(pad_to_multiple_traceable(image))
        if m.memory is not None:
            p_hat, _ = m.memory.read(query)  # Eq. 2-4, read only
            bottleneck = torch.cat([query, p_hat], dim=1)
        else:
            bottleneck = query
        rain = m.decoder(skips, bottleneck)
        shape = torch._shape_as_tensor(image)
        rain = rain[:, :, : shape[2], : shape[3]]
        if m.config.nonnegative_rain:
            rain = rain.clamp(min=0.0)
        return rain


class ExportWrapper(RainWrapper):
    """[0, 1] image in, [0, 1] de-rained image out; the forward of MemDerain in eval mode."""

    def forward(self, image01: torch.Tensor) -> torch.Tensor:
        image = image01 * 2.0 - 1.0  # [0, 1] -> [-1, 1] (Sec. III-E)
        background = image - super().forward(image)  # Eq. 1
        if self.model.config.clamp_background:
            background = background.clamp(-1.0, 1.0)
        return (background + 1.0) * 0.5


def onnx_bytes(module: nn.Module, example_size: tuple[int, int] = (64, 64)) -> bytes:
    """``module`` (one (N, 3, H, W) input, one output) as ONNX bytes in memory, dynamic N/H/W.
    Nothing is written to disk or downloaded."""
    import io

    buf = io.BytesIO()
    example = torch.rand(1, 3, *example_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _export_onnx(module.eval(), example, buf)
    return buf.getvalue()


def load_for_export(weights: str | Path | None = None) -> tuple[ExportWrapper, Path]:
    """Wrap the model of ``weights`` (default: the shipped checkpoint); never random weights."""
    path = Path(weights) if weights else default_weights_path()
    if path is None:
        raise ExportError(
            "no default weights ship with this install; pass --weights CKPT (weights=... in Python)"
        )
    model, _ = model_from_checkpoint(path)
    return ExportWrapper(model).eval(), path


def check_export_path(out: str | Path, fmt: str, overwrite: bool = False) -> Path:
    """Refuse, in one line and before any work, an unknown format, an output whose extension
    names another format (``m.txt`` holding ONNX), an existing file without ``overwrite``
    and a place where no file can be written."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown --format {fmt!r}; choose from {', '.join(FORMATS)}")
    out = Path(out)
    if out.suffix.lower() not in SUFFIXES[fmt]:
        raise ExportError(f"-o {out}: --format {fmt} writes a {' or '.join(SUFFIXES[fmt])} "
                          f"file, not {out.suffix or '(no extension)'!r}")
    if out.exists() and not overwrite:
        raise ExportError(f"{out} exists; pass --overwrite to replace it")
    check_writable(out, name=f"-o {out}")
    return out


def export_model(
    wrapper: ExportWrapper,
    out: str | Path,
    fmt: str = "onnx",
    *,
    example_size: tuple[int, int] = (64, 64),
    overwrite: bool = False,
) -> Path:
    """Write ``wrapper`` as ONNX (opset 17, dynamic N/H/W) or TorchScript (traced) to ``out``."""
    out = check_export_path(out, fmt, overwrite)
    example = torch.rand(1, 3, *example_size, generator=torch.Generator().manual_seed(0))
    wrapper = wrapper.eval()
    with atomic_output(out, overwrite) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer/deprecation chatter; parity is tested
        if fmt == "onnx":
            _export_onnx(wrapper, example, str(tmp))
        else:
            torch.jit.save(torch.jit.trace(wrapper, example, check_trace=False), str(tmp))
    return out


def _export_onnx(wrapper: nn.Module, example: torch.Tensor, path) -> None:
    try:
        import onnx  # noqa: F401  (the exporter needs it)
    except ImportError:
        raise ExportError('ONNX export needs onnx: pip install "memderain[export]"') from None
    axes = {0: "batch", 2: "height", 3: "width"}
    # The TorchScript-based exporter (dynamo=False): no extra dependency (onnxscript), and the
    # shape arithmetic in pad_to_multiple_traceable becomes Shape/Range/Gather ops.
    torch.onnx.export(
        wrapper,
        (example,),
        path,
        dynamo=False,
        opset_version=ONNX_OPSET,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes},
    )
