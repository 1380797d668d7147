"""memderain: memory-guided single-image de-raining (Cho, Kim, Sohn, IEEE TIP 2022).

Public API::

    import memderain
    model = memderain.load_model()          # shipped default weights (or a path)
    clean = model.derain(image)             # PIL image / uint8 HxWx3 array / float tensor

    from memderain.training.adapt import adapt   # fine-tune on a static-camera rain clip

The names below are imported on first use (PEP 562), so ``import memderain`` and the
command line's ``--help`` do not import torch (about 1.5 s).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from memderain.errors import MemderainError
from memderain.version import __version__

# public name -> module that defines it
_LAZY = {
    "CheckpointError": "memderain.checkpoint",
    "load_checkpoint": "memderain.checkpoint",
    "save_checkpoint": "memderain.checkpoint",
    "ModelConfig": "memderain.config",
    "Derainer": "memderain.inference.predictor",
    "load_model": "memderain.inference.predictor",
    "MemDerain": "memderain.model",
    "MemoryModule": "memderain.model",
    "build_model": "memderain.model",
    "count_parameters": "memderain.model",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from memderain.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from memderain.config import ModelConfig
    from memderain.inference.predictor import Derainer, load_model
    from memderain.model import MemDerain, MemoryModule, build_model, count_parameters


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'memderain' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "CheckpointError",
    "Derainer",
    "MemDerain",
    "MemderainError",
    "MemoryModule",
    "ModelConfig",
    "__version__",
    "build_model",
    "count_parameters",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
]
