"""TimeLapseDataset / PseudoGTDataset on tiny frames whose pixels encode (scene, frame, y, x)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from memderain.data.pseudo_gt import PseudoGTDataset
from memderain.data.timelapse import TimeLapseDataset
from memderain.errors import MemderainError

H, W = 20, 24


def coded_frame(scene: int, t: int, h: int = H, w: int = W) -> np.ndarray:
    """R = 16*scene + t, G = row, B = column."""
    arr = np.empty((h, w, 3), np.uint8)
    arr[..., 0] = 16 * scene + t
    arr[..., 1] = np.arange(h)[:, None]
    arr[..., 2] = np.arange(w)[None, :]
    return arr


def write_scenes(root: Path, frames_per_scene: list[int], h: int = H, w: int = W) -> Path:
    for s, n in enumerate(frames_per_scene):
        d = root / f"scene{s}"
        d.mkdir(parents=True)
        for t in range(n):
            ext = "png"
            Image.fromarray(coded_frame(s, t, h, w)).save(d / f"t{t:03d}.{ext}")
    return root


def decode(x: torch.Tensor) -> np.ndarray:
    """[-1, 1] (3,h,w) -> uint8 HxWx3, exactly inverting the dataset's conversion."""
    return ((x.permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.int64)


def decode_item(x: torch.Tensor) -> tuple[int, int, int, int]:
    """(scene, frame, top, left) of a crop of a coded frame; checks it is a clean crop."""
    a = decode(x)
    code = a[..., 0]
    assert (code == code[0, 0]).all()
    top, left = int(a[0, 0, 1]), int(a[0, 0, 2])
    np.testing.assert_array_equal(a[..., 1], top + np.arange(a.shape[0])[:, None] + 0 * a[..., 1])
    np.testing.assert_array_equal(a[..., 2], left + np.arange(a.shape[1])[None, :] + 0 * a[..., 2])
    return int(code[0, 0]) // 16, int(code[0, 0]) % 16, top, left


def test_pairs_are_distinct_frames_of_one_scene_with_same_crop(tmp_path):
    ds = TimeLapseDataset(write_scenes(tmp_path, [4, 3]), crop_size=8, seed=1)
    assert len(ds) == 6 + 3
    positions = set()
    for k in range(len(ds)):
        item = ds[k]
        assert set(item) == {"w", "v", "scene"}
        for key in ("w", "v"):
            x = item[key]
            assert x.shape == (3, 8, 8) and x.dtype == torch.float32
            assert x.min() >= -1 and x.max() <= 1
        sw, tw, yw, xw = decode_item(item["w"])
        sv, tv, yv, xv = decode_item(item["v"])
        assert sw == sv and item["scene"] == f"scene{sw}"
        assert tw != tv
        assert (yw, xw) == (yv, xv)
        assert 0 <= yw <= H - 8 and 0 <= xw <= W - 8
        assert ds.pair_of(k) == (sw, tw, tv)
        positions.add((yw, xw))
    assert len(positions) > 3  # crops really move


def test_all_pairs_reachable_both_modes(tmp_path):
    root = write_scenes(tmp_path, [5])
    want = set(itertools.combinations(range(5), 2))
    ds = TimeLapseDataset(root, crop_size=8)
    got = {tuple(sorted(decode_item(ds[k][key])[1] for key in ("w", "v")))
           for k in range(len(ds))}
    assert got == want and len(ds) == len(want)
    # random-pair mode: one item per scene per epoch, every pair appears over epochs
    ds = TimeLapseDataset(root, crop_size=8, pairs_per_scene=2)
    got = set()
    for epoch in range(60):
        ds.set_epoch(epoch)
        for k in range(len(ds)):
            _, i, j = ds.pair_of(k)
            assert i != j
            got.add(tuple(sorted((i, j))))
    assert got == want
    # w is not always the earlier frame
    orders = {ds.pair_of(k)[1] < ds.pair_of(k)[2] for k in range(len(ds))
              for ds.epoch in range(10)}
    assert orders == {True, False}


def test_reproducible_and_order_independent(tmp_path):
    root = write_scenes(tmp_path, [3, 3])
    a = TimeLapseDataset(root, crop_size=8, seed=3)
    b = TimeLapseDataset(root, crop_size=8, seed=3, cache=True)
    c = TimeLapseDataset(root, crop_size=8, seed=4)
    idx = list(range(len(a)))
    items_a = [a[k] for k in idx]
    items_b = {k: b[k] for k in reversed(idx)}
    for k in idx:
        assert torch.equal(items_a[k]["w"], items_b[k]["w"])
        assert torch.equal(items_a[k]["v"], items_b[k]["v"])
    assert any(not torch.equal(items_a[k]["w"], c[k]["w"]) for k in idx)
    a.set_epoch(1)
    assert any(not torch.equal(items_a[k]["w"], a[k]["w"]) for k in idx)
    assert b.store.nbytes() == 6 * H * W * 3


def test_dataloader_workers_match_direct_indexing(tmp_path):
    ds = TimeLapseDataset(write_scenes(tmp_path, [3, 4]), crop_size=8, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, shuffle=False)
    batches = list(loader)
    w = torch.cat([b["w"] for b in batches])
    assert torch.equal(w, torch.stack([ds[k]["w"] for k in range(len(ds))]))
    assert batches[0]["scene"][0] == "scene0"


def test_small_frames_upscaled_and_resize(tmp_path):
    root = write_scenes(tmp_path, [2], h=6, w=10)
    item = TimeLapseDataset(root, crop_size=8)[0]
    assert item["w"].shape == (3, 8, 8)
    # frames stay aligned after upscaling: both frames come from identical geometry
    assert torch.equal(item["w"][1:], item["v"][1:])
    full = TimeLapseDataset(root, crop_size=None, resize=(12, 16))[0]
    assert full["w"].shape == (3, 12, 16)
    short = TimeLapseDataset(root, crop_size=None, resize=9)[0]
    assert short["w"].shape == (3, 9, 15)


def test_hflip_flips_both(tmp_path):
    ds = TimeLapseDataset(write_scenes(tmp_path, [2]), crop_size=8, hflip=True)
    flipped = 0
    for e in range(20):
        ds.set_epoch(e)
        it = ds[0]
        dw, dv = decode(it["w"])[..., 2], decode(it["v"])[..., 2]
        np.testing.assert_array_equal(dw, dv)
        flipped += int(dw[0, 0] > dw[0, -1])
    assert 0 < flipped < 20


def test_errors_and_skipped_scenes(tmp_path):
    with pytest.raises(MemderainError, match="not a folder"):
        TimeLapseDataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MemderainError, match="no scene folder"):
        TimeLapseDataset(tmp_path / "empty")
    one = write_scenes(tmp_path / "one", [1])
    with pytest.raises(MemderainError, match="no scene folder"):
        TimeLapseDataset(one)
    mixed = write_scenes(tmp_path / "mixed", [1, 3])
    with pytest.warns(UserWarning, match="skipped 1 scene"):
        ds = TimeLapseDataset(mixed, crop_size=8)
    assert [s.name for s in ds.scenes] == ["scene1"] and len(ds) == 3
    with pytest.raises(MemderainError, match="min_frames"):
        TimeLapseDataset(mixed, min_frames=1)
    bad = write_scenes(tmp_path / "sizes", [2])
    Image.fromarray(coded_frame(0, 5, 10, 10)).save(bad / "scene0" / "t005.png")
    with pytest.raises(MemderainError, match="mixes frame sizes"):
        TimeLapseDataset(bad)


