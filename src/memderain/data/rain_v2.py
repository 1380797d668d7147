"""Rain engine v2: synthetic time-lapse rain closer to real photographs (vectorised, seeded).

Engine v1 (:mod:`memderain.data.synthetic_rain`) draws thin 0-25 deg streaks 10-40 px long in
1-3 layers, screen-blended; a model trained on it leaves real rain almost untouched. v2 widens
every range and models what real rain photos show (docs/data.md lists the literature):

* **Streak appearance** (Garg & Nayar 2004, 2007). A falling drop refracts light from a wide
  field of view (~165 deg), so its radiance is close to the *environment's* brightness, not the
  background pixel behind it: streaks show against dark backgrounds and vanish against bright
  sky. A streak is the drop's motion blur over the exposure: constant intensity along its
  length (every pixel sees the drop for the same time) with a soft start and end, and a
  low time-averaged opacity. Composite per pixel and channel::

      I = B_v + alpha * max(L - B_v, 0)        (rain only adds light, like Eq. 1 with R >= 0)

  where ``L`` is the drop radiance (the locally averaged scene light plus a per-scene boost,
  pulled towards the scene's colour by ``tint``), ``alpha`` the streak opacity map and ``B_v``
  the background after the accumulation veil. Where ``alpha == 0`` the pixel is ``B_v``
  exactly.
* **Depth layers** (Garg & Nayar; Rain1400 / Fu et al. 2017 and Rain100H / Yang et al. 2017
  render several streak directions and sizes per image). 1-4 streak layers, each deeper one
  shorter, thinner, denser and fainter (layer scale s: length, width x s^k; density x
  s^(-1.5 k); opacity x s^(k/2)), so far rain becomes a fine texture. With probability
  ``near_prob`` a near layer of large, defocused, transparent drops is added in front.
* **Per-streak variation**: each layer is split into ``groups`` sub-layers with their own angle
  (+- ``streak_jitter``) and length factor, and every drop has its own opacity; per frame the
  scene angle, length, density and opacity are jittered and new drops are drawn.
* **Accumulation veil** (Yang et al. 2017, Rain100H's rain-accumulation model; Li et al. 2019
  heavy-rain model): ``B_v = B (1 - a) + a A``, with a smooth, uneven field that drifts slowly
  across the frames of a scene (``veil`` strength, ``veil_drift`` change from first to last
  frame; 0 = the same veil in every frame), airlight ``A`` the drop radiance.
* **Camera**: Poisson-Gaussian sensor noise (``noise``) and JPEG re-compression
  (``jpeg_quality``), each applied to a scene with a probability, fresh per frame.

Densities are drawn log-uniformly (drizzle to torrential), lengths and widths log-uniformly.
Lengths, widths and blur are pixels at ``reference_size`` (the longer side); other sizes scale
them and the density per pixel. Widths are full widths at half maximum (FWHM).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from memderain.config import ConfigError
from memderain.data.synthetic_rain import (
    RainyScene,
    Range,
    check_ranges,
    haze_field,
    lerp_range,
    scene_size,
    streak_kernels,
    uniform,
)
from memderain.data.transforms import jpeg_roundtrip

_FWHM = 2.0 * math.sqrt(2.0 * math.log(2.0))  # Gaussian FWHM / sigma


@dataclass(frozen=True)
class RainV2Config:
    """Ranges of rain engine v2; per scene a value is drawn from each (log-uniformly for
    density, length and width, uniformly otherwise). Sizes are px at ``reference_size``."""

    angle: Range = (0.0, 40.0)  # |scene angle| from vertical, degrees; lean sign random
    angle_jitter: float = 3.0  # per-frame change of the scene angle, +- degrees
    streak_jitter: float = 5.0  # per-streak (sub-layer) angle spread, +- degrees
    length: Range = (5.0, 150.0)  # streak length of the front streak layer, px
    length_jitter: float = 0.15  # per-frame length factor in [1 - j, 1 + j]
    width: Range = (1.0, 6.0)  # streak FWHM of the front streak layer, px
    density: Range = (2e-4, 6e-3)  # drops per pixel of the front streak layer
    density_jitter: float = 0.3  # per-frame density factor in [1 - j, 1 + j]
    opacity: Range = (0.3, 1.0)  # peak opacity of a streak of the front layer
    opacity_jitter: float = 0.15  # per-frame opacity factor in [1 - j, 1 + j]
    layers: tuple[int, int] = (1, 4)  # streak layers (inclusive range)
    layer_scale: Range = (0.45, 0.75)  # s: deeper layers shorter / thinner by s, denser
    groups: int = 3  # sub-layers per layer with their own angle and length (per-streak jitter)
    near_prob: float = 0.4  # chance of a near layer of large, defocused, transparent drops
    near_width: Range = (6.0, 14.0)  # FWHM of near drops, px (defocus included)
    near_opacity: Range = (0.08, 0.3)
    brightness: Range = (0.15, 0.6)  # drop radiance above the local scene light
    tint: Range = (0.0, 0.5)  # drop colour pulled from white towards the scene's colour
    veil_prob: float = 0.5  # chance that a scene has an accumulation veil
    veil: Range = (0.03, 0.3)  # veil strength a (mean over the image)
    veil_drift: float = 0.3  # veil strength change first -> last frame, +- factor (0: static)
    noise_prob: float = 0.5  # chance that a scene has sensor noise
    noise: Range = (0.002, 0.012)  # read-noise sigma (and shot noise sigma at white)
    jpeg_prob: float = 0.6  # chance that a scene's frames are JPEG re-compressed
    jpeg_quality: tuple[int, int] = (60, 95)
    dry_prob: float = 0.0  # chance that a frame has no streaks (a pause in the rain)
    reference_size: int = 512

    def __post_init__(self) -> None:
        check_ranges(self)
        for name in ("near_prob", "veil_prob", "noise_prob", "jpeg_prob", "dry_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"rain.{name} must lie in [0, 1], got {getattr(self, name)}")
        for name in ("density_jitter", "length_jitter", "opacity_jitter", "veil_drift"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"rain.{name} must lie in [0, 1), got {getattr(self, name)}")
        if self.angle[1] + self.angle_jitter + self.streak_jitter >= 89:
            raise ConfigError("rain.angle + angle_jitter + streak_jitter must stay below 89 deg")
        if min(self.density[0], self.length[0], self.width[0]) <= 0:
            raise ConfigError("rain.density, rain.length and rain.width must be > 0")
        if self.density[1] > 0.05:
            raise ConfigError(f"rain.density must be <= 0.05, got {list(self.density)}")
        if self.layers[0] < 1 or any(int(x) != x for x in self.layers) or self.layers[1] > 6:
            raise ConfigError(f"rain.layers must be whole numbers in 1..6, got {list(self.layers)}")
        if self.layer_scale[1] > 1 or self.layer_scale[0] <= 0:
            raise ConfigError("rain.layer_scale must lie in (0, 1]")
        if not 1 <= self.groups <= 8:
            raise ConfigError(f"rain.groups must be 1..8, got {self.groups}")
        if max(self.opacity[1], self.near_opacity[1], self.brightness[1], self.tint[1],
               self.veil[1]) > 1:
            raise ConfigError("rain opacities, brightness, tint and veil must be <= 1")
        if self.noise[1] > 0.2:
            raise ConfigError("rain.noise must be <= 0.2")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ConfigError(f"rain.jpeg_quality must lie in 1..100, got {list(self.jpeg_quality)}")
        if self.reference_size < 1:
            raise ConfigError("rain.reference_size must be positive")


_CLEAN = {"veil_prob": 0.0, "noise_prob": 0.0, "jpeg_prob": 0.0}

V2_PRESETS: dict[str, RainV2Config] = {
    # Training default of engine v2: every range broad, veil / noise / JPEG on half the scenes.
    "v2": RainV2Config(),
    # The streaks of `v2` alone (no veil, noise or JPEG).
    "v2-streaks": RainV2Config(**_CLEAN),
    # Training rain of the shipped model from stage 4: `v2` without what differs between two
    # frames of a time-lapse except the streaks. Siamese losses push the network to remove any
    # per-frame difference, and with R >= 0 it can only subtract, so per-frame changes turn
    # into a darkening of every photo (mean darkening of clean test photos after 500-1250
    # steps: `v2` 2.3-3.4 grey levels; static veil and no noise 2.2; + 15 % dry frames 1.4-1.6,
    # with JPEG still on: the positive half of each frame's JPEG error is removed too; stage 3
    # 0.9). So: a static veil, no sensor noise, no JPEG, and a quarter of the frames dry (a
    # pause in the rain, as real time-lapses have), whose pairs tell the losses to leave a
    # rain-free image unchanged.
    "v2-timelapse": RainV2Config(veil_drift=0.0, noise_prob=0.0, jpeg_prob=0.0, dry_prob=0.25),
    # `v2-timelapse` with half of the scenes JPEG re-compressed (one quality per scene, so
    # dry 8x8 blocks stay identical across frames). Real rainy photos are JPEGs, and JPEG cost
    # the stage-4 model (step 6500, trained without it) much of its gain: test-heavy +5.3 dB on
    # PNG inputs, +3.7 at quality 75, +3.4 at 50; test-light +1.9, -0.2, -1.0 (every 6th test
    # image, the same JPEG applied to the clean target). The second half of stage 4 trains on it.
    "v2-timelapse-jpeg": RainV2Config(veil_drift=0.0, noise_prob=0.0, jpeg_prob=0.5,
                                      dry_prob=0.25),
    # ---- test presets: render them on ../shared/data/backgrounds/test only --------------------
    # Thin, sparse streaks; nothing else changes the image.
    # (rainy-vs-clean PSNR about 30 dB on the test photos)
    "test-light": RainV2Config(width=(1.0, 1.5), length=(10.0, 40.0), density=(8e-4, 2.5e-3),
                               opacity=(0.4, 0.8), layers=(1, 2), near_prob=0.0, **_CLEAN),
    # Dense, wide streaks in 3-4 layers, near drops, and a slowly drifting accumulation veil
    # (about 16 dB, like Rain100H).
    "test-heavy": RainV2Config(width=(3.0, 6.0), length=(30.0, 100.0), density=(1e-3, 2e-3),
                               opacity=(0.4, 0.8), layers=(3, 4), near_prob=1.0,
                               veil_prob=1.0, veil=(0.05, 0.12), noise_prob=0.0, jpeg_prob=0.0),
    # A style no training preset draws (about 24 dB): wind-driven streaks at 52-62 deg (training streaks stay
    # below 40 + 3 + 5 = 48 deg), no per-frame or per-streak angle change.
    "test-unseen": RainV2Config(angle=(52.0, 62.0), angle_jitter=0.0, streak_jitter=0.0,
                                length=(20.0, 80.0), width=(1.0, 3.0), density=(5e-4, 3e-3),
                                layers=(2, 3), near_prob=0.0, **_CLEAN),
}


# ----------------------------------------------------------------------------- sampling
class RainV2Params(NamedTuple):
    """Per-frame, per-group streak parameters in pixels of the target image, shape (T, G).

    Groups run layer-major: group ``g`` belongs to layer ``layer[g]`` (0 = front streak layer;
    the near-drop layer, when present, is the last layer). Unused groups have density 0.
    """

    angle: torch.Tensor  # radians from vertical
    length: torch.Tensor
    sigma: torch.Tensor  # Gaussian cross-section sigma, px
    density: torch.Tensor  # drops per pixel
    opacity: torch.Tensor
    layer: torch.Tensor  # (G,) layer index of each group
    brightness: torch.Tensor  # (T,) drop radiance above the local scene light
    tint: torch.Tensor  # (T,)
    veil: torch.Tensor  # (T,) veil strength
    noise: torch.Tensor  # (T,) read-noise sigma (0 = none)
    jpeg_quality: torch.Tensor  # (T,) int, 0 = no re-compression


def _log(r: Range, u: torch.Tensor) -> torch.Tensor:
    return torch.exp(math.log(r[0]) + (math.log(r[1]) - math.log(r[0])) * u)


def sample_params(cfg: RainV2Config, num_frames: int, size: tuple[int, int],
                  generator: torch.Generator) -> RainV2Params:
    """Draw one scene's parameters (a fixed number of draws for given T, layers[1], groups)."""
    t, kmax, nj = num_frames, int(cfg.layers[1]), cfg.groups
    g = generator
    px = max(size) / cfg.reference_size
    sc = uniform(g, 16)  # per-scene draws
    fr = uniform(g, 5, t)  # per-frame: angle, density, length, opacity jitters; veil drift
    grp = uniform(g, 2, kmax + 1, nj)  # per-group angle offset and length factor

    sign = -1.0 if float(sc[0]) < 0.5 else 1.0
    angle0 = sign * lerp_range(cfg.angle, sc[1])
    n_layers = min(kmax, int(cfg.layers[0] + math.floor(float(sc[2]) * (kmax - cfg.layers[0] + 1))))
    s = lerp_range(cfg.layer_scale, sc[3])
    length0 = _log(cfg.length, sc[4]) * px
    width0 = _log(cfg.width, sc[5]) * px
    dens0 = _log(cfg.density, sc[6]) / px ** 2
    opac0 = lerp_range(cfg.opacity, sc[7])
    near = float(sc[8]) < cfg.near_prob
    veil_on = float(sc[9]) < cfg.veil_prob
    noise_on = float(sc[10]) < cfg.noise_prob
    jpeg_on = float(sc[11]) < cfg.jpeg_prob

    # per frame (T,)
    angle_t = angle0 + cfg.angle_jitter * (2 * fr[0] - 1)
    dens_t = 1 + cfg.density_jitter * (2 * fr[1] - 1)
    len_t = 1 + cfg.length_jitter * (2 * fr[2] - 1)
    opac_t = 1 + cfg.opacity_jitter * (2 * fr[3] - 1)

    # per layer (K+1,): streak layers 0..kmax-1, then the near layer
    k = torch.arange(kmax + 1, dtype=torch.float64)
    sk = s ** k
    length_k = length0 * sk
    sigma_k = (width0 * sk / _FWHM).clamp_min(0.4)
    dens_k = dens0 * sk ** -1.5 * (k < n_layers)
    opac_k = opac0 * sk ** 0.5
    # near layer: large, defocused, transparent drops, few of them, a bit longer than the front
    length_k[kmax] = length0 * 1.3
    sigma_k[kmax] = lerp_range(cfg.near_width, sc[12]) * px / _FWHM
    dens_k[kmax] = dens0 * 0.15 if near else 0.0
    opac_k[kmax] = lerp_range(cfg.near_opacity, sc[13])

    # per group (K+1, J): own angle offset and length factor (per-streak variation)
    ang_off = cfg.streak_jitter * (2 * grp[0] - 1)
    len_fac = 0.7 + 0.6 * grp[1]
    if nj == 1:
        ang_off, len_fac = ang_off * 0, len_fac * 0 + 1
    layer = torch.arange(kmax + 1).repeat_interleave(nj)

    def per_group(v_k: torch.Tensor) -> torch.Tensor:  # (K+1,) -> (G,)
        return v_k.repeat_interleave(nj)

    angle = angle_t[:, None] + ang_off.reshape(-1)[None, :]
    length = (len_t[:, None] * (per_group(length_k) * len_fac.reshape(-1))[None, :]).clamp_min(2.0)
    sigma = per_group(sigma_k)[None, :].expand(t, -1)
    density = (dens_t[:, None] * per_group(dens_k)[None, :] / nj).clamp(0, 0.5)
    opacity = (opac_t[:, None] * per_group(opac_k)[None, :]).clamp(0, 1)

    drift = 1 + cfg.veil_drift * (2 * float(sc[14]) - 1) * torch.linspace(-1, 1, t,
                                                                         dtype=torch.float64)
    flicker = 1 + cfg.veil_drift / 3 * (2 * fr[4] - 1)  # small per-frame change (0 if static)
    veil = (lerp_range(cfg.veil, sc[15]) * drift * flicker).clamp(0, 1) \
        if veil_on else torch.zeros(t, dtype=torch.float64)
    more = uniform(g, 4)  # brightness, tint, noise level, JPEG quality
    noise = torch.full((t,), float(lerp_range(cfg.noise, more[2])) if noise_on else 0.0)
    q = round(cfg.jpeg_quality[0] + (cfg.jpeg_quality[1] - cfg.jpeg_quality[0])
              * float(more[3]))
    if cfg.dry_prob > 0:  # drawn last and only then: presets without dry frames render as before
        wet = (uniform(g, t) >= cfg.dry_prob).to(density.dtype)
        density = density * wet[:, None]
    return RainV2Params(
        angle=torch.deg2rad(angle).float(),
        length=length.float(),
        sigma=sigma.float().contiguous(),
        density=density.float(),
        opacity=opacity.float(),
        layer=layer,
        brightness=torch.full((t,), float(lerp_range(cfg.brightness, more[0]))),
        tint=torch.full((t,), float(lerp_range(cfg.tint, more[1]))),
        veil=veil.float(),
        noise=noise,
        jpeg_quality=torch.full((t,), q if jpeg_on else 0, dtype=torch.int64),
    )


