"""16-bit-per-channel PNG support that Pillow lacks.

Pillow opens 16-bit RGB / RGBA / grey+alpha PNGs as 8-bit images (it keeps only the high
byte of every sample) and cannot write them. This module

* decodes them losslessly by letting Pillow's own PNG decoder (inflate + row un-filtering)
  run with a different "raw mode": once for the high bytes (normal decode) and once reading
  the low bytes (``RGB;16L`` interprets the big-endian pairs the other way round), or, for
  grey+alpha (4 bytes per pixel), reading all four bytes at once as ``RGBA``;
* encodes them with a small vectorised PNG writer (Paeth filter, zlib), in row blocks so
  memory stays bounded for large photos.

Grey 16-bit PNGs (``I;16``) are handled by Pillow itself; they are also written here so that
every 16-bit write takes one code path.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (grey, grey+A, RGB, RGBA)
_ROWS_PER_BLOCK = 256


def _rawmode(im: Image.Image) -> str | None:
    tile = getattr(im, "tile", None)
    if im.format != "PNG" or not tile or len(tile) != 1:
        return None
    args = tile[0].args
    return args if isinstance(args, str) else (args[0] if args else None)


def is_png16_color(im: Image.Image) -> bool:
    """True for an opened (not yet loaded) 16-bit RGB, RGBA or grey+alpha PNG."""
    return _rawmode(im) in ("RGB;16B", "RGBA;16B", "LA;16B")


def decode_png16(path, im: Image.Image) -> np.ndarray:
    """All samples of a 16-bit colour/grey+alpha PNG as uint16 (H, W, C), C = 2, 3 or 4.

    ``im`` is the opened, not yet loaded image of ``path`` (used to read the header only).
    """
    rawmode = _rawmode(im)
    if rawmode == "LA;16B":  # 4 bytes per pixel: read them verbatim as an 8-bit RGBA image
        raw = _load_with_rawmode(path, "RGBA").astype(np.uint16)
        return np.stack([raw[..., 0] * 256 + raw[..., 1], raw[..., 2] * 256 + raw[..., 3]], -1)
    high = _load_with_rawmode(path, rawmode).astype(np.uint16)
    low = _load_with_rawmode(path, rawmode.replace(";16B", ";16L")).astype(np.uint16)
    return high * 256 + low


def _load_with_rawmode(path, rawmode: str) -> np.ndarray:
    with Image.open(path) as im:
        tile = im.tile[0]
        im.tile = [tile._replace(args=rawmode)]
        im.load()
        return np.asarray(im)


def _paeth_filter(block: np.ndarray, prev: np.ndarray, bpp: int) -> np.ndarray:
    """PNG filter type 4 applied to rows of bytes ``block`` (R, L); ``prev`` is the row above."""
    x = block.astype(np.int16)
    up = np.concatenate([prev[None].astype(np.int16), x[:-1]], axis=0)
    left = np.zeros_like(x)
    left[:, bpp:] = x[:, :-bpp]
    upleft = np.zeros_like(x)
    upleft[:, bpp:] = up[:, :-bpp]
    p = left + up - upleft
    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
    pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
    out = np.empty((x.shape[0], x.shape[1] + 1), np.uint8)
    out[:, 0] = 4
    out[:, 1:] = ((x - pred) & 0xFF).astype(np.uint8)
    return out


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png16(samples: np.ndarray, icc_profile: bytes | None = None, level: int = 6) -> bytes:
    """PNG file bytes for uint16 ``samples`` of shape (H, W) or (H, W, C), C in 1..4."""
    arr = samples if samples.ndim == 3 else samples[..., None]
    h, w, c = arr.shape
    if c not in _COLOR_TYPE or arr.dtype != np.uint16:
        raise ValueError(
            f"encode_png16 needs uint16 (H, W, 1..4), got {samples.dtype} {samples.shape}"
        )
    rows = np.ascontiguousarray(arr.astype(">u2")).view(np.uint8).reshape(h, w * c * 2)
    parts = [
        PNG_SIGNATURE,
        _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, _COLOR_TYPE[c], 0, 0, 0)),
    ]
    if icc_profile:
        parts.append(_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(icc_profile)))
    comp = zlib.compressobj(level)
    idat = []
    prev = np.zeros(rows.shape[1], np.uint8)
    for start in range(0, h, _ROWS_PER_BLOCK):
        block = rows[start : start + _ROWS_PER_BLOCK]
        idat.append(comp.compress(_paeth_filter(block, prev, 2 * c).tobytes()))
        prev = block[-1]
    idat.append(comp.flush())
    parts += [_chunk(b"IDAT", b"".join(idat)), _chunk(b"IEND", b"")]
    return b"".join(parts)
