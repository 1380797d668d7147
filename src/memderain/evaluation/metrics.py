"""Full-reference quality metrics with the conventions of the de-raining literature.

Every function takes two images of the same size, the de-rained ``pred`` and the clean
``target``, each as uint8 HxWx3 RGB numpy (what the MATLAB scripts read from PNG files) or a
float (3,H,W) tensor in [0, 1], which is first quantised like a saved PNG:
``round(clamp(x, 0, 1) * 255)``. Metrics are computed in float64 (numpy/scipy).

Conventions (the ``evaluate_PSNR_SSIM.m`` script shipped by MPRNet and used, with small
variations, by most de-raining repositories; see docs/evaluation.md):

* ``space="y"``: the Y channel of ITU-R BT.601 YCbCr exactly as MATLAB ``rgb2ycbcr`` on a
  uint8 image: ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` with R, G, B in 0..255,
  *rounded to uint8* (MATLAB returns uint8 for uint8 input). ``space="rgb"``: the three
  channels (PSNR over all values; SSIM = mean of the per-channel SSIMs, as BasicSR/skimage).
* PSNR = ``10 log10(255^2 / MSE)`` per image (``inf`` for identical images); a data set's
  score is the mean of the per-image values, as the MATLAB script averages them.
* SSIM (Wang et al. 2004, ``SSIM_index.m``): 11x11 Gaussian window, sigma 1.5, K = (0.01,
  0.03), L = 255, ``filter2(..., 'valid')`` statistics (no padding: the map is (H-10)x(W-10)),
  mean of the map, no automatic down-sampling.
* VIF: pixel-domain VIF (Sheikh & Bovik 2006, ``vifp_mscale.m``: 4 scales, sigma_n^2 = 2) on
  the same Y channel (tested against torchmetrics' VIF-P and a numpy port of the MATLAB code).
* FSIM: Zhang et al. 2011 (``FeatureSIM.m``), see :mod:`memderain.evaluation.fsim`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from memderain.choices import ALL_METRICS, STANDARD_METRICS
from memderain.errors import MemderainError

# MATLAB rgb2ycbcr, first row of the BT.601 matrix for RGB in [0, 1] (offset 16).
Y_COEFFS = (65.481, 128.553, 24.966)
SSIM_WINDOW, SSIM_SIGMA, SSIM_K = 11, 1.5, (0.01, 0.03)
DATA_RANGE = 255.0

HIGHER_IS_BETTER = {m: True for m in ALL_METRICS}


# ----------------------------------------------------------------------------- conversions
def as_uint8_rgb(img) -> np.ndarray:
    """uint8 HxWx3 RGB from uint8 HxWx3 / HxW numpy or a float (3,H,W) / (1,3,H,W) tensor in
    [0, 1] (quantised as a PNG writer would: ``round(clamp(x, 0, 1) * 255)``)."""
    if isinstance(img, torch.Tensor):
        t = img.detach().cpu()
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim != 3 or t.shape[0] != 3:
            raise MemderainError(f"expected a (3,H,W) image tensor, got shape {tuple(t.shape)}")
        if t.dtype == torch.uint8:
            return t.permute(1, 2, 0).numpy().copy()
        t = torch.round(t.double().clamp(0.0, 1.0) * 255.0)
        return t.to(torch.uint8).permute(1, 2, 0).numpy()
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating):
            arr = np.round(np.clip(arr.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
        else:
            raise MemderainError(f"expected a uint8 or float [0, 1] image, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise MemderainError(f"expected an HxWx3 RGB image, got shape {arr.shape}")
    return arr


def rgb_to_y(rgb, rounded: bool = True) -> np.ndarray:
    """Y of MATLAB ``rgb2ycbcr(uint8)`` as float64 HxW in [16, 235].

    MATLAB scales the BT.601 row by 1/255 for uint8 input, evaluates
    ``16 + (65.481 R + 128.553 G + 24.966 B) / 255`` and rounds half away from zero to
    uint8. Here the rounding is done in exact integer arithmetic (thousandths), so the 194
    of the 2^24 colours that fall exactly on .5 always round up; float evaluation (MATLAB,
    numpy) may land a hair below .5 for some of them and differ by 1 there (effect on PSNR
    well below 1e-3 dB). ``rounded=False`` returns the unrounded value (BasicSR
    ``bgr2ycbcr``, PReNet's ``rgb2ycbcr(im2double(...))`` times 255).
    """
    rgb8 = as_uint8_rgb(rgb)
    if rounded:
        c = rgb8.astype(np.int64)
        num = 65481 * c[..., 0] + 128553 * c[..., 1] + 24966 * c[..., 2] + 16 * 255000
        return ((2 * num + 255000) // 510000).astype(np.float64)
    rgb = rgb8.astype(np.float64)
    return 16.0 + (Y_COEFFS[0] * rgb[..., 0] + Y_COEFFS[1] * rgb[..., 1]
                   + Y_COEFFS[2] * rgb[..., 2]) / 255.0


def _planes(img, space: str) -> np.ndarray:
    """(C,H,W) float64 planes in 0..255 for ``space`` "y" (C=1) or "rgb" (C=3)."""
    if space == "y":
        return rgb_to_y(img)[None]
    if space == "rgb":
        return np.ascontiguousarray(as_uint8_rgb(img).transpose(2, 0, 1), dtype=np.float64)
    raise MemderainError(f"unknown colour space {space!r}; use 'y' or 'rgb'")


def _pair(pred, target, space: str) -> tuple[np.ndarray, np.ndarray]:
    a, b = _planes(pred, space), _planes(target, space)
    if a.shape != b.shape:
        raise MemderainError(f"image sizes differ: prediction {a.shape[1]}x{a.shape[2]} vs "
                             f"ground truth {b.shape[1]}x{b.shape[2]} (HxW)")
    return a, b


# ----------------------------------------------------------------------------- PSNR
def psnr(pred, target, space: str = "y", data_range: float = DATA_RANGE) -> float:
    """PSNR in dB: ``10 log10(data_range^2 / mean((pred - target)^2))``; ``inf`` if equal."""
    a, b = _pair(pred, target, space)
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(data_range**2 / mse)


# ----------------------------------------------------------------------------- SSIM
def gaussian_window_1d(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian; its outer product is MATLAB ``fspecial('gaussian', size,
    sigma)`` (the 2-D kernel is separable, so filtering rows then columns is exact)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """MATLAB ``filter2(g' * g, x, 'valid')`` for an HxW float64 plane and odd-length ``g``
    (separable correlation; the border rows/columns that would need padding are dropped)."""
    r = (len(g) - 1) // 2
    from scipy.ndimage import correlate1d  # lazy: keeps `memderain derain` start-up light

    y = correlate1d(correlate1d(x, g, axis=0, mode="constant"), g, axis=1, mode="constant")
    return y[r:x.shape[0] - r, r:x.shape[1] - r]


def ssim_map(a: np.ndarray, b: np.ndarray, data_range: float = DATA_RANGE,
             window: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA,
             k: Sequence[float] = SSIM_K) -> np.ndarray:
    """SSIM map of two HxW float64 planes ('valid' positions only: (H-10)x(W-10))."""
    if min(a.shape) < window:
        raise MemderainError(f"image of {a.shape[0]}x{a.shape[1]} is smaller than the "
                             f"{window}x{window} SSIM window")
    g = gaussian_window_1d(window, sigma)
    c1, c2 = (k[0] * data_range) ** 2, (k[1] * data_range) ** 2
    mu1, mu2 = filter_valid(a, g), filter_valid(b, g)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    s1 = filter_valid(a * a, g) - mu1_sq
    s2 = filter_valid(b * b, g) - mu2_sq
    s12 = filter_valid(a * b, g) - mu12
    return ((2 * mu12 + c1) * (2 * s12 + c2)) / ((mu1_sq + mu2_sq + c1) * (s1 + s2 + c2))


def ssim(pred, target, space: str = "y") -> float:
    """Mean SSIM (``SSIM_index.m`` defaults); for "rgb" the mean over the 3 channels."""
    a, b = _pair(pred, target, space)
    return float(np.mean([ssim_map(a[c], b[c]).mean() for c in range(a.shape[0])]))


# ----------------------------------------------------------------------------- VIF, FSIM
def vif_p(ref: np.ndarray, dist: np.ndarray, sigma_n_sq: float = 2.0) -> float:
    """``vifp_mscale.m`` (Sheikh & Bovik 2006) for two HxW float64 planes in 0..255.

    Four scales; at scale s the window is an N x N Gaussian, N = 2^(4-s+1) + 1, sigma = N/5
    ('valid' filtering); scales > 1 first filter, then keep every 2nd pixel.
    """
    eps = 1e-10
    num = den = 0.0
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        g = gaussian_window_1d(n, n / 5.0)
        if scale > 1:
            ref = filter_valid(ref, g)[::2, ::2]
            dist = filter_valid(dist, g)[::2, ::2]
        mu1, mu2 = filter_valid(ref, g), filter_valid(dist, g)
        s1 = np.maximum(filter_valid(ref * ref, g) - mu1 * mu1, 0)
        s2 = np.maximum(filter_valid(dist * dist, g) - mu2 * mu2, 0)
        s12 = filter_valid(ref * dist, g) - mu1 * mu2
        gain = s12 / (s1 + eps)
        sv = s2 - gain * s12
        low1 = s1 < eps
        gain[low1] = 0
        sv[low1] = s2[low1]
        s1[low1] = 0
        low2 = s2 < eps
        gain[low2] = 0
        sv[low2] = 0
        neg = gain < 0
        sv[neg] = s2[neg]
        gain[neg] = 0
        sv = np.maximum(sv, eps)
        num += float(np.sum(np.log10(1 + gain**2 * s1 / (sv + sigma_n_sq))))
        den += float(np.sum(np.log10(1 + s1 / sigma_n_sq)))
    return num / den


def vif(pred, target, space: str = "y") -> float:
    """Pixel-domain VIF ``vifp_mscale(target, pred)`` on 0..255 planes (mean over channels
    for "rgb"). Agrees with torchmetrics' VIF-P (which is ~20x slower in float64 on CPU)."""
    a, b = _pair(pred, target, space)
    if min(a.shape[1:]) < 41:
        raise MemderainError(f"VIF needs images of at least 41x41 pixels, got "
                             f"{a.shape[1]}x{a.shape[2]}")
    return float(np.mean([vif_p(b[c], a[c]) for c in range(a.shape[0])]))


def fsim(pred, target) -> float:
    """FSIM (luminance only) of ``FeatureSIM.m``; see :mod:`memderain.evaluation.fsim`."""
    from memderain.evaluation.fsim import feature_similarity

    a, b = as_uint8_rgb(pred), as_uint8_rgb(target)
    if a.shape != b.shape:
        raise MemderainError(f"image sizes differ: prediction {a.shape[:2]} vs ground truth "
                             f"{b.shape[:2]} (HxW)")
    return feature_similarity(b, a)[0]  # FeatureSIM(imageRef, imageDis)


_METRIC_FUNCS = {
    "psnr_y": lambda p, t: psnr(p, t, "y"),
    "ssim_y": lambda p, t: ssim(p, t, "y"),
    "psnr_rgb": lambda p, t: psnr(p, t, "rgb"),
    "ssim_rgb": lambda p, t: ssim(p, t, "rgb"),
    "vif_y": lambda p, t: vif(p, t, "y"),
    "fsim": fsim,
}


def compute_metrics(pred, target, metrics: Iterable[str] = STANDARD_METRICS
                    ) -> dict[str, float]:
    """All requested metrics of one image pair, as ``{name: value}``."""
    pred, target = as_uint8_rgb(pred), as_uint8_rgb(target)
    out = {}
    for name in metrics:
        if name not in _METRIC_FUNCS:
            raise MemderainError(f"unknown metric {name!r}; known: {', '.join(ALL_METRICS)}")
        out[name] = _METRIC_FUNCS[name](pred, target)
    return out


# ----------------------------------------------------------------------------- accumulator
class MetricAccumulator:
    """Collects per-image metric rows and reports per-metric means.

    The mean of per-image values is what the MATLAB evaluation scripts (and Table II/III of
    the paper) report; it is *not* the PSNR of the pooled MSE.
    """

    def __init__(self, metrics: Sequence[str] = STANDARD_METRICS):
        self.metrics = tuple(metrics)
        self.rows: list[dict] = []

    def update(self, name: str, values: dict[str, float], **extra) -> dict:
        row = {"name": name, **extra, **{m: float(values[m]) for m in self.metrics}}
        self.rows.append(row)
        return row

    def __len__(self) -> int:
        return len(self.rows)

    def means(self) -> dict[str, float]:
        if not self.rows:
            return {m: math.nan for m in self.metrics}
        return {m: float(np.mean([r[m] for r in self.rows])) for m in self.metrics}
