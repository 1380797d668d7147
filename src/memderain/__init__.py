"""memderain: memory-guided single-image de-raining (Cho, Kim, Sohn, IEEE TIP 2022).

Public API::

    import memderain
    model = memderain.load_model()          # shipped default weights (or a path)
    clean = model.derain(image)             # PIL image / uint8 HxWx3 array / float tensor

    from memderain.training.adapt import adapt   # fine-tune on a static-camera rain clip
"""

from memderain.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from memderain.config import ModelConfig
from memderain.errors import MemderainError
from memderain.inference.predictor import Derainer, load_model
from memderain.model import MemDerain, MemoryModule, build_model, count_parameters
from memderain.version import __version__

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
