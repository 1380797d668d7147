"""`memderain synth`: layout, determinism, overwrite rules, YAML rain, parallel workers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from memderain.cli import main
from memderain.data.timelapse import TimeLapseDataset
from memderain.version import __version__


@pytest.fixture
def clean_dir(tmp_path) -> Path:
    d = tmp_path / "clean_in"
    d.mkdir()
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:40, 0:56]
    smooth = np.stack([x * 4, y * 5, (x + y) * 2], -1).astype(np.uint8)
    Image.fromarray(smooth).save(d / "a_smooth.png")
    Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(d / "b_noise.png")
    Image.fromarray(rng.integers(60, 200, (100, 80, 3), dtype=np.uint8)).save(d / "c_big.jpg",
                                                                               quality=95)
    return d


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def synth(clean, out, *extra) -> int:
    return main(["synth", str(clean), str(out), "--frames", "3", "--max-side", "64", *extra])


def test_layout_and_manifest(clean_dir, tmp_path):
    out = tmp_path / "out"
    assert synth(clean_dir, out, "--seed", "5") == 0
    scenes = ["a_smooth", "b_noise", "c_big"]
    assert sorted(p.name for p in (out / "frames").iterdir()) == scenes
    assert sorted(p.name for p in (out / "clean").iterdir()) == [f"{s}.png" for s in scenes]
    for s in scenes:
        frames = sorted(p.name for p in (out / "frames" / s).iterdir())
        assert frames == ["t000.png", "t001.png", "t002.png"]
        clean = Image.open(out / "clean" / f"{s}.png")
        assert max(clean.size) <= 64
        assert all(Image.open(out / "frames" / s / f).size == clean.size for f in frames)
    assert Image.open(out / "clean" / "c_big.png").size == (51, 64)  # 80x100 -> longer side 64
    # unresized scenes keep the photo exactly as the clean target
    np.testing.assert_array_equal(np.asarray(Image.open(out / "clean" / "b_noise.png")),
                                  np.asarray(Image.open(clean_dir / "b_noise.png")))
    m = json.loads((out / "synth.json").read_text())
    assert m["seed"] == 5 and m["frames"] == 3 and m["memderain_version"] == __version__
    assert m["rain"] == "mixed" and m["rain_config"]["blend"] == "screen"
    assert sorted(m["scenes"]) == scenes and m["scenes"]["c_big"]["size"] == [64, 51]
    # OUT/frames is a training root
    ds = TimeLapseDataset(out / "frames", crop_size=32)
    assert len(ds) == 3 * 3 and ds[0]["w"].shape == (3, 32, 32)


def test_deterministic_for_seed_and_independent_of_limit_and_workers(clean_dir, tmp_path):
    assert synth(clean_dir, tmp_path / "a", "--seed", "1") == 0
    assert synth(clean_dir, tmp_path / "b", "--seed", "1", "--workers", "2") == 0
    assert synth(clean_dir, tmp_path / "c", "--seed", "2") == 0
    assert synth(clean_dir, tmp_path / "d", "--seed", "1", "--limit", "1") == 0
    a, b, c, d = (files_of(tmp_path / k) for k in "abcd")
    assert a == b
    frames = [k for k in a if k.startswith("frames")]
    assert all(a[k] != c[k] for k in frames)
    assert sorted(k for k in d if k.startswith("frames")) == [
        "frames/a_smooth/t000.png", "frames/a_smooth/t001.png", "frames/a_smooth/t002.png"]
    assert all(d[k] == a[k] for k in d if k != "synth.json")


def test_refuses_nonempty_out_and_overwrite_replaces(clean_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert synth(clean_dir, out, "--limit", "2") == 0
    stale = out / "frames" / "old_scene"
    stale.mkdir()
    (stale / "t000.png").write_bytes(b"x")
    assert synth(clean_dir, out) == 1
    err = capsys.readouterr().err.strip()
    assert "--overwrite" in err and len(err.splitlines()) == 1
    assert synth(clean_dir, out, "--overwrite") == 0
    assert sorted(p.name for p in (out / "frames").iterdir()) == ["a_smooth", "b_noise", "c_big"]
    (out / "notes.txt").write_text("mine")
    assert synth(clean_dir, out, "--overwrite") == 1
    assert "did not write" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"


def test_yaml_rain_and_clean_background_kept_where_dry(clean_dir, tmp_path, capsys):
    cfg = tmp_path / "rain.yaml"
    cfg.write_text("preset: light\nhaze: [0, 0]\nillumination: 0\ndensity: [0.0002, 0.0002]\n")
    out = tmp_path / "out"
    assert synth(clean_dir, out, "--rain", str(cfg)) == 0
    m = json.loads((out / "synth.json").read_text())
    assert m["rain_config"]["density"] == [0.0002, 0.0002]
    clean = np.asarray(Image.open(out / "clean" / "b_noise.png")).astype(int)
    for t in range(3):
        frame = np.asarray(Image.open(out / "frames" / "b_noise" / f"t{t:03d}.png")).astype(int)
        assert (frame >= clean).all()  # screen blend only brightens
        same = (frame == clean).all(-1).mean()
        assert 0.2 < same < 0.98  # rain on some pixels, untouched background elsewhere
    assert synth(clean_dir, tmp_path / "bad", "--rain", "drizzle") == 1
    assert "unknown rain setting" in capsys.readouterr().err


def test_bad_inputs(tmp_path, capsys):
    assert synth(tmp_path / "nope", tmp_path / "out") == 1
    assert "not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert synth(tmp_path / "empty", tmp_path / "out") == 1
    assert "no images" in capsys.readouterr().err
