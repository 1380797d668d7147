"""Vectorised rain-streak renderer for synthetic time-lapse scenes (pure functions, explicit RNG).

The paper trains on real time-lapse videos (TimeLap, Sec. IV-B1): one static background, rain
that changes from frame to frame. This module fakes such a sequence from one clean photo B:

1. **Streak layer** for every frame t and depth layer k (k = 0 nearest): a sparse field of drop
   seeds (Bernoulli with the layer's density, random per-drop brightness) convolved (FFT,
   circular, so rain wraps seamlessly) with an anti-aliased line kernel: the motion blur of a
   falling drop along the streak direction, with a Gaussian cross-section of width sigma and soft
   ends. Deeper layers are smaller, denser and fainter (length and width x s^k, density x
   s^-k, brightness x s^(k/2), with the layer scale s < 1); the nearest layer gets extra defocus
   blur. Layers add up to the rain intensity R in [0, 1]; values below half a grey level are set
   to exactly 0, so the rain mask is ``R > 0``.
2. **Time variation**: per scene a base angle, length, width, density and brightness are drawn
   from the :class:`RainConfig` ranges; per frame the angle is jittered (+- angle_jitter, and
   each layer by another +- angle_jitter / 2), length, density and brightness are scaled by
   random factors and new drops are drawn, so every frame has different streaks.
3. **Compositing** (paper Eq. 1, I = B + R, made photometric): the background gets a small
   global gain change (illumination) and an optional haze veil (I = B(1-a) + aA, A an airlight
   close to the scene's mean colour), then the streaks, coloured slightly towards the scene's
   mean colour, are blended with ``screen`` (I = 1 - (1-B)(1-R), default: streaks vanish on white
   sky as in photos) or ``add`` (I = B + R); the result is clipped to [0, 1].

Lengths and widths are in pixels at ``reference_size`` (the longer image side); images of other
sizes scale them, and the density per pixel, so rain looks the same at any resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import NamedTuple

import torch
import torch.nn.functional as F

from memderain.config import ConfigError

Range = tuple[float, float]


def check_ranges(cfg) -> None:
    """Every tuple field of a rain config dataclass is a [low, high] pair with 0 <= low <= high."""
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        if isinstance(v, tuple):
            if len(v) != 2 or not all(isinstance(x, (int, float)) for x in v):
                raise ConfigError(f"rain.{f.name} must be a [low, high] pair, got {v!r}")
            if v[0] > v[1] or v[0] < 0:
                raise ConfigError(f"rain.{f.name} needs 0 <= low <= high, got {list(v)}")


@dataclass(frozen=True)
class RainConfig:
    """Ranges that scene parameters are drawn from (uniformly; density log-uniformly).

    Lengths / widths are pixels at an image whose longer side is ``reference_size``.
    """

    angle: Range = (0.0, 25.0)  # |streak angle| from vertical, degrees; sign (lean) is random
    angle_jitter: float = 4.0  # per-frame angle change, +- degrees
    density: Range = (0.0003, 0.004)  # drop seeds per pixel of the nearest layer
    density_jitter: float = 0.4  # per-frame density factor in [1 - j, 1 + j]
    length: Range = (10.0, 40.0)  # streak length of the nearest layer, px
    length_jitter: float = 0.15  # per-frame length factor in [1 - j, 1 + j]
    width: Range = (0.3, 0.9)  # Gaussian sigma across a streak of the nearest layer, px
    brightness: Range = (0.15, 0.6)  # peak intensity of a streak of the nearest layer
    brightness_jitter: float = 0.2  # per-frame brightness factor in [1 - j, 1 + j]
    layers: tuple[int, int] = (1, 3)  # number of depth layers (inclusive range)
    layer_scale: Range = (0.45, 0.7)  # s: each deeper layer has length, width x s, density / s
    blur: Range = (0.0, 0.8)  # extra defocus sigma of the nearest layer, px
    tint: Range = (0.0, 0.4)  # streak colour pulled from white towards the scene's mean colour
    haze: Range = (0.0, 0.15)  # veil strength per frame (0 = none)
    illumination: float = 0.03  # per-frame global gain in [1 - i, 1 + i]
    blend: str = "screen"  # "screen" or "add"
    reference_size: int = 512  # longer image side at which lengths / widths are given

    def __post_init__(self) -> None:
        check_ranges(self)
        for name in ("angle_jitter", "density_jitter", "length_jitter", "brightness_jitter",
                     "illumination"):
            if not 0 <= getattr(self, name) < (90 if name == "angle_jitter" else 1):
                raise ConfigError(f"rain.{name} out of range: {getattr(self, name)}")
        if self.angle[1] >= 90:
            raise ConfigError("rain.angle must stay below 90 degrees")
        if self.density[0] <= 0 or self.density[1] > 0.2:
            raise ConfigError(f"rain.density must lie in (0, 0.2], got {list(self.density)}")
        if self.layers[0] < 1 or int(self.layers[0]) != self.layers[0] \
                or int(self.layers[1]) != self.layers[1]:
            raise ConfigError(f"rain.layers must be whole numbers >= 1, got {list(self.layers)}")
        if self.layer_scale[1] > 1 or self.length[0] <= 0:
            raise ConfigError("rain.layer_scale must be <= 1 and rain.length > 0")
        if max(self.brightness[1], self.tint[1], self.haze[1]) > 1:
            raise ConfigError("rain.brightness, rain.tint and rain.haze must be <= 1")
        if self.blend not in ("screen", "add"):
            raise ConfigError(f"rain.blend must be 'screen' or 'add', got {self.blend!r}")
        if self.reference_size < 1:
            raise ConfigError("rain.reference_size must be positive")


RAIN_PRESETS: dict[str, RainConfig] = {
    # Broad ranges, the training default: light drizzle to heavy rain, mild haze and lighting.
    "mixed": RainConfig(),
    "light": RainConfig(density=(0.0003, 0.001), length=(10.0, 25.0), width=(0.3, 0.6),
                        brightness=(0.15, 0.4), layers=(1, 2), blur=(0.0, 0.4),
                        haze=(0.0, 0.03)),
    "heavy": RainConfig(density=(0.002, 0.004), length=(20.0, 40.0), width=(0.5, 0.9),
                        brightness=(0.35, 0.6), layers=(2, 3), haze=(0.05, 0.15)),
    # The streaks of `mixed` without its haze veil and illumination change: a test setting for
    # streak removal alone (a time-lapse-trained model sees a veil present in every frame as
    # part of the background, so `mixed` test scores mix streak removal with that veil).
    "mixed-streaks": RainConfig(haze=(0.0, 0.0), illumination=0.0),
    # `heavy` without its per-frame veil and illumination change, for Siamese training: the
    # losses learn any frame-to-frame change that is not a streak as something to subtract,
    # i.e. darkening (stage 5 measured it: MODEL_CARD.md)
    "heavy-streaks": RainConfig(density=(0.002, 0.004), length=(20.0, 40.0), width=(0.5, 0.9),
                                brightness=(0.35, 0.6), layers=(2, 3), haze=(0.0, 0.0),
                                illumination=0.0),
    # Test-only rain: steeper (33-43 deg vs <= 25 + 4 + 2 jitter) and longer (50-75 px vs <= 40
    # x 1.15) streaks than any `mixed` frame; density / width / brightness inside `mixed`. No
    # haze, no illumination change: PSNR against the clean photo measures streak removal only.
    "heldout": RainConfig(angle=(33.0, 43.0), angle_jitter=0.0, length=(50.0, 75.0),
                          length_jitter=0.0, density=(0.0005, 0.002), layers=(2, 2),
                          haze=(0.0, 0.0), illumination=0.0),
}


def preset_config(config: RainConfig | str) -> RainConfig:
    """A RainConfig, or the v1 preset of that name. Names of engine v2 and YAML files are
    resolved by the front, :func:`memderain.data.rain.rain_config` (this engine does not
    import its front: the front depends on the engines, never the reverse)."""
    if isinstance(config, RainConfig):
        return config
    if isinstance(config, str) and config in RAIN_PRESETS:
        return RAIN_PRESETS[config]
    raise ConfigError(f"{config!r} is not a rain engine v1 preset ({sorted(RAIN_PRESETS)}); "
                      "memderain.data.rain.rain_config / synthesize take every preset and "
                      "YAML files")


# ----------------------------------------------------------------------------- sampling
class RainParams(NamedTuple):
    """Per-frame, per-layer streak parameters in pixels of the target image, shape (T, K)."""

    angle: torch.Tensor  # radians from vertical
    length: torch.Tensor
    sigma: torch.Tensor  # cross-section sigma, defocus included
    density: torch.Tensor  # seeds per pixel (0 for unused layers)
    brightness: torch.Tensor
    tint: torch.Tensor  # (T,) per scene, repeated
    haze: torch.Tensor  # (T,)
    gain: torch.Tensor  # (T,) illumination


def uniform(g: torch.Generator, *shape: int) -> torch.Tensor:
    """float64 draws in [0, 1) from ``g`` (both rain engines draw every parameter this way)."""
    return torch.rand(shape, generator=g, dtype=torch.float64)


def lerp_range(r: Range, u: torch.Tensor) -> torch.Tensor:
    """Map uniform draws ``u`` in [0, 1) onto the range ``r = (low, high)``."""
    return r[0] + (r[1] - r[0]) * u


def sample_params(cfg: RainConfig, num_frames: int, size: tuple[int, int],
                  generator: torch.Generator) -> RainParams:
    """Draw one scene's parameters. The number and order of random draws depends only on
    ``num_frames`` and ``cfg.layers[1]``, never on parameter values, so two configs that differ
    in one range produce otherwise identical scenes for a seed."""
    t, kmax = num_frames, int(cfg.layers[1])
    g = generator
    px = max(size) / cfg.reference_size  # pixels of this image per reference pixel
    # angle, sign, density, length, width, brightness, layers, scale, blur, tint
    scene = uniform(g, 10)
    per_frame = uniform(g, 6, t)  # angle, density, length, brightness jitters; haze; gain
    per_layer = uniform(g, kmax)  # small angle offset of each depth layer

    sign = torch.where(scene[1] < 0.5, -1.0, 1.0)
    angle0 = sign * lerp_range(cfg.angle, scene[0])
    angle = angle0 + cfg.angle_jitter * (2 * per_frame[0] - 1)
    lo, hi = math.log(cfg.density[0]), math.log(cfg.density[1])
    density0 = torch.exp(lo + (hi - lo) * scene[2]) / px ** 2
    density = density0 * (1 + cfg.density_jitter * (2 * per_frame[1] - 1))
    length = (lerp_range(cfg.length, scene[3]) * px
              * (1 + cfg.length_jitter * (2 * per_frame[2] - 1)))
    width0 = lerp_range(cfg.width, scene[4]) * px
    bright = (lerp_range(cfg.brightness, scene[5])
              * (1 + cfg.brightness_jitter * (2 * per_frame[3] - 1)))
    n_layers = int(cfg.layers[0] + math.floor(float(scene[6]) * (kmax - cfg.layers[0] + 1)))
    n_layers = min(n_layers, kmax)
    s = lerp_range(cfg.layer_scale, scene[7])
    blur0 = lerp_range(cfg.blur, scene[8]) * px

    k = torch.arange(kmax, dtype=torch.float64)
    sk = s ** k  # (K,)
    sigma_k = torch.sqrt((width0 * sk) ** 2 + (blur0 * sk ** 2) ** 2).clamp_min(0.35)
    on = (k < n_layers).double()
    return RainParams(
        angle=torch.deg2rad(angle[:, None] + cfg.angle_jitter / 2 * (2 * per_layer - 1)).float(),
        length=(length[:, None] * sk).clamp_min(2.0).float(),
        sigma=sigma_k.expand(t, kmax).float(),
        density=(density[:, None] / sk * on).clamp(0, 0.5).float(),
        brightness=(bright[:, None] * sk ** 0.5).clamp(0, 1).float(),
        tint=lerp_range(cfg.tint, scene[9]).expand(t).float(),
        haze=lerp_range(cfg.haze, per_frame[4]).float(),
        gain=(1 + cfg.illumination * (2 * per_frame[5] - 1)).float(),
    )


# ----------------------------------------------------------------------------- rendering
def streak_kernels(angle: torch.Tensor, length: torch.Tensor, sigma: torch.Tensor,
                   size: int) -> torch.Tensor:
    """Square line kernels, centre at ``[size // 2, size // 2]``.

    angle / length / sigma: (...,) tensors -> kernels (..., size, size), peak ~1 on the centre
    line. The cross-section integrates a Gaussian over each pixel (anti-aliasing); the two ends
    fade out smoothly over a fifth of the length, like the blurred tail of a falling drop.
    """
    c = size // 2
    y = torch.arange(size, dtype=torch.float32)[:, None] - c
    x = torch.arange(size, dtype=torch.float32)[None, :] - c
    a, ln, sg = (v[..., None, None] for v in (angle, length, sigma))
    along = y * torch.cos(a) + x * torch.sin(a)  # streak direction: down, leaning by angle
    across = x * torch.cos(a) - y * torch.sin(a)
    inv = 1.0 / (sg * math.sqrt(2.0))
    peak = torch.erf(0.5 * inv)
    cross = (torch.erf((across + 0.5) * inv) - torch.erf((across - 0.5) * inv)) / (2 * peak)
    ramp = torch.maximum(sg, 0.2 * ln)
    ends = ((ln / 2 + 0.5 * ramp - along.abs()) / ramp).clamp(0, 1)
    k = cross * ends * ends * (3 - 2 * ends)  # smoothstep fade at both ends
    return torch.where(k > 1e-3, k, torch.zeros(()))


def kernel_size(params: RainParams, size: tuple[int, int]) -> int:
    """Odd side of a square window holding every kernel, at most the image's shorter side."""
    reach = float((params.length * 0.6 + 3 * params.sigma + 2).max())
    side = 2 * math.ceil(reach) + 1
    limit = min(size) if min(size) % 2 else min(size) - 1
    return max(1, min(side, limit))


def render_streaks(params: RainParams, size: tuple[int, int], generator: torch.Generator
                   ) -> torch.Tensor:
    """Rain intensity R (T, 1, H, W) in [0, 1]; exactly 0 where no streak is visible."""
    t, kmax = params.density.shape
    h, w = size
    u = torch.rand((t, kmax, h, w), generator=generator)  # seed positions
    v = torch.rand((t, kmax, h, w), generator=generator)  # per-drop brightness
    seeds = torch.where(u < params.density[..., None, None], 0.35 + 0.65 * v, torch.zeros(()))
    ks = kernel_size(params, size)
    kernels = streak_kernels(params.angle, params.length, params.sigma, ks)
    # pad the window to the image and move its centre to [0, 0] (circular convolution)
    kernels = torch.roll(F.pad(kernels, (0, w - ks, 0, h - ks)), (-(ks // 2), -(ks // 2)), (-2, -1))
    rain = torch.fft.irfft2(torch.fft.rfft2(seeds) * torch.fft.rfft2(kernels), s=(h, w))
    rain = (rain * params.brightness[..., None, None]).sum(1, keepdim=True).clamp(0, 1)
    return torch.where(rain >= 0.5 / 255, rain, torch.zeros(()))


def haze_field(size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """Smooth spatial modulation (1, 1, H, W) in [0.6, 1] of the haze veil (uneven mist)."""
    coarse = torch.rand((1, 1, 4, 4), generator=generator)
    field = F.interpolate(coarse, size=size, mode="bicubic", align_corners=True)
    return 0.6 + 0.4 * field.clamp(0, 1)


def composite(background: torch.Tensor, rain: torch.Tensor, params: RainParams,
              haze_map: torch.Tensor | None = None, blend: str = "screen") -> torch.Tensor:
    """Rainy frames (T, 3, H, W) in [0, 1] from background (3, H, W) and rain (T, 1, H, W).

    Where ``rain == 0`` and there is no haze / gain change, the output equals the background.
    """
    b = background[None].float()
    mean = b.mean(dim=(2, 3), keepdim=True)  # (1, 3, 1, 1) scene colour
    rel = mean / mean.amax(dim=1, keepdim=True).clamp_min(1e-3)
    b = (b * params.gain[:, None, None, None]).clamp(0, 1)
    if haze_map is not None and bool((params.haze > 0).any()):
        airlight = (0.5 * rel + 0.5) * (0.6 + 0.4 * mean.amax(dim=1, keepdim=True))
        a = params.haze[:, None, None, None] * haze_map
        b = b * (1 - a) + a * airlight
    colour = 1 - params.tint[:, None, None, None] * (1 - rel)  # (T, 3, 1, 1)
    r = rain * colour
    # screen 1 - (1-B)(1-R) written as B + R(1-B): bit-exact B where R = 0
    out = b + r * (1 - b) if blend == "screen" else b + r
    return out.clamp(0, 1)


def scene_size(background: torch.Tensor, num_frames: int) -> tuple[int, int]:
    """(H, W) of a (3, H, W) background; ValueError for a bad shape or frame count."""
    if background.ndim != 3 or background.shape[0] != 3:
        raise ValueError(f"background must be (3, H, W), got {tuple(background.shape)}")
    if num_frames < 1:
        raise ValueError("num_frames must be >= 1")
    return (background.shape[1], background.shape[2])


class RainyScene(NamedTuple):
    frames: torch.Tensor  # (T, 3, H, W) float in [0, 1]
    rain: torch.Tensor  # (T, 1, H, W) streak intensity in [0, 1]; mask = rain > 0
    params: RainParams


def synthesize(background: torch.Tensor, num_frames: int, config: RainConfig | str,
               generator: torch.Generator) -> RainyScene:
    """Render ``num_frames`` rainy frames of one static scene over ``background`` (3,H,W) [0,1].

    ``config``: a RainConfig or a v1 preset name (:func:`preset_config`). Deterministic for a
    given generator state; different frames get different streaks.
    """
    cfg = preset_config(config)
    size = scene_size(background, num_frames)
    params = sample_params(cfg, num_frames, size, generator)
    rain = render_streaks(params, size, generator)
    hmap = haze_field(size, generator)
    frames = composite(background, rain, params, hmap, cfg.blend)
    return RainyScene(frames, rain, params)


def with_overrides(cfg: RainConfig, **changes) -> RainConfig:
    """``dataclasses.replace`` that turns lists into tuples (handy for CLI / YAML values)."""
    return replace(cfg, **{k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()})
