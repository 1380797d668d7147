"""Train state for exact resuming, stored in the memderain checkpoint format.

``last.pt`` / ``best.pt`` are ordinary memderain checkpoints (weights + memory items + model
config, loadable by ``memderain.load_model``) with an extra ``train_state`` that
``torch.load(weights_only=True)`` can read: only tensors, numbers, strings, lists and dicts.

    train_state = {
      "step": int, "epoch": int, "batches_in_epoch": int,   # where the data stream stands
      "optimizer": Adam state_dict, "scheduler": LambdaLR state_dict,
      "scaler": GradScaler state_dict or {},
      "rng": {"torch": ByteTensor, "cuda": [ByteTensor...], "numpy": {...}, "python": [...]},
      "best_psnr": float, "experiment": resolved ExperimentConfig dict,
    }
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from memderain.checkpoint import CheckpointError, load_checkpoint, load_state_into, save_checkpoint


def rng_state() -> dict[str, Any]:
    """Python, numpy, torch (and CUDA) global RNG states as weights_only-safe objects."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "numpy": {
            "name": str(np_state[0]),
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": [int(py_version), [int(v) for v in py_internal], py_gauss],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved (CUDA states only if the device count matches)."""
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
    n = state["numpy"]
    np.random.set_state(
        (n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def save_train_checkpoint(
    path: str | Path, model: nn.Module, train_state: dict[str, Any], meta: dict[str, Any]
) -> Path:
    """Atomic save of weights + memory + config + ``train_state`` (rank 0 only)."""
    return save_checkpoint(path, model, meta=meta, train_state=train_state)


def load_train_checkpoint(path: str | Path, model: nn.Module) -> dict[str, Any]:
    """Load weights and memory items into ``model`` and return the checkpoint's train_state."""
    ckpt = load_checkpoint(path)
    if "train_state" not in ckpt:
        raise CheckpointError(f"{path}: has no train_state (a weights-only checkpoint cannot resume)")
    load_state_into(model, ckpt, str(path))
    return ckpt["train_state"]
