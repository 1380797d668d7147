"""No-reference quality for real rain photos without ground truth: NIQE (Mittal, Soundararajan,
Bovik, "Making a 'completely blind' image quality analyzer", IEEE SPL 2013).

NIQE fits a multivariate Gaussian (MVG) to 36 natural-scene-statistics features of sharp
96x96 patches of pristine photographs, fits another MVG to the patches of the test image, and
reports the distance between the two (Eq. 10):

    NIQE = sqrt((mu_p - mu_t)^T ((Sigma_p + Sigma_t) / 2)^+ (mu_p - mu_t))     (lower = better)

The features follow the authors' MATLAB release (``computequality.m`` / ``computefeature.m``):
grey image (MATLAB ``rgb2gray``, uint8), cropped to whole 96x96 blocks; at 2 scales (the second
via MATLAB ``imresize(im, 0.5)``, bicubic with antialiasing) MSCN coefficients
``(I - mu) / (sigma + 1)`` with a 7x7 Gaussian (sigma 7/6, replicate borders); per block the
AGGD fit (alpha, mean beta) of the coefficients and (alpha, mean, beta_l, beta_r) of their
products with the 4 neighbours (circular shifts (0,1), (1,0), (1,1), (1,-1)).

**Pristine model.** The MATLAB release ships parameters fitted to 125 pristine photographs;
memderain cannot redistribute those, so ``niqe_pristine.npz`` (package data) holds a model fitted
by ``scripts/fit_niqe_model.py`` with the same procedure (patches whose mean local sigma exceeds
0.75 x the image's sharpest patch) to the 180 clean training photographs of the project data
(Urban100 + Sun-Hays 80, JPEG q95). Scores are therefore on a similar scale to MATLAB NIQE but
not equal to it: compare memderain NIQE values with each other (rainy input vs de-rained
output), not with numbers printed in papers. BRISQUE is not provided: it needs an SVR trained
on human opinion scores, which cannot be reproduced here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from scipy.ndimage import correlate1d
from scipy.special import gamma

from memderain.errors import MemderainError
from memderain.evaluation.metrics import as_uint8_rgb

PRISTINE_MODEL = Path(__file__).with_name("niqe_pristine.npz")
BLOCK = 96
SHARPNESS_THRESHOLD = 0.75
RGB2GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)  # MATLAB rgb2gray
_GAM = np.arange(0.2, 10.0 + 1e-9, 0.001)  # MATLAB 0.2:0.001:10
_R_GAM = gamma(2.0 / _GAM) ** 2 / (gamma(1.0 / _GAM) * gamma(3.0 / _GAM))
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


# ----------------------------------------------------------------------------- image ops
def rgb_to_gray(rgb) -> np.ndarray:
    """MATLAB ``rgb2gray`` of a uint8 image (rounded to uint8), as float64 HxW."""
    c = as_uint8_rgb(rgb).astype(np.float64)
    g = RGB2GRAY[0] * c[..., 0] + RGB2GRAY[1] * c[..., 1] + RGB2GRAY[2] * c[..., 2]
    return np.floor(g + 0.5)


def _gauss7() -> np.ndarray:
    x = np.arange(7) - 3.0
    g = np.exp(-(x**2) / (2 * (7 / 6) ** 2))
    return g / g.sum()


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    return ((1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
            + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def _resize_weights(in_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB ``imresize`` contributions (bicubic, antialiasing for scale < 1)."""
    out_len = math.ceil(in_len * scale)
    width = 4.0 / scale if scale < 1 else 4.0
    u = np.arange(1, out_len + 1) / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    idx = left[:, None] + np.arange(math.ceil(width) + 2)[None]  # 1-based
    if scale < 1:
        w = scale * _cubic(scale * (u[:, None] - idx))
    else:
        w = _cubic(u[:, None] - idx)
    w /= w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    return w, mirror[np.mod(idx - 1, 2 * in_len).astype(np.int64)]


