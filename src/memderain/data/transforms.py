"""Image conversions and paired geometric transforms used by the datasets.

Conventions (see docs/DEVELOPING.md): at API boundaries images are uint8 HxWx3 numpy / PIL
or float (3,H,W) tensors in [0, 1]; the network sees [-1, 1] (paper Sec. III-E). This module
and ``memderain.inference.io`` are the only places that convert between them.

Paired transforms take a *list* of images and apply the same crop / flip to all of them, so
two frames of one time-lapse scene (or a frame and its pseudo ground truth) stay aligned.
Randomness always comes from an explicit ``torch.Generator``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from memderain.errors import MemderainError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
# What opening or decoding a bad image file raises. DecompressionBombError (a header claiming
# more than twice Image.MAX_IMAGE_PIXELS) is no OSError: it must be named.
IMAGE_READ_ERRORS = (OSError, ValueError, Image.DecompressionBombError)


# ----------------------------------------------------------------------------- decoding
def pil_to_uint8(img: Image.Image) -> np.ndarray:
    """PIL image of any common mode -> uint8 HxWx3 RGB array (alpha dropped, 16 bit scaled)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        scale = 65535.0 if arr.max(initial=0) > 255 else 255.0
        arr = np.clip(np.round(arr / scale * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.array(img, dtype=np.uint8)  # a writable copy (asarray of PIL is read-only)


def read_rgb(path, resize: int | tuple[int, int] | None = None, min_side: int | None = None
             ) -> np.ndarray:
    """Decode an image file to uint8 HxWx3 RGB, optionally resized (see :func:`resize_pil`)."""
    try:
        with Image.open(path) as img:
            arr = pil_to_uint8(img)
    except IMAGE_READ_ERRORS as exc:
        raise MemderainError(f"cannot read image {path}: {exc}") from exc
    if resize is None and (min_side is None or min(arr.shape[:2]) >= min_side):
        return arr
    return np.array(resize_pil(Image.fromarray(arr, "RGB"), resize, min_side))


def resize_pil(img: Image.Image, resize: int | tuple[int, int] | None = None,
               min_side: int | None = None) -> Image.Image:
    """Resize with PIL's antialiased bicubic filter.

    ``resize``: int = new length of the *shorter* side (aspect kept, torchvision convention);
    ``(h, w)`` = exact size (the paper's "resized to 256x256" is ``(256, 256)``).
    ``min_side``: afterwards, upscale (aspect kept) so that the shorter side is at least this,
    used so images smaller than the crop size can still be cropped.
    """
    w, h = img.size
    if resize is not None:
        if isinstance(resize, int):
            s = resize / min(h, w)
            size = (max(1, round(w * s)), max(1, round(h * s)))
        else:
            size = (int(resize[1]), int(resize[0]))
        if size != (w, h):
            img = img.resize(size, Image.BICUBIC)
    w, h = img.size
    if min_side is not None and min(h, w) < min_side:
        s = min_side / min(h, w)
        size = (max(min_side, round(w * s)), max(min_side, round(h * s)))
        img = img.resize(size, Image.BICUBIC)
    return img


# ----------------------------------------------------------------------------- value ranges
def uint8_to_tensor(arr: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 HxWx3 (numpy or tensor) -> float32 (3,H,W) in [0, 1]."""
    t = torch.as_tensor(arr)
    if t.dtype != torch.uint8 or t.ndim != 3:
        raise MemderainError(f"expected uint8 HxWxC image, got {t.dtype} {tuple(t.shape)}")
    return t.permute(2, 0, 1).float().div_(255.0)


def tensor_to_uint8(x: torch.Tensor) -> np.ndarray:
    """float (3,H,W) in [0, 1] -> uint8 HxWx3 numpy (rounded, clipped)."""
    if x.ndim != 3:
        raise MemderainError(f"expected a (C,H,W) tensor, got shape {tuple(x.shape)}")
    x = x.detach().to("cpu", torch.float32).clamp(0, 1).mul(255.0).round_()
    return x.to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def to_pil(x: torch.Tensor) -> Image.Image:
    """float (3,H,W) in [0, 1] -> PIL RGB image."""
    return Image.fromarray(tensor_to_uint8(x), "RGB")


def from_pil(img: Image.Image) -> torch.Tensor:
    """PIL image -> float (3,H,W) in [0, 1]."""
    return uint8_to_tensor(pil_to_uint8(img))


def to_signed(x01: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1] (the network's range, paper Sec. III-E)."""
    return x01 * 2.0 - 1.0


def to_unit(xpm1: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1]."""
    return (xpm1 + 1.0) * 0.5


def uint8_chw_to_signed(t: torch.Tensor) -> torch.Tensor:
    """uint8 (C,H,W) tensor -> float32 in [-1, 1], in one pass (the dataset hot path)."""
    return t.float().mul_(2.0 / 255.0).sub_(1.0)


# ----------------------------------------------------------------------------- paired geometry
def hw_of(img: np.ndarray | torch.Tensor, channels_last: bool) -> tuple[int, int]:
    return (img.shape[0], img.shape[1]) if channels_last else (img.shape[-2], img.shape[-1])


def random_crop_box(h: int, w: int, size: int | tuple[int, int],
                    generator: torch.Generator | None = None) -> tuple[int, int, int, int]:
    """Uniform random ``(top, left, ch, cw)`` of a crop of ``size`` inside an ``h x w`` image."""
    ch, cw = (size, size) if isinstance(size, int) else size
    if ch > h or cw > w:
        raise MemderainError(f"crop {ch}x{cw} larger than image {h}x{w}")
    top = int(torch.randint(0, h - ch + 1, (1,), generator=generator))
    left = int(torch.randint(0, w - cw + 1, (1,), generator=generator))
    return top, left, ch, cw


def paired_random_crop(images: Sequence, size: int | tuple[int, int],
                       generator: torch.Generator | None = None, channels_last: bool = False
                       ) -> list:
    """Crop every image in ``images`` at the *same* random position.

    Works on tensors / arrays shaped (..., H, W) or, with ``channels_last``, (H, W, C). All
    images must have the same H, W. Returns views (no copy).
    """
    if not images:
        return []
    sizes = {hw_of(im, channels_last) for im in images}
    if len(sizes) != 1:
        raise MemderainError(f"paired crop needs images of one size, got {sorted(sizes)}")
    h, w = sizes.pop()
    top, left, ch, cw = random_crop_box(h, w, size, generator)
    if channels_last:
        return [im[top:top + ch, left:left + cw] for im in images]
    return [im[..., top:top + ch, left:left + cw] for im in images]


def paired_hflip(images: Sequence[torch.Tensor], generator: torch.Generator | None = None,
                 p: float = 0.5) -> list[torch.Tensor]:
    """Flip all (..., H, W) tensors left-right together with probability ``p``.

    Off by default in the datasets: the paper uses no flips or rotations (Sec. III-E).
    """
    if float(torch.rand((), generator=generator)) < p:
        return [im.flip(-1) for im in images]
    return list(images)


def resize_tensor(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of a float (C,H,W) or (N,C,H,W) tensor to ``(h, w)``."""
    batched = x.ndim == 4
    y = torch.nn.functional.interpolate(x if batched else x[None], size=size, mode="bilinear",
                                        align_corners=False, antialias=True)
    return y if batched else y[0]


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A ``torch.Generator`` seeded from ``(seed, epoch, index)``.

    Datasets draw each item's randomness from its own generator, so an item is the same
    whatever DataLoader worker produces it and whatever order items are read in, and
    different workers never repeat each other's random streams.
    """
    state = np.random.SeedSequence([int(seed), int(epoch), int(index)]).generate_state(2)
    return torch.Generator().manual_seed((int(state[0]) << 31) ^ int(state[1]))


def uint8_hwc_to_signed(arr: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 numpy (possibly a non-contiguous crop view) -> float (3,H,W) in [-1, 1]."""
    return uint8_chw_to_signed(torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1))


def jpeg_roundtrip(x01: torch.Tensor, quality: int) -> torch.Tensor:
    """(3, H, W) float in [0, 1] -> the same image after JPEG encoding at ``quality`` and
    decoding (float32 in [0, 1]), as a camera or a re-upload does it."""
    arr = x01.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="JPEG", quality=int(quality))
    dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return torch.from_numpy(dec.copy()).permute(2, 0, 1).float() / 255
