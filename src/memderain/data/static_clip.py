"""Real rain from a static camera: aligned frames, a temporal median and a static-pixel mask.

The paper trains on time-lapse frames of one static scene (Sec. IV-B1). Real footage is only
*almost* static: a tripod drifts by a pixel, cars and people cross, trees sway, subtitles
change. :func:`load_static_clip` turns a video or a folder of frames into a
:class:`StaticClip`:

1. **Frames**: up to ``max_frames`` evenly spaced frames (video: PyAV; folder: natural order).
   Fewer than 3 frames are refused (a median of two frames is no background).
2. **Alignment** (:func:`align_clip`): the integer translation of every frame against a
   rain-suppressed reference (the temporal median of all frames, roughly aligned first) by
   phase correlation. Frames are shifted onto the reference and all cropped to the region every
   frame covers. A camera that moves more than ``max_shift`` pixels is hand-held:
   ``stabilise="auto"`` (the default) then warps every frame onto a reference view with a
   homography (:mod:`memderain.data.stabilise`), ``"off"`` refuses the clip with the measured
   shift (the behaviour before hand-held clips were supported), ``"on"`` stabilises every
   clip. A static clip takes exactly the shift path it always took.
3. **Temporal median** of the aligned frames: the clip's pseudo ground truth (how SPA-Data
   was made; the paper's footnote 4 uses the mean).
4. **Static mask** (:func:`motion_masks`): pixels where the scene itself does not change.
   Rain only adds light (R >= 0, Eq. 1), is nearly colourless and is thin, so a pixel is
   *moving* when, in some frame, it is clearly darker than the median, changes colour, or
   brightens as part of a blob wider than a rain streak. Thresholds scale with the clip's
   noise level; the mask is cleaned of isolated pixels and grown by a margin.

Masked (moving) pixels are left out of every training loss and of the clip score. On a
stabilised clip the motion masks also take the pixels the homographies do not explain
(parallax, things that move: rain-suppressed misfit) and the places a fixed overlay (logo,
timestamp) lands in the reference view.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from memderain.data.clip_frames import (
    DEFAULT_MAX_FRAMES,
    ClipError,
    lossless_frames,
    read_clip_frames,
)

DEFAULT_MAX_SHIFT = 8  # pixels at full resolution
_ALIGN_SIDE = 1024  # phase correlation on frames downsized to at most this longer side
STILL_PRIOR = 0.1  # a shift must correlate 10 % better than no shift to be applied


@dataclass
class StaticClip:
    """An aligned static-camera clip (all arrays share H, W)."""

    frames: np.ndarray  # (T, H, W, 3) uint8, aligned and cropped
    names: list[str]  # one label per frame (file name or "frame_000123")
    median: np.ndarray  # (H, W, 3) uint8, temporal median of the aligned frames
    static: np.ndarray  # (H, W) bool, True where the scene does not move
    events: np.ndarray  # (T, H, W) bool, True where frame t differs by more than rain
    shifts: np.ndarray  # (T, 2) int (dy, dx) of each frame against the reference
    source: str = ""
    indices: list[int] = field(default_factory=list)  # frame numbers in the source
    # (T, 3, 3): output pixel (x, y, 1) -> pixel of the frame as read (after max_side), so
    # anything found in the aligned view maps back onto the original, unwarped frames; a
    # translation on the shift path, a homography on a stabilised clip; None: not recorded
    homographies: np.ndarray | None = None
    alignment: dict = field(default_factory=dict)  # how the frames were aligned, measured
    # the frames were stored without loss (PNG frames, FFV1 video; clip_frames.lossless_frames):
    # the clip score's "auto" reference is then the strict one. False when unknown.
    lossless: bool = False

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def static_fraction(self) -> float:
        return float(self.static.mean())

    def valid(self, t: int) -> np.ndarray:
        """(H, W) bool: pixels of frame t that show the static background plus rain only."""
        return self.static & ~self.events[t]


# ----------------------------------------------------------------------------- alignment
def luminance(rgb: np.ndarray) -> np.ndarray:
    """float32 BT.601 luminance (grey levels) of uint8 RGB (..., 3)."""
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def phase_correlation(ref: np.ndarray, img: np.ndarray, prefer_still: float = 0.0
                      ) -> tuple[int, int]:
    """Integer (dy, dx) such that ``img[y, x] ~ ref[y - dy, x - dx]`` (grey float images).

    Hann-windowed, with regularised whitening: frequencies with almost no energy (rain, codec
    noise) get little weight instead of a random phase at full weight. ``prefer_still``: keep
    (0, 0) unless the best peak beats the zero shift's correlation by this fraction (a static
    camera is the rule; on small, rainy frames a noise peak can win by a hair).
    """
    h, w = ref.shape
    win = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    fa = np.fft.rfft2((ref - ref.mean()) * win)
    fb = np.fft.rfft2((img - img.mean()) * win)
    cross = fb * np.conj(fa)
    mag = np.abs(cross)
    corr = np.fft.irfft2(cross / (mag + 0.05 * mag.max() + 1e-12), s=(h, w))
    dy, dx = np.unravel_index(int(np.argmax(corr)), corr.shape)
    if prefer_still and corr[0, 0] >= (1.0 - prefer_still) * corr[dy, dx]:
        return 0, 0
    return int(dy - h if dy > h // 2 else dy), int(dx - w if dx > w // 2 else dx)


def measure_shifts(frames: list[np.ndarray]) -> np.ndarray:
    """(T, 2) integer (dy, dx) of every frame against a rain-suppressed reference.

    Pass 1 measures every frame against the middle frame; pass 2 against the median of all
    frames moved onto it by pass 1 (rain and codec noise suppressed, and sharp even when the
    camera pans)."""
    h, w = frames[0].shape[:2]
    step = max(1, int(np.ceil(max(h, w) / _ALIGN_SIDE)))
    greys = [luminance(f[::step, ::step]) for f in frames]
    mid = len(greys) // 2
    first = [phase_correlation(greys[mid], g, STILL_PRIOR) for g in greys]
    ref = np.median(np.stack([np.roll(g, (-dy, -dx), axis=(0, 1))
                              for g, (dy, dx) in zip(greys, first, strict=True)]), axis=0)
    shifts = [_verified(ref, g, phase_correlation(ref, g, STILL_PRIOR)) for g in greys]
    return np.array(shifts, dtype=int) * step


def _misfit(ref: np.ndarray, img: np.ndarray, dy: int, dx: int) -> float:
    """Median |img - ref| where they overlap when img is taken as ref moved by (dy, dx)."""
    h, w = ref.shape
    a = ref[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
    b = img[max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)]
    return float(np.median(np.abs(a - b))) if a.size else np.inf


def _verified(ref: np.ndarray, img: np.ndarray, shift: tuple[int, int]) -> tuple[int, int]:
    """``shift`` if it fits the frame at least 10 % better than no shift, else (0, 0): a
    static camera is the rule, and on small rainy frames a noise peak can win."""
    if shift == (0, 0) or _misfit(ref, img, *shift) < 0.9 * _misfit(ref, img, 0, 0):
        return shift
    return 0, 0


@dataclass
class Alignment:
    """Frames brought onto one view (:func:`align_clip`)."""

    frames: np.ndarray  # (T, H', W', 3) uint8
    shifts: np.ndarray  # (T, 2) int (dy, dx): translation of each frame (rounded, if warped)
    homographies: np.ndarray  # (T, 3, 3) output pixel -> frame pixel
    report: dict  # JSON-friendly: mode, max shift or drift, common share ...
    not_static: np.ndarray | None = None  # (H', W') bool: fixed overlay positions
    misfit: np.ndarray | None = None  # (T, H', W') bool: what the homographies do not explain


def _check_mode(stabilise: str) -> None:
    from memderain.data.stabilise import STABILISE_MODES

    if stabilise not in STABILISE_MODES:
        raise ClipError(f"stabilise must be one of {', '.join(STABILISE_MODES)}, "
                        f"got {stabilise!r}")


def align_clip(frames: list[np.ndarray], max_shift: float = DEFAULT_MAX_SHIFT,
               names: list[str] | None = None, stabilise: str = "auto") -> Alignment:
    """Bring every frame onto one view: by integer shifts (a static camera, shifts up to
    ``max_shift``), else by homographies (``stabilise`` "auto" or "on"; see the module doc).

    Raises :class:`ClipError` naming the largest measured shift when it exceeds ``max_shift``
    and ``stabilise`` is "off", or the measured overlap when a hand-held clip pans too far.
    """
    _check_mode(stabilise)
    if stabilise != "on":
        shifts = measure_shifts(frames)
        dist = np.hypot(shifts[:, 0], shifts[:, 1])
        worst = int(np.argmax(dist))
        if dist[worst] <= max_shift:
            out, (top, left) = _shift_crop(frames, shifts)
            h, w = out.shape[1:3]
            hom = np.tile(np.eye(3), (len(frames), 1, 1))
            hom[:, 0, 2] = left + shifts[:, 1]
            hom[:, 1, 2] = top + shifts[:, 0]
            report = {"stabilised": False, "max_shift_px": round(float(dist[worst]), 2),
                      "common_share": round(float(h * w / np.prod(frames[0].shape[:2])), 4)}
            return Alignment(out, shifts, hom, report)
        if stabilise == "off":
            name = names[worst] if names else f"frame {worst}"
            raise ClipError(f"the camera moves: {name} is shifted {dist[worst]:.1f} px "
                            f"(dy {shifts[worst, 0]}, dx {shifts[worst, 1]}) from the clip's "
                            f"reference, more than the {max_shift:g} px allowed; film from a "
                            "tripod or a sill, or stabilise it (--stabilise auto; or raise "
                            "--max-shift)")
    from memderain.data.stabilise import apply_h, stabilise_frames

    st = stabilise_frames(frames, names)
    centre = np.array([[(st.frames.shape[2] - 1) / 2, (st.frames.shape[1] - 1) / 2]])
    ref_centre = apply_h(st.homographies[st.reference], centre)
    shifts = np.array([np.round((apply_h(hm, centre) - ref_centre)[0, ::-1]).astype(int)
                       for hm in st.homographies])
    return Alignment(st.frames, shifts, st.homographies, st.summary(), st.overlay, st.misfit)


def align_frames(frames: list[np.ndarray], max_shift: float = DEFAULT_MAX_SHIFT,
                 names: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Shift every frame onto the reference and crop all to the region they all cover.

    Returns (aligned (T, H', W', 3) uint8, shifts (T, 2)). Raises :class:`ClipError` naming the
    largest measured shift when it exceeds ``max_shift`` (the camera moves; this function never
    stabilises: :func:`align_clip` does).
    """
    res = align_clip(frames, max_shift, names, stabilise="off")
    return res.frames, res.shifts


