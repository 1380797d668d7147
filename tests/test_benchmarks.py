"""Benchmark layout detection on tiny generated folders, pairing, and error messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from memderain.errors import MemderainError
from memderain.evaluation.benchmarks import LAYOUTS, open_benchmark, pair_key


def _img(path: Path, value: int, size=(12, 10)) -> np.ndarray:
    """Write an image whose pixels encode ``value`` (so pairing can be checked)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((size[1], size[0], 3), value, np.uint8)
    arr[0, 0] = (value, 255 - value, 7)
    Image.fromarray(arr).save(path, quality=100) if path.suffix == ".jpg" else Image.fromarray(
        arr).save(path)
    return arr


def _check_pairs(bench, expect: dict[str, tuple[int, int]]):
    """Every pair loads, and its rainy / clean pixel values are the expected ones."""
    assert {p.name for p in bench} == set(expect)
    for pair in bench:
        rainy, clean = bench.load(pair)
        assert rainy.shape == clean.shape
        got = (int(rainy[5, 5, 0]), int(clean[5, 5, 0]))
        want = expect[pair.name]
        assert abs(got[0] - want[0]) <= 2 and abs(got[1] - want[1]) <= 2, (pair.name, got, want)


def test_pair_key_strips_rain_tokens():
    assert pair_key("rain-001") == pair_key("norain-001") == "001"
    assert pair_key("12_rain") == pair_key("12_gt") == "12"
    assert pair_key("rainbow") == "rainbow"


def test_rain100_flat_and_subfolders(tmp_path):
    flat = tmp_path / "Rain100L"
    for i in (1, 2, 10):
        _img(flat / f"rain-{i:03d}.png", 100 + i)
        _img(flat / f"norain-{i:03d}.png", 10 + i)
    _img(flat / "rainstreak-001.png", 0)  # JORDER extras are ignored
    bench = open_benchmark(flat)
    assert bench.layout == "rain100"
    assert [p.name for p in bench] == ["rain-001", "rain-002", "rain-010"]
    _check_pairs(bench, {f"rain-{i:03d}": (100 + i, 10 + i) for i in (1, 2, 10)})

    sub = tmp_path / "Rain100H"
    for i in (3, 4):
        _img(sub / "rain" / f"rain-{i:03d}.png", 100 + i)
        _img(sub / "norain" / f"norain-{i:03d}.png", 10 + i)
    bench = open_benchmark(sub)
    assert bench.layout == "rain100"
    _check_pairs(bench, {f"rain-{i:03d}": (100 + i, 10 + i) for i in (3, 4)})


def test_ddn_fourteen_rainy_per_ground_truth(tmp_path):
    root = tmp_path / "Rain1400"
    for n in (901, 902):
        _img(root / "ground truth" / f"{n}.jpg", n - 880)
        for k in (1, 2, 14):
            _img(root / "rainy image" / f"{n}_{k}.jpg", 150 + k)
    bench = open_benchmark(root)
    assert bench.layout == "ddn" and len(bench) == 6
    assert [p.name for p in bench][:3] == ["901_1", "901_2", "901_14"]
    _check_pairs(bench, {f"{n}_{k}": (150 + k, n - 880) for n in (901, 902) for k in (1, 2, 14)})


def test_ddn_missing_ground_truth_is_named(tmp_path):
    root = tmp_path / "Rain1400"
    _img(root / "ground_truth" / "1.jpg", 1)
    _img(root / "rainy_image" / "1_1.jpg", 2)
    _img(root / "rainy_image" / "7_3.jpg", 2)
    with pytest.raises(MemderainError, match=r"no ground truth .*7_3\.jpg"):
        open_benchmark(root)
    assert [p.name for p in open_benchmark(root, skip_unpaired=True)] == ["1_1"]


def test_didmdn_side_by_side_left_is_rainy(tmp_path):
    root = tmp_path / "DID-MDN-test"
    for i in range(3):
        arr = np.zeros((8, 16, 3), np.uint8)
        arr[:, :8] = 200 + i  # left half: rainy
        arr[:, 8:] = 20 + i  # right half: clean
        root.mkdir(exist_ok=True)
        Image.fromarray(arr).save(root / f"{i}.png")
    bench = open_benchmark(root)
    assert bench.layout == "didmdn" and len(bench) == 3
    for pair in bench:
        rainy, clean = bench.load(pair)
        assert rainy.shape == (8, 8, 3)
        assert rainy[0, 0, 0] == 200 + int(pair.name) and clean[0, 0, 0] == 20 + int(pair.name)
    swapped = open_benchmark(root, rain_side="right")
    rainy, clean = swapped.load(swapped.pairs[0])
    assert rainy[0, 0, 0] == 20 and clean[0, 0, 0] == 200


