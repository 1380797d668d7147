"""Shipped model weights (package data). See MODEL_CARD.md for how they were trained."""

from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent
DEFAULT_WEIGHTS_NAME = "memderain_default.pt"
DEFAULT_RECIPE_NAME = "memderain_default.yaml"


def default_weights_path() -> Path | None:
    """Path of the shipped default checkpoint, or None while no default model ships."""
    path = WEIGHTS_DIR / DEFAULT_WEIGHTS_NAME
    return path if path.is_file() else None
