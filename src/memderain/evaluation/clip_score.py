"""Real-rain score with a pseudo ground truth: each frame against its clip's temporal median.

Real rain has no ground truth, but a static camera gives one nearly for free: the temporal
median of the aligned frames (:mod:`memderain.data.static_clip`). Every de-rained frame is
compared with it on the pixels where only rain changes (the clip's static mask minus that
frame's own events), on the MATLAB Y channel (:func:`memderain.evaluation.metrics.rgb_to_y`):

* ``psnr_y``: Y-PSNR (dB) of the masked pixels;
* ``brightness``: mean Y difference output - median (grey levels; negative = darker than the
  rain-free scene). Rain only adds light, so the rainy input is positive and a good output is
  close to 0; below -0.5 it *darkens* the scene;
* ``hf_error``: rms difference of the high-pass Y (Y minus its Gaussian blur, sigma 2) of
  output and median: detail lost or invented, rain streaks included (the input's value is the
  rain itself; a smoothing filter raises it by erasing texture the median keeps).

Each frame is scored against the median of the *other* frames (its own samples left out:
:func:`memderain.evaluation.clip_mask.leave_one_out_y`), and the variance that median's own
noise adds to the squared error is taken out (``reference_var``): with few frames of a noisy
clip the median is itself noisy, which would understate every method that smooths and
flatter the rainy input. The rainy input's score is the bar to beat, then the 3x3 filters,
then the shipped model.

How far this agrees with the truth is measured on clips whose clean frames are known
(``benchmarks/clip_truth.py``, docs/real-rain.md): the training masks let swaying leaves,
flicker and colour changes in (about 1 dB off, rankings can swap). ``kind="strict"`` scores
against the rain-free median on the strict mask of :mod:`memderain.evaluation.clip_mask`
instead: within 0.3 dB and the same ranking on lossless clips, but on JPEG-compressed frames
it leaves textured rainy regions out and flatters every method by 3-7 dB. The default,
``kind="auto"``, takes ``strict`` for clips stored without loss (PNG frames, FFV1 video) and
``motion`` for compressed ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from memderain.data.static_clip import StaticClip
from memderain.evaluation.metrics import Y_COEFFS, rgb_to_y

Method = Callable[[np.ndarray], np.ndarray]  # uint8 HxWx3 -> uint8 HxWx3
HF_SIGMA = 2.0
BORDER = 4  # pixels left out at every side (filters and the network pad there)
# the reference eval --clip and adapt's check use (ClipReference): strict for lossless clips,
# motion for compressed ones (memderain.evaluation.clip_mask.resolve_kind)
DEFAULT_KIND = "auto"


@dataclass(frozen=True)
class ClipScore:
    psnr_y: float
    brightness: float
    hf_error: float
    frames: int

    def as_dict(self) -> dict[str, float]:
        return {"psnr_y": self.psnr_y, "brightness": self.brightness,
                "hf_error": self.hf_error, "frames": self.frames}


def _highpass(y: np.ndarray) -> np.ndarray:
    return y - ndimage.gaussian_filter(y, HF_SIGMA, mode="nearest")


def y_of(rgb: np.ndarray) -> np.ndarray:
    """MATLAB Y of float RGB in grey levels (a reference that is an estimate, a mean of two
    middle values, not a uint8 image), rounded to whole levels as :func:`rgb_to_y` rounds
    the outputs: a clip whose frames all equal their median scores an exact 0 error."""
    rgb = np.asarray(rgb, np.float64)
    y = 16.0 + (Y_COEFFS[0] * rgb[..., 0] + Y_COEFFS[1] * rgb[..., 1]
                + Y_COEFFS[2] * rgb[..., 2]) / 255.0
    return np.floor(y + 0.5)


class ClipReference:
    """The reference and masks of one clip, built once, to score many outputs of it.

    ``kind``: ``"motion"`` (the plain median on the training masks of
    :mod:`memderain.data.static_clip`), ``"strict"`` (the rain-free median on the strict
    scoring mask of :mod:`memderain.evaluation.clip_mask`: agrees with the truth on lossless
    clips, not on compressed ones; docs/real-rain.md) or ``"auto"`` (the default: strict for
    a lossless clip, motion otherwise). :attr:`kind` is the one used."""

    def __init__(self, clip: StaticClip, kind: str = DEFAULT_KIND):
        from memderain.evaluation.clip_mask import clip_reference

        self.clip = clip
        self.reference = clip_reference(clip, kind)
        self.kind = self.reference.kind
        inner = np.zeros(clip.static.shape, bool)
        inner[BORDER:-BORDER, BORDER:-BORDER] = True
        self.inner = inner
        self._cached: tuple = (None, None, None)  # (t, Y, high-pass) of the last frame

    def mask(self, t: int) -> np.ndarray:
        return self.reference.masks[t] & self.inner

    @property
    def scored_fraction(self) -> float:
        """Share of the frame's pixels scored, over all frames."""
        return float((self.reference.masks & self.inner[None]).mean())

    def frame_reference(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(Y, high-pass Y) frame t is scored against: the median without frame t's own
        samples (:func:`memderain.evaluation.clip_mask.leave_one_out_y`)."""
        if self._cached[0] != t:  # every method of one frame in a row: blur it once
            y = self.reference.frame_y[t].astype(np.float64)
            self._cached = (t, y, _highpass(y))
        return self._cached[1], self._cached[2]

    def frame_sums(self, t: int, output: np.ndarray) -> tuple[float, float, float, int]:
        """(sum sq error, sum difference, sum sq high-pass error, pixel count) of frame t. The
        squared error has the reference's own noise taken out (``reference_var`` per pixel,
        :func:`memderain.evaluation.clip_mask.reference_variance`; a few frames of a noisy clip
        make a noisy median, which would understate every method that smooths)."""
        m = self.mask(t)
        ref_y, ref_hp = self.frame_reference(t)
        y = rgb_to_y(output)
        d = (y - ref_y)[m]
        hp = (_highpass(y) - ref_hp)[m]
        n = int(m.sum())
        sse = float(np.dot(d, d)) - self.reference.reference_var * n
        return sse, float(d.sum()), float(np.dot(hp, hp)), n


def score_methods(clip: StaticClip, methods: dict[str, Method], frames: Sequence[int] | None = None,
                  progress: Callable | None = None, kind: str = DEFAULT_KIND
                  ) -> dict[str, ClipScore]:
    """Score every method (``"input"`` is added: the rainy frame itself) on ``frames``
    (default: all frames of the clip). ``progress(iterable, total)`` may wrap the frame loop;
    ``kind`` chooses the reference (:class:`ClipReference`)."""
    return score_subsets(clip, methods, {"all": frames}, progress, kind)["all"]


def score_subsets(clip: StaticClip, methods: dict[str, Method],
                  subsets: dict[str, Sequence[int] | None], progress: Callable | None = None,
                  kind: str = DEFAULT_KIND, reference: ClipReference | None = None
                  ) -> dict[str, dict[str, ClipScore]]:
    """:func:`score_methods` for several frame subsets at once, running every method once
    per frame in their union. Returns {subset: {method: score}}; empty subsets are left out.
    ``reference`` (built once by the caller, e.g. to report its scored fraction) replaces
    ``kind``."""
    ref = reference if reference is not None else ClipReference(clip, kind)
    subsets = {k: list(range(len(clip))) if v is None else list(v) for k, v in subsets.items()}
    frames = sorted(set().union(*subsets.values())) if subsets else []
    methods = {"input": lambda x: x, **methods}
    sums: dict[str, dict[int, tuple]] = {name: {} for name in methods}
    it = progress(frames, len(frames)) if progress is not None else frames
    for t in it:
        for name, fn in methods.items():
            sums[name][t] = ref.frame_sums(t, fn(clip.frames[t]))
    out = {}
    for label, subset in subsets.items():
        if subset:
            out[label] = {name: _pooled(*np.sum([per[t] for t in subset], axis=0), len(subset))
                          for name, per in sums.items()}
    return out


def _pooled(sse: float, sdiff: float, shf: float, n: float, frames: int) -> ClipScore:
    """Scores of pixel sums pooled over frames (PSNR of the pooled mean squared error)."""
    if n == 0:
        return ClipScore(math.nan, math.nan, math.nan, frames)
    mse = max(sse / n, 0.0)  # below 0 only where the reference's own noise was taken out
    psnr = math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)
    return ClipScore(psnr, sdiff / n, math.sqrt(shf / n), frames)


def torch_method(model, device: str | None = None) -> Method:
    """A :data:`Method` running a MemDerain module directly (eval mode for the call, then the
    module's previous mode back): for scoring a model while it is being trained."""
    import torch

    from memderain.data.transforms import tensor_to_uint8, to_signed, to_unit, uint8_to_tensor

    def run(rgb: np.ndarray) -> np.ndarray:
        was_training = model.training
        model.eval()
        dev = device or next(model.parameters()).device
        with torch.no_grad():
            x = to_signed(uint8_to_tensor(rgb))[None].to(dev)
            out = model(x).background[0]
        model.train(was_training)
        return tensor_to_uint8(to_unit(out).cpu())

    return run


def format_table(scores: dict[str, ClipScore], title: str = "") -> str:
    """A Markdown table: method, Y-PSNR, gain over the input, brightness change, HF error."""
    base = scores.get("input")
    lines = [title] if title else []
    lines += ["| method | Y-PSNR (dB) | vs input | brightness vs median | high-freq. error |",
              "|---|---:|---:|---:|---:|"]
    for name, s in scores.items():
        gain = f"{s.psnr_y - base.psnr_y:+.2f}" if base is not None and name != "input" else ""
        lines.append(f"| {name} | {s.psnr_y:.2f} | {gain} | {s.brightness:+.2f} | "
                     f"{s.hf_error:.2f} |")
    return "\n".join(lines)
