"""Rain engine ``real-layers``: real rain from a bank (:mod:`memderain.data.rain_layers`)
composited onto a clean photo, so one real clip's weather makes scenes on any background.

A scene of T frames is the paper's setting (Sec. III-A): one static background, rain that
differs per frame. Here the rain of frame t is layer ``start + t`` of one clip of the bank
(consecutive frames: one weather per scene), all T layers cut by the same random geometry
(crop window, scale, flip, small rotation) and multiplied by one gain, then combined with the
background in the bank's blend (measured per clip, ``benchmarks/rain_bank.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from memderain.config import ConfigError


@dataclass(frozen=True)
class RealLayersConfig:
    """Settings of the ``real-layers`` engine (YAML: ``preset: real-layers`` plus fields)."""

    bank: str = ""  # bank folder (``memderain rain-layers ... -o BANK``); --bank sets it
    clips: tuple[str, ...] = ()  # only these clips of the bank (empty: all)
    scale: tuple[float, float] = (0.5, 2.0)  # layer pixels per background pixel, log-uniform
    rotate_deg: float = 10.0  # uniform in +-this
    flip: bool = True  # horizontal flip, half the scenes
    gain: tuple[float, float] = (1.0, 1.0)  # rain intensity multiplier, uniform
    blend: str = "bank"  # "bank" (the blend the layers were lifted in) or add/screen/linear

    def __post_init__(self) -> None:
        lo, hi = self.scale
        if not 0 < lo <= hi:
            raise ConfigError("real-layers: scale needs 0 < low <= high")
        if not 0 <= self.gain[0] <= self.gain[1]:
            raise ConfigError("real-layers: gain needs 0 <= low <= high")
        if not 0 <= self.rotate_deg < 45:
            raise ConfigError("real-layers: rotate_deg must be in [0, 45)")


REAL_LAYERS_PRESETS = {"real-layers": RealLayersConfig()}


class RealLayerParams(NamedTuple):
    clip: str
    start: int
    scale: float
    angle_deg: float
    flip: bool
    gain: float


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def _turned_extent(size: tuple[int, int], angle_deg: float) -> tuple[float, float]:
    """(height, width) of the upright box that holds an (h, w) box turned by ``angle_deg``."""
    h, w = size
    rad = math.radians(abs(angle_deg))
    return h * math.cos(rad) + w * math.sin(rad), w * math.cos(rad) + h * math.sin(rad)


def cut_layer(layer: np.ndarray, size: tuple[int, int], scale: float, angle_deg: float,
              flip: bool, pos: tuple[float, float]) -> np.ndarray:
    """A (h, w) window of ``layer`` seen at ``scale`` (layer px per output px), turned by
    ``angle_deg`` about its centre, optionally flipped; ``pos`` in [0, 1]^2 places it. The
    window is cut large enough that the rotation leaves no empty corners."""
    h, w = size
    need_h, need_w = _turned_extent(size, angle_deg)
    lh, lw = layer.shape
    ch, cw = min(lh, math.ceil(need_h * scale) + 2), min(lw, math.ceil(need_w * scale) + 2)
    y0 = round(pos[0] * (lh - ch))
    x0 = round(pos[1] * (lw - cw))
    img = Image.fromarray(np.ascontiguousarray(layer[y0:y0 + ch, x0:x0 + cw]), "F")
    if angle_deg:
        img = img.rotate(angle_deg, Image.Resampling.BILINEAR)
    # the centred (h, w) * scale box of the turned window, resized to (h, w)
    bw, bh = w * scale, h * scale
    box = ((cw - bw) / 2, (ch - bh) / 2, (cw + bw) / 2, (ch + bh) / 2)
    img = img.resize((w, h), Image.Resampling.BILINEAR, box=box,
                     reducing_gap=2.0 if scale > 2 else None)
    out = np.asarray(img, np.float32)
    return np.ascontiguousarray(out[:, ::-1]) if flip else out


def fit_scale(layer_hw: tuple[int, int], size: tuple[int, int], angle_deg: float,
              scale: float) -> float:
    """``scale`` lowered where needed so the turned window fits inside the layer."""
    need_h, need_w = _turned_extent(size, angle_deg)
    return min(scale, (layer_hw[0] - 2) / (need_h + 2), (layer_hw[1] - 2) / (need_w + 2))


def synthesize_real_layers(background: torch.Tensor, num_frames: int, cfg: RealLayersConfig,
                           generator: torch.Generator):
    """``num_frames`` frames of real rain from ``cfg.bank`` over ``background`` (3, H, W) in
    [0, 1]. Returns a :class:`memderain.data.synthetic_rain.RainyScene` whose ``rain`` is the
    cut layers (T, 1, H, W) and ``params`` a :class:`RealLayerParams`."""
    from memderain.data.rain_layers import apply_blend
    from memderain.data.synthetic_rain import RainyScene

    if not cfg.bank:
        raise ConfigError("rain real-layers needs a bank: --bank BANK (memderain rain-layers)")
    bank = open_bank(cfg.bank)
    names = sorted(bank.clips)
    if cfg.clips:
        missing = sorted(set(cfg.clips) - set(names))
        if missing:
            raise ConfigError(f"real-layers: clips {missing} are not in {cfg.bank} ({names})")
        names = sorted(cfg.clips)
    g = generator
    clip = names[int(torch.randint(len(names), (), generator=g))]
    start = int(torch.randint(len(bank.clips[clip]), (), generator=g))
    lo, hi = cfg.scale
    scale = math.exp(_uniform(g, math.log(lo), math.log(hi)))
    angle = _uniform(g, -cfg.rotate_deg, cfg.rotate_deg)
    flip = cfg.flip and bool(torch.rand((), generator=g) < 0.5)
    gain = _uniform(g, *cfg.gain)
    pos = (float(torch.rand((), generator=g)), float(torch.rand((), generator=g)))
    h, w = background.shape[-2:]
    first = bank.layer(clip, start)
    scale = fit_scale(first.shape, (h, w), angle, scale)
    if scale <= 0:
        raise ConfigError(f"real-layers: {clip}'s layers are too small for a {w}x{h} photo")
    blend = bank.blend if cfg.blend == "bank" else cfg.blend
    bg = background.permute(1, 2, 0).numpy().astype(np.float32)
    frames, rains = [], []
    for t in range(num_frames):
        layer = first if t == 0 else bank.layer(clip, start + t)
        cut = np.clip(cut_layer(layer, (h, w), scale, angle, flip, pos) * gain, 0.0, 1.0)
        frames.append(apply_blend(bg, cut[..., None], blend))
        rains.append(cut)
    frames_t = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().contiguous()
    rain_t = torch.from_numpy(np.stack(rains))[:, None].float()
    return RainyScene(frames_t, rain_t, RealLayerParams(clip, start, scale, angle, flip, gain))


_BANKS: dict[str, object] = {}


def open_bank(path: str):
    """The bank at ``path``, opened once per process (scenes of one render share it)."""
    from memderain.data.rain_layers import RainBank

    if path not in _BANKS:
        _BANKS[path] = RainBank.open(path)
    return _BANKS[path]