def _shift_crop(frames: list[np.ndarray], shifts: np.ndarray
                ) -> tuple[np.ndarray, tuple[int, int]]:
    """Frames shifted by ``shifts`` and cropped to the region all of them cover, and that
    region's origin (top, left) in the reference frame."""
    h, w = frames[0].shape[:2]
    top, bottom = int(max(0, -shifts[:, 0].min())), int(max(0, shifts[:, 0].max()))
    left, right = int(max(0, -shifts[:, 1].min())), int(max(0, shifts[:, 1].max()))
    hh, ww = h - top - bottom, w - left - right
    if hh < 8 or ww < 8:
        raise ClipError(f"frames of {w}x{h} px leave no common region after alignment")
    # frame content at (y, x) shows reference (y - dy, x - dx): reference window starts at
    # (top, left), so frame t's window starts at (top + dy, left + dx)
    return np.stack([f[top + dy:top + dy + hh, left + dx:left + dx + ww]
                     for f, (dy, dx) in zip(frames, shifts, strict=True)]), (top, left)


# ----------------------------------------------------------------------------- median / mask
def temporal_median(frames: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) per-pixel median over T: for even T the mean of the two middle values,
    rounded half up. (The lower middle value alone is biased dark by half the gap between the
    middle pair: 2-3 grey levels on 10 frames of a noisy clip, and a model adapted toward it
    learns to darken.)"""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(frames))
    t_n = x.shape[0]
    if t_n % 2:
        return x.median(dim=0).values.numpy()
    lo = x.kthvalue(t_n // 2, dim=0).values.to(torch.int16)
    hi = x.kthvalue(t_n // 2 + 1, dim=0).values.to(torch.int16)
    return ((lo + hi + 1) // 2).to(torch.uint8).numpy()


def noise_level(frames: np.ndarray, median: np.ndarray) -> float:
    """Robust sigma (grey levels) of the frame-to-median luminance differences (MAD)."""
    d = luminance(frames) - luminance(median)[None]
    return float(1.4826 * np.median(np.abs(d - np.median(d))))


def motion_masks(frames: np.ndarray, median: np.ndarray, *, blob: int = 9, margin: int = 4,
                 moving_share: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Where the scene itself changes: ``(static (H, W), events (T, H, W))``, both bool.

    A pixel of frame t is an *event* when, against the median, its luminance drops by more
    than ``max(10, 4 sigma)``, its colour changes by more than ``max(12, 5 sigma)`` (rain is
    near-neutral), or it brightens by more than ``max(10, 4 sigma)`` inside a bright region
    that survives a ``blob`` x ``blob`` opening (wider than rain streaks); isolated event
    pixels are removed (3x3 opening) and events are grown by ``margin`` pixels. A pixel is
    *static* unless it has events in at least ``moving_share`` of the frames (at least 2):
    there the median itself is unreliable (swaying trees, changing subtitles, traffic).
    """
    from memderain.data import morphology  # OpenCV, imported lazily (CLI start-up)

    sigma = noise_level(frames, median)
    t_dark, t_col, t_pos = max(10.0, 4 * sigma), max(12.0, 5 * sigma), max(10.0, 4 * sigma)
    med = median.astype(np.float32)
    med_y = luminance(median)
    events = np.zeros(frames.shape[:3], bool)
    for t, f in enumerate(frames):
        d = f.astype(np.float32) - med
        dy = luminance(f) - med_y
        chroma = np.abs(d - d.mean(axis=2, keepdims=True)).max(axis=2)
        bright = dy > t_pos
        if blob > 1:
            bright = morphology.opening(bright, blob)
        event = morphology.opening((dy < -t_dark) | (chroma > t_col) | bright, 3)
        events[t] = morphology.dilate(event, 2 * margin + 1) if margin > 0 else event
    need = max(2, int(np.ceil(moving_share * len(frames))))
    static = events.sum(axis=0) < need
    return static, events


