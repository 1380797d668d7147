"""Rendered-truth clips: static-camera rain whose clean frames are known, to check the clip score.

``memderain eval --clip`` (:mod:`memderain.evaluation.clip_score`) scores every frame against
the clip's temporal median on a scoring mask, because real rain has no ground truth. Whether
that score agrees with the truth can only be measured on clips where the truth is known. A
*truth clip* is built the way real footage is made:

1. **a static rain-free scene**: the temporal median of a real clip (or any clean photo) on a
   canvas a few pixels larger than the frame;
2. **moving content** drawn into the scene frame by frame, so the clean frames themselves
   change there: :class:`Leaves` (a textured canopy whose texture and outline sway by a few
   pixels), :class:`Flicker` (a lamp's glow whose brightness changes per frame),
   :class:`ColourSign` (a sign that changes colour at equal brightness);
3. **the camera's shake**: frame t is the canvas window moved by an integer shift;
4. **rain** added on top (the bank's ``add`` blend): real rain layers lifted from a clip
   (:func:`bank_rain`) or rendered streaks (:func:`rendered_rain`);
5. **sensor noise**: Gaussian, new in every frame, of a given luminance sigma (the clip's own,
   :func:`memderain.data.static_clip.noise_level`).

The *clean frames* are steps 1-3 rounded to uint8: what a perfect de-rainer of a perfect
camera would return. The rainy frames are steps 1-5. :func:`load_truth` reads the rainy
frames exactly as ``eval --clip`` does (:func:`memderain.data.static_clip.load_static_clip`:
alignment, temporal median, motion masks) and crops clean frames, rain and motion the same
way; :func:`compare` scores methods both against the median (on a scoring mask) and against
the clean frames. ``benchmarks/clip_truth.py`` prints the tables (docs/real-rain.md).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from memderain.data.static_clip import StaticClip, load_static_clip
from memderain.evaluation.clip_score import ClipReference, ClipScore, _highpass, _pooled
from memderain.evaluation.metrics import rgb_to_y

Method = Callable[[np.ndarray], np.ndarray]  # uint8 HxWx3 -> uint8 HxWx3


# ----------------------------------------------------------------------------- moving content
def _smooth_noise(shape: tuple[int, int], scale: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth random field in [0, 1] with features of about ``scale`` pixels."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), scale, mode="wrap")
    field -= field.min()
    return field / max(float(field.max()), 1e-9)


def _box(hw: tuple[int, int], box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """(y0, x0, h, w) in pixels of a box given as fractions of the canvas."""
    h, w = hw
    y0, x0 = int(box[0] * h), int(box[1] * w)
    return y0, x0, max(4, int(box[2] * h)), max(4, int(box[3] * w))


class Leaves:
    """A canopy of leaves in front of the scene, swaying: its texture and its outline move
    together by a sub-pixel offset of up to ``amplitude`` px that follows a slow sinusoid in
    each direction. ``contrast`` scales the leaf texture (dark gaps to lit leaves)."""

    def __init__(self, canvas_hw: tuple[int, int], rng: np.random.Generator,
                 box: tuple[float, float, float, float] = (0.05, 0.05, 0.35, 0.4),
                 amplitude: float = 2.5, contrast: float = 1.0, period: float = 6.0):
        self.y0, self.x0, h, w = _box(canvas_hw, box)
        pad = math.ceil(amplitude) + 2
        self.pad = pad
        hh, ww = h + 2 * pad, w + 2 * pad
        leafy = _smooth_noise((hh, ww), 1.2, rng)  # leaves of 2-4 px with dark gaps
        shade = _smooth_noise((hh, ww), 6.0, rng)  # light and shadow across the canopy
        dark, lit = np.array([22, 38, 18], np.float32), np.array([105, 150, 62], np.float32)
        mix = np.clip((leafy - 0.5) * 3 * contrast + 0.5, 0, 1) * (0.45 + 0.55 * shade)
        self.texture = dark + mix[..., None] * (lit - dark)
        yy, xx = np.mgrid[0:hh, 0:ww]
        ell = ((yy - hh / 2) / (h / 2)) ** 2 + ((xx - ww / 2) / (w / 2)) ** 2
        ragged = ell + 0.5 * (_smooth_noise((hh, ww), 2.0, rng) - 0.5)  # ragged outline
        self.alpha = np.clip((1.0 - ragged) * 6, 0, 1).astype(np.float32)
        self.amplitude, self.period = amplitude, period
        self.phase = rng.uniform(0, 2 * math.pi, 2)

    def offset(self, t: int) -> tuple[float, float]:
        w = 2 * math.pi * t / self.period
        return (0.4 * self.amplitude * math.sin(w + self.phase[0]),
                self.amplitude * math.sin(0.77 * w + self.phase[1]))

    def __call__(self, canvas: np.ndarray, t: int) -> np.ndarray:
        dy, dx = self.offset(t)
        tex = ndimage.shift(self.texture, (dy, dx, 0), order=1, mode="nearest")
        alpha = ndimage.shift(self.alpha, (dy, dx), order=1, mode="constant")[..., None]
        p = self.pad
        y0, x0 = self.y0 - p, self.x0 - p
        ys = slice(max(0, y0), min(canvas.shape[0], y0 + tex.shape[0]))
        xs = slice(max(0, x0), min(canvas.shape[1], x0 + tex.shape[1]))
        ty, tx = slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0)
        out = canvas.copy()
        out[ys, xs] = out[ys, xs] * (1 - alpha[ty, tx]) + tex[ty, tx] * alpha[ty, tx]
        return out


class Flicker:
    """A lamp's glow (Gaussian, ``radius`` px, peak ``level`` grey levels, warm white) whose
    brightness changes every frame by up to +-``depth`` of its level."""

    def __init__(self, canvas_hw: tuple[int, int], rng: np.random.Generator,
                 centre: tuple[float, float] = (0.3, 0.7), radius: float = 10.0,
                 level: float = 45.0, depth: float = 0.35):
        h, w = canvas_hw
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        cy, cx = centre[0] * h, centre[1] * w
        glow = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius ** 2))
        self.glow = glow[..., None] * np.array([1.0, 0.92, 0.75], np.float32) * level
        self.gains = 1 + depth * rng.uniform(-1, 1, 4096)

    def __call__(self, canvas: np.ndarray, t: int) -> np.ndarray:
        return canvas + self.glow * self.gains[t % len(self.gains)]


class ColourSign:
    """A rectangular sign (an LED panel, a traffic light, a subtitle box) that changes colour
    every ``hold`` frames among colours of about equal luminance, so only its colour moves."""

    PALETTE = np.array([[200, 70, 60], [90, 140, 70], [150, 100, 190], [70, 135, 160]],
                       np.float32)

    def __init__(self, canvas_hw: tuple[int, int], rng: np.random.Generator,
                 box: tuple[float, float, float, float] = (0.7, 0.6, 0.12, 0.25), hold: int = 3):
        self.y0, self.x0, self.h, self.w = _box(canvas_hw, box)
        self.order = rng.permutation(len(self.PALETTE))
        self.hold = hold

    def __call__(self, canvas: np.ndarray, t: int) -> np.ndarray:
        out = canvas.copy()
        colour = self.PALETTE[self.order[(t // self.hold) % len(self.PALETTE)]]
        out[self.y0:self.y0 + self.h, self.x0:self.x0 + self.w] = colour
        return out


MOVERS = {"leaves": Leaves, "flicker": Flicker, "colour": ColourSign}


# ----------------------------------------------------------------------------- rain
def rendered_rain(preset: str, frames: int, size: tuple[int, int], seed: int = 0
                  ) -> np.ndarray:
    """(T, H, W) float32 grey levels of streaks rendered by rain engine v1 (``preset``: a
    name of :data:`memderain.data.synthetic_rain.RAIN_PRESETS`; its haze and illumination
    change are left out: only the streaks)."""
    import torch

    from memderain.data.synthetic_rain import preset_config, render_streaks, sample_params

    g = torch.Generator().manual_seed(seed)
    params = sample_params(preset_config(preset), frames, size, g)
    return (render_streaks(params, size, g)[:, 0] * 255.0).numpy().astype(np.float32)


def streak_rain(frames: int, size: tuple[int, int], cover: float = 0.15, seed: int = 0,
                level: tuple[float, float] = (30.0, 90.0), length: tuple[int, int] = (6, 14)
                ) -> np.ndarray:
    """(T, H, W) float32 grey levels: thin bright streaks (1-2 px wide, ``length`` px long,
    ``level`` grey levels, slanted by up to 1 px in 4) covering about ``cover`` of every
    frame, new places in every frame; no faint veil under them (rendered rain has one, which
    a temporal median cannot tell from the background)."""
    rng = np.random.default_rng(seed)
    h, w = size
    out = np.zeros((frames, h, w), np.float32)
    mean_area = 1.5 * (length[0] + length[1]) / 2
    for t in range(frames):
        for _ in range(int(cover * h * w / mean_area)):
            n, wd = int(rng.integers(length[0], length[1] + 1)), int(rng.integers(1, 3))
            y, x, lean = int(rng.integers(0, h)), int(rng.integers(0, w)), rng.uniform(-0.25, 0.25)
            v = rng.uniform(*level)
            for k in range(n):
                yy, xx = y + k, round(x + lean * k)
                if 0 <= yy < h:
                    out[t, yy, max(0, xx):min(w, xx + wd)] = np.maximum(
                        out[t, yy, max(0, xx):min(w, xx + wd)], v)
    return out


def bank_rain(bank: str | Path, clip: str, frames: int, size: tuple[int, int], seed: int = 0,
              gain: float = 1.0, scale: float = 1.0) -> np.ndarray:
    """(T, H, W) float32 grey levels: consecutive real rain layers of ``clip`` in a bank
    (``memderain rain-layers``), one window of them (``scale`` layer px per output px) at a
    random place, times ``gain``."""
    from memderain.data.rain_layers import RainBank
    from memderain.data.rain_real import cut_layer, fit_scale

    b = RainBank.open(bank)
    rng = np.random.default_rng(seed)
    start = int(rng.integers(len(b.clips[clip])))
    pos = (float(rng.uniform()), float(rng.uniform()))
    first = b.layer(clip, start)
    scale = fit_scale(first.shape, size, 0.0, scale)
    layers = [cut_layer(b.layer(clip, start + t), size, scale, 0.0, False, pos)
              for t in range(frames)]
    return np.clip(np.stack(layers) * gain, 0.0, 1.0).astype(np.float32) * 255.0


# ----------------------------------------------------------------------------- clips
@dataclass
class TruthClip:
    """A rainy clip and its truth, in the camera's coordinates (frame t = canvas window
    moved by ``shifts[t]``)."""

    name: str
    frames: np.ndarray  # (T, H, W, 3) uint8: what the camera records
    clean: np.ndarray  # (T, H, W, 3) uint8: the same without rain and noise (the truth)
    derained: np.ndarray  # (T, H, W, 3) uint8: without rain, with the noise (ideal de-rainer)
    rain: np.ndarray  # (T, H, W) float32: rain added, grey levels
    noise: float  # luminance sigma of the sensor noise, grey levels
    shifts: np.ndarray  # (T, 2) int (dy, dx) camera shake applied

    def __len__(self) -> int:
        return len(self.frames)


def sensor_noise(shape: tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian RGB noise (..., 3) whose BT.601 luminance (the one of
    :func:`memderain.data.static_clip.noise_level`) has std ``sigma``: partly common to the
    three channels (brightness noise), partly per channel (colour noise)."""
    common = rng.standard_normal((*shape, 1), dtype=np.float32)
    own = rng.standard_normal((*shape, 3), dtype=np.float32)
    lum = np.array([0.299, 0.587, 0.114])
    y_std = math.sqrt(0.8 ** 2 + 0.6 ** 2 * float((lum ** 2).sum()))
    return (0.8 * common + 0.6 * own) * np.float32(sigma / y_std)


