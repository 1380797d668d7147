"""Metrics against independent computations: MATLAB formulas written out in plain numpy /
scipy (non-separable 'valid' filter2), scikit-image, and torchmetrics."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.signal import correlate2d
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from memderain.errors import MemderainError
from memderain.evaluation import metrics as M
from memderain.evaluation.fsim import conv2_same, feature_similarity


def _pair(seed=0, shape=(48, 56), sigma=12.0):
    """A smooth 'clean' image and a noisy copy (uint8 HxWx3), fixed by the seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    base = np.stack([128 + 100 * np.sin(xx / 7.0 + c) * np.cos(yy / 9.0 - c) for c in range(3)], -1)
    clean = np.clip(base + rng.normal(0, 4, base.shape), 0, 255).round().astype(np.uint8)
    noisy = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 255).round().astype(np.uint8)
    return noisy, clean


# --------------------------------------------------------------- independent MATLAB formulas
def matlab_y(rgb: np.ndarray) -> np.ndarray:
    """rgb2ycbcr(uint8) Y written as MATLAB evaluates it: T = origT / 255, double, round."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 65.481 / 255 * r + 128.553 / 255 * g + 24.966 / 255 * b + 16
    return np.floor(y + 0.5)


def matlab_ssim_index(img1: np.ndarray, img2: np.ndarray) -> float:
    """SSIM_index.m with defaults: fspecial('gaussian', 11, 1.5), filter2(..., 'valid')."""
    x = np.arange(11) - 5.0
    xx, yy = np.meshgrid(x, x)
    w = np.exp(-(xx**2 + yy**2) / (2 * 1.5**2))
    w /= w.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def f(a):
        return correlate2d(a, w, mode="valid")

    mu1, mu2 = f(img1), f(img2)
    s1 = f(img1 * img1) - mu1**2
    s2 = f(img2 * img2) - mu2**2
    s12 = f(img1 * img2) - mu1 * mu2
    m = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s1 + s2 + c2))
    return float(m.mean())


def matlab_psnr(img1: np.ndarray, img2: np.ndarray) -> float:
    d = img1.astype(np.float64) - img2.astype(np.float64)
    return 20 * math.log10(255 / math.sqrt(np.mean(d**2)))


def matlab_vifp_mscale(ref: np.ndarray, dist: np.ndarray) -> float:
    """vifp_mscale.m with non-separable 2-D windows."""
    num = den = 0.0
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        x = np.arange(n) - (n - 1) / 2
        xx, yy = np.meshgrid(x, x)
        win = np.exp(-(xx**2 + yy**2) / (2 * (n / 5) ** 2))
        win /= win.sum()

        def f(a, win=win):
            return correlate2d(a, win, mode="valid")

        if scale > 1:
            ref, dist = f(ref)[::2, ::2], f(dist)[::2, ::2]
        mu1, mu2 = f(ref), f(dist)
        s1 = np.maximum(f(ref * ref) - mu1**2, 0)
        s2 = np.maximum(f(dist * dist) - mu2**2, 0)
        s12 = f(ref * dist) - mu1 * mu2
        g = s12 / (s1 + 1e-10)
        sv = s2 - g * s12
        g[s1 < 1e-10] = 0
        sv[s1 < 1e-10] = s2[s1 < 1e-10]
        s1[s1 < 1e-10] = 0
        g[s2 < 1e-10] = 0
        sv[s2 < 1e-10] = 0
        sv[g < 0] = s2[g < 0]
        g[g < 0] = 0
        sv[sv <= 1e-10] = 1e-10
        num += np.sum(np.log10(1 + g**2 * s1 / (sv + 2)))
        den += np.sum(np.log10(1 + s1 / 2))
    return float(num / den)


# --------------------------------------------------------------- Y channel
def test_y_channel_matches_matlab_rgb2ycbcr():
    # Published corner values of rgb2ycbcr(uint8): black -> 16, white -> 235, red -> 81.
    assert M.rgb_to_y(np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], np.uint8)
                      ).tolist() == [[16.0, 235.0, 81.0]]
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)
    ours, ref = M.rgb_to_y(rgb), matlab_y(rgb)
    diff = ours != ref
    # Only exact .5 ties may differ (exact integer rounding vs float rounding), by 1 at most.
    c = rgb.astype(np.int64)
    tie = (65481 * c[..., 0] + 128553 * c[..., 1] + 24966 * c[..., 2]) % 255000 == 127500
    assert not np.any(diff & ~tie)
    assert np.all(np.abs(ours - ref) <= 1)
    unrounded = M.rgb_to_y(rgb, rounded=False)
    assert np.all(np.abs(unrounded - ref) <= 0.5 + 1e-9)


def test_float_tensor_is_quantised_like_a_png():
    noisy, _ = _pair()
    t = torch.from_numpy(noisy).permute(2, 0, 1).double() / 255.0
    t = t + 0.3 / 255.0  # still rounds back to the same uint8 values
    np.testing.assert_array_equal(M.as_uint8_rgb(t), noisy)


# --------------------------------------------------------------- PSNR / SSIM
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_psnr_matches_matlab_script_and_skimage(seed):
    noisy, clean = _pair(seed)
    ref_y = matlab_psnr(matlab_y(noisy), matlab_y(clean))
    assert abs(M.psnr(noisy, clean, "y") - ref_y) < 1e-3
    ref_rgb = peak_signal_noise_ratio(clean, noisy, data_range=255)
    assert abs(M.psnr(noisy, clean, "rgb") - ref_rgb) < 1e-9
    assert M.psnr(clean, clean, "y") == math.inf


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ssim_matches_matlab_ssim_index_and_skimage(seed):
    noisy, clean = _pair(seed)
    ref_y = matlab_ssim_index(matlab_y(noisy), matlab_y(clean))
    assert abs(M.ssim(noisy, clean, "y") - ref_y) < 1e-4
    sk = structural_similarity(clean, noisy, channel_axis=2, gaussian_weights=True, sigma=1.5,
                               use_sample_covariance=False, data_range=255)
    assert abs(M.ssim(noisy, clean, "rgb") - sk) < 1e-9
    sk_y = structural_similarity(M.rgb_to_y(clean), M.rgb_to_y(noisy), gaussian_weights=True,
                                 sigma=1.5, use_sample_covariance=False, data_range=255)
    assert abs(M.ssim(noisy, clean, "y") - sk_y) < 1e-9
    assert M.ssim(clean, clean, "y") == pytest.approx(1.0, abs=1e-12)


def test_ssim_uses_valid_window_not_padding():
    # torchmetrics pads (reflect) and averages the full map: a different convention, so the
    # 'valid' result must differ from it on an image whose borders matter.
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    noisy, clean = _pair(3, shape=(24, 24), sigma=30)
    a = torch.from_numpy(M.rgb_to_y(noisy))[None, None]
    b = torch.from_numpy(M.rgb_to_y(clean))[None, None]
    same = float(tm_ssim(a, b, data_range=255.0))
    ours = M.ssim(noisy, clean, "y")
    assert ours == pytest.approx(matlab_ssim_index(M.rgb_to_y(noisy), M.rgb_to_y(clean)), abs=1e-9)
    assert abs(ours - same) > 1e-4


def test_sizes_must_match_and_fit_the_window():
    noisy, clean = _pair()
    with pytest.raises(MemderainError, match="sizes differ"):
        M.psnr(noisy[:-1], clean)
    with pytest.raises(MemderainError, match="smaller than"):
        M.ssim(noisy[:8, :8], clean[:8, :8])


# --------------------------------------------------------------- VIF
def test_vif_matches_matlab_port_and_torchmetrics():
    from torchmetrics.functional.image import visual_information_fidelity

    noisy, clean = _pair(4, shape=(64, 64))
    ref = matlab_vifp_mscale(M.rgb_to_y(clean), M.rgb_to_y(noisy))
    ours = M.vif(noisy, clean, "y")
    assert abs(ours - ref) < 1e-9
    tm = float(visual_information_fidelity(torch.from_numpy(M.rgb_to_y(noisy))[None, None],
                                           torch.from_numpy(M.rgb_to_y(clean))[None, None]))
    assert abs(ours - tm) < 1e-9
    assert M.vif(clean, clean) == pytest.approx(1.0, abs=1e-9)


# --------------------------------------------------------------- FSIM
def test_conv2_same_follows_matlab_for_even_kernels():
    # MATLAB: conv2([1 2 3], [1 1], 'same') = [3 5 3] (scipy's 'same' would give [1 3 5]).
    out = conv2_same(np.array([[1.0, 2.0, 3.0]]), np.array([[1.0, 1.0]]))
    assert out.tolist() == [[3.0, 5.0, 3.0]]


def test_fsim_identity_and_monotone_in_noise():
    _, clean = _pair(5, shape=(64, 64), sigma=0)
    assert feature_similarity(clean, clean) == pytest.approx((1.0, 1.0), abs=1e-12)
    rng = np.random.default_rng(5)
    scores = []
    for sigma in (2, 8, 20, 40):
        noisy = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 255).round().astype(np.uint8)
        scores.append(M.fsim(noisy, clean))
    assert all(a > b for a, b in itertools.pairwise(scores)), scores
    assert 0.3 < scores[-1] < scores[0] < 1.0


# FSIM / FSIMc of two crops of the README example (rainy vs clean), computed once with an
# independent implementation: piq 0.8.0 `piq.fsim` (PyTorch port of FeatureSIM.m; data_range
# 255, float64; below 384 px no down-sampling, so both follow MATLAB exactly). Only the numbers
# are stored. Our numpy port agrees to 7e-6; T1 or T2 ten times smaller moves them by > 1e-2.
FSIM_REFERENCE = [  # (rows, cols) of the crop, (FSIM, FSIMc) from piq
    ((40, 168, 60, 220), (0.8620754499, 0.8617814741)),
    ((200, 328, 300, 460), (0.6964084865, 0.6962605709)),
]


def test_fsim_matches_an_independent_implementation():
    from pathlib import Path

    from PIL import Image

    examples = Path(__file__).resolve().parents[1] / "examples"
    clean = np.asarray(Image.open(examples / "clean_monarch.png").convert("RGB"))
    rainy = np.asarray(Image.open(examples / "rainy_monarch.png").convert("RGB"))
    for (y0, y1, x0, x1), (ref_fsim, ref_fsimc) in FSIM_REFERENCE:
        ys, xs = slice(y0, y1), slice(x0, x1)
        got = feature_similarity(clean[ys, xs], rainy[ys, xs])
        assert got[0] == pytest.approx(ref_fsim, abs=5e-5)
        assert got[1] == pytest.approx(ref_fsimc, abs=5e-5)
        assert M.fsim(rainy[ys, xs], clean[ys, xs]) == pytest.approx(ref_fsim, abs=5e-5)


def test_fsim_downsamples_large_images_like_featuresim():
    # min side 600 -> F = round(600/256) = 2: FSIM of the full image equals FSIM of the
    # 2x2-mean-filtered, sub-sampled luminance computed by hand (grey path, F = 1).
    rng = np.random.default_rng(6)
    clean = rng.integers(0, 256, (600, 602), dtype=np.uint8).astype(np.float64)
    dist = np.clip(clean + rng.normal(0, 10, clean.shape), 0, 255)
    k = np.full((2, 2), 0.25)
    small = [conv2_same(im, k)[::2, ::2] for im in (clean, dist)]
    assert small[0].shape == (300, 301)
    assert feature_similarity(clean, dist)[0] == pytest.approx(
        feature_similarity(*small)[0], abs=1e-12)


# --------------------------------------------------------------- accumulator
def test_accumulator_reports_mean_of_per_image_values():
    acc = M.MetricAccumulator(("psnr_y", "ssim_y"))
    values = []
    for seed in range(3):
        noisy, clean = _pair(seed)
        row = acc.update(f"img{seed}", M.compute_metrics(noisy, clean, acc.metrics))
        values.append(row["psnr_y"])
    assert len(acc) == 3
    assert acc.means()["psnr_y"] == pytest.approx(sum(values) / 3)
    with pytest.raises(MemderainError, match="unknown metric"):
        M.compute_metrics(noisy, clean, ["lpips"])