def load_static_clip(source: str | Path, max_frames: int | None = DEFAULT_MAX_FRAMES,
                     max_shift: float = DEFAULT_MAX_SHIFT, max_side: int | None = None, *,
                     every: int | None = None, progress: Callable | None = None,
                     upright: bool = False, stabilise: str = "auto") -> StaticClip:
    """Read, align, reduce and mask a rain clip (video file or folder of frames).

    ``max_shift`` is in pixels of the (possibly downsized, ``max_side``) frames: a larger
    camera shift stabilises the clip (``stabilise="auto"``) or is refused (``"off"``);
    ``"on"`` stabilises every clip. ``every``, ``progress`` and ``upright`` as in
    :func:`read_clip_frames`."""
    _check_mode(stabilise)
    frames, names, indices = read_clip_frames(source, max_frames, max_side, every, progress,
                                              upright)
    lossless = lossless_frames(source, names)
    res = align_clip(frames, max_shift, names, stabilise)
    del frames
    aligned = res.frames
    median = temporal_median(aligned)
    static, events = motion_masks(aligned, median)
    if res.misfit is not None:  # parallax and movers the homographies do not explain
        events |= res.misfit
        need = max(2, int(np.ceil(0.2 * len(aligned))))
        static &= events.sum(axis=0) < need
    if res.not_static is not None:  # where a fixed overlay lands in the reference view
        static &= ~res.not_static
    if not static.any():
        raise ClipError(f"{source}: every pixel moves (no static background found)")
    report = dict(res.report, static_fraction=round(float(static.mean()), 4))
    return StaticClip(aligned, names, median, static, events, res.shifts, str(source), indices,
                      res.homographies, report, lossless)
