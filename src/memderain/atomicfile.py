"""Atomic output files: write to a temporary file beside the target, then ``os.replace``.

A reader never sees a half-written file, an interrupted run leaves the old file (if any)
untouched, and an existing output is kept unless ``overwrite`` is set.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from memderain.errors import MemderainError


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def normal_permissions(path: str | Path) -> None:
    """Give a ``mkstemp`` file (0600) the permissions of an ordinary new file (0666 & ~umask)."""
    os.chmod(path, 0o666 & ~_umask())


def check_new_output(path: str | Path, overwrite: bool = False) -> Path:
    """Raise if ``path`` exists and ``overwrite`` is false; create its parent folder."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise MemderainError(f"{path} exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def atomic_output(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path (same folder, same extension) that becomes ``path`` on success.

    The temporary file exists (empty) when yielded; on an exception it is removed and
    ``path`` is left as it was. The result gets the usual permissions (0666 & ~umask).
    """
    path = check_new_output(path, overwrite)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}",
                               dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        normal_permissions(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
