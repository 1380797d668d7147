"""Real rain layers (memderain.data.rain_layers, engine real-layers, `memderain rain-layers`):
the self-checks of issue 35 on clips whose rain and noise the test draws itself.

* a clip's own layers put back on its own median reproduce its frames on static pixels
  (Y-PSNR >= 40 dB);
* a rain-free clip (static frames plus sensor-like noise) gives a near-empty bank, so the
  noise floor is not stored as rain and not added twice;
* composites differ from their background only where the layer is non-zero.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from memderain.cli import main
from memderain.data.rain import rain_config, synthesize
from memderain.data.rain_layers import (
    BLENDS,
    LayerOptions,
    RainBank,
    apply_blend,
    blend_dependence,
    invert_blend,
    lift_layers,
    write_bank,
)
from memderain.data.static_clip import load_static_clip, luminance
from memderain.data.transforms import uint8_to_tensor

H, W, T = 96, 128, 8


def _scene(rng: np.random.Generator) -> np.ndarray:
    """A textured static background: gradients, blocks with edges, fine texture."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    base = 60 + 0.6 * x + 0.4 * y
    img = np.stack([base, base * 0.9 + 10, base * 0.8 + 20], axis=2)
    for _ in range(6):
        y0, x0 = rng.integers(0, H - 20), rng.integers(0, W - 20)
        img[y0:y0 + 20, x0:x0 + 20] += rng.uniform(-40, 40, 3)
    img += rng.normal(0, 3, (H, W, 1))  # texture, static
    return np.clip(img, 0, 235)


def _streaks(rng: np.random.Generator, count: int = 40) -> np.ndarray:
    """(H, W) grey levels of near-vertical thin streaks (one frame's rain)."""
    rain = np.zeros((H, W), np.float32)
    for _ in range(count):
        y0, x0 = rng.integers(0, H - 16), rng.integers(1, W - 1)
        length, level = rng.integers(8, 16), rng.uniform(25, 70)
        rain[y0:y0 + length, x0] += level
        rain[y0:y0 + length, x0 - 1] += level / 3  # a soft flank, as motion blur leaves
    return rain


def _write_clip(folder, rng, rainy: bool, sigma: float, jpeg: int | None = None):
    folder.mkdir()
    bg = _scene(rng)
    for t in range(T):
        frame = bg + (_streaks(rng)[..., None] if rainy else 0)
        frame = np.clip(frame + rng.normal(0, sigma, frame.shape), 0, 255).round()
        img = Image.fromarray(frame.astype(np.uint8))
        if jpeg:
            img.save(folder / f"f{t:02d}.jpg", quality=jpeg)
        else:
            img.save(folder / f"f{t:02d}.png")
    return bg


def test_own_layers_on_own_median_reproduce_the_frames(tmp_path):
    """Measured over three seeds: 43.0-51.4 dB on valid pixels, 51 dB typical (the sensor
    noise, sigma 1, is most of what is left)."""
    _write_clip(tmp_path / "clip", np.random.default_rng(0), rainy=True, sigma=1.0)
    clip = load_static_clip(tmp_path / "clip")
    opts = LayerOptions()
    layers, record = lift_layers(clip, opts)
    assert record["rain_direction_deg"] == pytest.approx(90, abs=10)  # streaks fall down
    med = clip.median.astype(np.float32) / 255
    for t, ly in enumerate(layers):
        back = apply_blend(med, ly.layer[..., None], opts.blend)
        valid = clip.valid(t)
        err = (luminance((back * 255).round()) - luminance(clip.frames[t]))[valid]
        score = 10 * np.log10(255 ** 2 / np.mean(err ** 2))
        assert score >= 40, (t, score)
        assert ly.density > 0.01  # the streaks are there, not an empty layer
        # ... and the rain is what was kept: the input's own PSNR against the median is lower
        raw = (luminance(clip.frames[t]) - luminance(clip.median))[valid]
        assert score > 10 * np.log10(255 ** 2 / np.mean(raw ** 2)) + 10


def test_rain_free_clip_gives_a_near_empty_bank(tmp_path):
    """Sensor-like noise (sigma 2.5, then JPEG q85) is not rain. Measured over four seeds:
    density 0.08-0.13 % of the pixels and a mean of 0.004-0.006 grey levels, against 9 % and
    2.6 grey levels for the same clips with rain; a floor kept as rain (noise above zero)
    would put about 0.4 sigma = 0.7 grey levels into every layer."""
    _write_clip(tmp_path / "dry", np.random.default_rng(1), rainy=False, sigma=2.5, jpeg=85)
    clip = load_static_clip(tmp_path / "dry")
    layers, record = lift_layers(clip, LayerOptions())
    assert record["noise_sigma"] > 1.0  # the floor was measured, not assumed
    assert max(ly.density for ly in layers) < 0.003
    assert max(ly.mean for ly in layers) < 0.02


@pytest.mark.parametrize("blend", BLENDS)
def test_blends_invert(blend):
    rng = np.random.default_rng(2)
    bg = rng.uniform(0, 0.65, (16, 16))  # no saturation: B + L <= 1
    layer = rng.uniform(0, 0.3, (16, 16))
    back = invert_blend(bg, apply_blend(bg, layer, blend), blend)
    assert np.abs(back - layer).max() < 1e-5