def imresize(img: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB ``imresize(img, scale)`` (bicubic, antialiased) for a float64 HxW plane."""
    w, idx = _resize_weights(img.shape[0], scale)  # rows first (MATLAB order for equal scales)
    img = np.einsum("ij,ijk->ik", w, img[idx])
    w, idx = _resize_weights(img.shape[1], scale)
    return np.einsum("ij,kij->ki", w, img[:, idx])


# ----------------------------------------------------------------------------- features
def aggd_fit(vec: np.ndarray) -> tuple[float, float, float]:
    """(alpha, beta_left, beta_right) of an asymmetric generalised Gaussian
    (``estimateaggdparam.m``: moment matching on the grid alpha = 0.2:0.001:10)."""
    vec = vec.ravel()
    left_std = math.sqrt(np.mean(vec[vec < 0] ** 2)) if np.any(vec < 0) else math.nan
    right_std = math.sqrt(np.mean(vec[vec > 0] ** 2)) if np.any(vec > 0) else math.nan
    with np.errstate(divide="ignore", invalid="ignore"):  # flat block: NaN features
        gammahat = left_std / right_std
        rhat = np.mean(np.abs(vec)) ** 2 / np.mean(vec**2)
        rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
    if not math.isfinite(rhatnorm):
        return math.nan, math.nan, math.nan
    alpha = float(_GAM[np.argmin((_R_GAM - rhatnorm) ** 2)])
    k = math.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return alpha, left_std * k, right_std * k


def block_features(block: np.ndarray) -> list[float]:
    """The 18 features of one block of MSCN coefficients (``computefeature.m``)."""
    alpha, bl, br = aggd_fit(block)
    feat = [alpha, (bl + br) / 2]
    for shift in _SHIFTS:
        alpha, bl, br = aggd_fit(block * np.roll(block, shift, axis=(0, 1)))
        mean = (br - bl) * gamma(2 / alpha) / gamma(1 / alpha) if math.isfinite(alpha) else math.nan
        feat += [alpha, mean, bl, br]
    return feat


def niqe_features(gray: np.ndarray, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Per-block features (n_blocks, 36) and sharpness (mean local sigma, scale 1) of a
    float64 0..255 grey image. Blocks are in MATLAB ``blkproc`` (column-major) order."""
    rows, cols = gray.shape[0] // block, gray.shape[1] // block
    if rows * cols < 2:
        raise MemderainError(f"NIQE needs an image of at least 2 blocks of {block}x{block} "
                             f"pixels, got {gray.shape[1]}x{gray.shape[0]}")
    im = gray[: rows * block, : cols * block].astype(np.float64)
    g = _gauss7()
    feats, sharpness = [], None
    for scale in (1, 2):
        mu = correlate1d(correlate1d(im, g, axis=0, mode="nearest"), g, axis=1, mode="nearest")
        sq = correlate1d(correlate1d(im * im, g, axis=0, mode="nearest"), g, axis=1,
                         mode="nearest")
        sigma = np.sqrt(np.abs(sq - mu * mu))
        mscn = (im - mu) / (sigma + 1)
        b = block // scale
        feats.append(np.array([block_features(mscn[r * b:(r + 1) * b, c * b:(c + 1) * b])
                               for c in range(cols) for r in range(rows)]))
        if scale == 1:
            sharpness = np.array([sigma[r * b:(r + 1) * b, c * b:(c + 1) * b].mean()
                                  for c in range(cols) for r in range(rows)])
            im = imresize(im, 0.5)
    return np.concatenate(feats, axis=1), sharpness


def _mvg(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``nanmean`` and ``nancov`` (complete rows) of a feature matrix."""
    mu = np.nanmean(feats, axis=0)
    complete = feats[~np.isnan(feats).any(axis=1)]
    return mu, np.cov(complete, rowvar=False)


# ----------------------------------------------------------------------------- model + score
def fit_pristine_model(images: Iterable, block: int = BLOCK,
                       sharpness_threshold: float = SHARPNESS_THRESHOLD) -> dict:
    """Fit the pristine MVG (``estimatemodelparam.m``) to uint8 RGB (or grey) images."""
    kept, n_images = [], 0
    for img in images:
        gray = rgb_to_gray(img) if np.asarray(img).ndim == 3 else np.asarray(img, np.float64)
        feats, sharp = niqe_features(gray, block)
        kept.append(feats[sharp > sharpness_threshold * sharp.max()])
        n_images += 1
    if not kept:
        raise MemderainError("no images to fit the NIQE model to")
    allf = np.concatenate(kept)
    mu, cov = _mvg(allf)
    return {"mu": mu, "cov": cov, "n_images": n_images, "n_patches": len(allf),
            "block": block, "sharpness_threshold": sharpness_threshold}


def load_pristine_model(path=None) -> tuple[np.ndarray, np.ndarray]:
    path = Path(path) if path is not None else PRISTINE_MODEL
    if not path.is_file():
        raise MemderainError(f"NIQE pristine model not found: {path}")
    with np.load(path, allow_pickle=False) as data:
        return data["mu"].astype(np.float64), data["cov"].astype(np.float64)


_MODEL_CACHE: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def niqe(image, model: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """NIQE of one image (uint8 HxWx3 / HxW or float (3,H,W) tensor in [0, 1]); lower is
    better. ``model`` = (mu, cov) of a pristine MVG; default: the shipped memderain model."""
    if model is None:
        key = str(PRISTINE_MODEL)
        if key not in _MODEL_CACHE:
            _MODEL_CACHE[key] = load_pristine_model()
        model = _MODEL_CACHE[key]
    mu_p, cov_p = model
    if isinstance(image, np.ndarray) and image.ndim == 2:
        gray = image.astype(np.float64)  # already grey, 0..255
    else:
        gray = rgb_to_gray(image)
    feats, _ = niqe_features(gray)
    mu_t, cov_t = _mvg(feats)
    d = mu_p - mu_t
    return float(math.sqrt(max(d @ np.linalg.pinv((cov_p + cov_t) / 2) @ d, 0.0)))
