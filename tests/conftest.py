"""Shared fixtures: deterministic seeds, a tiny model config, and where ../shared data lives."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from memderain.config import ModelConfig

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """The exported / compiled network cache of a test session lives in its own folder, never
    the user's ~/.cache (tests that check the cache point it elsewhere themselves)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MEMDERAIN_CACHE_DIR", str(tmp_path_factory.mktemp("memderain-cache")))
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def restore_torch_globals():
    """The trainer sets the thread count and deterministic mode for the process; modules that
    train use this fixture (autouse there) so each test starts from the same torch state."""
    saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled())
    yield
    torch.set_num_threads(saved[0])
    torch.use_deterministic_algorithms(saved[1], warn_only=saved[2])


@pytest.fixture
def tiny_config() -> ModelConfig:
    """A narrow network (C=8, M=4) so tests run fast on 2 CPU cores."""
    return ModelConfig(channels=8, num_items=4)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA; this machine has none")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
