"""Streak removal measured against a peer's output (evaluation/peer.py)."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from memderain.errors import MemderainError
from memderain.evaluation.peer import streak_removal
from memderain.evaluation.trivial import median3


def _scene(seed: int = 0, size: int = 96):
    rng = np.random.default_rng(seed)
    texture = gaussian_filter(rng.normal(0, 1, (size, size)), 3) * 200 + 120
    clean = np.clip(np.repeat(texture[..., None], 3, axis=2), 0, 255)
    streaks = np.zeros((size, size))
    for x in range(5, size, 12):   # 1-px vertical streaks, +40 grey levels
        streaks[:, x] = 40.0
    rainy = np.clip(clean + streaks[..., None], 0, 255)
    return clean.astype(np.uint8), rainy.astype(np.uint8), streaks


def test_clean_output_reproduces_all_removal_even_under_a_global_colour_change():
    clean, rainy, _ = _scene()
    peer = np.clip(clean.astype(float) * 0.85 + 20, 0, 255).astype(np.uint8)  # peer regrades
    r = streak_removal(rainy, clean, peer)
    assert r.removal > 0.9
    assert 0.02 < r.streak_fraction < 0.2


def test_unchanged_output_removes_nothing_and_changes_nothing():
    clean, rainy, _ = _scene()
    r = streak_removal(rainy, rainy, clean)
    assert r.removal == 0.0
    assert r.detail_change == 0.0


def test_half_the_streaks_removed_scores_about_half():
    clean, rainy, streaks = _scene()
    half = rainy.copy()
    cols = np.flatnonzero(streaks[0])
    half[:, cols[::2]] = clean[:, cols[::2]]
    assert 0.35 < streak_removal(rainy, half, clean).removal < 0.65


def test_blur_shows_as_detail_change():
    clean, rainy, _ = _scene()
    sharp = streak_removal(rainy, clean, clean)
    blurred = streak_removal(rainy, median3(rainy), clean)
    assert blurred.detail_change > sharp.detail_change + 0.5


def test_size_mismatch_is_a_clear_error():
    clean, rainy, _ = _scene()
    with pytest.raises(MemderainError, match="sizes differ"):
        streak_removal(rainy, clean[:-1], clean)
