"""``Derainer``: load a checkpoint once, de-rain images of any kind, and ``load_model``.

Value ranges: callers pass images in their own type (PIL, uint8/uint16/float numpy, float
tensors in [0, 1]); :mod:`memderain.inference.io` converts them; the network sees [-1, 1].
The background is B = I - R (Eq. 1); the network clamps it to [-1, 1] (``clamp_background``)
and this API clamps it to [0, 1] again, so outputs are always valid images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from memderain.checkpoint import model_from_checkpoint
from memderain.errors import MemderainError
from memderain.inference import io
from memderain.inference.tiling import (
    ALIGN,
    DEFAULT_OVERLAP,
    DEFAULT_TILE_PIXELS,
    TilePlan,
    kept,
    plan_tiles,
    tiled_forward,
    whole_image_plan,
)
from memderain.weights import default_weights_path

ImageLike = Image.Image | np.ndarray | torch.Tensor

# Images up to this many pixels run in one pass when tile=None (1000x1000: about 1.4 GiB peak
# RSS with OpenVINO f32, 2.1 GiB with PyTorch, see docs/inference.md); larger ones are tiled
# in equal tiles of at most DEFAULT_TILE_PIXELS (4000x3000: under 1 GiB).
AUTO_WHOLE_IMAGE_PIXELS = 1024 * 1024
# Video frames above AUTO_WHOLE_IMAGE_PIXELS are tiled in equal tiles of at most this many
# pixels: a video holds one frame at a time and its whole-frame cases (720p: 1.4 GiB) already
# pass 1 GiB, so its tiles may be as large as a whole frame may be. 1920x1080 is then 3 tiles
# of 688 x 1080 (1.075x the pixels, about 1.1 GiB) where DEFAULT_TILE_PIXELS gives 5 of 440 x
# 1080 (1.146x, about 0.85 GiB): 94 % of the single-frame limit instead of 85 %
# (docs/inference.md).
VIDEO_TILE_PIXELS = AUTO_WHOLE_IMAGE_PIXELS


def resolve_device(device: str | torch.device) -> torch.device:
    """'cpu' | 'cuda' | 'cuda:N' | 'auto' (CUDA if available, else CPU) -> torch.device."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise MemderainError(f"unknown device {device!r}; use cpu, cuda or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MemderainError(
            f"device {device!r} requested but CUDA is not available; use cpu or auto"
        )
    return dev


