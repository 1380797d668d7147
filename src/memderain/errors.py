"""Exceptions that the CLI turns into a one-line message and a non-zero exit (no traceback)."""


class MemderainError(Exception):
    """Base class of every user-facing error (bad input, bad config, bad checkpoint...)."""