def test_spa_folders_and_suffix_files(tmp_path):
    folders = tmp_path / "real_test_1000"
    for i in (1, 2):
        _img(folders / "rain" / f"{i}.png", 100 + i)
        _img(folders / "gt" / f"{i}.png", 10 + i)
    bench = open_benchmark(folders)
    assert bench.layout == "spa"
    _check_pairs(bench, {"1": (101, 11), "2": (102, 12)})

    flat = tmp_path / "spa_flat"
    for i in (5, 6):
        _img(flat / f"{i}_rain.png", 100 + i)
        _img(flat / f"{i}_gt.png", 10 + i)
    bench = open_benchmark(flat)
    assert bench.layout == "spa"
    _check_pairs(bench, {"5": (105, 15), "6": (106, 16)})


@pytest.mark.parametrize("rainy,clean", [("input", "target"), ("inp", "tar"), ("rainy", "clean"),
                                         ("lq", "gt")])
def test_paired_folders_match_by_name_across_extensions(tmp_path, rainy, clean):
    root = tmp_path / "Test100"
    _img(root / rainy / "a.png", 120)
    _img(root / clean / "a.jpg", 30)
    _img(root / rainy / "b.png", 121)
    _img(root / clean / "b.png", 31)
    bench = open_benchmark(root)
    assert bench.layout == "paired"
    _check_pairs(bench, {"a": (120, 30), "b": (121, 31)})


def test_paired_unpaired_files_are_reported_by_name(tmp_path):
    root = tmp_path / "broken"
    _img(root / "input" / "a.png", 1)
    _img(root / "input" / "lonely.png", 1)
    _img(root / "target" / "a.png", 1)
    _img(root / "target" / "orphan.png", 1)
    with pytest.raises(MemderainError, match="lonely.png.*orphan.png"):
        open_benchmark(root)
    assert [p.name for p in open_benchmark(root, skip_unpaired=True)] == ["a"]


def test_synth_layout_and_frame_subsampling(tmp_path):
    root = tmp_path / "synth"
    for s, scene in enumerate(("sceneA", "sceneB")):
        _img(root / "clean" / f"{scene}.png", 10 + s)
        for t in range(5):
            _img(root / "frames" / scene / f"t{t:03d}.png", 100 + 10 * s + t)
    bench = open_benchmark(root)
    assert bench.layout == "synth" and len(bench) == 10
    _check_pairs(bench, {f"scene{c}/t{t:03d}": (100 + 10 * s + t, 10 + s)
                         for s, c in enumerate("AB") for t in range(5)})
    few = open_benchmark(root, frames_per_scene=2)
    assert [p.name for p in few] == ["sceneA/t000", "sceneA/t004", "sceneB/t000", "sceneB/t004"]
    # a scene `memderain synth` is still writing (hidden temp folder) is not a scene
    _img(root / "frames" / ".sceneB.tmp" / "t000.png", 7)
    assert len(open_benchmark(root)) == 10

    _img(root / "clean" / "sceneC.png", 1)
    with pytest.raises(MemderainError, match="sceneC"):
        open_benchmark(root)


def test_unknown_layout_lists_supported_layouts_and_hints_subfolder(tmp_path):
    root = tmp_path / "nothing"
    _img(root / "photo.png", 1, size=(10, 10))
    _img(root / "inner" / "input" / "x.png", 1)
    _img(root / "inner" / "target" / "x.png", 1)
    with pytest.raises(MemderainError) as err:
        open_benchmark(root)
    msg = str(err.value)
    assert all(name in msg for name in LAYOUTS)
    assert "inner" in msg and "'paired'" in msg
    with pytest.raises(MemderainError, match="not found"):
        open_benchmark(tmp_path / "missing")
    with pytest.raises(MemderainError, match="not in the ddn layout"):
        open_benchmark(root, layout="ddn")


def test_size_mismatch_is_an_error_naming_both_files(tmp_path):
    root = tmp_path / "mismatch"
    _img(root / "input" / "a.png", 1, size=(12, 10))
    _img(root / "target" / "a.png", 1, size=(12, 11))
    bench = open_benchmark(root)
    with pytest.raises(MemderainError, match=r"input.a\.png.*target.a\.png"):
        bench.load(bench.pairs[0])
