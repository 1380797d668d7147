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


class OutputError(MemderainError, OSError):
    """An output cannot be written there (callers that catch OSError still catch it)."""


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


def check_writable(path: str | Path, *, folder: bool = False, name: str | None = None) -> Path:
    """Raise :class:`MemderainError` (one line naming ``name``, default ``path``) unless the
    file ``path`` (``folder=True``: files inside the folder ``path``) can be created there.

    Meant for the start of a command, before any work: the nearest folder at or above the
    target that exists must be a folder in which a file can be made (a probe file is created
    and removed; nothing else is created). Missing folders below it are created later."""
    path = Path(path)
    name = name or str(path)
    if not folder and path.is_dir():
        raise MemderainError(f"{name}: is a folder; name a file")
    if folder and path.exists() and not path.is_dir():
        raise MemderainError(f"{name}: exists and is not a folder")
    probe = path if folder else path.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{name}: cannot write there ({probe} is a file, not a folder)")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".memderain-write-check.", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise OutputError(f"{name}: cannot write there ({exc.strerror or exc})") from None
    return path


@contextmanager
def atomic_output(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path (same folder, same extension) that becomes ``path`` on success.

    The temporary file exists (empty) when yielded; on an exception it is removed and
    ``path`` is left as it was. The result gets the usual permissions (0666 & ~umask).
    """
    path = Path(path)
    try:  # errors name ``path``, never the hidden temporary file
        check_new_output(path, overwrite)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}",
                                   dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
    os.close(fd)
    try:
        yield Path(tmp)
        normal_permissions(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
