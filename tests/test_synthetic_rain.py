"""Synthetic rain renderer: statistics, exact compositing, determinism, presets, YAML."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from memderain.config import ConfigError
from memderain.data.rain import rain_config
from memderain.data.synthetic_rain import (
    RAIN_PRESETS,
    RainConfig,
    preset_config,
    sample_params,
    streak_kernels,
    synthesize,
    with_overrides,
)

SIZE = (48, 64)
# no haze and no lighting change: the background must survive exactly where there is no rain
CLEAN = RainConfig(haze=(0.0, 0.0), illumination=0.0)


def background(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((3, *SIZE), generator=g) * 0.8 + 0.1


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_coverage_rises_monotonically_with_density():
    bg = background()
    covers, rains = [], []
    for d in (0.0005, 0.001, 0.002, 0.004, 0.008):
        cfg = with_overrides(CLEAN, density=(d, d))
        scene = synthesize(bg, 3, cfg, gen(7))
        rains.append(scene.rain)
        covers.append(float((scene.rain > 0).float().mean()))
    assert all(a < b for a, b in itertools.pairwise(covers)), covers
    assert covers[0] > 0 and covers[-1] < 1
    # same seed: denser rain only adds drops, so intensity never drops anywhere
    for lo, hi in itertools.pairwise(rains):
        assert bool((hi >= lo - 1e-6).all())


def test_background_unchanged_exactly_where_no_rain():
    bg = background(1)
    scene = synthesize(bg, 4, with_overrides(CLEAN, density=(0.002, 0.002)), gen(3))
    assert scene.frames.shape == (4, 3, *SIZE) and scene.rain.shape == (4, 1, *SIZE)
    assert scene.frames.min() >= 0 and scene.frames.max() <= 1
    dry = (scene.rain == 0).expand_as(scene.frames)
    wet = ~dry
    assert 0.05 < float(wet.float().mean()) < 0.95
    assert torch.equal(scene.frames[dry], bg[None].expand_as(scene.frames)[dry])
    # screen blend: rain only brightens, by exactly 1 - (1-B)(1-R c)
    assert bool((scene.frames[wet] > bg[None].expand_as(scene.frames)[wet]).all())
    add = synthesize(bg, 4, with_overrides(CLEAN, density=(0.002, 0.002), blend="add",
                                           tint=(0.0, 0.0)), gen(3))
    want = (bg[None] + add.rain).clamp(0, 1)
    torch.testing.assert_close(add.frames, want)


def test_seeded_determinism_and_time_variation():
    bg = background(2)
    a = synthesize(bg, 3, "mixed", gen(11))
    b = synthesize(bg, 3, "mixed", gen(11))
    c = synthesize(bg, 3, "mixed", gen(12))
    assert torch.equal(a.frames, b.frames) and torch.equal(a.rain, b.rain)
    assert not torch.equal(a.frames, c.frames)
    # each frame has its own streaks
    assert not torch.equal(a.rain[0], a.rain[1]) and not torch.equal(a.rain[1], a.rain[2])


def _moments(k: torch.Tensor) -> tuple[float, float, float]:
    """(orientation from vertical in degrees, std along, std across) of a kernel image."""
    h, w = k.shape
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                          torch.arange(w, dtype=torch.float64), indexing="ij")
    k = k.double() / k.sum()
    my, mx = (k * y).sum(), (k * x).sum()
    cyy = (k * (y - my) ** 2).sum()
    cxx = (k * (x - mx) ** 2).sum()
    cxy = (k * (x - mx) * (y - my)).sum()
    evals, evecs = torch.linalg.eigh(torch.tensor([[cyy, cxy], [cxy, cxx]]))
    vy, vx = evecs[:, 1]  # principal axis (largest eigenvalue) as (dy, dx)
    if vy < 0:
        vy, vx = -vy, -vx
    return math.degrees(math.atan2(vx, vy)), math.sqrt(evals[1]), math.sqrt(evals[0])


@pytest.mark.parametrize("deg", [-30.0, 0.0, 20.0])
def test_streak_kernel_orientation_and_length(deg):
    length, sigma = 30.0, 0.8
    k = streak_kernels(torch.tensor([math.radians(deg)]), torch.tensor([length]),
                       torch.tensor([sigma]), 41)[0]
    angle, along, across = _moments(k)
    assert abs(angle - deg) < 1.0
    # a uniform segment of length L has std L / sqrt(12); the soft ends shorten it a little
    assert 0.8 * length / math.sqrt(12) < along < 1.1 * length / math.sqrt(12)
    assert across < 1.5 * sigma + 0.3
    assert float(k.max()) == pytest.approx(1.0, abs=0.05)


def test_lengths_and_density_scale_with_image_size():
    cfg = RAIN_PRESETS["mixed"]
    small = sample_params(cfg, 2, (256, 256), gen(0))
    big = sample_params(cfg, 2, (512, 1024), gen(0))
    torch.testing.assert_close(big.length, 4 * small.length)
    torch.testing.assert_close(big.density, small.density / 16)


def test_heldout_outside_mixed_training_ranges():
    mixed, held = RAIN_PRESETS["mixed"], RAIN_PRESETS["heldout"]
    max_angle = max_len = 0.0
    min_angle = min_len = float("inf")
    for seed in range(200):
        m = sample_params(mixed, 4, (512, 512), gen(seed))
        h = sample_params(held, 4, (512, 512), gen(seed))
        on = m.density > 0
        max_angle = max(max_angle, float(m.angle[on].abs().max()))
        max_len = max(max_len, float(m.length[:, 0].max()))
        min_angle = min(min_angle, float(h.angle.abs().min()))
        min_len = min(min_len, float(h.length[:, 0].min()))
    assert min_angle > max_angle and min_len > max_len
    assert held.haze == (0.0, 0.0) and held.illumination == 0.0


def test_presets_differ_in_amount_of_rain():
    bg = background(3)
    cover = {}
    for name in ("light", "heavy"):
        cover[name] = sum(float((synthesize(bg, 2, name, gen(s)).rain > 0).float().mean())
                          for s in range(4))
    assert cover["light"] < cover["heavy"]


def test_config_from_yaml_and_validation(tmp_path):
    assert rain_config("mixed") is RAIN_PRESETS["mixed"]
    assert set(RAIN_PRESETS) >= {"light", "heavy", "mixed", "heldout"}
    f = tmp_path / "rain.yaml"
    f.write_text("preset: heavy\nangle: [5, 10]\nblend: add\n")
    cfg = rain_config(f)
    assert cfg.angle == (5, 10) and cfg.blend == "add"
    assert cfg.density == RAIN_PRESETS["heavy"].density
    f.write_text("angel: [5, 10]\n")
    with pytest.raises(ConfigError, match="angel"):
        rain_config(f)
    f.write_text("density: [0.01, 0.001]\n")
    with pytest.raises(ConfigError, match="density"):
        rain_config(f)
    with pytest.raises(ConfigError, match="unknown rain setting"):
        rain_config("drizzle")
    with pytest.raises(ConfigError, match="blend"):
        RainConfig(blend="multiply")
    with pytest.raises(ConfigError, match="not found"):
        rain_config(tmp_path / "missing.yaml")
    # the engine takes its own presets and configs only; names of v2 and files go via the front
    assert preset_config("heavy") is RAIN_PRESETS["heavy"]
    with pytest.raises(ConfigError, match="memderain.data.rain"):
        preset_config("v2")


def test_rain_engines_do_not_import_their_front():
    """data/rain.py imports the engines; an engine importing it back made a circle."""
    import ast
    from pathlib import Path

    from memderain import data

    for name in ("synthetic_rain.py", "rain_v2.py"):
        tree = ast.parse((Path(data.__file__).parent / name).read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert "memderain.data.rain" not in imported, name


def test_haze_and_illumination_change_whole_frame():
    bg = background(4)
    cfg = with_overrides(CLEAN, density=(0.0003, 0.0003), haze=(0.2, 0.2), illumination=0.0)
    scene = synthesize(bg, 2, cfg, gen(0))
    dry = (scene.rain == 0).expand_as(scene.frames)
    # the veil changes (almost) every dry pixel too
    assert float(((scene.frames - bg[None]).abs()[dry] > 1e-3).float().mean()) > 0.95
    # haze pulls contrast towards the airlight
    assert float(scene.frames[0].std()) < float(bg.std())
    cfg = with_overrides(CLEAN, density=(0.0003, 0.0003), illumination=0.2)
    scene = synthesize(bg, 4, cfg, gen(1))
    ratios = (scene.frames / bg[None])[(scene.rain == 0).expand_as(scene.frames)]
    assert float(ratios.min()) >= 0.8 - 1e-5 and float(ratios.max()) <= 1.2 + 1e-5
    assert float(ratios.max() - ratios.min()) > 0.01


def test_mixed_streaks_is_mixed_without_veil_or_lighting():
    """`mixed-streaks` (test setting): the streaks of `mixed`, so rain-free pixels stay exactly
    the clean photo, while `mixed` also changes them (haze veil, illumination)."""
    mixed, streaks = RAIN_PRESETS["mixed"], RAIN_PRESETS["mixed-streaks"]
    assert (streaks.haze, streaks.illumination) == ((0.0, 0.0), 0.0)
    for f in ("angle", "density", "length", "width", "brightness", "layers"):
        assert getattr(streaks, f) == getattr(mixed, f), f
    bg = background(2)
    scene = synthesize(bg, 3, "mixed-streaks", gen(4))
    dry = (scene.rain == 0).expand_as(scene.frames)
    assert bool(dry.any()) and torch.equal(scene.frames[dry], bg[None].expand_as(scene.frames)[dry])
    hazy = synthesize(bg, 3, with_overrides(mixed, haze=(0.1, 0.15)), gen(4))
    assert not torch.equal(hazy.frames[(hazy.rain == 0).expand_as(hazy.frames)],
                           bg[None].expand_as(hazy.frames)[(hazy.rain == 0).expand_as(hazy.frames)])


def test_heavy_streaks_is_heavy_without_veil_or_lighting():
    """`heavy-streaks` (stage-5 training): `heavy`'s streaks, rain-free pixels exactly clean."""
    heavy, streaks = RAIN_PRESETS["heavy"], RAIN_PRESETS["heavy-streaks"]
    assert (streaks.haze, streaks.illumination) == ((0.0, 0.0), 0.0)
    assert heavy.haze != (0.0, 0.0) and heavy.illumination > 0
    for f in ("angle", "density", "length", "width", "brightness", "layers"):
        assert getattr(streaks, f) == getattr(heavy, f), f
    bg = background(2)
    scene = synthesize(bg, 3, "heavy-streaks", gen(5))
    dry = (scene.rain == 0).expand_as(scene.frames)
    assert bool(dry.any()) and torch.equal(scene.frames[dry], bg[None].expand_as(scene.frames)[dry])
