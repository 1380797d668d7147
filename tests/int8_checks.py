"""int8 backend checks (issue 23), run by tests/test_int8.py in a fresh process (see there why):
the same checks as f32 (odd sizes, grey, RGBA, tiles) within a stated tolerance, the on-disk
cache, and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memderain.checkpoint import model_from_checkpoint, save_checkpoint
from memderain.cli import main
from memderain.config import ModelConfig
from memderain.inference import backends, int8
from memderain.inference.predictor import Derainer
from memderain.model import MemDerain

needs_int8 = pytest.mark.skipif(
    not (backends.is_installed("openvino") and int8.nncf_installed()),
    reason="OpenVINO and NNCF are not installed (pip install memderain[int8])")

# int8 vs f32 of the same network, in [0, 1] image units: a few grey levels
TOLERANCE = 6 / 255


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(3)
    model = MemDerain(ModelConfig(channels=8, num_items=4, nonnegative_rain=True))
    with torch.no_grad():
        model.memory.items.copy_(torch.nn.functional.normalize(torch.randn(4, 8), dim=1))
    return save_checkpoint(tmp_path_factory.mktemp("w") / "tiny.pt", model)


@needs_int8
def test_int8_matches_f32_on_odd_sizes_grey_rgba_and_tiles(ckpt):
    ref = Derainer(ckpt, backend="openvino", precision="f32")
    q = Derainer(ckpt, backend="openvino", precision="int8")
    assert q.precision == "int8"
    x = torch.rand(2, 3, 37, 53, generator=torch.Generator().manual_seed(1))
    b_ref, r_ref = ref.derain_tensor(x)
    b, _ = q.derain_tensor(x)
    assert float(r_ref.abs().max()) > 1e-3
    assert float((b - b_ref).abs().max()) < TOLERANCE
    assert float((b - b_ref).abs().mean()) < TOLERANCE / 4
    rng = np.random.default_rng(2)
    grey = rng.integers(0, 256, (45, 61), dtype=np.uint8)
    assert np.abs(q.derain(grey).astype(int) - ref.derain(grey).astype(int)).max() <= 6
    rgba = rng.random((50, 70, 4), dtype=np.float32)
    out = q.derain(rgba)
    assert np.abs(out[..., :3] - ref.derain(rgba)[..., :3]).max() < TOLERANCE
    assert np.array_equal(out[..., 3], rgba[..., 3])
    big = torch.rand(1, 3, 130, 301, generator=torch.Generator().manual_seed(4))
    tiled = q.derain_tensor(big, tile=64)[0]
    assert float((tiled - ref.derain_tensor(big, tile=64)[0]).abs().max()) < TOLERANCE
    # and it is quantised: the compiled model runs convolutions in u8/i8
    compiled = q._backend_rain.compiled_for((1, 3, 64, 64))
    kinds = {op.get_rt_info()["runtimePrecision"].astype(str)
             for op in compiled.get_runtime_model().get_ops()
             if op.get_rt_info()["layerType"].astype(str) == "Convolution"}
    assert kinds & {"u8", "i8"}, kinds


CACHE_CHECK = """
import sys
import torch
from memderain.config import ModelConfig
from memderain.inference import backends, int8
from memderain.inference.disk_cache import model_key
from memderain.model import MemDerain
from pathlib import Path

torch.manual_seed(0)
model = MemDerain(ModelConfig(channels=8, num_items=4)).eval()
x = torch.rand(1, 3, 24, 40) * 2 - 1
first = backends.build_rain_fn(model, "openvino", precision="int8")(x)
folder = Path(sys.argv[1]) / "int8"
xml = list(folder.glob(f"{model_key(model)}-{int8.CALIBRATION_ID}-*.xml"))
assert len(xml) == 1 and xml[0].with_suffix(".bin").stat().st_size > 1000, xml
assert not [p for p in folder.iterdir() if ".tmp" in p.name]

def no_quantise(*a, **k):
    raise AssertionError("quantised again")

int8.quantize = no_quantise
again = backends.build_rain_fn(model, "openvino", precision="int8")(x)
assert torch.equal(again, first)
print("OK")
"""


@needs_int8
def test_int8_model_is_cached_on_disk_and_reused(tmp_path):
    """The int8 model is written to the cache once and read back (no second quantisation,
    identical output). Run in a fresh process: in an earlier session this check segfaulted in
    a process that had compiled dozens of OpenVINO models (not reproduced since; issue 23)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "MEMDERAIN_CACHE_DIR": str(tmp_path / "c")}
    res = subprocess.run([sys.executable, "-c", CACHE_CHECK, str(tmp_path / "c")], env=env,
                         check=False, capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip().endswith("OK"), res.stderr[-2000:]


@needs_int8
def test_cli_derains_in_int8_and_info_names_it(ckpt, tmp_path, capsys):
    from PIL import Image

    img = (np.random.default_rng(0).random((40, 56, 3)) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "in.png")
    assert main(["derain", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"),
                 "--weights", str(ckpt), "--backend", "openvino", "--precision", "int8"]) == 0
    assert np.asarray(Image.open(tmp_path / "out.png")).shape == (40, 56, 3)
    capsys.readouterr()
    assert main(["info", "--weights", str(ckpt), "--backend", "openvino"]) == 0
    assert ", int8 " not in capsys.readouterr().out  # uncertified: auto stays float
    model, _ = model_from_checkpoint(ckpt)
    meta = {"int8": {"max_loss_db": 0.0, "calibration": int8.CALIBRATION_ID}}
    path = save_checkpoint(tmp_path / "certified.pt", model, meta=meta)
    assert main(["info", "--weights", str(path), "--backend", "openvino"]) == 0
    assert ", int8 " in capsys.readouterr().out
