"""int8 inference (NNCF post-training quantisation, issue 23): the calibration scenes, when
``auto`` may choose int8, and the backend checks of ``int8_checks.py`` in a fresh process."""

from __future__ import annotations

import numpy as np
import pytest

from int8_checks import needs_int8  # the checks this file runs in a fresh process
from memderain.errors import MemderainError
from memderain.inference import backends, int8


def test_calibration_scenes_are_seeded_rainy_and_in_range():
    a = int8.calibration_inputs(n=4, size=64, seed=1)
    b = int8.calibration_inputs(n=4, size=64, seed=1)
    c = int8.calibration_inputs(n=4, size=64, seed=2)
    assert len(a) == 4 and a[0].shape == (1, 3, 64, 64) and a[0].dtype == np.float32
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    stack = np.concatenate(a)
    assert stack.min() >= -1.0 and stack.max() <= 1.0
    background = int8.dead_leaves(64, np.random.default_rng(0))
    # dead leaves: flat discs with sharp borders -> many small steps, some large ones
    steps = np.abs(np.diff(background.mean(axis=2), axis=1))
    assert background.std() > 0.05 and (steps > 0.1).mean() > 0.005 and np.median(steps) < 0.03


def test_auto_picks_int8_only_for_certified_weights(monkeypatch):
    monkeypatch.setattr(backends, "native_bf16", lambda: True)
    monkeypatch.setattr(int8, "nncf_installed", lambda: True)
    good = {"int8": {"max_loss_db": 0.01, "calibration": int8.CALIBRATION_ID}}
    assert backends.resolve_precision("auto", "openvino", good) == "int8"
    assert backends.resolve_precision("auto", "onnxruntime", good) == "f32"
    assert backends.resolve_precision("auto", "openvino", {}) == "bf16"
    too_lossy = {"int8": {"max_loss_db": 0.2, "calibration": int8.CALIBRATION_ID}}
    assert backends.resolve_precision("auto", "openvino", too_lossy) == "bf16"
    stale = {"int8": {"max_loss_db": 0.01, "calibration": "an-older-recipe"}}
    assert backends.resolve_precision("auto", "openvino", stale) == "bf16"
    monkeypatch.setattr(int8, "nncf_installed", lambda: False)
    assert backends.resolve_precision("auto", "openvino", good) == "bf16"
    with pytest.raises(MemderainError, match=r"memderain\[int8\]"):
        backends.resolve_precision("int8", "openvino")
    with pytest.raises(MemderainError, match="needs --backend openvino"):
        backends.resolve_precision("int8", "torch")


@needs_int8
def test_int8_backend_checks_in_a_fresh_process():
    """tests/int8_checks.py: int8 agrees with f32 on odd sizes, grey, RGBA and tiles and runs
    u8/i8 convolutions; the int8 model is cached and reused; the CLI derains in int8 and
    `info` names it. Run as its own pytest process: in an earlier session, compiling int8
    models in the suite's process after dozens of other OpenVINO models segfaulted (not
    reproduced since the int8 certificate came back; issue 23's notes)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).resolve().parent
    res = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                          str(here / "int8_checks.py")], check=False, capture_output=True,
                         text=True, cwd=here.parent, env={**os.environ})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert " passed" in res.stdout
