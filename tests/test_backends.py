"""Inference backends (OpenVINO, ONNX Runtime): same outputs as PyTorch on odd sizes, grey and
RGBA images, through tiling; `auto` resolution; one-line errors for missing backends."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memderain.checkpoint import save_checkpoint
from memderain.cli import main
from memderain.config import ModelConfig
from memderain.errors import MemderainError
from memderain.inference import backends
from memderain.inference.predictor import Derainer, load_model
from memderain.model import MemDerain

INSTALLED = [b for b in ("openvino", "onnxruntime") if backends.is_installed(b)]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(3)
    model = MemDerain(ModelConfig(channels=8, num_items=4, nonnegative_rain=True))
    with torch.no_grad():  # a non-trivial memory and decoder, so outputs depend on both
        model.memory.items.copy_(torch.nn.functional.normalize(torch.randn(4, 8), dim=1))
    return save_checkpoint(tmp_path_factory.mktemp("w") / "tiny.pt", model)


@pytest.fixture(scope="module")
def reference(ckpt):
    return Derainer(ckpt, backend="torch")


@pytest.mark.parametrize("backend", INSTALLED)
@pytest.mark.parametrize("size", [(37, 53), (130, 301)])
def test_backend_matches_torch_on_odd_sizes(ckpt, reference, backend, size):
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(1))
    ours = Derainer(ckpt, backend=backend, precision="f32")
    assert ours.backend == backend
    b_ref, r_ref = reference.derain_tensor(x)
    b, r = ours.derain_tensor(x)
    assert float((b - b_ref).abs().max()) < 1e-4
    assert float((r - r_ref).abs().max()) < 1e-4
    assert float(r_ref.abs().max()) > 1e-3  # the comparison is not between two zero maps


@pytest.mark.parametrize("backend", INSTALLED)
def test_backend_grey_rgba_and_tiles_match_torch(ckpt, reference, backend):
    rng = np.random.default_rng(2)
    ours = Derainer(ckpt, backend=backend, precision="f32")
    grey = rng.integers(0, 256, (45, 61), dtype=np.uint8)
    rgba = rng.random((50, 70, 4), dtype=np.float32)
    assert np.abs(ours.derain(grey).astype(int) - reference.derain(grey).astype(int)).max() <= 1
    out = ours.derain(rgba)
    assert np.abs(out - reference.derain(rgba)).max() < 1e-4
    assert np.array_equal(out[..., 3], rgba[..., 3])  # alpha untouched
    big = torch.rand(1, 3, 130, 301, generator=torch.Generator().manual_seed(4))
    tiled = ours.derain_tensor(big, tile=64)[0]
    assert float((tiled - reference.derain_tensor(big, tile=64)[0]).abs().max()) < 1e-4
    if backend == "openvino":  # tiles of one size share one compiled model
        shapes = list(ours._backend_rain._compiled)
        assert len(shapes) <= backends.SHAPE_CACHE
        assert (1, 3, 64, 64) in shapes


def test_auto_prefers_openvino_then_onnxruntime_then_torch(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    have = {"openvino": True, "onnxruntime": True}
    monkeypatch.setattr(backends, "is_installed", lambda b: b == "torch" or have[b])
    assert backends.resolve_backend("auto", cpu) == "openvino"
    assert backends.resolve_backend("auto", cuda) == "torch"
    have["openvino"] = False
    assert backends.resolve_backend("auto", cpu) == "onnxruntime"
    have["onnxruntime"] = False
    assert backends.resolve_backend("auto", cpu) == "torch"


def test_missing_backend_is_a_one_line_error_naming_the_extra(monkeypatch, ckpt, tmp_path,
                                                               capsys):
    monkeypatch.setattr(backends, "is_installed", lambda b: b == "torch")
    with pytest.raises(MemderainError, match=r'pip install "memderain\[openvino\]"'):
        backends.resolve_backend("openvino", torch.device("cpu"))
    with pytest.raises(MemderainError, match=r"memderain\[export\]"):
        Derainer(ckpt, backend="onnxruntime")
    assert load_model(ckpt).backend == "torch"  # auto falls back
    img = tmp_path / "a.png"
    from PIL import Image

    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(img)
    code = main(["derain", str(img), "-o", str(tmp_path / "o"), "--weights", str(ckpt),
                 "--backend", "openvino"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.count("\n") == 0 and "memderain[openvino]" in err
    with pytest.raises(MemderainError, match="runs on the CPU"):
        monkeypatch.setattr(backends, "is_installed", lambda b: True)
        backends.resolve_backend("openvino", torch.device("cuda"))


@pytest.mark.parametrize("backend", INSTALLED)
def test_cli_backends_write_the_same_image(ckpt, tmp_path, capsys, backend):
    from PIL import Image

    rng = np.random.default_rng(5)
    img = tmp_path / "in.png"
    Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(img)
    outs = {}
    for b in ("torch", backend):
        assert main(["derain", str(img), "-o", str(tmp_path / b), "--weights", str(ckpt),
                     "--backend", b, "--precision", "f32"]) == 0
        assert f"backend: {b} (f32)" in capsys.readouterr().err
        outs[b] = np.asarray(Image.open(tmp_path / b / "in.png")).astype(int)
    assert np.abs(outs["torch"] - outs[backend]).max() <= 1


def test_info_names_the_backend(capsys, monkeypatch):
    assert main(["info", "--backend", "torch"]) == 0
    assert "backend: torch" in capsys.readouterr().out
    monkeypatch.setattr(backends, "is_installed", lambda b: b in ("torch", "onnxruntime"))
    if backends.importlib.util.find_spec("onnxruntime"):
        assert main(["info"]) == 0
        assert "backend: onnxruntime" in capsys.readouterr().out


@pytest.mark.skipif("openvino" not in INSTALLED, reason="OpenVINO is not installed")
def test_openvino_bf16_is_close_and_torch_refuses_it(ckpt, reference):
    x = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(6))
    fast = Derainer(ckpt, backend="openvino", precision="bf16")
    diff = float((fast.derain_tensor(x)[0] - reference.derain_tensor(x)[0]).abs().max())
    assert diff < 0.02  # bf16 (where the CPU has it) stays within a few grey levels
    with pytest.raises(MemderainError, match="needs --backend openvino"):
        Derainer(ckpt, backend="torch", precision="bf16")


def test_auto_precision_is_bf16_only_on_openvino_with_native_bf16(monkeypatch, ckpt):
    native = {"bf16": True}
    monkeypatch.setattr(backends, "native_bf16", lambda: native["bf16"])
    assert backends.resolve_precision("auto", "openvino") == "bf16"
    assert backends.resolve_precision("auto", "onnxruntime") == "f32"
    assert backends.resolve_precision("auto", "torch") == "f32"
    assert backends.resolve_precision("f32", "openvino") == "f32"
    native["bf16"] = False
    assert backends.resolve_precision("auto", "openvino") == "f32"
    with pytest.raises(MemderainError, match="unknown precision"):
        backends.resolve_precision("fp8", "openvino")
    assert Derainer(ckpt, backend="torch").precision == "f32"
    if "openvino" in INSTALLED:
        assert Derainer(ckpt, backend="openvino").precision == "f32"
        native["bf16"] = True
        fast = Derainer(ckpt, backend="openvino")
        assert fast.precision == "bf16"
        assert fast._backend_rain.config["INFERENCE_PRECISION_HINT"] == "bf16"


def test_cli_precision_defaults_auto_for_derain_and_f32_for_eval():
    from memderain.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["derain", "x.png", "-o", "out"]).precision == "auto"
    assert parser.parse_args(["serve"]).precision == "auto"
    assert parser.parse_args(["eval", "--data", "d"]).precision == "f32"


def test_a_backend_that_fails_to_load_is_one_line(monkeypatch, ckpt):
    from memderain import export

    def broken(*args, **kwargs):
        raise RuntimeError("unsupported CPU\nlong native trace...")

    monkeypatch.setattr(export, "onnx_bytes", broken)
    # no disk cache: an identical tiny model exported by an earlier test must not be found
    monkeypatch.setenv("MEMDERAIN_CACHE_DIR", "off")
    with pytest.raises(MemderainError, match=r"backend onnxruntime failed .*unsupported CPU\)"):
        backends.build_rain_fn(MemDerain(ModelConfig(channels=8, num_items=4)), "onnxruntime")


def test_export_and_compiled_models_are_cached_on_disk(monkeypatch, tmp_path):
    """A second process starts warm: the ONNX export comes from the cache (the exporter is not
    called) and OpenVINO finds its compiled blob; outputs are identical. Off means nothing is
    written; an empty (damaged) entry is exported again."""
    pytest.importorskip("openvino")
    from memderain import export
    from memderain.inference.disk_cache import model_key

    model = MemDerain(ModelConfig(channels=8, num_items=4)).eval()
    x = torch.rand(1, 3, 24, 40) * 2 - 1
    monkeypatch.setenv("MEMDERAIN_CACHE_DIR", str(tmp_path / "c"))
    first = backends.build_rain_fn(model, "openvino", precision="f32")(x)
    onnx_file = tmp_path / "c" / "onnx" / f"{model_key(model)}.onnx"
    assert onnx_file.stat().st_size > 1000
    blobs = [p for p in (tmp_path / "c" / "openvino").rglob("*") if p.is_file()]
    assert blobs, "OpenVINO wrote no compiled model"

    def no_export(*a, **k):
        raise AssertionError("exported again")

    monkeypatch.setattr(export, "onnx_bytes", no_export)
    again = backends.build_rain_fn(model, "openvino", precision="f32")(x)
    torch.testing.assert_close(again, first, rtol=0, atol=0)
    monkeypatch.undo()

    other = MemDerain(ModelConfig(channels=8, num_items=4))
    assert model_key(other) != model_key(model)  # other weights, other entry
    onnx_file.write_bytes(b"")  # damaged: exported again, and the output is unchanged
    monkeypatch.setenv("MEMDERAIN_CACHE_DIR", str(tmp_path / "c"))
    torch.testing.assert_close(backends.build_rain_fn(model, "openvino")(x), first)
    assert onnx_file.stat().st_size > 1000
    monkeypatch.setenv("MEMDERAIN_CACHE_DIR", "off")
    monkeypatch.chdir(tmp_path)
    backends.build_rain_fn(other.eval(), "openvino")(x)
    assert not [p for p in tmp_path.rglob("*") if model_key(other) in p.name]
