"""Pair augmentations (memderain.data.augment): one geometry and colour for both frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from memderain.config import ConfigError
from memderain.data.augment import AugmentConfig, augmented_crops
from memderain.data.timelapse import TimeLapseDataset


def _stripes(h: int = 96, w: int = 128, period: int = 8) -> np.ndarray:
    """Vertical stripes: the image changes along x only."""
    x = np.arange(w)
    row = (127.5 + 100 * np.sin(2 * np.pi * x / period)).astype(np.uint8)
    return np.repeat(np.repeat(row[None, :, None], h, 0), 3, 2)


def _grad_energy(x: torch.Tensor) -> tuple[float, float]:
    """(energy along x, energy along y) of a (3, H, W) crop."""
    return float(x.diff(dim=2).pow(2).mean()), float(x.diff(dim=1).pow(2).mean())


def test_off_is_an_exact_crop_and_on_is_reproducible():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    (crop,) = augmented_crops([frame], 16, AugmentConfig(), torch.Generator().manual_seed(3))
    got = ((crop + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    # the crop is some 16x16 window of the frame, pixel for pixel
    hits = [(y, x) for y in range(25) for x in range(35)
            if np.array_equal(frame[y:y + 16, x:x + 16], got)]
    assert len(hits) == 1
    cfg = AugmentConfig(rotate_prob=1, scale=(0.7, 1.4), brightness=0.2, color=0.1, jpeg_prob=1)
    a = augmented_crops([frame, frame], 16, cfg, torch.Generator().manual_seed(5))
    b = augmented_crops([frame, frame], 16, cfg, torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    # one geometry, colour and JPEG quality for both frames of the pair
    torch.testing.assert_close(a[0], a[1], rtol=0, atol=0)


def test_rotation_turns_vertical_stripes_any_way():
    frame = _stripes()
    flat = AugmentConfig()
    turned = AugmentConfig(rotate_prob=1.0)
    ratios_flat, ratios_turned = [], []
    for seed in range(40):
        (x,) = augmented_crops([frame], 32, flat, torch.Generator().manual_seed(seed))
        ex, ey = _grad_energy(x)
        ratios_flat.append(ey / ex)
        (x,) = augmented_crops([frame], 32, turned, torch.Generator().manual_seed(seed))
        ex, ey = _grad_energy(x)
        ratios_turned.append(ey / max(ex, 1e-9))
    assert max(ratios_flat) < 1e-9  # never turned without rotation
    assert max(ratios_turned) > 3  # some crops show horizontal stripes
    assert min(ratios_turned) < 0.3  # and some stay near vertical


def test_scale_stretches_the_pattern_and_colour_is_common():
    frame = _stripes(period=8)
    (x,) = augmented_crops([frame], 32, AugmentConfig(scale=(2.0, 2.0)),
                           torch.Generator().manual_seed(0))
    spectrum = torch.fft.rfft(x[0].mean(0)).abs()[1:]
    assert int(spectrum.argmax()) + 1 == 32 // 16  # period 8 px became 16 px
    a, b = augmented_crops([frame, frame], 32, AugmentConfig(brightness=0.3),
                           torch.Generator().manual_seed(1))
    (plain,) = augmented_crops([frame], 32, AugmentConfig(), torch.Generator().manual_seed(1))
    gain = ((a + 1) / 2).mean() / ((plain + 1) / 2).mean()
    assert abs(float(gain) - 1) > 1e-3 and torch.equal(a, b)


def test_jpeg_changes_each_frame_a_little():
    rng = np.random.default_rng(1)
    frame = np.asarray(Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
                       .resize((64, 64), Image.BICUBIC))
    cfg = AugmentConfig(jpeg_prob=1, jpeg_quality=(50, 50))
    (j,) = augmented_crops([frame], 32, cfg, torch.Generator().manual_seed(2))
    (p,) = augmented_crops([frame], 32, AugmentConfig(), torch.Generator().manual_seed(2))
    err = float((j - p).abs().mean()) * 127.5
    assert 0.2 < err < 8  # re-compressed, not destroyed (grey levels)


def test_bad_settings_are_refused_and_the_dataset_uses_them(tmp_path):
    with pytest.raises(ConfigError, match="scale"):
        AugmentConfig(scale=(1.5, 1.0))
    with pytest.raises(ConfigError, match="jpeg_quality"):
        AugmentConfig(jpeg_quality=(0, 90))
    scene = tmp_path / "s"
    scene.mkdir()
    for t in range(3):
        Image.fromarray(_stripes(48, 64)).save(scene / f"t{t}.png")
    ds = TimeLapseDataset(tmp_path, crop_size=24, augment=AugmentConfig(rotate_prob=1.0))
    ratios = []
    for k in range(len(ds)):
        item = ds[k]
        assert item["w"].shape == (3, 24, 24) and torch.equal(item["w"], item["v"])
        ex, ey = _grad_energy(item["w"])
        ratios.append(ey / max(ex, 1e-9))
    assert max(ratios) > 0.2  # rotated: the stripes are no longer vertical
