"""Named model variants (a plain dict, no registry magic) and the builder."""

from __future__ import annotations

from torch import nn

from memderain.config import ModelConfig
from memderain.model.derainer import MemDerain

MODEL_PRESETS: dict[str, ModelConfig] = {
    "paper": ModelConfig(),  # Table I: C=64, M=20, memory on
    "paper-c32": ModelConfig(channels=32),  # Sec. III-E text: C=32
    "no-memory": ModelConfig(use_memory=False),  # B_a / B_c backbone (Table IV)
}


def build_model(config: ModelConfig | str | None = None) -> MemDerain:
    """Build :class:`MemDerain` from a config or the name of a preset in MODEL_PRESETS."""
    if isinstance(config, str):
        if config not in MODEL_PRESETS:
            raise ValueError(f"unknown model preset {config!r}; choose from {sorted(MODEL_PRESETS)}")
        config = MODEL_PRESETS[config]
    return MemDerain(config)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; memory items are buffers and are not counted."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
