"""Image files <-> :class:`ImageData` <-> tensors. The only place inference converts ranges.

Conventions (see docs/DEVELOPING.md):

* :class:`ImageData` ``rgb``: float32 (H, W, 3) in [0, 1]; ``alpha``: float32 (H, W) or None.
  Read with ``integer=True``, 8-bit sources keep their uint8 samples instead (a quarter of
  the memory; what ``memderain derain`` uses, so a 12 MP photo is never held in float).
* tensors at API boundaries: float (N, 3, H, W) in [0, 1] (:func:`rgb_to_tensor01`);
  the network sees [-1, 1] (:func:`to_network` / :func:`from_network`, Sec. III-E).

Reading handles grey (L, LA, I;16), palette (with transparency -> alpha), RGBA, 16-bit PNG
(all colour types, losslessly, see :mod:`memderain.inference.png16`), CMYK/YCbCr (converted to
RGB) and the EXIF orientation tag (pixels are rotated upright, the tag is not kept). Writing
picks the format from the extension, restores the source's grey/colour kind, alpha and bit
depth where the format allows, keeps the ICC profile, and is atomic and non-clobbering.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from memderain.atomicfile import normal_permissions
from memderain.choices import IMAGE_EXTENSIONS  # noqa: F401 - re-exported: what the CLI treats as images
from memderain.errors import MemderainError
from memderain.inference import png16

GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_ALPHA_FORMATS = ("PNG", "WEBP", "TIFF")  # formats that can store the alpha channel
_SIXTEEN_BIT_FORMATS = ("PNG",)
_EXIF_ORIENTATION = 0x0112
_CONVERTED_SPACES = ("CMYK", "LAB", "HSV", "YCbCr")  # read as RGB; their ICC profile is dropped


class ImageReadError(MemderainError, OSError):
    """The file is missing, not an image, or corrupt."""


class ImageWriteError(MemderainError, OSError):
    """The output exists (and overwrite is off), or cannot be written."""


@dataclass(frozen=True, eq=False)
class ImageData:
    """A decoded image plus what is needed to write it back the way it came.

    Attributes:
        rgb: float32 (H, W, 3) in [0, 1], or uint8 (H, W, 3) samples for an 8-bit source
            read with ``integer=True``; grey sources are replicated to three channels.
        alpha: float32 (H, W) in [0, 1] (uint8 samples when ``rgb`` is uint8), or None.
        mode: the source's Pillow mode ("RGB", "L", "I;16", "P", ...), after the PNG 16-bit fix
            ("RGB" / "RGBA" / "LA" with ``bit_depth=16``).
        bit_depth: 8 or 16 bits per sample of the source.
        format: Pillow format name of the source ("PNG", "JPEG", ...) or None.
        icc_profile: the embedded ICC profile bytes, written back unchanged, or None.
        path: the file it was read from, or None.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None = None
    mode: str = "RGB"
    bit_depth: int = 8
    format: str | None = None
    icc_profile: bytes | None = None
    path: Path | None = None

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def is_grey(self) -> bool:
        return self.mode in GREY_MODES

    def replace(self, **changes) -> ImageData:
        """A copy with some fields changed (e.g. ``data.replace(rgb=derained)``)."""
        return dataclasses.replace(self, **changes)


# -- value conversions -----------------------------------------------------------------------
def to_float01(samples: np.ndarray, bit_depth: int) -> np.ndarray:
    """Integer samples of ``bit_depth`` bits -> float32 in [0, 1]."""
    return samples.astype(np.float32) / np.float32((1 << bit_depth) - 1)


def from_float01(values: np.ndarray, bit_depth: int = 8) -> np.ndarray:
    """Float in [0, 1] -> rounded, clipped uint8 (bit_depth 8) or uint16 (bit_depth 16)."""
    top = (1 << bit_depth) - 1
    out = np.clip(np.rint(np.asarray(values, np.float32) * top), 0, top)
    return out.astype(np.uint16 if bit_depth == 16 else np.uint8)


