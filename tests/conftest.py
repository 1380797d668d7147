"""Shared fixtures: deterministic seeds, a tiny model config, and where ../shared data lives."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from memderain.config import ModelConfig

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


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