def test_a_synth_root_is_refused_with_the_folder_to_use(tmp_path):
    """`memderain synth OUT` then `--data OUT`: OUT/clean (different photos) would be taken
    as one scene; the error names OUT/frames instead."""
    root = tmp_path / "x"
    write_scenes(root / "frames", [3, 3])
    clean = root / "clean"
    clean.mkdir()
    for k in range(3):
        Image.fromarray(coded_frame(k, 0)).save(clean / f"scene{k}.png")
    with pytest.raises(MemderainError, match=r"synth. output folder .*--data .*x/frames"):
        TimeLapseDataset(root)
    assert len(TimeLapseDataset(root / "frames", crop_size=8).scenes) == 2


def random_scene(folder: Path, n: int) -> np.ndarray:
    """Write ``n`` random H x W frames into ``folder`` (f0.png ...); return them."""
    frames = np.random.default_rng(0).integers(0, 256, (n, H, W, 3), dtype=np.uint8)
    folder.mkdir(parents=True)
    for t, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"f{t}.png")
    return frames


def test_pseudo_gt_is_temporal_median(tmp_path):
    frames = random_scene(tmp_path / "rand", 4)
    ds = PseudoGTDataset(tmp_path, crop_size=None)
    assert len(ds) == 4
    want = torch.median(torch.from_numpy(frames).float() / 255, dim=0).values
    for k in range(4):
        item = ds[k]
        assert set(item) == {"input", "target", "scene"} and item["scene"] == "rand"
        torch.testing.assert_close((item["target"].permute(1, 2, 0) + 1) / 2, want,
                                   atol=1e-6, rtol=0)
        np.testing.assert_array_equal(decode(item["input"]), frames[k])
    mean = PseudoGTDataset(tmp_path, crop_size=None, reducer="mean")[0]["target"]
    want_mean = torch.from_numpy(frames).float().mean(0) / 255
    assert ((mean.permute(1, 2, 0) + 1) / 2 - want_mean).abs().max() <= 0.5 / 255 + 1e-6
    with pytest.raises(MemderainError, match="reducer"):
        PseudoGTDataset(tmp_path, reducer="max")


