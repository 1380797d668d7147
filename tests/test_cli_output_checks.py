"""Issue 33: bad frames and unwritable outputs give one line, before the work, in every command
that reads frame folders or writes files (adapt, eval, train, synth, export, visualize)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from memderain.cli import main


def write_bomb_png(path: Path, side: int = 100_000) -> Path:
    """A valid 1x1 PNG whose header claims ``side`` x ``side`` pixels (CRC fixed), far over
    Pillow's decompression-bomb limit."""
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, "PNG")
    b = bytearray(buf.getvalue())
    b[16:24] = struct.pack(">II", side, side)  # IHDR width, height
    b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])))  # CRC of "IHDR" + data
    path.write_bytes(bytes(b))
    return path


@pytest.fixture
def frames(tmp_path) -> Path:
    """root/scene/t000..t003.png (32 px) plus t004.png, a decompression bomb."""
    d = tmp_path / "frames" / "scene"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 200, (32, 32, 3), dtype=np.uint8)
    for i in range(4):
        Image.fromarray(base + rng.integers(0, 50, (32, 32, 3), dtype=np.uint8)).save(
            d / f"t{i:03d}.png")
    write_bomb_png(d / "t004.png")
    return d


def one_line_error(capsys, argv) -> str:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1, err
    assert err and "Traceback" not in "\n".join(err)
    return err[-1]


def test_bomb_header_in_a_frames_folder_is_one_line_naming_it(capsys, tmp_path, frames):
    bomb = frames / "t004.png"
    with Image.open(frames / "t000.png") as im:  # the good frames really are fine
        assert im.size == (32, 32)
    with pytest.raises(Image.DecompressionBombError):  # and the bomb is one to Pillow
        Image.open(bomb)
    commands = [
        ["adapt", frames, "-o", tmp_path / "a.pt", "--steps", "1"],
        ["eval", "--clip", frames, "--baseline", "identity", "--out", tmp_path / "ev"],
        ["train", "--data", frames.parent, "--out", tmp_path / "tr", "--set", "train.steps=1"],
        ["synth", frames, tmp_path / "sy", "--frames", "2"],
    ]
    for argv in commands:
        line = one_line_error(capsys, argv)
        assert str(bomb) in line, (argv[0], line)
        assert "decompression bomb" in line, line
    assert not (tmp_path / "a.pt").exists()
