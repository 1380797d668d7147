"""Checkpoint round trip, weights_only safety, and clear errors."""

from __future__ import annotations

import pytest
import torch

from memderain.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_state_into,
    model_from_checkpoint,
    save_checkpoint,
)
from memderain.config import ModelConfig
from memderain.model import MemDerain
from memderain.version import __version__


def test_round_trip_keeps_weights_memory_config_version(tmp_path, tiny_config):
    m = MemDerain(tiny_config).train()
    m(torch.rand(2, 3, 16, 16))  # updates memory items
    path = save_checkpoint(tmp_path / "a.pt", m, meta={"steps": 3})
    raw = torch.load(path, weights_only=True)  # must be weights_only-safe
    assert raw["memderain_version"] == __version__ and raw["meta"]["steps"] == 3
    m2, _ = model_from_checkpoint(path)
    assert m2.config == tiny_config and not m2.training
    assert torch.equal(m2.memory.items, m.memory.items)
    x = torch.rand(1, 3, 16, 16)
    m.eval()
    assert torch.equal(m(x).background, m2(x).background)


def test_wrapped_prefixes_are_stripped(tmp_path, tiny_config):
    m = MemDerain(tiny_config)
    wrapped = torch.nn.Module()
    wrapped.module = m  # like DDP
    path = save_checkpoint(tmp_path / "w.pt", wrapped)
    assert all(not k.startswith("module.") for k in torch.load(path, weights_only=True)["state_dict"])


def test_non_checkpoint_files_give_clear_errors(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a readable memderain checkpoint"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="not a memderain checkpoint"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_mismatched_config_is_reported(tmp_path, tiny_config):
    path = save_checkpoint(tmp_path / "a.pt", MemDerain(tiny_config))
    other = MemDerain(ModelConfig(channels=8, num_items=6))
    with pytest.raises(CheckpointError, match="num_items"):
        load_state_into(other, load_checkpoint(path))


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path, tiny_config, monkeypatch):
    save_checkpoint(tmp_path / "a.pt", MemDerain(tiny_config))
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]
    before = (tmp_path / "a.pt").read_bytes()

    def crash_mid_write(obj, fh, *args, **kwargs):  # a kill / full disk halfway through
        fh.write(before[: len(before) // 2])
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", crash_mid_write)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(tmp_path / "a.pt", MemDerain(tiny_config))
    assert (tmp_path / "a.pt").read_bytes() == before  # the old checkpoint survives intact
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]  # and no half-written temp file