def make_truth_clip(scene: np.ndarray, rain: np.ndarray, noise: float,
                    shifts: np.ndarray | None = None,
                    movers: Sequence[Callable[[np.ndarray, int], np.ndarray]] = (),
                    seed: int = 0, name: str = "truth") -> TruthClip:
    """Frames of ``scene`` (canvas (H + 2m, W + 2m, 3), m = the largest shift) with
    ``movers`` drawn per frame, cut at ``shifts`` (T, 2), plus ``rain`` (T, H, W grey
    levels) and sensor noise of luminance sigma ``noise``."""
    t_n, h, w = rain.shape
    shifts = np.zeros((t_n, 2), int) if shifts is None else np.asarray(shifts, int)
    if len(shifts) != t_n:
        raise ValueError(f"{len(shifts)} shifts for {t_n} frames")
    m = int(np.abs(shifts).max()) if shifts.size else 0
    if scene.shape[:2] != (h + 2 * m, w + 2 * m):
        raise ValueError(f"scene {scene.shape[:2]} must be the frame {(h, w)} plus {m} px "
                         "on every side (the largest shift)")
    rng = np.random.default_rng(seed)
    base = scene.astype(np.float32)
    frames, clean, derained = [], [], []
    for t in range(t_n):
        canvas = base
        for mover in movers:
            canvas = mover(canvas, t)
        dy, dx = shifts[t]
        c = np.clip(canvas[m + dy:m + dy + h, m + dx:m + dx + w], 0, 255).round()
        clean.append(c.astype(np.uint8))
        noisy = c + sensor_noise((h, w), noise, rng)
        derained.append(np.clip(noisy, 0, 255).round().astype(np.uint8))
        frames.append(np.clip(noisy + rain[t][..., None], 0, 255).round().astype(np.uint8))
    return TruthClip(name, np.stack(frames), np.stack(clean), np.stack(derained),
                     rain.astype(np.float32), noise, shifts)