# ----------------------------------------------------------------------------- rendering
def _kernel_size(params: RainV2Params, size: tuple[int, int]) -> int:
    on = params.density > 0
    if not bool(on.any()):
        return 1
    reach = float((params.length * 0.6 + 3 * params.sigma + 2)[on].max())
    side = 2 * math.ceil(reach) + 1
    limit = min(size) if min(size) % 2 else min(size) - 1
    return max(1, min(side, limit))


def render_alpha(params: RainV2Params, size: tuple[int, int], generator: torch.Generator
                 ) -> torch.Tensor:
    """Streak opacity (T, 1, H, W) in [0, 1]; exactly 0 where no streak is visible.

    Drops are scattered as a Poisson number of seeds per (frame, group) with random opacity,
    convolved (FFT, circular: rain wraps seamlessly) with the group's streak kernel; groups of a
    layer add up (clipped at 1), layers combine as ``1 - prod(1 - alpha_k)``.
    """
    t, ng = params.density.shape
    h, w = size
    rate = (params.density * h * w).double()
    counts = torch.poisson(rate, generator=generator).long()  # (T, G)
    total = int(counts.sum())
    alpha = torch.zeros((t, 1, h, w))
    if total == 0:
        return alpha
    owner = torch.repeat_interleave(torch.arange(t * ng), counts.reshape(-1))
    pos = torch.randint(0, h * w, (total,), generator=generator)
    amp = 0.35 + 0.65 * torch.rand(total, generator=generator)
    seeds = torch.zeros(t * ng * h * w)
    seeds.index_put_((owner * (h * w) + pos,), amp, accumulate=True)
    seeds = seeds.view(t, ng, h, w)
    ks = _kernel_size(params, size)
    kernels = streak_kernels(params.angle, params.length, params.sigma, ks)
    kernels = torch.roll(F.pad(kernels, (0, w - ks, 0, h - ks)), (-(ks // 2), -(ks // 2)),
                         (-2, -1))
    a = torch.fft.irfft2(torch.fft.rfft2(seeds) * torch.fft.rfft2(kernels), s=(h, w))
    a = a.clamp_min(0) * params.opacity[..., None, None]
    n_layers = int(params.layer.max()) + 1
    per_layer = torch.zeros((t, n_layers, h, w)).index_add_(1, params.layer, a).clamp(0, 1)
    alpha = 1 - (1 - per_layer).prod(dim=1, keepdim=True)
    return torch.where(alpha >= 0.5 / 255, alpha, torch.zeros(())).clamp(0, 1)


def scene_light(background: torch.Tensor) -> torch.Tensor:
    """Local scene light (1, 3, H, W): the background averaged over about 1/8 of the image,
    half-and-half with its global mean (a drop sees a wide field of view)."""
    b = background[None].float()
    h, w = b.shape[-2:]
    small = F.adaptive_avg_pool2d(b, (max(1, h // 64), max(1, w // 64)))
    local = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return 0.5 * local + 0.5 * b.mean(dim=(2, 3), keepdim=True)


def drop_radiance(background: torch.Tensor, params: RainV2Params) -> torch.Tensor:
    """Drop radiance L (T, 3, H, W) in [0, 1]: scene light + a per-scene boost, tinted."""
    env = scene_light(background)
    lum = env.mean(dim=1, keepdim=True)
    rel = env / env.amax(dim=1, keepdim=True).clamp_min(1e-3)
    tint = params.tint[:, None, None, None]
    colour = 1 - tint * (1 - rel)
    return ((lum + params.brightness[:, None, None, None]) * colour).clamp(0, 1)


def _veil_maps(size: tuple[int, int], t: int, generator: torch.Generator,
               drift: bool = True) -> torch.Tensor:
    """Uneven veil field (T, 1, H, W) in [0.6, 1] drifting from one random field to another
    (``drift``), or the same field in every frame."""
    f0, f1 = haze_field(size, generator), haze_field(size, generator)
    s = torch.linspace(0, 1, t)[:, None, None, None] * float(drift)
    return f0 * (1 - s) + f1 * s


def apply_camera(frames: torch.Tensor, params: RainV2Params, generator: torch.Generator
                 ) -> torch.Tensor:
    """Poisson-Gaussian noise (var = sigma^2 (1 + x)) then JPEG re-compression, per frame."""
    out = frames
    sig = params.noise[:, None, None, None]
    if bool((sig > 0).any()):
        n = torch.randn(frames.shape, generator=generator)
        out = (out + n * sig * torch.sqrt(1 + out)).clamp(0, 1)
    if bool((params.jpeg_quality > 0).any()):
        jp = []
        for frame, q in zip(out, params.jpeg_quality.tolist()):
            if q <= 0:
                jp.append(frame)
                continue
            jp.append(jpeg_roundtrip(frame, q))
        out = torch.stack(jp)
    return out


def synthesize_v2(background: torch.Tensor, num_frames: int, cfg: RainV2Config,
                  generator: torch.Generator) -> RainyScene:
    """Render ``num_frames`` rainy frames (T, 3, H, W) in [0, 1] of one static scene.

    ``RainyScene.rain`` is the streak opacity alpha (T, 1, H, W); where it is 0 and the scene has
    no veil, noise or JPEG, the frame equals the background exactly.
    """
    size = scene_size(background, num_frames)
    params = sample_params(cfg, num_frames, size, generator)
    alpha = render_alpha(params, size, generator)
    veil_map = _veil_maps(size, num_frames, generator, drift=cfg.veil_drift > 0)
    b = background[None].float().expand(num_frames, -1, -1, -1)
    light = drop_radiance(background, params)
    if bool((params.veil > 0).any()):
        a = params.veil[:, None, None, None] * veil_map
        b = b * (1 - a) + a * light
    frames = (b + alpha * (light - b).clamp_min(0)).clamp(0, 1)
    frames = apply_camera(frames, params, generator)
    return RainyScene(frames, alpha, params)