def test_blend_dependence_finds_the_blend_rain_was_made_with(tmp_path):
    """Rain of one fixed intrinsic value, screened onto a background of many luminances:
    only the screen blend sees it as independent of the background."""
    _write_clip(tmp_path / "clip", np.random.default_rng(3), rainy=True, sigma=1.0)
    clip = load_static_clip(tmp_path / "clip")
    layers, _ = lift_layers(clip, LayerOptions(blend="add"))
    med = luminance(clip.median) / 255
    for ly in layers:  # replace each lifted layer by constant screened rain on its pixels
        on = ly.layer > 0
        ly.layer = np.where(on, invert_blend(med, apply_blend(med, 0.2, "screen"), "add"), 0)
    dep = blend_dependence(clip, layers, "add", bands=3)
    assert dep["screen"] == pytest.approx(1.0, abs=0.02)
    assert dep["add"] > dep["screen"] + 0.05


def _bank(tmp_path):
    _write_clip(tmp_path / "clip", np.random.default_rng(4), rainy=True, sigma=1.0)
    clip = load_static_clip(tmp_path / "clip")
    opts = LayerOptions()
    write_bank(tmp_path / "bank", {"clip": lift_layers(clip, opts, "clip")}, opts)
    return tmp_path / "bank"


def test_composites_differ_from_the_background_only_where_the_layer_is_nonzero(tmp_path):
    bank = _bank(tmp_path)
    cfg = rain_config("real-layers", bank=bank)
    bg = np.random.default_rng(5).integers(0, 200, (48, 64, 3), dtype=np.uint8)
    scene = synthesize(uint8_to_tensor(bg), 4, cfg, torch.Generator().manual_seed(0))
    assert scene.frames.shape == (4, 3, 48, 64)
    back = torch.from_numpy(bg).permute(2, 0, 1).float() / 255
    for frame, rain in zip(scene.frames, scene.rain, strict=True):
        dry = rain[0] == 0
        assert (frame - back).abs()[:, dry].max() < 1e-6
        assert (frame - back)[:, ~dry].min() > -1e-6  # rain only adds light
        assert (~dry).any()
    # consecutive layers of one clip: the frames of a scene differ from each other
    assert not torch.equal(scene.rain[0], scene.rain[1])


def test_bank_round_trip_is_lossless_to_16_bits(tmp_path):
    bank = RainBank.open(_bank(tmp_path))
    manifest = json.loads((bank.root / "bank.json").read_text())
    assert manifest["blend"] == bank.blend and len(bank) == T
    entry = manifest["clips"]["clip"]["layers"][0]
    assert set(entry) >= {"file", "frame", "density", "mean", "luminance"}
    layer = bank.layer("clip", 0)
    assert layer.dtype == np.float32 and layer.max() > 0
    assert np.allclose(np.round(layer * 65535), layer * 65535, atol=1e-2)


def test_cli_builds_a_bank_and_synth_uses_it(tmp_path, capsys):
    _write_clip(tmp_path / "clip", np.random.default_rng(6), rainy=True, sigma=1.0)
    bank, grid = tmp_path / "bank", tmp_path / "grid.png"
    assert main(["rain-layers", str(tmp_path / "clip"), "-o", str(bank),
                 "--preview", str(grid)]) == 0
    assert (bank / "bank.json").is_file() and grid.stat().st_size > 0
    # a second run refuses before any work, in one line, and leaves the bank as it was
    before = (bank / "bank.json").read_bytes()
    assert main(["rain-layers", str(tmp_path / "clip"), "-o", str(bank)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0]
    assert (bank / "bank.json").read_bytes() == before
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((64, 80, 3), 90, np.uint8)).save(photos / "flat.png")
    out = tmp_path / "scenes"
    assert main(["synth", str(photos), str(out), "--rain", "real-layers", "--bank", str(bank),
                 "--frames", "3"]) == 0
    frames = sorted((out / "frames" / "flat").glob("t*.png"))
    assert len(frames) == 3
    rainy = np.asarray(Image.open(frames[0])).astype(int)
    assert (rainy >= 90).all() and (rainy > 90).any()  # real rain added light, nothing else
    manifest = json.loads((out / "synth.json").read_text())
    assert manifest["rain_engine"] == "real-layers"
    assert manifest["scenes"]["flat"]["clip"] == "clip"


def test_an_unwritable_bank_is_refused_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["rain-layers", str(tmp_path / "no-such-clip"), "-o",
                 str(blocker / "bank")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "BANK" in err[0] and "clip" not in err[0].split("BANK")[0]


def test_bank_errors_are_one_line(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(photos / "a.png")
    assert main(["synth", str(photos), str(tmp_path / "o1"), "--rain", "real-layers",
                 "--bank", str(tmp_path / "nowhere")]) == 1
    assert main(["synth", str(photos), str(tmp_path / "o2"), "--rain", "v2",
                 "--bank", str(tmp_path)]) == 1
    assert main(["synth", str(photos), str(tmp_path / "o3"), "--rain", "real-layers"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("memderain synth: error:") for line in lines)
    assert "bank" in lines[0] and "--bank" in lines[1] and "bank" in lines[2]


def test_synth_preview_shows_real_layers_from_a_bank(tmp_path):
    bank = _bank(tmp_path)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((64, 80, 3), 90, np.uint8)).save(photos / "flat.png")
    grid = tmp_path / "grid.png"
    assert main(["synth", str(photos), "--preview", str(grid), "--rain", "real-layers",
                 "--bank", str(bank), "--count", "2"]) == 0
    assert grid.stat().st_size > 0
