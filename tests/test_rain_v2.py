"""Rain engine v2: statistics (coverage, angle, width), exact compositing where dry, camera
effects, veil drift, determinism, presets, and the `synth --preview` grid."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
import torch
from PIL import Image

from memderain.cli import main
from memderain.config import ConfigError
from memderain.data.rain import RAIN_PRESETS, TEST_PRESETS, engine_of, rain_config, synthesize
from memderain.data.rain_v2 import V2_PRESETS, RainV2Config, sample_params

SIZE = (96, 128)
DRY = {"veil_prob": 0.0, "noise_prob": 0.0, "jpeg_prob": 0.0}  # nothing but streaks
ONE_LAYER = {"layers": (1, 1), "near_prob": 0.0, "groups": 1, "angle_jitter": 0.0,
             "streak_jitter": 0.0, "length_jitter": 0.0, "density_jitter": 0.0,
             "reference_size": 128}


def cfg(**kw) -> RainV2Config:
    return dataclasses.replace(RainV2Config(**DRY), **kw)


def background(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((3, *SIZE), generator=g) * 0.5 + 0.1  # dark enough for streaks to show


def smooth_background() -> torch.Tensor:
    y = torch.linspace(0.1, 0.5, SIZE[0])[:, None].expand(SIZE)
    x = torch.linspace(0.1, 0.4, SIZE[1])[None, :].expand(SIZE)
    return torch.stack([y, x, (x + y) / 2])


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_coverage_rises_with_density():
    bg = background()
    covers = []
    for d in (1e-4, 4e-4, 1.6e-3, 6.4e-3):
        c = cfg(density=(d, d), length=(20.0, 20.0), width=(1.5, 1.5), **ONE_LAYER)
        scene = synthesize(bg, 2, c, gen(4))
        covers.append(float((scene.rain > 0.1).float().mean()))
    assert all(a < b for a, b in itertools.pairwise(covers)), covers
    # sparse rain: coverage ~ density x streak footprint (20 px x ~2 px above alpha 0.1),
    # dense rain saturates below 1 (overlaps): 1 - exp(-density x footprint)
    footprint = covers[0] / 1e-4
    assert 15 < footprint < 80, footprint
    expected = 1 - math.exp(-6.4e-3 * footprint)
    assert abs(covers[-1] - expected) < 0.15, (covers, expected)


def test_dry_pixels_unchanged_and_rain_only_adds_light():
    bg = background(1)
    scene = synthesize(bg, 3, cfg(density=(5e-4, 5e-4), length=(30.0, 30.0), layers=(1, 2)),
                       gen(2))
    assert scene.frames.shape == (3, 3, *SIZE) and scene.rain.shape == (3, 1, *SIZE)
    dry = (scene.rain == 0).expand_as(scene.frames)
    assert 0.05 < float((~dry).float().mean()) < 0.95
    assert torch.equal(scene.frames[dry], bg[None].expand_as(scene.frames)[dry])
    assert bool((scene.frames >= bg[None] - 1e-6).all())
    # where it rains, the pixel moves towards the drop radiance, by the opacity alpha at most
    wet_change = (scene.frames - bg[None]).amax(1, keepdim=True)
    assert float(wet_change[scene.rain > 0.05].mean()) > 0.02
    assert bool((wet_change <= scene.rain + 1e-5).all())


def test_frames_differ_and_seed_reproduces():
    bg = background(2)
    a = synthesize(bg, 3, "v2", gen(5))
    b = synthesize(bg, 3, "v2", gen(5))
    c = synthesize(bg, 3, "v2", gen(6))
    assert torch.equal(a.frames, b.frames)
    assert not torch.equal(a.frames, c.frames)
    assert not torch.equal(a.rain[0], a.rain[1])  # new drops every frame


def _orientation_deg(alpha: torch.Tensor) -> float:
    """Dominant streak direction (degrees from vertical, + = leaning right-down) from the
    structure tensor of the alpha map."""
    a = alpha.double()
    gy, gx = torch.gradient(a)
    jxx, jyy, jxy = float((gx * gx).sum()), float((gy * gy).sum()), float((gx * gy).sum())
    # gradients point across the streaks; the streak direction is perpendicular
    theta = 0.5 * math.atan2(2 * jxy, jxx - jyy)  # gradient angle from the x axis
    return -math.degrees(theta)


@pytest.mark.parametrize("angle", [-30.0, 0.0, 20.0])
def test_streaks_run_at_the_drawn_angle(angle):
    # 4 px wide: central differences misjudge the direction of sub-Nyquist (1-2 px) lines
    c = cfg(angle=(abs(angle), abs(angle)), length=(80.0, 80.0), width=(4.0, 4.0),
            density=(5e-4, 5e-4), **ONE_LAYER)
    for seed in range(8):  # find a seed with the requested lean
        scene = synthesize(background(), 1, c, gen(seed))
        drawn = math.degrees(float(scene.params.angle[0, 0]))
        if (drawn >= 0) == (angle >= 0):
            break
    assert abs(drawn - angle) < 1e-3
    assert abs(_orientation_deg(scene.rain[0, 0]) - angle) < 2.5


def test_wider_streaks_cover_more_at_equal_density():
    bg = background()
    covers = [float((synthesize(bg, 1, cfg(width=(w, w), density=(5e-4, 5e-4), **ONE_LAYER),
                                gen(3)).rain > 0.05).float().mean()) for w in (1.0, 3.0, 6.0)]
    assert all(a < b for a, b in itertools.pairwise(covers)), covers


def test_noise_has_the_stated_level_on_dry_pixels():
    bg = torch.full((3, *SIZE), 0.3)
    c = cfg(density=(2e-4, 2e-4), noise_prob=1.0, noise=(0.01, 0.01), **ONE_LAYER)
    scene = synthesize(bg, 4, c, gen(1))
    dry = (scene.rain == 0).expand_as(scene.frames)
    resid = (scene.frames - bg[None])[dry]
    expected = 0.01 * math.sqrt(1 + 0.3)  # Poisson-Gaussian: sigma^2 (1 + x)
    assert abs(float(resid.std()) - expected) < 0.1 * expected
    assert abs(float(resid.mean())) < 0.002


def test_jpeg_recompression_quantises_and_stays_close():
    bg = smooth_background()  # JPEG is made for photos, not for per-pixel noise
    plain = synthesize(bg, 2, cfg(density=(1e-3, 1e-3)), gen(8))
    jpeg = synthesize(bg, 2, cfg(density=(1e-3, 1e-3), jpeg_prob=1.0, jpeg_quality=(70, 70)),
                      gen(8))
    assert (jpeg.params.jpeg_quality == 70).all()
    assert torch.equal(jpeg.rain, plain.rain)  # same streaks, only the camera differs
    q = jpeg.frames * 255
    assert torch.allclose(q, q.round(), atol=1e-4)  # decoded 8-bit values
    err = (jpeg.frames - plain.frames).pow(2).mean()
    assert 0 < float(err) < 10 ** (-25 / 10)  # a real change, PSNR above 25 dB


def test_veil_lifts_dark_pixels_and_drifts_slowly():
    bg = torch.full((3, *SIZE), 0.1)
    c = cfg(density=(2e-4, 2e-4), veil_prob=1.0, veil=(0.2, 0.2), veil_drift=0.3, **ONE_LAYER)
    scene = synthesize(bg, 8, c, gen(0))
    v = scene.params.veil
    assert bool((v > 0).all())
    assert float((v[1:] - v[:-1]).abs().max()) < 0.05  # slow change frame to frame
    dry = (scene.rain == 0).expand_as(scene.frames)
    assert float(scene.frames[dry].mean()) > 0.12  # the veil brightens a dark scene


def test_test_unseen_is_outside_every_training_angle():
    train = [p for n, p in V2_PRESETS.items() if not n.startswith("test-")]
    max_train = max(p.angle[1] + p.angle_jitter + p.streak_jitter for p in train)
    unseen = V2_PRESETS["test-unseen"]
    assert unseen.angle[0] - unseen.angle_jitter - unseen.streak_jitter > max_train
    p = sample_params(unseen, 4, (256, 256), gen(0))
    on = p.density > 0
    assert float(torch.rad2deg(p.angle[on].abs()).min()) > max_train


def test_presets_and_yaml(tmp_path):
    assert set(TEST_PRESETS) <= set(RAIN_PRESETS)
    assert engine_of(rain_config("v2")) == "v2" and engine_of(rain_config("mixed")) == "v1"
    f = tmp_path / "rain.yaml"
    f.write_text("preset: test-heavy\nnoise_prob: 1.0\n")
    c = rain_config(f)
    assert isinstance(c, RainV2Config) and c.noise_prob == 1.0
    assert c.width == V2_PRESETS["test-heavy"].width
    f.write_text("preset: v2\nblend: add\n")  # a v1-only field
    with pytest.raises(ConfigError, match="unknown key"):
        rain_config(f)
    with pytest.raises(ConfigError, match="width"):
        RainV2Config(width=(3.0, 1.0))
    with pytest.raises(ConfigError, match="89"):
        RainV2Config(angle=(0.0, 85.0))


def test_heavy_rain_is_heavier_than_light():
    bg = background(4)
    psnr = {}
    for name in ("test-light", "test-heavy"):
        s = synthesize(bg, 2, name, gen(0))
        psnr[name] = float(-10 * torch.log10((s.frames - bg[None]).pow(2).mean()))
    assert psnr["test-heavy"] + 10 < psnr["test-light"], psnr


def test_synth_preview_writes_a_grid(tmp_path, capsys):
    clean, real = tmp_path / "clean", tmp_path / "real"
    clean.mkdir()
    real.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 120, (300, 400, 3), dtype=np.uint8)).save(
            clean / f"c{i}.png")
        Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(
            real / f"r{i}.jpg")
    out = tmp_path / "prev.png"
    assert main(["synth", str(clean), "--preview", str(out), "--real", str(real),
                 "--count", "3", "--rain", "test-heavy"]) == 0
    img = np.asarray(Image.open(out).convert("RGB"))
    assert img.shape == (2 * (256 + 24), 3 * 256, 3)  # 1 synthetic row + 1 real row
    # synthetic panels show rain on a dark photo: brighter than the photos (max 119)
    assert img[24:256 + 24].mean() > 65
    before = out.read_bytes()
    assert main(["synth", str(clean), "--preview", str(out)]) == 1  # exists, no --overwrite
    assert out.read_bytes() == before
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--overwrite" in err
    assert main(["synth", str(clean)]) == 1  # neither OUT nor --preview
    assert "OUT" in capsys.readouterr().err


def test_static_veil_is_the_same_in_every_frame():
    """veil_drift 0 (the training preset v2-timelapse): away from the streaks all frames are
    identical, so Siamese training sees no global change to remove."""
    bg = smooth_background()
    c = cfg(density=(3e-4, 3e-4), veil_prob=1.0, veil=(0.2, 0.2), veil_drift=0.0, **ONE_LAYER)
    scene = synthesize(bg, 5, c, gen(3))
    assert bool((scene.params.veil == scene.params.veil[0]).all())
    dry = (scene.rain == 0).all(dim=0, keepdim=True).expand_as(scene.frames)
    ref = scene.frames[0:1].expand_as(scene.frames)
    assert torch.equal(scene.frames[dry], ref[dry])
    assert float((scene.frames[0] - bg).abs().mean()) > 0.01  # the veil is there
    p = V2_PRESETS["v2-timelapse"]
    assert p.veil_drift == 0 and p.noise_prob == 0 and p.jpeg_prob == 0 and p.dry_prob > 0


def test_dry_frames_have_no_streaks_and_presets_without_them_render_as_before():
    bg = background(5)
    c = cfg(density=(2e-3, 2e-3), dry_prob=0.5, **ONE_LAYER)
    scene = synthesize(bg, 12, c, gen(2))
    dry = [(scene.rain[t] == 0).all().item() for t in range(12)]
    assert 0 < sum(dry) < 12
    for t in range(12):  # a dry frame is the background itself (no veil, noise, JPEG here)
        assert torch.equal(scene.frames[t], bg) == dry[t]
    # dry_prob 0 draws nothing extra: the test presets' scenes do not depend on this feature
    a = synthesize(bg, 3, cfg(**ONE_LAYER), gen(9))
    b = synthesize(bg, 3, cfg(dry_prob=0.0, **ONE_LAYER), gen(9))
    assert torch.equal(a.frames, b.frames)


def test_jpeg_quality_is_per_scene_so_dry_blocks_match_across_frames():
    """v2-timelapse-jpeg re-compresses frames with one JPEG quality per scene: a 16x16 block
    with no streak in it or around it (chroma upsampling reads the neighbours) decodes to the
    same pixels in every frame, so Siamese training sees JPEG error only where rain differs."""
    p = V2_PRESETS["v2-timelapse-jpeg"]
    assert p.jpeg_prob > 0 and p.noise_prob == 0 and p.veil_drift == 0 and p.dry_prob > 0
    bg = background(4)
    c = cfg(density=(2e-4, 2e-4), jpeg_prob=1.0, jpeg_quality=(70, 70), **ONE_LAYER)
    scene = synthesize(bg, 3, c, gen(5))
    assert bool((scene.params.jpeg_quality == 70).all())
    wet = (scene.rain != 0).any(dim=0).any(dim=0).float()[None, None]  # (1, 1, H, W)
    wet_blocks = torch.nn.functional.max_pool2d(wet, 16, 16, ceil_mode=True)
    near = torch.nn.functional.max_pool2d(wet_blocks, 3, 1, padding=1)[0, 0] == 0
    assert 4 <= int(near.sum()) < near.numel()  # some blocks are dry, some are not
    changed = 0
    for by, bx in zip(*torch.nonzero(near, as_tuple=True)):
        ys, xs = slice(16 * by, 16 * by + 16), slice(16 * bx, 16 * bx + 16)
        for t in range(1, 3):
            assert torch.equal(scene.frames[t][:, ys, xs], scene.frames[0][:, ys, xs])
    for t in range(3):  # and the JPEG did change the frames
        changed += int((scene.frames[t] != bg).any())
    assert changed == 3
