"""Checkpoint format: weights + memory items + model config + package version.

A checkpoint is a plain dict that ``torch.load(path, weights_only=True)`` can read::

    {
      "format": "memderain.checkpoint",   # marker, checked on load
      "format_version": 1,
      "memderain_version": "0.1.0",
      "model_config": {...},              # ModelConfig as a dict
      "state_dict": {...},                # weights AND the memory items buffer ("memory.items")
      "meta": {...},                      # free-form: recipe, steps, wall time, ...
      "train_state": {...}                # optional: optimiser/scheduler/RNG/step for resuming
    }

Files are written atomically (temporary file in the same folder, then ``os.replace``).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from memderain.atomicfile import normal_permissions
from memderain.config import ConfigError, ModelConfig, config_from_dict, config_to_dict
from memderain.errors import MemderainError
from memderain.version import __version__

CHECKPOINT_FORMAT = "memderain.checkpoint"
FORMAT_VERSION = 1
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DDP and torch.compile wrappers


class CheckpointError(MemderainError, RuntimeError):
    """The file is missing, unreadable, not a memderain checkpoint, or does not fit the model."""


def unwrap_model(model: nn.Module) -> nn.Module:
    """Return the bare module under DDP (``.module``) and torch.compile (``._orig_mod``)."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def clean_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip DDP / torch.compile prefixes and move tensors to CPU."""
    out = {}
    for key, value in state_dict.items():
        changed = True
        while changed:
            changed = False
            for prefix in _WRAPPER_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix) :], True
        out[key] = value.detach().cpu()
    return out


def make_checkpoint(
    model: nn.Module,
    meta: dict[str, Any] | None = None,
    train_state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the checkpoint dict for ``model`` (a MemDerain, possibly wrapped)."""
    bare = unwrap_model(model)
    config = getattr(bare, "config", None)
    if not isinstance(config, ModelConfig):
        raise CheckpointError("model has no ModelConfig; is it a memderain MemDerain?")
    ckpt: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "memderain_version": __version__,
        "model_config": config_to_dict(config),
        "state_dict": clean_state_dict(bare.state_dict()),
        "meta": dict(meta or {}),
    }
    if train_state is not None:
        ckpt["train_state"] = train_state
    return ckpt


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """torch.save to a temporary file beside ``path`` then rename over it (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
        normal_permissions(tmp)  # mkstemp makes 0600; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    meta: dict[str, Any] | None = None,
    train_state: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (weights + memory items + config + version) to ``path`` atomically."""
    return atomic_torch_save(make_checkpoint(model, meta, train_state), path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and validate a checkpoint with ``torch.load(weights_only=True)``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for non-checkpoint files
        raise CheckpointError(
            f"{path}: not a readable memderain checkpoint ({exc.__class__.__name__})"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a memderain checkpoint (missing format marker)")
    if int(ckpt.get("format_version", -1)) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {ckpt['format_version']} is newer than this "
            f"memderain ({__version__}) understands; upgrade memderain"
        )
    for key in ("model_config", "state_dict"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: checkpoint has no {key!r}")
    return ckpt


# ModelConfig fields that only constrain the output (B, R_hat): no weight depends on them
OUTPUT_CONSTRAINT_FIELDS = ("nonnegative_rain", "clamp_background")


def config_from_checkpoint(ckpt: dict[str, Any]) -> ModelConfig:
    try:
        return config_from_dict(ModelConfig, ckpt["model_config"], "model_config")
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint model_config invalid: {exc}") from None


def load_state_into(
    model: nn.Module,
    ckpt: dict[str, Any],
    source: str = "checkpoint",
    ignore_fields: tuple[str, ...] = (),
) -> None:
    """Load weights and memory items into ``model``, with a one-line error on any mismatch.

    ``ignore_fields`` names model config fields allowed to differ (e.g. the output constraints
    of :data:`OUTPUT_CONSTRAINT_FIELDS`, on which no weight depends)."""
    bare = unwrap_model(model)
    expected = getattr(bare, "config", None)
    stored = config_from_checkpoint(ckpt)
    if isinstance(expected, ModelConfig):
        stored = dataclasses.replace(stored, **{k: getattr(expected, k) for k in ignore_fields})
        if expected != stored:
            diffs = [
                f"{k}: model={v!r} checkpoint={getattr(stored, k)!r}"
                for k, v in config_to_dict(expected).items()
                if getattr(stored, k) != v
            ]
            raise CheckpointError(f"{source}: model config mismatch ({'; '.join(diffs)})")
    state = clean_state_dict(ckpt["state_dict"])
    result = bare.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{source}: weights do not fit the model (missing {list(result.missing_keys)[:4]}, "
            f"unexpected {list(result.unexpected_keys)[:4]})"
        )


def model_from_checkpoint(
    path_or_ckpt: str | Path | dict[str, Any], map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the MemDerain stored in a checkpoint (in eval mode). Returns (model, ckpt)."""
    from memderain.model.derainer import MemDerain

    if isinstance(path_or_ckpt, dict):
        ckpt, source = path_or_ckpt, "checkpoint"
    else:
        ckpt, source = load_checkpoint(path_or_ckpt, map_location), str(path_or_ckpt)
    model = MemDerain(config_from_checkpoint(ckpt))
    try:
        load_state_into(model, ckpt, source)
    except RuntimeError as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{source}: weights do not fit the model ({str(exc).splitlines()[0]})") from None
    return model.eval(), ckpt
