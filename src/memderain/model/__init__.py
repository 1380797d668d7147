"""The network of the paper: encoder -> memory -> decoder (Fig. 2, Table I)."""

from memderain.model.build import MODEL_PRESETS, build_model, count_parameters
from memderain.model.derainer import DerainOutput, MemDerain, split_pair
from memderain.model.memory import MemoryModule

__all__ = [
    "MODEL_PRESETS",
    "DerainOutput",
    "MemDerain",
    "MemoryModule",
    "build_model",
    "count_parameters",
    "split_pair",
]
