"""benchmarks/foreign_rain.py: the independent check renderer (never imported by the package)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from memderain.evaluation.benchmarks import open_benchmark

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import foreign_rain


def _photos(folder: Path, n: int = 2) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(n):
        small = rng.integers(40, 200, (6, 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((96, 72), Image.BICUBIC).save(folder / f"p{k}.png")
    return folder


def test_sets_are_seeded_rain100_pairs_and_styles_differ(tmp_path):
    bg = _photos(tmp_path / "bg")
    assert foreign_rain.main([str(bg), str(tmp_path / "a"), "--limit", "2"]) == 0
    assert foreign_rain.main([str(bg), str(tmp_path / "b"), "--limit", "2"]) == 0
    for style in foreign_rain.STYLES:
        a, b = tmp_path / "a" / f"foreign-{style}", tmp_path / "b" / f"foreign-{style}"
        names = sorted(p.name for p in a.iterdir())
        assert names == ["norain-001.png", "norain-002.png", "rain-001.png", "rain-002.png"]
        for n in names:  # the same files on every run
            assert np.array_equal(np.asarray(Image.open(a / n)), np.asarray(Image.open(b / n)))
        bench = open_benchmark(a)  # `memderain eval --data` reads it (Rain100 layout)
        assert len(list(bench)) == 2
    light = np.asarray(Image.open(tmp_path / "a/foreign-light/rain-001.png")).astype(int)
    clean = np.asarray(Image.open(tmp_path / "a/foreign-light/norain-001.png")).astype(int)
    heavy = np.asarray(Image.open(tmp_path / "a/foreign-heavy/rain-001.png")).astype(int)
    assert (light >= clean).all() and (light > clean + 20).mean() > 0.002  # screen: adds light
    assert np.abs(heavy - clean).mean() > 3 * np.abs(light - clean).mean()


def test_refuses_training_backgrounds(tmp_path, capsys):
    bg = _photos(tmp_path / "train")
    assert foreign_rain.main([str(bg), str(tmp_path / "out")]) == 2
    assert "test" in capsys.readouterr().err