def test_pseudo_gt_crops_aligned(tmp_path):
    ds = PseudoGTDataset(write_scenes(tmp_path, [3, 2]), crop_size=8, seed=5, cache=True)
    ds.preload()
    assert len(ds) == 5 and len(ds._targets) == 2
    for k in range(len(ds)):
        it = ds[k]
        s, _, y, x = decode_item(it["input"])
        s2, t2, y2, x2 = decode_item(it["target"])
        assert (s, y, x) == (s2, y2, x2) and it["scene"] == f"scene{s}"
        assert t2 == 1 if s == 0 else t2 == 0  # lower median of frame codes 0..T-1


def test_transforms_roundtrips_and_modes(tmp_path):
    from memderain.data import transforms as T

    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    x = T.uint8_to_tensor(arr)
    assert x.shape == (3, 5, 7) and float(x.max()) <= 1
    np.testing.assert_array_equal(T.tensor_to_uint8(x), arr)
    np.testing.assert_array_equal(T.pil_to_uint8(T.to_pil(x)), arr)
    torch.testing.assert_close(T.to_unit(T.to_signed(x)), x)
    torch.testing.assert_close(T.uint8_hwc_to_signed(arr), T.to_signed(x))
    # grey, RGBA and 16-bit inputs become uint8 RGB
    grey = Image.fromarray(arr[..., 0])
    np.testing.assert_array_equal(T.pil_to_uint8(grey), np.repeat(arr[..., :1], 3, 2))
    rgba = Image.fromarray(np.dstack([arr, arr[..., :1]]), "RGBA")
    np.testing.assert_array_equal(T.pil_to_uint8(rgba), arr)
    Image.fromarray(arr[..., 0].astype(np.uint16) * 257).save(tmp_path / "g16.png")
    np.testing.assert_array_equal(T.read_rgb(tmp_path / "g16.png")[..., 1], arr[..., 0])
    # paired crop: same window for HWC arrays and CHW tensors with the same generator
    a = T.paired_random_crop([arr, arr], 3, torch.Generator().manual_seed(1), channels_last=True)
    b = T.paired_random_crop([x], 3, torch.Generator().manual_seed(1))
    np.testing.assert_array_equal(a[0], a[1])
    np.testing.assert_array_equal(T.tensor_to_uint8(b[0]), a[0])
    with pytest.raises(MemderainError, match="larger than image"):
        T.paired_random_crop([x], 9)
    with pytest.raises(MemderainError, match="one size"):
        T.paired_random_crop([x, x[:, :4]], 3)


