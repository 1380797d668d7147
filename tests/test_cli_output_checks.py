"""Issue 33: bad frames and unwritable outputs give one line, before the work, in every command
that reads frame folders or writes files (adapt, eval, train, synth, export, visualize)."""

from __future__ import annotations

import errno
import io
import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from memderain.checkpoint import load_checkpoint, save_checkpoint
from memderain.cli import main
from memderain.config import ModelConfig
from memderain.model import MemDerain


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
def clip(tmp_path) -> Path:
    """root/scene/t000..t003.png: four 32 px frames of one static scene."""
    d = tmp_path / "frames" / "scene"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 200, (32, 32, 3), dtype=np.uint8)
    for i in range(4):
        Image.fromarray(base + rng.integers(0, 50, (32, 32, 3), dtype=np.uint8)).save(
            d / f"t{i:03d}.png")
    return d


@pytest.fixture
def frames(clip) -> Path:
    """The clip plus t004.png, a decompression bomb: reading it is an error."""
    write_bomb_png(clip / "t004.png")
    return clip


@pytest.fixture
def tiny_ckpt(tmp_path) -> Path:
    return save_checkpoint(tmp_path / "w" / "tiny.pt", MemDerain(ModelConfig(channels=8,
                                                                             num_items=4)))


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


def test_unwritable_outputs_are_refused_before_any_work(capsys, tmp_path, frames, tiny_ckpt):
    """Each output sits below a plain file, and each input is bad too (the bomb frame, missing
    weights): the one-line error must be about the output, so it was checked first."""
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder\n")
    missing = tmp_path / "missing.pt"
    commands = {
        "adapt": (["adapt", frames, "--steps", "1", "-o"], blocker / "a.pt"),
        "eval": (["eval", "--clip", frames, "--baseline", "identity", "--out"], blocker / "ev"),
        "train": (["train", "--data", frames.parent, "--set", "train.steps=1", "--out"],
                  blocker / "run"),
        "synth": (["synth", frames], blocker / "sy"),
        "export": (["export", "--format", "onnx", "--weights", missing, "-o"],
                   blocker / "m.onnx"),
        "derain": (["derain", frames / "t000.png", "--weights", missing, "-o"],
                   blocker / "x.png"),
        "derain --adapt": (["derain", frames, "--adapt", "--steps", "1", "-o"], blocker / "o"),
    }
    for name, (argv, out) in commands.items():
        line = one_line_error(capsys, [*argv, out])
        assert str(out) in line and "cannot write there" in line, (name, line)
        assert "t004" not in line and "missing" not in line, (name, line)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "frames", "w"]


def test_eval_default_run_folder_is_checked_first(capsys, tmp_path, frames, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("runs").write_text("a file where eval would make runs/eval\n")
    line = one_line_error(capsys, ["eval", "--clip", frames, "--baseline", "identity"])
    assert "runs/eval" in line and "--out" in line and "t004" not in line, line


def _fake_read_only(monkeypatch):
    """mkstemp fails as on a read-only file system (root can write in a chmod 555 folder, so
    this cannot be set up with permissions); returns the paths it refused."""
    refused = []

    def mkstemp(suffix=None, prefix=None, dir=None, text=False):
        path = os.path.join(dir or tempfile.gettempdir(), f"{prefix or 'tmp'}abc123{suffix or ''}")
        refused.append(path)
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    return refused


def test_read_only_folder_is_one_line_naming_the_users_path(capsys, tmp_path, frames,
                                                             monkeypatch):
    refused = _fake_read_only(monkeypatch)
    out = tmp_path / "ro" / "adapted.pt"
    line = one_line_error(capsys, ["adapt", frames, "-o", out, "--steps", "1"])
    assert line.endswith(f"-o {out}: cannot write there (Read-only file system)"), line
    assert refused and ".tmp" not in line and "memderain-write-check" not in line


def test_video_output_errors_name_the_output_not_the_temporary_file(tmp_path, tiny_ckpt,
                                                                     monkeypatch):
    import memderain
    from memderain.inference.video import derain_video
    from video_helpers import make_video

    make_video(tmp_path / "clip.mp4", frames=2, width=32, height=32)
    derainer = memderain.load_model(tiny_ckpt, backend="torch")
    refused = _fake_read_only(monkeypatch)
    dst = tmp_path / "out.mp4"
    with pytest.raises(memderain.MemderainError) as info:
        derain_video(derainer, tmp_path / "clip.mp4", dst, progress=False)
    assert refused and str(info.value) == f"{dst}: cannot write (Read-only file system)"


def test_adapt_keeps_the_weights_when_the_final_save_fails(capsys, tmp_path, clip, tiny_ckpt,
                                                           monkeypatch):
    import memderain.training.adapt as adapt_module

    out = tmp_path / "adapted.pt"
    real_save = adapt_module.atomic_torch_save

    def save(obj, path):  # the folder turns read-only while the model trains
        if Path(path) == out:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_save(obj, path)

    monkeypatch.setattr(adapt_module, "atomic_torch_save", save)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmpdir"))
    (tmp_path / "tmpdir").mkdir()
    line = one_line_error(capsys, ["adapt", clip, "-o", out, "--weights", tiny_ckpt, "--steps",
                                   "1", "--crop", "16", "--batch", "1", "--device", "cpu"])
    # (torch may put its own cache folder, torchinductor_<user>, in the temporary folder too)
    kept = [p for p in (tmp_path / "tmpdir").iterdir() if not p.name.startswith("torchinductor")]
    assert len(kept) == 1 and kept[0].suffix == ".pt" and not out.exists()
    assert f"-o {out}: cannot write (Read-only file system)" in line and str(kept[0]) in line
    ckpt = load_checkpoint(kept[0])
    assert ckpt["meta"]["steps"] == 1 and ckpt["meta"]["adapt"]["frames"] == 4
    base = load_checkpoint(tiny_ckpt)["state_dict"]
    assert any(not torch.equal(v, base[k]) for k, v in ckpt["state_dict"].items())


def test_export_refuses_an_extension_of_another_format(capsys, tmp_path, tiny_ckpt):
    for fmt, name in (("onnx", "m.txt"), ("onnx", "m.pt"), ("torchscript", "m.onnx"),
                      ("torchscript", "m")):
        line = one_line_error(capsys, ["export", "--format", fmt, "--weights", tiny_ckpt,
                                       "-o", tmp_path / name])
        assert f"-o {tmp_path / name}: --format {fmt} writes a" in line, line
    assert not [p for p in tmp_path.iterdir() if p.is_file()]
    assert main(["export", "--format", "torchscript", "--weights", str(tiny_ckpt), "-o",
                 str(tmp_path / "m.ts")]) == 0
    assert torch.jit.load(str(tmp_path / "m.ts"))(torch.rand(1, 3, 8, 8)).shape == (1, 3, 8, 8)
