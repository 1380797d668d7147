"""What the clip score compares with: a rain-free temporal median and a strict scoring mask.

``memderain eval --clip`` scores every frame of a static-camera clip against a pseudo ground
truth. Checked on clips whose truth is known (:mod:`memderain.evaluation.clip_truth`,
``benchmarks/clip_truth.py``, docs/real-rain.md), the training masks of
:mod:`memderain.data.static_clip` are too loose for a score: they catch what changes by more
than 10 grey levels in one frame, so leaves that sway by a few pixels, a lamp that flickers
by a few grey levels or a sign that changes colour at equal brightness stay in, and the median
there is no background. The plain median has two more biases: where rain is dense it is
brighter than the background, and for an even number of frames it takes the lower of the two
middle values. This module builds the score's own reference from the aligned frames alone:

1. **Rain flags**: a sample brighter than the median by more than ``RAIN_SIGMAS`` noise
   sigmas is rain (rain only adds light) or another bright transient. Flagged twice: against
   the plain median with :func:`memderain.data.static_clip.noise_level`, then against the
   rain-free median of step 2 with the dark-side sigma of step 3 (dense rain lifts both the
   plain median and the first sigma).
2. **Background** (:func:`rain_free_median`): per pixel and channel the median of the samples
   not flagged, the mean of the two middle values for an even count.
3. **Noise sigma** of the luminance from the samples darker than the background only: rain
   never darkens a pixel, so they hold noise and scene change, never rain.
4. **Moving pixels**, left out of every frame: where the mean square of the dark-side
   deviations, pooled over ``POOL`` x ``POOL`` pixels, exceeds :func:`spread_limit` times
   the clip's typical pixel (sway, flicker: the scene itself changes; on a clip of pure
   Gaussian noise the typical pixel is sigma^2 / 2, on real footage its heavier tails are
   taken as they are); where the colour of the unflagged samples varies ``CHROMA_RATIO``
   times more than on the typical pixel (a sign, a traffic light, a subtitle changing colour
   at equal brightness; rain is colourless); where at least ``MOVING_SHARE`` of the frames
   have an event (step 5). Small holes are closed (``CLOSE`` px: a textured region moves as a
   whole), and the result is grown by ``MARGIN`` px.
5. **Events** of one frame, left out of that frame: a darkening by more than
   ``max(3 sigma, 3)`` or a colour change of more than 5 times the clip's typical chroma
   noise (in 3x3 blocks at least: a passing person or car), or a brightening wider than a rain
   streak (a ``BLOB`` x ``BLOB`` opening: headlights, reflections); grown by ``EVENT_MARGIN``
   px. Thin bright streaks are never events: dense rain stays in the score.

6. **Leave one out** (:func:`leave_one_out_y`): frame t is scored against the background of
   the other frames (its own samples left out of the median), so its noise and the
   reference's are independent, and the variance the reference's own noise adds to the
   squared error is taken out (:func:`reference_variance`, measured on the scored pixels).
   With few frames of a noisy clip the median is itself noisy: 10 frames at sigma 14.8 scored
   smoothing methods 1.2 dB below their truth before, within 0.3 dB after.

The score of a frame is its Y-PSNR against that reference on the pixels that are neither
moving nor an event of that frame (``ClipReference(clip, "strict")`` of
:mod:`memderain.evaluation.clip_score`). Nothing here is used for training.

Measured (docs/real-rain.md): on lossless rendered-truth clips within 0.3 dB of the truth and
the same ranking of methods. Not on compressed frames: JPEG's error is heavier on texture and beside
bright streaks, steps 4-5 take it for motion, leave textured rainy regions out and the score
flatters every method by 3-7 dB. So ``eval --clip`` (``"auto"``,
:data:`memderain.evaluation.clip_score.DEFAULT_KIND`) scores with it only clips stored without
loss (:attr:`StaticClip.lossless`: PNG frames, FFV1 video) and keeps the training masks
(``"motion"``) for compressed footage. Tests on window
means (codec-robust) keep the rain in but let swaying texture in on lossless clips, and the
codec's loss, the same in every frame, stays in any median: docs/real-rain.md, "Codec-robust
masks: tried, none adopted".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from memderain.data import morphology
from memderain.data.static_clip import StaticClip, luminance, noise_level

# the score's own mask, the training masks, or (auto) strict for frames stored without loss
# and motion for compressed ones (StaticClip.lossless)
KINDS = ("auto", "strict", "motion")
RAIN_SIGMAS = 3.0
SPREAD_RATIO = 1.3
SPREAD_SDS = 4.0
CHROMA_RATIO = 3.0
MOVING_SHARE = 0.2
POOL = 5
CLOSE = 5
MARGIN = 0
EVENT_MARGIN = 2
BLOB = 9
SATURATED = 250  # a channel at or above this clips rain and noise: no colour test there
_ROWS = 64  # rows sorted at once by rain_free_median (bounds the memory of a 1080p clip)
_LOO_SAMPLES = 4_000_000  # samples leave_one_out_y sorts at once (16 MB per float32 copy)


@dataclass
class ScoringReference:
    """The background and masks the clip score compares frames with."""

    background: np.ndarray  # (H, W, 3) float32: rain-free temporal median
    masks: np.ndarray  # (T, H, W) bool: the pixels frame t is scored on
    moving: np.ndarray  # (H, W) bool: left out of every frame
    events: np.ndarray  # (T, H, W) bool: left out of frame t only
    sigma: float  # noise sigma of the luminance (grey levels), from the dark side
    kind: str  # "strict" or "motion"
    # (T, H, W) uint8: Y of the median without frame t's own samples (what frame t is scored
    # against), and the variance (grey levels^2) that this estimate's own noise adds to a
    # frame's squared error on the scored pixels
    frame_y: np.ndarray
    reference_var: float


def rain_flags(frames: np.ndarray, median: np.ndarray, sigma: float) -> np.ndarray:
    """(T, H, W) bool: samples brighter than ``median`` by more than ``RAIN_SIGMAS`` sigma."""
    med_y = luminance(median)
    level = RAIN_SIGMAS * max(sigma, 0.5)
    return np.stack([luminance(f) - med_y > level for f in frames])


def rain_free_median(frames: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32: per pixel and channel the median of the samples not flagged (the
    mean of the two middle values for an even count); all samples where every one is
    flagged."""
    t_n, h, w, _ = frames.shape
    flags = flags & ~flags.all(axis=0)[None]
    counts = t_n - flags.sum(axis=0)
    out = np.empty((h, w, 3), np.float32)
    for y0 in range(0, h, _ROWS):
        rows = slice(y0, min(h, y0 + _ROWS))
        block = frames[:, rows].copy()
        block[flags[:, rows]] = 255  # flagged samples sort last (they are bright anyway)
        block.sort(axis=0)
        n = counts[rows]
        lo = ((n - 1) // 2)[None, ..., None].repeat(3, axis=-1)
        hi = (n // 2)[None, ..., None].repeat(3, axis=-1)
        a = np.take_along_axis(block, lo, axis=0)[0].astype(np.float32)
        b = np.take_along_axis(block, hi, axis=0)[0].astype(np.float32)
        out[rows] = 0.5 * (a + b)
    return out


def leave_one_out_y(frames: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """(T, H, W) uint8: for every frame t the MATLAB Y (rounded, as
    :func:`memderain.evaluation.clip_score.y_of`) of :func:`rain_free_median` computed
    without frame t's own samples. Scored against it, a frame's noise and the reference's are
    independent: a frame's own sample pulls the median toward itself (flattering the rainy
    input), and a smoothing method is not. One sort per pixel serves every frame: leaving one
    sample out of a median moves it to a neighbouring order statistic, chosen by comparing
    the sample with the middle ones."""
    from memderain.evaluation.clip_score import y_of

    t_n, h, w, _ = frames.shape
    flags = flags & ~flags.all(axis=0)[None]
    counts = t_n - flags.sum(axis=0)
    out = np.empty((t_n, h, w), np.uint8)
    step = max(1, _LOO_SAMPLES // (t_n * w * 3))  # rows at once: every frame, vectorised
    for y0 in range(0, h, step):
        rows = slice(y0, min(h, y0 + step))
        x = frames[:, rows].astype(np.float32)
        block = np.where(flags[:, rows][..., None], 256.0, x)  # flagged samples sort last
        block.sort(axis=0)
        n = np.broadcast_to(counts[rows][..., None], x.shape[1:])
        lo, hi = (n - 1) // 2, n // 2
        low, high = _order(block, lo), _order(block, hi)  # the middle pair (one value twice
        below, above = _order(block, lo - 1), _order(block, hi + 1)  # for an odd count)
        full = 0.5 * (low + high)  # the median with every sample: frames whose own is flagged
        even = (n % 2 == 0)[None]
        loo = np.where(even, np.where(x <= low, high, low),  # an odd count remains
                       np.where(x < low, 0.5 * (low + above),  # an even count remains
                                np.where(x > low, 0.5 * (below + low), 0.5 * (below + above))))
        loo = np.where((n == 1)[None], x, loo)  # nothing else unflagged: its own sample
        bg = np.where(flags[:, rows][..., None], full, loo)
        out[:, rows] = y_of(bg)
    return out


def _order(ordered: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Order statistic ``k`` (H, W, 3; clipped to the stack) of every pixel of a stack sorted
    along axis 0, as (1, H, W, 3)."""
    return np.take_along_axis(ordered, np.clip(k, 0, len(ordered) - 1)[None], axis=0)


def reference_variance(frames: np.ndarray, frame_y: np.ndarray, masks: np.ndarray,
                       flags: np.ndarray) -> float:
    """Variance (grey levels^2) the leave-one-out background's own noise adds to a frame's
    mean squared error on the scored pixels. Against a reference independent of the frame,
    the darker-than-reference deviations (rain never darkens) have a mean square of
    (sigma^2 + v) / 2, and the median of k samples has v = (pi / 2) sigma^2 / (k + pi / 2 - 1)
    for odd k, / (k + pi / 2) for even k (the mean of the middle pair; both within 2 % of a
    simulation for k >= 3, pi / 2 sigma^2 / k for large k); both measured on the pixels
    actually scored (a strict mask on few noisy frames keeps the quieter ones)."""
    from memderain.evaluation.metrics import rgb_to_y

    sq, cnt = 0.0, 0
    flags = flags & ~flags.all(axis=0)[None]  # as leave_one_out_y: all samples count there
    counts = (~flags).sum(axis=0) - 1  # samples in frame t's reference (its own left out)
    ksum = 0.0
    for t, f in enumerate(frames):
        m = masks[t]
        d = rgb_to_y(f)[m].astype(np.float64) - frame_y[t][m]
        sq += float(np.square(np.minimum(d, 0.0)).sum())
        cnt += int(m.sum())
        k = np.maximum(counts[m] + flags[t][m], 1)
        ksum += float(((math.pi / 2) / (k + math.pi / 2 - 1 + (k % 2 == 0))).sum())
    if cnt == 0:
        return 0.0
    c_over_k = ksum / cnt  # mean over the scored pixels of var(median of k) / sigma^2
    sigma2 = 2.0 * sq / cnt / (1.0 + c_over_k)
    return c_over_k * sigma2


def spread_limit(frames: int) -> float:
    """How many times the noise's dark-side mean square a pooled pixel may reach before it
    counts as moving: ``SPREAD_RATIO``, or more where few frames make the estimate noisy
    (``SPREAD_SDS`` standard deviations of the mean of ``POOL``^2 x ``frames`` squared
    half-normal samples, relative sd 2.24 / sqrt(n))."""
    return max(SPREAD_RATIO, 1.0 + SPREAD_SDS * 2.24 / math.sqrt(POOL * POOL * frames))


def _chroma(d: np.ndarray) -> np.ndarray:
    """Largest departure of one channel from the mean change of the three (H, W)."""
    return np.abs(d - d.mean(axis=-1, keepdims=True)).max(axis=-1)


def _dark_sigma(frames: np.ndarray, bg_y: np.ndarray, rng: np.random.Generator) -> float:
    """Noise sigma of the luminance from the samples darker than the background (their
    median distance is 0.6745 sigma for Gaussian noise; rain never darkens)."""
    neg = []
    for f in frames:
        dy = luminance(f) - bg_y
        below = -dy[dy < 0]
        if below.size:
            neg.append(rng.choice(below, size=min(20000, below.size), replace=False))
    return max(float(np.median(np.concatenate(neg))) / 0.6745 if neg else 0.0, 0.5)


def scoring_reference(clip: StaticClip) -> ScoringReference:
    """The strict reference of ``clip`` (module docstring, steps 1-5)."""
    frames = clip.frames
    t_n = len(frames)
    rng = np.random.default_rng(0)
    lum = np.array([0.299, 0.587, 0.114], np.float32)
    # rain flags against the plain median, then once more against the rain-free one with the
    # dark-side sigma (dense rain lifts the plain median and inflates the first sigma)
    flags = rain_flags(frames, clip.median, noise_level(frames, clip.median))
    background = rain_free_median(frames, flags)
    sigma = _dark_sigma(frames, background @ lum, rng)
    flags = rain_flags(frames, background, sigma)
    background = rain_free_median(frames, flags)
    bg_y = background @ lum
    sigma = _dark_sigma(frames, bg_y, rng)
    unsat_bg = background.max(axis=-1) < SATURATED
    chroma_samples = []
    for t, f in enumerate(frames):  # the clip's typical colour noise
        ok = ~flags[t] & unsat_bg & (f.max(axis=-1) < SATURATED)
        c = _chroma(f.astype(np.float32) - background)[ok]
        if c.size:
            chroma_samples.append(rng.choice(c, size=min(20000, c.size), replace=False))
    c_typ = max(float(np.median(np.concatenate(chroma_samples))) if chroma_samples else 0.0, 0.5)
    # per-pixel dark-side spread and colour variation of the unflagged samples; events
    sq = np.zeros(bg_y.shape, np.float64)
    csq = np.zeros(bg_y.shape, np.float64)
    ccnt = np.zeros(bg_y.shape, np.float64)
    events = np.zeros(frames.shape[:3], bool)
    for t, f in enumerate(frames):
        d = f.astype(np.float32) - background
        dy = luminance(f) - bg_y
        sq += np.minimum(dy, 0.0) ** 2  # the dark side: noise and scene change, never rain
        ok = ~flags[t] & unsat_bg & (f.max(axis=-1) < SATURATED)
        chroma = _chroma(d)
        csq += np.where(ok, chroma * chroma, 0.0)
        ccnt += ok
        dark = dy < -max(3.0 * sigma, 3.0)
        colour = ok & (chroma > max(5.0 * c_typ, 6.0))
        bright = dy > max(10.0, 4.0 * sigma)
        if BLOB > 1:
            bright = morphology.opening(bright, BLOB)
        event = morphology.opening(dark | colour, 3) | bright
        events[t] = morphology.dilate(event, 2 * EVENT_MARGIN + 1) if EVENT_MARGIN else event
    spread = ndimage.uniform_filter(sq / t_n, POOL)
    cvar = ndimage.uniform_filter(csq, POOL) / np.maximum(ndimage.uniform_filter(ccnt, POOL), 1e-9)
    c_ref = float(np.median(cvar[ccnt > 0])) if (ccnt > 0).any() else c_typ ** 2
    typical = max(float(np.median(spread)), sigma ** 2 / 2)  # the clip's own noise, tails included
    need = max(2, math.ceil(MOVING_SHARE * t_n))
    moving = ((spread > spread_limit(t_n) * typical) | (cvar > CHROMA_RATIO * c_ref)
              | (events.sum(axis=0) >= need))
    if CLOSE > 1:  # fill the small holes a textured moving region leaves (it moves as a whole)
        moving = morphology.erode(morphology.dilate(moving, CLOSE), CLOSE, border=True)
    if MARGIN:
        moving = morphology.dilate(moving, 2 * MARGIN + 1)
    masks = ~moving[None] & ~events
    frame_y = leave_one_out_y(frames, flags)
    var = reference_variance(frames, frame_y, masks, flags)
    return ScoringReference(background, masks, moving, events, sigma, "strict", frame_y, var)


def motion_reference(clip: StaticClip) -> ScoringReference:
    """The plain median on the training masks (what ``eval --clip`` scores compressed clips
    with); each frame against the median of the other frames, its noise taken out (as the
    strict reference: on 10 frames of a noisy clip the ranking of smoothing methods swaps
    otherwise)."""
    masks = np.stack([clip.valid(t) for t in range(len(clip))])
    none = np.zeros(clip.frames.shape[:3], bool)  # no rain flags: every sample counts
    frame_y = leave_one_out_y(clip.frames, none)
    return ScoringReference(clip.median.astype(np.float32), masks, ~clip.static, clip.events,
                            noise_level(clip.frames, clip.median), "motion", frame_y,
                            reference_variance(clip.frames, frame_y, masks, none))


def resolve_kind(clip: StaticClip, kind: str) -> str:
    """``"auto"`` -> ``"strict"`` for a clip stored without loss (PNG frames, FFV1 video:
    within 0.26 dB of the truth there), ``"motion"`` otherwise (compressed frames, or a clip
    built from arrays); other kinds as given."""
    if kind == "auto":
        return "strict" if clip.lossless else "motion"
    if kind not in KINDS:
        raise ValueError(f"unknown clip reference {kind!r}; choose from {', '.join(KINDS)}")
    return kind


def clip_reference(clip: StaticClip, kind: str = "strict") -> ScoringReference:
    """``"strict"`` (:func:`scoring_reference`), ``"motion"`` (:func:`motion_reference`) or
    ``"auto"`` (:func:`resolve_kind`: what the clip score uses by default,
    :data:`memderain.evaluation.clip_score.DEFAULT_KIND`)."""
    kind = resolve_kind(clip, kind)
    if kind == "strict":
        return scoring_reference(clip)
    if kind == "motion":
        return motion_reference(clip)
    raise ValueError(f"unknown clip reference {kind!r}; choose from {', '.join(KINDS)}")