def crop_aligned(arrays: np.ndarray, shifts: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``arrays`` (T, H, W, ...) cropped as :func:`memderain.data.static_clip.align_frames`
    crops frames measured at ``shifts``, to the aligned ``size`` (H', W')."""
    top = int(max(0, -shifts[:, 0].min()))
    left = int(max(0, -shifts[:, 1].min()))
    hh, ww = size
    return np.stack([a[top + dy:top + dy + hh, left + dx:left + dx + ww]
                     for a, (dy, dx) in zip(arrays, shifts, strict=True)])


@dataclass
class LoadedTruth:
    """A truth clip as ``eval --clip`` sees it, and its truth on the same aligned pixels."""

    name: str
    clip: StaticClip  # aligned rainy frames, temporal median, motion masks
    clean: np.ndarray  # (T, H', W', 3) uint8 clean frames, aligned like clip.frames
    derained: np.ndarray  # (T, H', W', 3) uint8 what an ideal de-rainer returns (noise kept)
    rain: np.ndarray  # (T, H', W') float32 rain added
    change: np.ndarray  # (H', W') float32: how much the clean scene changes over the clip
    noise: float

    def __len__(self) -> int:
        return len(self.clip)

    def moving(self, level: float = 3.0) -> np.ndarray:
        """(H', W') bool: pixels whose clean content changes by more than ``level`` grey
        levels (any channel) between some two aligned frames: swaying, flicker, colour change
        (and the scene's own edges where the measured shake missed the applied one)."""
        return self.change > level


def load_truth(truth: TruthClip, folder: str | Path | None = None, jpeg: int | None = None
               ) -> LoadedTruth:
    """Write the rainy frames as PNG (lossless; ``jpeg``: as JPEG of that quality, the codec's
    error then belongs to the rainy frames) to ``folder`` (default: a temporary one), load
    them with :func:`load_static_clip` (what ``eval --clip`` runs) and crop the truth alike.
    Alignment is measured, not told: a wrong shift shows in the median, as it would."""
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="clip_truth_") as tmp:
        root = Path(folder) if folder is not None else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        for t, f in enumerate(truth.frames):
            if jpeg:
                Image.fromarray(f).save(root / f"f{t:04d}.jpg", quality=jpeg)
            else:
                Image.fromarray(f).save(root / f"f{t:04d}.png")
        clip = load_static_clip(root, max_frames=None)
    size = clip.frames.shape[1:3]
    clean = crop_aligned(truth.clean, clip.shifts, size)
    cf = clean.astype(np.float32)
    change = (cf.max(axis=0) - cf.min(axis=0)).max(axis=-1)
    return LoadedTruth(truth.name, clip, clean, crop_aligned(truth.derained, clip.shifts, size),
                       crop_aligned(truth.rain, clip.shifts, size), change, truth.noise)


# ----------------------------------------------------------------------------- scoring
@dataclass(frozen=True)
class Agreement:
    """One method on one truth clip: the median score (as ``eval --clip``: the temporal
    median on the scoring mask), the truth score (the clean frames on every pixel where the
    scene is static, :meth:`LoadedTruth.moving` left out: no static reference can score
    pixels whose truth moves) and the truth score on the scoring mask's own pixels."""

    median: ClipScore
    truth: ClipScore
    truth_on_mask: ClipScore

    @property
    def difference(self) -> float:
        """Median score minus truth score (dB): > 0 the median flatters the method."""
        return self.median.psnr_y - self.truth.psnr_y


def _sums(y: np.ndarray, ref_y: np.ndarray, ref_hp: np.ndarray, m: np.ndarray
          ) -> tuple[float, float, float, int]:
    d = (y - ref_y)[m]
    hp = (_highpass(y) - ref_hp)[m]
    return float(np.dot(d, d)), float(d.sum()), float(np.dot(hp, hp)), int(m.sum())


def run_methods(clip: StaticClip, methods: dict[str, Method],
                progress: Callable | None = None) -> dict[str, np.ndarray]:
    """{"input": frames, **{name: outputs}}: every method on every aligned frame, once."""
    out = {"input": clip.frames}
    for name, fn in methods.items():
        frames = range(len(clip))
        it = progress(frames, name) if progress is not None else frames
        out[name] = np.stack([fn(clip.frames[t]) for t in it])
    return out


def compare(loaded: LoadedTruth, outputs: dict[str, np.ndarray], kind: str = "strict",
            level: float = 3.0, frames: Sequence[int] | None = None) -> dict[str, Agreement]:
    """Score ``outputs`` ({name: (T, H', W', 3) uint8}, :func:`run_methods`) against the
    temporal median (``kind`` of :class:`ClipReference`) and against the clean
    frames: on every pixel whose clean content changes by at most ``level`` grey levels over
    the clip (the border :data:`memderain.evaluation.clip_score.BORDER` left out), and on the
    mask's pixels. ``frames``: score only these frames (default: all; e.g. the frames an
    adaptation held out)."""
    ref = ClipReference(loaded.clip, kind)
    inner = ref.inner & ~loaded.moving(level)
    picked = list(range(len(loaded))) if frames is None else list(frames)
    clean_y = {t: rgb_to_y(loaded.clean[t]) for t in picked}
    clean_hp = {t: _highpass(y) for t, y in clean_y.items()}
    sums: dict[str, tuple[list, list, list]] = {name: ([], [], []) for name in outputs}
    for t in picked:  # frame by frame: the reference of a frame is built once for every method
        m = ref.mask(t)
        for name, outs in outputs.items():
            y = rgb_to_y(outs[t])
            med, tru, tmask = sums[name]
            med.append(ref.frame_sums(t, outs[t]))  # what eval --clip computes
            tru.append(_sums(y, clean_y[t], clean_hp[t], inner))
            tmask.append(_sums(y, clean_y[t], clean_hp[t], m))
    n = len(picked)
    return {name: Agreement(*(_pooled(*np.sum(s, axis=0), n) for s in per))
            for name, per in sums.items()}


def ranking(scores: dict[str, float]) -> list[str]:
    """Names from best (highest) to worst."""
    return sorted(scores, key=lambda k: -scores[k])


def kendall_tau(a: Sequence[str], b: Sequence[str]) -> float:
    """Kendall's tau of two orderings of the same names (1 = the same order)."""
    pos = {k: i for i, k in enumerate(b)}
    n, s = len(a), 0
    for i in range(n):
        for j in range(i + 1, n):
            s += 1 if pos[a[i]] < pos[a[j]] else -1
    return s / (n * (n - 1) / 2) if n > 1 else 1.0


def agreement_table(results: dict[str, dict[str, Agreement]]) -> str:
    """Markdown: one row per clip and method; median score, truth score, difference, truth
    on the mask's pixels; per clip whether the ranking agrees (and Kendall's tau)."""
    lines = [("| clip | method | median score (dB) | truth (dB) | difference | truth on mask "
              "pixels | brightness vs median / vs truth |"),
             "|---|---|---:|---:|---:|---:|---:|"]
    for clip, res in results.items():
        med = ranking({k: v.median.psnr_y for k, v in res.items()})
        tru = ranking({k: v.truth.psnr_y for k, v in res.items()})
        tag = "same ranking" if med == tru else f"ranking differs (tau {kendall_tau(med, tru):.2f})"
        for i, (name, a) in enumerate(res.items()):
            lines.append(f"| {clip + ' (' + tag + ')' if i == 0 else ''} | {name} | "
                         f"{a.median.psnr_y:.2f} | {a.truth.psnr_y:.2f} | {a.difference:+.2f} | "
                         f"{a.truth_on_mask.psnr_y:.2f} | {a.median.brightness:+.2f} / "
                         f"{a.truth.brightness:+.2f} |")
    return "\n".join(lines)


def compact_table(results: dict[str, dict[str, Agreement]]) -> str:
    """Markdown, one row per method and one column per clip: "median / truth (difference)"
    in dB, then whether the clip's methods rank the same both ways."""
    clips = list(results)
    methods = list(next(iter(results.values())))
    short = [c.split(":")[0] for c in clips]
    lines = ["| method | " + " | ".join(short) + " |", "|---|" + "---:|" * len(clips)]
    for m in methods:
        cells = [f"{r[m].median.psnr_y:.2f} / {r[m].truth.psnr_y:.2f} ({r[m].difference:+.2f})"
                 for r in results.values()]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    same = []
    for r in results.values():
        med = ranking({k: v.median.psnr_y for k, v in r.items()})
        tru = ranking({k: v.truth.psnr_y for k, v in r.items()})
        same.append("yes" if med == tru else f"no (tau {kendall_tau(med, tru):.2f})")
    lines.append("| same ranking | " + " | ".join(same) + " |")
    return "\n".join(lines)
