"""Single source of the package version (read by pyproject.toml and stored in checkpoints)."""

__version__ = "0.1.0"