def _smooth_photo(seed: int, size: int = 96) -> np.ndarray:
    """A structured "photo": low-frequency random field, upsampled (no two seeds correlate)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((size, size), Image.BICUBIC))


def test_a_scene_of_different_photos_is_refused_with_the_measure(tmp_path):
    """Same-size different photos in one folder share no background: refused, with the
    measured correlation; the same photo under heavy rendered rain is one scene."""
    from memderain.data.rain import synthesize
    from memderain.data.scenes import find_scenes, shared_background

    mixed = tmp_path / "mixed" / "holiday"
    mixed.mkdir(parents=True)
    for k in range(5):
        Image.fromarray(_smooth_photo(k)).save(mixed / f"p{k}.png")
    with pytest.raises(MemderainError, match=r"holiday looks like different photos.*correlate "
                                             r"-?0\.\d\d"):
        find_scenes(tmp_path / "mixed")
    assert len(find_scenes(tmp_path / "mixed", check_background=False)) == 1

    rainy = tmp_path / "rainy" / "street"
    rainy.mkdir(parents=True)
    bg = torch.from_numpy(_smooth_photo(0).copy()).permute(2, 0, 1).float() / 255
    scene = synthesize(bg, 5, "test-heavy", torch.Generator().manual_seed(0))
    for t, f in enumerate(scene.frames):
        arr = (f.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(arr).save(rainy / f"t{t}.png")
    corr, structure = shared_background(sorted(rainy.iterdir()))
    assert corr > 0.5 and structure > 20
    assert [s.name for s in find_scenes(tmp_path / "rainy")] == ["street"]


def test_with_median_gives_each_pair_its_scene_median_cropped_alike(tmp_path):
    """with_median: the scene's temporal median, cut at the same place as both frames (with
    and without augmentation), a mask of ones and has_median 1; the MixedPairs padding keeps it."""
    from memderain.data.augment import AugmentConfig
    from memderain.data.clip_pairs import synthetic_extras

    frames = random_scene(tmp_path / "s", 5)
    med = np.median(frames, axis=0).round().astype(np.uint8)
    ds = TimeLapseDataset(tmp_path, crop_size=8, with_median=True)
    item = ds[3]
    got_w, got_med = decode(item["w"]), decode(item["median"])
    (y, x), = [(y, x) for y in range(H - 7) for x in range(W - 7)
               if any(np.array_equal(f[y:y + 8, x:x + 8], got_w) for f in frames)]
    np.testing.assert_array_equal(got_med, med[y:y + 8, x:x + 8])
    assert float(item["has_median"]) == 1.0 and item["mask"].shape == (1, 8, 8)
    assert float(synthetic_extras(item)["has_median"]) == 1.0
    plain = TimeLapseDataset(tmp_path, crop_size=8)[3]
    assert "median" not in plain and torch.equal(plain["w"], item["w"])  # same crops as before
    aug = TimeLapseDataset(tmp_path, crop_size=8, with_median=True,
                           augment=AugmentConfig(brightness=0.2))[1]
    assert aug["median"].shape == (3, 8, 8) and not torch.equal(aug["median"], aug["w"])


def test_median_quantile_takes_that_order_statistic_of_the_scene(tmp_path):
    """median_quantile 0.25 of 5 frames is each pixel's second darkest value, 0 the darkest;
    the crop is still cut where both frames were."""
    frames = random_scene(tmp_path / "s", 5)
    ordered = np.sort(frames, axis=0)
    for q, k in ((0.25, 1), (0.0, 0)):
        item = TimeLapseDataset(tmp_path, crop_size=8, with_median=True, median_quantile=q)[3]
        got_w, got_med = decode(item["w"]), decode(item["median"])
        (y, x), = [(y, x) for y in range(H - 7) for x in range(W - 7)
                   if any(np.array_equal(f[y:y + 8, x:x + 8], got_w) for f in frames)]
        np.testing.assert_array_equal(got_med, ordered[k][y:y + 8, x:x + 8])
    with pytest.raises(MemderainError, match="median_quantile"):
        TimeLapseDataset(tmp_path, crop_size=8, with_median=True, median_quantile=1.5)
