"""On-disk cache of the exported and compiled network, so a second run starts warm (issue 23).

A one-photo ``memderain derain`` otherwise pays, in every process, the in-memory ONNX export
(about 1 s) and OpenVINO's compilation for each new input shape (about 1.4 s at 1000x1000).
Both are cached under the user's cache folder, keyed by what decides them:

* ``<cache>/onnx/<key>.onnx``: the exported network, key = SHA-256 of the weights, the model
  config, the memderain, torch and exporter versions;
* ``<cache>/openvino/<key>-<precision>/``: OpenVINO's own model cache (``CACHE_DIR``), which
  keys each compiled blob by the reshaped model (so by input shape) and the compile options;
* ``<cache>/int8/<key>-<calibration id>-nncf<version>.xml|.bin``: the int8 model quantised
  with NNCF (:mod:`memderain.inference.int8`), about 10 s to build.

The folder is ``$MEMDERAIN_CACHE_DIR``, else ``$XDG_CACHE_HOME/memderain``, else
``~/.cache/memderain``; ``MEMDERAIN_CACHE_DIR=off`` disables it. The cache is never required:
a folder that cannot be written, or a damaged entry, falls back to the in-memory path.
Concurrent runs are safe: files are written to a temporary name and renamed into place.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import torch

from memderain.atomicfile import atomic_output
from memderain.version import __version__

CACHE_ENV = "MEMDERAIN_CACHE_DIR"
_OFF = ("", "0", "off", "none", "false")


def cache_root() -> Path | None:
    """The cache folder, or None when disabled."""
    env = os.environ.get(CACHE_ENV)
    if env is not None:
        return None if env.strip().lower() in _OFF else Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "memderain"


def model_key(model: torch.nn.Module) -> str:
    """SHA-256 (hex, 24 chars) of a model's weights, config and the versions that export it."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    h.update(repr(getattr(model, "config", "")).encode())
    h.update(f"memderain {__version__} torch {torch.__version__}".encode())
    return h.hexdigest()[:24]


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def cached_onnx(key: str, export) -> bytes:
    """ONNX bytes of the model whose :func:`model_key` is ``key``: read from the cache, or
    ``export()`` and store them."""
    root = cache_root()
    if root is None:
        return export()
    path = root / "onnx" / f"{key}.onnx"
    try:
        data = path.read_bytes()
        if data:
            return data
    except OSError:
        pass
    data = export()
    if _writable(path.parent):
        try:  # atomic: another process reads the old file or the new one, never half of it
            with atomic_output(path, overwrite=True) as tmp:
                tmp.write_bytes(data)
        except OSError:
            pass
    return data


def cached_int8_model(key: str, onnx: bytes):
    """The int8 ``openvino.Model`` of the network ``key`` (ONNX bytes ``onnx``): read from the
    cache, or quantised now (:func:`memderain.inference.int8.quantize`) and stored."""
    import importlib.metadata

    import openvino as ov

    from memderain.inference.int8 import CALIBRATION_ID, quantize, read_ir, require_nncf

    require_nncf()
    root = cache_root()
    name = f"{key}-{CALIBRATION_ID}-nncf{importlib.metadata.version('nncf')}"
    xml = None if root is None else root / "int8" / f"{name}.xml"
    if xml is not None and xml.is_file() and xml.with_suffix(".bin").is_file():
        try:
            return read_ir(xml)  # into memory: the cache folder may be deleted meanwhile
        except (RuntimeError, OSError):
            pass  # damaged entry: quantise again and replace it
    where = f"; cached in {xml.parent}" if xml is not None else ""
    print(f"memderain: quantising the network to int8 (once per checkpoint, about 10 s{where})",
          file=sys.stderr, flush=True)
    model = quantize(onnx)
    if xml is not None and _writable(xml.parent):
        tmp = xml.parent / f".{name}.{os.getpid()}.tmp.xml"
        try:  # the .bin first, then the .xml: a reader that sees the .xml finds its .bin
            ov.save_model(model, str(tmp), compress_to_fp16=False)
            os.replace(tmp.with_suffix(".bin"), xml.with_suffix(".bin"))
            os.replace(tmp, xml)
        except (OSError, RuntimeError):
            for leftover in (tmp, tmp.with_suffix(".bin")):
                leftover.unlink(missing_ok=True)
    return model


def openvino_cache_dir(key: str, precision: str) -> str | None:
    """Folder for OpenVINO's ``CACHE_DIR`` of the model ``key`` in ``precision`` (None: no
    cache)."""
    root = cache_root()
    if root is None:
        return None
    folder = root / "openvino" / f"{key}-{precision}"
    return str(folder) if _writable(folder) else None


__all__ = ["CACHE_ENV", "cache_root", "cached_int8_model", "cached_onnx", "model_key",
           "openvino_cache_dir"]