def rgb_to_tensor01(rgb: np.ndarray) -> torch.Tensor:
    """float (H, W, 3) [0, 1] -> float32 tensor (1, 3, H, W) [0, 1].

    No copy for a float32 array: the tensor shares memory with ``rgb`` and is laid out
    channels_last, the layout the network runs fastest in.
    """
    return torch.from_numpy(np.ascontiguousarray(rgb, np.float32)).permute(2, 0, 1)[None]


def tensor01_to_rgb(x: torch.Tensor) -> np.ndarray:
    """float tensor (1, 3, H, W) or (3, H, W) in [0, 1] -> float32 (H, W, 3), clipped to [0, 1]."""
    if x.ndim == 4:
        x = x[0]
    return x.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def to_network(x01: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1], the range the network sees (Sec. III-E)."""
    return x01 * 2.0 - 1.0


def from_network(x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """[-1, 1] -> [0, 1] (in place on ``x`` if ``inplace``; saves a full-image copy)."""
    return x.add_(1.0).mul_(0.5) if inplace else (x + 1.0) * 0.5


def rain_from_network(rain: torch.Tensor) -> torch.Tensor:
    """Rain layer R from network units to [0, 1]-image units: R / 2 (a difference, no offset)."""
    return (rain * 0.5).contiguous()


# -- PIL / numpy <-> ImageData ---------------------------------------------------------------
def apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Rotate/flip an (H, W, ...) array as EXIF orientation 1-8 says (as exif_transpose does)."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(int(orientation))
    return np.ascontiguousarray(op(arr)) if op else arr


def _split(samples: np.ndarray, bit_depth: int,
           integer: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W[, C]) integer samples -> rgb float (H, W, 3), alpha float (H, W) or None; with
    ``integer`` and 8-bit samples, both stay uint8."""
    x = samples if integer and bit_depth == 8 else to_float01(samples, bit_depth)
    if x.ndim == 2:
        x = x[..., None]
    c = x.shape[2]
    alpha = x[..., c - 1].copy() if c in (2, 4) else None
    colour = x[..., :3] if c >= 3 else np.repeat(x[..., :1], 3, axis=2)
    return np.ascontiguousarray(colour), alpha


def pil_to_imagedata(
    im: Image.Image, path: Path | None = None, fmt: str | None = None, integer: bool = False
) -> ImageData:
    """A loaded PIL image -> :class:`ImageData` (no EXIF rotation; :func:`read_image` does it).
    ``integer``: an 8-bit image keeps uint8 samples (see :class:`ImageData`)."""
    mode, bit_depth = im.mode, 8
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        samples, bit_depth = np.clip(np.asarray(im, np.int64), 0, 65535).astype(np.uint16), 16
    elif mode in ("L", "LA", "RGB", "RGBA"):
        samples = np.asarray(im)
    elif mode in ("1", "F"):
        samples = np.asarray(im.convert("L"))
    elif mode == "La":
        samples = np.asarray(im.convert("LA"))
    elif mode in ("PA", "RGBa") or (mode == "P" and "transparency" in im.info):
        samples = np.asarray(im.convert("RGBA"))
    else:  # CMYK, YCbCr, LAB, HSV, RGBX ...
        samples = np.asarray(im.convert("RGB"))
    rgb, alpha = _split(samples, bit_depth, integer)
    # An ICC profile describes the source's colour space: keep it only if we keep that space
    # (a CMYK/LAB profile attached to the RGB output would make viewers show wrong colours).
    icc = im.info.get("icc_profile") if mode not in _CONVERTED_SPACES else None
    return ImageData(rgb, alpha, mode, bit_depth, fmt or im.format, icc, path)


