"""Export: ONNX (run in onnxruntime) and TorchScript files match PyTorch for any H, W; hubconf."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from memderain.checkpoint import save_checkpoint
from memderain.cli import main
from memderain.errors import MemderainError
from memderain.export import ExportWrapper, pad_to_multiple_traceable
from memderain.model import build_model
from memderain.model.derainer import pad_to_multiple

REPO = Path(__file__).resolve().parents[1]
SIZES = [(37, 50), (24, 16), (5, 3)]  # non-multiples of 8, a multiple, smaller than the padding


@pytest.fixture
def tiny_ckpt(tmp_path, tiny_config):
    model = build_model(tiny_config)
    with torch.no_grad():  # non-trivial rain so parity checks more than "output == input"
        model.decoder.output.bias.add_(0.1)
    return save_checkpoint(tmp_path / "tiny.pt", model), model.eval()


def reference(model, x01: torch.Tensor) -> np.ndarray:
    """The eager MemDerain forward, converted to [0, 1] independently of ExportWrapper."""
    with torch.no_grad():
        return ((model(x01 * 2 - 1).background + 1) / 2).numpy()


@pytest.mark.parametrize("size", [(3, 5), (8, 8), (37, 50), (1, 1), (7, 9), (16, 3)])
def test_traceable_pad_equals_model_pad(size):
    x = torch.rand(2, 3, *size)
    expected, _, _ = pad_to_multiple(x)
    assert torch.equal(pad_to_multiple_traceable(x), expected)


def test_wrapper_matches_model(tiny_ckpt):
    _, model = tiny_ckpt
    x = torch.rand(2, 3, 21, 30)
    with torch.no_grad():
        out = ExportWrapper(model)(x).numpy()
    np.testing.assert_allclose(out, reference(model, x), atol=1e-6)
    assert out.min() >= 0 and out.max() <= 1


def test_onnx_runs_in_onnxruntime_at_several_sizes(tiny_ckpt, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    ckpt, model = tiny_ckpt
    out = tmp_path / "m.onnx"
    assert main(["export", "--format", "onnx", "--weights", str(ckpt), "-o", str(out)]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for n, (h, w) in zip([1, 2, 1], SIZES):
        x = torch.rand(n, 3, h, w)
        got = session.run(None, {"image": x.numpy()})[0]
        assert got.shape == (n, 3, h, w)
        np.testing.assert_allclose(got, reference(model, x), atol=1e-4)


def test_torchscript_loads_and_matches(tiny_ckpt, tmp_path):
    ckpt, model = tiny_ckpt
    out = tmp_path / "m.ts.pt"
    assert main(["export", "--format", "torchscript", "--weights", str(ckpt), "-o", str(out)]) == 0
    loaded = torch.jit.load(str(out))
    for h, w in SIZES:
        x = torch.rand(1, 3, h, w)
        with torch.no_grad():
            got = loaded(x).numpy()
        np.testing.assert_allclose(got, reference(model, x), atol=1e-4)


def test_export_refuses_overwrite_and_missing_weights(tiny_ckpt, tmp_path, monkeypatch, capsys):
    ckpt, _ = tiny_ckpt
    out = tmp_path / "exists.onnx"
    out.write_bytes(b"keep me")
    assert main(["export", "--format", "onnx", "--weights", str(ckpt), "-o", str(out)]) == 1
    assert out.read_bytes() == b"keep me"
    assert "--overwrite" in capsys.readouterr().err
    monkeypatch.setattr("memderain.export.default_weights_path", lambda: None)
    assert main(["export", "--format", "torchscript", "-o", str(tmp_path / "x.pt")]) == 1
    assert "--weights" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()
    assert not list(tmp_path.glob(".*.tmp"))  # no temp files left behind


def test_torch_hub_local(tiny_ckpt, monkeypatch):
    ckpt, model = tiny_ckpt
    hub_model = torch.hub.load(str(REPO), "memderain", source="local", weights=str(ckpt))
    assert not hub_model.training
    x = torch.rand(1, 3, 19, 27)
    with torch.no_grad():
        np.testing.assert_array_equal(hub_model(x).background.numpy(), model(x).background.numpy())
    wrapped = torch.hub.load(str(REPO), "memderain_01", source="local", weights=str(ckpt))
    with torch.no_grad():
        np.testing.assert_allclose(wrapped(x).numpy(), reference(model, x), atol=1e-6)
    monkeypatch.setattr("memderain.export.default_weights_path", lambda: None)
    with pytest.raises(MemderainError, match="--weights"):
        torch.hub.load(str(REPO), "memderain", source="local")
