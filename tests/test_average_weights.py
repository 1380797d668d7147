"""scripts/average_weights.py: the mean of several snapshots of one run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from memderain.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from memderain.config import ModelConfig
from memderain.model import build_model

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "average_weights.py"


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)],
                          capture_output=True, text=True, check=False)


def test_average_is_the_mean_with_unit_memory_items(tmp_path):
    torch.manual_seed(0)
    paths = []
    for k in range(3):
        model = build_model(ModelConfig(channels=8, num_items=4))
        save_checkpoint(tmp_path / f"s{k}.pt", model, meta={"steps": 100 * k})
        paths.append(tmp_path / f"s{k}.pt")
    res = _run(*paths, "-o", tmp_path / "avg.pt")
    assert res.returncode == 0, res.stderr
    avg = load_checkpoint(tmp_path / "avg.pt")
    ckpts = [load_checkpoint(p) for p in paths]
    key = next(k for k in avg["state_dict"] if k.endswith("weight"))
    mean = sum(c["state_dict"][key] for c in ckpts) / 3
    assert torch.allclose(avg["state_dict"][key], mean, atol=1e-6)
    items = avg["state_dict"]["memory.items"]
    assert torch.allclose(items.norm(dim=-1), torch.ones(4), atol=1e-5)
    assert avg["meta"]["averaged_steps"] == [0, 100, 200]
    model, _ = model_from_checkpoint(tmp_path / "avg.pt")  # loads as an ordinary model
    assert model.config.channels == 8
    again = _run(*paths, "-o", tmp_path / "avg.pt")  # never overwrites unless asked
    assert again.returncode == 1 and "exists" in again.stderr


def test_average_refuses_checkpoints_of_other_models(tmp_path):
    save_checkpoint(tmp_path / "a.pt", build_model(ModelConfig(channels=8, num_items=4)))
    save_checkpoint(tmp_path / "b.pt", build_model(ModelConfig(channels=4, num_items=4)))
    res = _run(tmp_path / "a.pt", tmp_path / "b.pt", "-o", tmp_path / "avg.pt")
    assert res.returncode == 1 and res.stderr.startswith("error:")
    assert "Traceback" not in res.stderr and not (tmp_path / "avg.pt").exists()
