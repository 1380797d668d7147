"""`memderain extract-frames`: sampling into the scene layout, alignment, refusing a moving
camera."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from memderain.cli import main
from memderain.data.static_clip import ClipError, phase_correlation
from memderain.data.timelapse import TimeLapseDataset
from memderain.data.video_frames import extract_frames
from memderain.errors import MemderainError
from video_helpers import encode_video

H, W = 72, 96


def scenery(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A textured background larger than the frame so a camera can pan over it."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(20, 200, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    img = Image.fromarray(coarse).resize((w, h), Image.BICUBIC)
    return np.asarray(img).astype(np.int16)


def rain_frames(n: int, pan_px: float = 0.0, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    big = scenery(H, W + int(pan_px * n) + 2)
    out = []
    for i in range(n):
        x0 = round(pan_px * i)
        f = big[:, x0:x0 + W].copy()
        for _ in range(25):  # bright vertical streaks at new places every frame
            y, x = rng.integers(0, H - 8), rng.integers(0, W)
            f[y:y + 8, x] += 80
        out.append(np.clip(f, 0, 255).astype(np.uint8))
    return out


def write_video(path: Path, frames: list[np.ndarray]) -> Path:
    return encode_video(path, frames, "libx264", "yuv444p", rate=10, options={"crf": "8"})


def test_static_video_every_and_count(tmp_path):
    frames = rain_frames(20)
    video = write_video(tmp_path / "street.mp4", frames)
    res = extract_frames(video, tmp_path / "tl", every=4)
    assert res.frames == 5 and res.total_frames == 20 and res.max_shift_px == 0
    assert res.scene_dir == tmp_path / "tl" / "street" and res.size == (H, W)
    names = sorted(p.name for p in res.scene_dir.iterdir())
    assert names == ["_clip"] + [f"t{i:03d}.png" for i in range(5)]
    assert sorted(p.name for p in (res.scene_dir / "_clip").iterdir()) == [
        "clip.json", "median.png", "static.png"]
    assert res.static_fraction > 0.9
    # frame t001 is source frame 4 (lossy codec: close, and closer than any other frame)
    got = np.asarray(Image.open(res.scene_dir / "t001.png")).astype(float)
    errs = [np.abs(got - f).mean() for f in frames]
    assert int(np.argmin(errs)) == 4 and errs[4] < 6

    res = extract_frames(video, tmp_path / "tl", count=6, scene="evenly")
    assert res.frames == 6
    got = [np.asarray(Image.open(res.scene_dir / f"t{i:03d}.png")).astype(float)
           for i in range(6)]
    picked = [int(np.argmin([np.abs(g - f).mean() for f in frames])) for g in got]
    assert picked == list(np.linspace(0, 19, 6).round().astype(int))
    ds = TimeLapseDataset(tmp_path / "tl", crop_size=32)
    assert sorted(s.name for s in ds.scenes) == ["evenly", "street"]


def test_panning_video_is_refused_and_a_small_pan_aligned(tmp_path, capsys):
    video = write_video(tmp_path / "pan.mp4", rain_frames(12, pan_px=2.0))
    with pytest.raises(ClipError, match=r"the camera moves: frame_0000\d\d is shifted"):
        extract_frames(video, tmp_path / "tl", count=6, stabilise="off")
    assert not (tmp_path / "tl" / "pan").exists()
    assert main(["extract-frames", str(video), str(tmp_path / "cli"), "--every", "2",
                 "--stabilise", "off"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the camera moves" in err and "--max-shift" in err
    # within a raised bound the pan (~22 px) is aligned away: frames cropped to the overlap
    res = extract_frames(video, tmp_path / "tl", count=6, max_shift=30)
    assert res.max_shift_px >= 15 and res.size[1] <= W - 15
    a = np.asarray(Image.open(res.scene_dir / "t000.png")).astype(float)
    b = np.asarray(Image.open(res.scene_dir / "t005.png")).astype(float)
    assert np.median(np.abs(a - b)) < 6  # same scene content after alignment


def test_phase_correlation_recovers_translation():
    a = scenery(64, 80).mean(-1).astype(np.float32) / 255
    b = np.roll(a, (3, -5), axis=(0, 1))
    assert phase_correlation(a, b) == (3, -5)


def test_errors_and_overwrite(tmp_path, capsys):
    video = write_video(tmp_path / "v.mp4", rain_frames(6))
    assert main(["extract-frames", str(video), str(tmp_path / "tl"), "--count", "3"]) == 0
    assert "wrote 3 of 6 frames" in capsys.readouterr().out
    assert main(["extract-frames", str(video), str(tmp_path / "tl"), "--count", "3"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["extract-frames", str(video), str(tmp_path / "tl"), "--count", "4",
                 "--overwrite"]) == 0
    assert len(list((tmp_path / "tl" / "v").glob("t*.png"))) == 4
    assert main(["extract-frames", str(video), str(tmp_path / "tl2"), "--count", "2"]) == 1
    assert "at least 3" in capsys.readouterr().err
    assert main(["extract-frames", str(tmp_path / "none.mp4"), str(tmp_path / "x")]) == 1
    assert "not found" in capsys.readouterr().err
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all")
    assert main(["extract-frames", str(tmp_path / "junk.mp4"), str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err.strip()
    assert "cannot read video" in err and len(err.splitlines()) == 1
    with pytest.raises(MemderainError, match="either"):
        extract_frames(video, tmp_path / "y", every=2, count=3)
