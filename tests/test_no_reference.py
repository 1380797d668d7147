"""NIQE: AGGD fitting against known distributions, MATLAB imresize properties, the shipped
pristine model, and the behaviour of the score on distorted natural images."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.stats import gennorm
from skimage import data

from memderain.errors import MemderainError
from memderain.evaluation import no_reference as nr


@pytest.mark.parametrize("shape", [0.8, 2.0])
def test_aggd_fit_recovers_a_generalised_gaussian(shape):
    x = gennorm.rvs(shape, scale=0.5, size=200_000, random_state=np.random.default_rng(0))
    alpha, bl, br = nr.aggd_fit(x)
    assert alpha == pytest.approx(shape, rel=0.03)
    # For a symmetric GGD, beta_l = beta_r = the GGD scale.
    assert bl == pytest.approx(0.5, rel=0.03) and br == pytest.approx(0.5, rel=0.03)


def test_imresize_half_keeps_constants_and_halves_the_size():
    out = nr.imresize(np.full((96, 190), 7.0), 0.5)
    assert out.shape == (48, 95)
    np.testing.assert_allclose(out, 7.0, atol=1e-12)
    # A 1-pixel checkerboard sits at the Nyquist frequency: the antialiasing kernel removes it
    # away from the borders (MATLAB mirrors the edge pixel, which breaks the pattern there).
    yy, xx = np.mgrid[0:64, 0:64]
    board = 100.0 + 50.0 * ((yy + xx) % 2 * 2 - 1)
    np.testing.assert_allclose(nr.imresize(board, 0.5)[2:-2, 2:-2], 100.0, atol=1e-9)


def test_shipped_pristine_model_is_a_valid_gaussian():
    mu, cov = nr.load_pristine_model()
    assert mu.shape == (36,) and cov.shape == (36, 36)
    assert np.all(np.isfinite(mu)) and np.allclose(cov, cov.T)
    assert np.linalg.eigvalsh(cov).min() > -1e-10
    with np.load(nr.PRISTINE_MODEL) as meta:
        assert int(meta["n_images"]) >= 100 and int(meta["block"]) == nr.BLOCK


def test_niqe_prefers_the_clean_photo_over_noise_and_blur():
    img = data.astronaut()[:288, :384]
    rng = np.random.default_rng(0)
    noisy = np.clip(img + rng.normal(0, 15, img.shape), 0, 255).astype(np.uint8)
    blurred = np.stack([gaussian_filter(img[..., c].astype(float), 2.0) for c in range(3)], -1)
    blurred = blurred.round().astype(np.uint8)
    clean_score = nr.niqe(img)
    assert 0 < clean_score < nr.niqe(noisy)
    assert clean_score < nr.niqe(blurred)
    # Same image through the float-tensor and grey entry points.
    import torch

    t = torch.from_numpy(img).permute(2, 0, 1).double() / 255
    assert nr.niqe(t) == pytest.approx(clean_score, abs=1e-12)
    assert nr.niqe(nr.rgb_to_gray(img)) == pytest.approx(clean_score, abs=1e-12)


def test_fitting_a_model_to_an_image_scores_that_image_low():
    img = data.coffee()
    model = nr.fit_pristine_model([img], sharpness_threshold=0.0)
    assert model["n_patches"] == (400 // 96) * (600 // 96)
    own = nr.niqe(img, (model["mu"], model["cov"]))
    other = nr.niqe(data.astronaut(), (model["mu"], model["cov"]))
    assert own < other


def test_too_small_image_is_a_clear_error():
    with pytest.raises(MemderainError, match="at least 2 blocks"):
        nr.niqe(np.zeros((100, 100, 3), np.uint8))