class Derainer:
    """A MemDerain network in eval mode, ready to de-rain images.

    Args:
        checkpoint_path: a memderain checkpoint (see :mod:`memderain.checkpoint`).
        device: 'cpu', 'cuda', 'cuda:N' or 'auto'.
        tile: default tiling for :meth:`derain` (None: whole image up to
            AUTO_WHOLE_IMAGE_PIXELS, else equal tiles of at most DEFAULT_TILE_PIXELS; 0: never
            tile; N: equal tiles of at most N x N px). See :meth:`tile_plan`.
        overlap: least overlap of neighbouring tiles in pixels; each tile keeps the half of
            it nearer its centre.
        backend: 'torch', 'openvino', 'onnxruntime' or 'auto' (OpenVINO on CPU when installed,
            else ONNX Runtime, else PyTorch; PyTorch on CUDA). See
            :mod:`memderain.inference.backends`.
        threads: CPU threads of an OpenVINO / ONNX Runtime backend (default: torch's).
        precision: 'auto' (on OpenVINO: int8 for weights with an int8 quality certificate,
            else bf16 where the CPU does bf16 natively, else f32), 'f32' (same output as
            PyTorch to ~1e-6), 'bf16' (OpenVINO only; about 4x faster on AMX CPUs, within
            0.006 dB on the test presets but not bit-exact) or 'int8' (OpenVINO + NNCF;
            :mod:`memderain.inference.int8`).
    """

    def __init__(
        self,
        checkpoint_path: str | Path,
        device: str | torch.device = "cpu",
        tile: int | None = None,
        overlap: int = DEFAULT_OVERLAP,
        backend: str = "torch",
        threads: int | None = None,
        precision: str = "auto",
    ) -> None:
        from memderain.inference.backends import build_rain_fn, resolve_backend, resolve_precision

        self.checkpoint_path = Path(checkpoint_path)
        self.device = resolve_device(device)
        self.backend = resolve_backend(backend, self.device)
        model, ckpt = model_from_checkpoint(self.checkpoint_path, map_location="cpu")
        self.checkpoint_meta: dict[str, Any] = dict(ckpt.get("meta") or {})
        self.precision = resolve_precision(precision, self.backend, self.checkpoint_meta)
        # channels_last (NHWC) was the fastest robust option in benchmarks/speed.py (1.6x over
        # NCHW on CPU, see docs/inference.md); values are unchanged up to float rounding.
        self.model = model.to(self.device, memory_format=torch.channels_last).eval()
        self.tile, self.overlap = tile, overlap
        self._backend_rain = (None if self.backend == "torch"
                              else build_rain_fn(self.model, self.backend, threads, self.precision))

    def __repr__(self) -> str:
        return (f"Derainer({str(self.checkpoint_path)!r}, device={str(self.device)!r}, "
                f"backend={self.backend!r}, precision={self.precision!r})")

    # -- tensors -----------------------------------------------------------------------------
    def tile_plan(self, height: int, width: int, tile: int | None = None,
                  tile_pixels: int | None = None) -> TilePlan:
        """How an image is cut into tiles (:class:`~memderain.inference.tiling.TilePlan`).

        ``tile`` (default: the one given at construction): None = the whole image up to
        AUTO_WHOLE_IMAGE_PIXELS, else the equal tiles of at most ``tile_pixels`` (default
        DEFAULT_TILE_PIXELS; video frames: VIDEO_TILE_PIXELS) that compute the fewest pixels;
        0 = the whole image; N = equal tiles of at most N x N px (N rounded up to a multiple
        of 8; the overlap is cut to N - 8 if it is not smaller).
        """
        tile = self.tile if tile is None else tile
        if tile is not None and tile < 0:
            raise MemderainError(f"tile must be >= 0 (0 = no tiling), got {tile}")
        if tile == 0 or (tile is None and height * width <= AUTO_WHOLE_IMAGE_PIXELS):
            return whole_image_plan(height, width)
        try:
            if tile is None:
                return plan_tiles(height, width, max_pixels=tile_pixels or DEFAULT_TILE_PIXELS,
                                  overlap=self.overlap)
            side = -(-int(tile) // ALIGN) * ALIGN
            return plan_tiles(height, width, max_side=side,
                              overlap=min(self.overlap, side - ALIGN))
        except ValueError as exc:
            raise MemderainError(str(exc)) from None

    def _rain(self, x: torch.Tensor) -> torch.Tensor:
        if self._backend_rain is not None:
            return self._backend_rain(x)
        return self.model(x.contiguous(memory_format=torch.channels_last)).rain

    @torch.inference_mode()
    def derain_tensor(
        self, x01: torch.Tensor, tile: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """De-rain a batch. ``x01``: float (N, 3, H, W) in [0, 1], any device.

        Returns ``(background01, rain)`` on the input's device as float32: the background in
        [0, 1] and the rain layer R in the same units, unclamped (R_net / 2), so that
        ``background01 == clamp(x01 - rain, 0, 1)``.
        """
        if x01.ndim != 4 or x01.shape[1] != 3:
            raise MemderainError(f"derain_tensor expects (N, 3, H, W), got {tuple(x01.shape)}")
        x = io.to_network(x01.to(self.device, torch.float32))
        rain = tiled_forward(self._rain, x, self.tile_plan(*x.shape[-2:], tile))
        background = x.sub_(rain)  # Eq. 1: B = I - R (in place: x is our own copy)
        if self.model.config.clamp_background:
            background.clamp_(-1.0, 1.0)
        background01 = io.from_network(background, inplace=True).clamp_(0.0, 1.0)
        return background01.to(x01.device), io.rain_from_network(rain).to(x01.device)

    @torch.inference_mode()
    def derain_uint8(self, rgb: np.ndarray, tile: int | None = None,
                     grey: bool = False, tile_pixels: int | None = None) -> np.ndarray:
        """De-rain uint8 (H, W, 3) samples into a new uint8 (H, W, 3) array, tile by tile.

        Only one tile at a time is in float: the image is never held in float32 (a quarter of
        the memory of :meth:`derain_tensor` for a large photo, no full-size float copies).
        Same values as :meth:`derain_tensor` followed by rounding (``rint``) to 8 bits;
        ``grey``: every channel holds the rounded mean of the de-rained R, G, B;
        ``tile_pixels``: the tile budget of :meth:`tile_plan`.
        """
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise MemderainError(f"derain_uint8 expects uint8 (H, W, 3), got {rgb.dtype} "
                                 f"{tuple(rgb.shape)}")
        height, width = rgb.shape[:2]
        plan = self.tile_plan(height, width, tile, tile_pixels)
        out = np.empty_like(rgb)
        for r, c in plan.tiles():
            rows, cols = plan.index(r, height), plan.index(c, width)
            part = rgb[rows] if isinstance(rows, np.ndarray) else rgb[rows, :]
            part = part[:, cols]
            # NCHW float32 in [-1, 1], the ops and order of io.to_float01 and io.to_network
            x = torch.from_numpy(np.ascontiguousarray(part.transpose(2, 0, 1)))[None]
            x = x.to(self.device, torch.float32).div_(255.0).mul_(2.0).sub_(1.0)
            background = kept(x, r, c) - kept(self._rain(x).to(x.device), r, c)  # Eq. 1
            if self.model.config.clamp_background:
                background.clamp_(-1.0, 1.0)
            b01 = io.from_network(background, inplace=True).clamp_(0.0, 1.0)
            if grey:
                b01 = b01.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
            samples = b01.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)  # io.from_float01
            out[r.keep_start:r.keep_end, c.keep_start:c.keep_end] = (
                samples[0].permute(1, 2, 0).cpu().numpy())
        return out

    # -- images ------------------------------------------------------------------------------
    def derain_imagedata(self, data: io.ImageData, tile: int | None = None) -> io.ImageData:
        """De-rain an :class:`~memderain.inference.io.ImageData`; alpha and metadata are kept.
        uint8 samples (``read_image(..., integer=True)``) go through :meth:`derain_uint8` and
        come back as uint8; float ones through :meth:`derain_tensor`."""
        if data.rgb.dtype == np.uint8:
            return data.replace(rgb=self.derain_uint8(data.rgb, tile, grey=data.is_grey))
        background, _ = self.derain_tensor(io.rgb_to_tensor01(data.rgb), tile)
        return data.replace(rgb=io.tensor01_to_rgb(background))

    def derain(self, image: ImageLike, tile: int | None = None) -> ImageLike:
        """De-rain one image (or a batch of tensors) and return it as the same kind.

        * ``PIL.Image``: returns a PIL image of the same kind (L/LA/I;16 stay grey, RGBA keeps
          its alpha exactly; palette images come back as RGB or RGBA).
        * numpy ``uint8`` / ``uint16`` / float in [0, 1], shape (H, W), (H, W, 3) or (H, W, 4):
          returns the same dtype and shape (grey = mean of the de-rained R, G, B; the alpha
          channel is copied unchanged).
        * torch float tensor (3, H, W) or (N, 3, H, W) in [0, 1]: same shape, dtype and device.
        """
        if isinstance(image, Image.Image):
            return self._derain_pil(image, tile)
        if isinstance(image, np.ndarray):
            return self._derain_array(image, tile)
        if isinstance(image, torch.Tensor):
            return self._derain_torch(image, tile)
        if isinstance(image, (str, Path)):
            raise MemderainError(f"derain() takes an image in memory; for the file {image} use "
                                 "derain_path(path_or_folder, output)")
        raise MemderainError(
            f"cannot de-rain a {type(image).__name__}; pass a PIL image, numpy array or tensor"
        )

    def derain_path(self, inputs, output, *, recursive: bool = False, suffix: str = "",
                    overwrite: bool = False, tile: int | None = None, progress: bool = False):
        """De-rain image / GIF / video files, folders or glob patterns into ``output`` with the
        rules of ``memderain derain`` (:mod:`memderain.inference.batch`): a folder (or one
        named output file for one input file), inputs never overwritten, existing outputs
        skipped unless ``overwrite``, atomic writes. Returns a
        :class:`~memderain.inference.batch.BatchResult` (``written``, ``skipped``,
        ``failed``); a bad file is listed in ``failed``, never raised."""
        from memderain.inference.batch import derain_paths

        return derain_paths(self, inputs, output, recursive=recursive, suffix=suffix,
                            overwrite=overwrite, tile=tile, progress=progress)

    def _derain_pil(self, image: Image.Image, tile: int | None) -> Image.Image:
        image.load()
        data = io.pil_to_imagedata(image, integer=True)
        out = io.imagedata_to_pil(self.derain_imagedata(data, tile))
        if data.icc_profile:
            out.info["icc_profile"] = data.icc_profile
        return out

    def _derain_array(self, arr: np.ndarray, tile: int | None) -> np.ndarray:
        data = io.array_to_imagedata(arr, integer=True)
        rgb = self.derain_imagedata(data, tile).rgb
        grey = arr.ndim == 2 or arr.shape[2] == 1
        if rgb.dtype == np.uint8:  # derain_uint8: grey already the rounded mean
            colour = rgb[..., :1] if grey else rgb
        else:
            colour = rgb.mean(axis=2, keepdims=True) if grey else rgb
        if arr.dtype == np.uint16 or (arr.dtype == np.uint8 and rgb.dtype != np.uint8):
            colour = io.from_float01(colour, 8 if arr.dtype == np.uint8 else 16)
        out = colour.astype(arr.dtype, copy=False)
        if arr.ndim == 3 and arr.shape[2] == 4:
            out = np.concatenate([out, arr[..., 3:]], axis=2)  # alpha unchanged, bit for bit
        return out.reshape(arr.shape)

    def _derain_torch(self, x: torch.Tensor, tile: int | None) -> torch.Tensor:
        if not x.is_floating_point():
            raise MemderainError(f"expected a float tensor in [0, 1], got dtype {x.dtype}")
        if x.ndim not in (3, 4) or x.shape[-3] != 3:
            raise MemderainError(
                f"expected a tensor (3, H, W) or (N, 3, H, W), got {tuple(x.shape)}"
            )
        batch = x if x.ndim == 4 else x[None]
        background, _ = self.derain_tensor(batch, tile)
        return background.reshape(x.shape).to(x.dtype)


def load_model(
    path: str | Path | None = None, device: str | torch.device = "auto", **kwargs: Any
) -> Derainer:
    """Load a :class:`Derainer` from ``path`` or, if None, from the weights shipped with memderain.

    Unlike :class:`Derainer` (PyTorch unless told otherwise), ``load_model`` picks the fastest
    installed backend (``backend="auto"``), in int8 for certified weights (the shipped model)
    or bf16 where the CPU does it natively (``precision="auto"``); pass ``backend="torch"`` for plain PyTorch, ``precision="f32"``
    for outputs identical to it.

    ``device`` defaults to ``"auto"`` (the first CUDA device if there is one, else the CPU),
    as ``--device`` does on the command line.

    Raises MemderainError when ``path`` is None and no default model ships (it never falls back
    to random weights). Extra keyword arguments (``tile``, ``overlap``, ``backend``,
    ``threads``, ``precision``) go to :class:`Derainer`.
    """
    if path is None:
        path = default_weights_path()
        if path is None:
            raise MemderainError(
                "no default model ships with this memderain install yet; "
                "pass a checkpoint path (memderain.load_model(PATH) / --weights PATH)"
            )
    kwargs.setdefault("backend", "auto")
    return Derainer(path, device=device, **kwargs)