def imagedata_to_samples(
    data: ImageData, grey: bool | None = None, alpha: bool = True, bit_depth: int | None = None
) -> np.ndarray:
    """ImageData -> integer (H, W) / (H, W, 2|3|4) samples (grey = mean of R, G, B)."""
    grey = data.is_grey if grey is None else grey
    bits = data.bit_depth if bit_depth is None else bit_depth
    if data.rgb.dtype == np.uint8:
        if bits != 8:
            data = data.replace(rgb=to_float01(data.rgb, 8), alpha=None if data.alpha is None
                                else to_float01(data.alpha, 8))
        else:  # uint8 samples are written as they are (grey: rounded mean of R, G, B)
            colour = (np.rint(data.rgb.mean(axis=2, keepdims=True, dtype=np.float32))
                      .astype(np.uint8) if grey else data.rgb)
            if alpha and data.alpha is not None:
                colour = np.concatenate([colour, data.alpha[..., None]], axis=2)
            return colour[..., 0] if colour.shape[2] == 1 else colour
    colour = data.rgb.mean(axis=2, keepdims=True) if grey else data.rgb
    planes = [colour]
    if alpha and data.alpha is not None:
        planes.append(data.alpha[..., None])
    out = from_float01(np.concatenate(planes, axis=2), bits)
    return out[..., 0] if out.shape[2] == 1 else out


def imagedata_to_pil(data: ImageData) -> Image.Image:
    """ImageData -> PIL image of the source's kind: L/LA/I;16 for grey, RGB/RGBA for colour.

    PIL has no 16-bit colour mode, so 16-bit colour comes back as 8-bit RGB(A).
    """
    grey16 = data.is_grey and data.bit_depth == 16 and data.alpha is None
    samples = imagedata_to_samples(data, bit_depth=16 if grey16 else 8)
    return Image.fromarray(samples)  # uint16 (H, W) -> I;16; uint8 1/2/3/4 ch -> L/LA/RGB/RGBA


# -- files -----------------------------------------------------------------------------------
def read_image(path: str | Path, *, integer: bool = False) -> ImageData:
    """Decode an image file into :class:`ImageData` (upright, float [0, 1]; with ``integer``,
    8-bit images keep their uint8 samples).

    Raises :class:`ImageReadError` (a MemderainError) naming the file if it is missing, not an
    image or corrupt.
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: file not found")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a folder, not an image file")
    try:
        with Image.open(path) as im:
            fmt, icc = im.format, im.info.get("icc_profile")
            samples = None
            if png16.is_png16_color(im):  # before anything loads the image (getexif may)
                try:
                    samples = png16.decode_png16(path, im)
                except (AttributeError, TypeError, KeyError):  # Pillow internals changed:
                    samples = None  # fall back to Pillow's own 8-bit reading below
            if samples is not None:
                rgb, alpha = _split(samples, 16)
                mode = {2: "LA", 3: "RGB", 4: "RGBA"}[samples.shape[2]]
                data = ImageData(rgb, alpha, mode, 16, fmt, icc, path)
            else:
                im.load()
                data = pil_to_imagedata(im, path, fmt, integer)
            orientation = _orientation(im)
    except MemderainError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file (unrecognised format)") from None
    except Image.DecompressionBombError:
        raise ImageReadError(f"{path}: image too large (Pillow decompression-bomb limit)") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, zlib.error...
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise ImageReadError(f"{path}: not a readable image ({reason})") from None
    if orientation not in (0, 1):
        alpha = None if data.alpha is None else apply_orientation(data.alpha, orientation)
        data = data.replace(rgb=apply_orientation(data.rgb, orientation), alpha=alpha)
    return data


def _orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block must not make the image unreadable
        return 1


def format_for_path(path: str | Path) -> str:
    """Pillow format name for an output file from its extension ('.png' -> 'PNG')."""
    ext = Path(path).suffix.lower()
    fmt = Image.registered_extensions().get(ext)
    if fmt is None or fmt not in Image.SAVE:
        raise ImageWriteError(f"{path}: unknown or unwritable image extension {ext or '(none)'!r}")
    return fmt


def write_image(
    path: str | Path, image: ImageData | np.ndarray, *, overwrite: bool = False, quality: int = 95
) -> Path:
    """Write ``image`` to ``path`` in the format its extension names, atomically.

    ``image`` is an :class:`ImageData` (grey/colour kind, alpha and 16-bit depth of the source are
    kept where the format can store them: alpha in PNG/WebP/TIFF, 16 bits in PNG) or an array
    accepted by :func:`array_to_imagedata`. JPEG is written at ``quality`` with 4:4:4 chroma.
    The file is encoded to a temporary file in the same folder and then moved into place, so a
    crash never leaves a half-written output; an existing file is never replaced unless
    ``overwrite=True`` (:class:`ImageWriteError` otherwise).
    """
    path = Path(path)
    data = image if isinstance(image, ImageData) else array_to_imagedata(image)
    fmt = format_for_path(path)
    if path.is_dir():
        raise ImageWriteError(f"{path}: is a folder")
    if path.exists() and not overwrite:
        raise ImageWriteError(
            f"{path}: already exists (pass overwrite / --overwrite to replace it)"
        )
    keep_alpha = data.alpha is not None and fmt in _ALPHA_FORMATS
    bits = 16 if (data.bit_depth == 16 and fmt in _SIXTEEN_BIT_FORMATS) else 8
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ImageWriteError(f"{path}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            if bits == 16:
                fh.write(
                    png16.encode_png16(
                        imagedata_to_samples(data, alpha=keep_alpha, bit_depth=16), data.icc_profile
                    )
                )
            else:
                pil = imagedata_to_pil(
                    data.replace(alpha=data.alpha if keep_alpha else None, bit_depth=8)
                )
                options: dict = {"icc_profile": data.icc_profile} if data.icc_profile else {}
                if fmt == "JPEG":
                    options.update(quality=quality, subsampling=0)
                pil.save(fh, format=fmt, **options)
        _commit(tmp, path, overwrite)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, MemderainError):
            raise ImageWriteError(f"{path}: cannot write ({exc.strerror or exc})") from None
        raise
    return path


def _commit(tmp: str, path: Path, overwrite: bool) -> None:
    """Move the finished temp file to ``path``; without overwrite, link() (fails if it exists)."""
    normal_permissions(tmp)
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # atomic "create only if absent"
    except FileExistsError:
        raise ImageWriteError(
            f"{path}: already exists (pass overwrite / --overwrite to replace it)"
        ) from None
    except OSError as exc:  # file system without hard links: check, then rename
        if exc.errno not in (
            errno.EPERM,
            errno.EOPNOTSUPP,
            errno.ENOTSUP,
            errno.EXDEV,
            errno.EMLINK,
        ):
            raise
        if path.exists():
            raise ImageWriteError(
                f"{path}: already exists (pass overwrite / --overwrite to replace it)"
            ) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


# -- plain arrays ----------------------------------------------------------------------------
def array_to_imagedata(arr: np.ndarray, integer: bool = False) -> ImageData:
    """numpy image -> ImageData. uint8 / uint16 / float in [0, 1]; (H, W), (H, W, 1|3|4).
    ``integer``: uint8 arrays keep uint8 samples (see :class:`ImageData`)."""
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise MemderainError(
            f"expected an image array (H, W), (H, W, 3) or (H, W, 4), got shape {arr.shape}"
        )
    if arr.dtype == np.uint8 or arr.dtype == np.uint16:
        bits = 8 if arr.dtype == np.uint8 else 16
        rgb, alpha = _split(arr, bits, integer)
    elif np.issubdtype(arr.dtype, np.floating):
        x = np.clip(arr.astype(np.float32), 0, 1)
        x = x[..., None] if x.ndim == 2 else x
        bits, alpha = 8, (x[..., 3].copy() if x.shape[2] == 4 else None)
        rgb = np.ascontiguousarray(np.repeat(x, 3, axis=2) if x.shape[2] == 1 else x[..., :3])
    else:
        raise MemderainError(
            f"unsupported image array dtype {arr.dtype} (use uint8, uint16 or float)"
        )
    mode = (
        ("L" if bits == 8 else "I;16")
        if arr.ndim == 2
        else ("RGBA" if alpha is not None else "RGB")
    )
    return ImageData(rgb, alpha, mode, bits)
