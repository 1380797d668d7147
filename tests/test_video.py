"""Video de-raining (PyAV): frame count, rate, size, audio kept, atomic output; video eval."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import torch

import memderain
from memderain.checkpoint import save_checkpoint
from memderain.errors import MemderainError
from memderain.evaluation.metrics import psnr
from memderain.inference.predictor import VIDEO_TILE_PIXELS
from memderain.inference.video import derain_video
from memderain.model import build_model
from video_helpers import audio_packets, decode, make_video


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model(memderain.ModelConfig(channels=8, num_items=4))
    with torch.no_grad():
        model.decoder.output.bias.fill_(0.1)
    ckpt = save_checkpoint(tmp_path_factory.mktemp("video") / "tiny.pt", model)
    return ckpt, model.eval()


@pytest.fixture(scope="module")
def derainer(tiny):
    # f32: frames are compared with the PyTorch reference (bf16 is covered in test_backends)
    return memderain.load_model(tiny[0], precision="f32")


def reference(model, rgb: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        y = (model(x * 2 - 1).background + 1) / 2
    return (y[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()


class Recorder:
    """Wraps a Derainer and records the frames it is given (one call per frame)."""

    def __init__(self, inner, fail_at: int | None = None):
        self.inner, self.sizes, self.fail_at = inner, [], fail_at

    def derain_uint8(self, rgb, tile=None, tile_pixels=None):
        import threading

        self.sizes.append(rgb.shape)
        self.tile_pixels = tile_pixels
        self.threads = getattr(self, "threads", set()) | {threading.current_thread().name}
        if self.fail_at is not None and len(self.sizes) > self.fail_at:
            raise RuntimeError("simulated failure")
        return self.inner.derain_uint8(rgb, tile, tile_pixels=tile_pixels)


def test_frames_rate_size_kept_in_batches(tiny, derainer, tmp_path, monkeypatch):
    from memderain.inference import video

    src, dst = tmp_path / "rain.mp4", tmp_path / "out.mp4"
    make_video(src, frames=10, fps=12)
    rec, jobs = Recorder(derainer), []
    batch = video._derain_batch
    monkeypatch.setattr(video, "_derain_batch",
                        lambda d, frames, tile: jobs.append(len(frames)) or batch(d, frames, tile))
    res = derain_video(rec, src, dst, batch_size=4, progress=False)
    assert jobs == [4, 4, 2]  # jobs of batch_size frames for the worker thread
    assert rec.sizes == [(48, 64, 3)] * 10  # each frame through derain_uint8 on its own
    assert rec.tile_pixels == VIDEO_TILE_PIXELS  # with the video tile budget
    # the network runs beside decoding and encoding, in its own thread, frames kept in order
    assert len(rec.threads) == 1 and next(iter(rec.threads)).startswith("memderain-derain")
    assert (res.frames, res.fps, res.width, res.height, res.audio) == (10, 12, 64, 48, "none")
    with av.open(str(dst)) as c:
        v = c.streams.video[0]
        assert v.average_rate == 12 and (v.codec_context.width, v.codec_context.height) == (64, 48)
        assert not c.streams.audio
    inputs, outputs = decode(src), decode(dst)
    assert len(outputs) == 10
    for rgb_in, rgb_out in zip(inputs, outputs):  # each frame is the model's result (H.264 CRF 18)
        expected = reference(tiny[1], rgb_in)
        assert psnr(rgb_out, expected, "rgb") > 33
        assert psnr(rgb_out, expected, "rgb") > psnr(rgb_out, rgb_in, "rgb") + 5
    assert oct(dst.stat().st_mode & 0o777) != "0o600"  # normal permissions, not mkstemp's


def test_audio_is_copied_packet_for_packet(derainer, tmp_path):
    src, dst = tmp_path / "rain.mp4", tmp_path / "out.mkv"
    make_video(src, frames=6, fps=10, audio="aac")
    res = derain_video(derainer, src, dst, batch_size=3, progress=False)
    assert res.audio == "copied"
    assert audio_packets(dst) == audio_packets(src) != []
    with av.open(str(dst)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
        assert c.streams.audio[0].codec_context.sample_rate == 16000


def test_audio_reencoded_when_container_cannot_hold_it(derainer, tmp_path):
    src, dst = tmp_path / "rain.mkv", tmp_path / "out.mp4"
    make_video(src, frames=6, fps=10, audio="pcm_s16le")
    res = derain_video(derainer, src, dst, progress=False)
    assert res.audio == "re-encoded (pcm_s16le -> aac)"
    with av.open(str(dst)) as c:
        a = c.streams.audio[0]
        assert a.codec_context.name == "aac"
        seconds = sum(f.samples for f in c.decode(a)) / a.codec_context.sample_rate
    assert 0.6 <= seconds <= 0.6 + 2048 / 16000  # + AAC priming and last-frame padding
    assert len(decode(dst)) == 6


def test_output_is_atomic_and_never_overwritten(derainer, tmp_path):
    src, dst = tmp_path / "rain.mp4", tmp_path / "out.mp4"
    make_video(src, frames=5)
    dst.write_bytes(b"precious")
    with pytest.raises(MemderainError, match="--overwrite"):
        derain_video(derainer, src, dst, progress=False)
    assert dst.read_bytes() == b"precious"
    with pytest.raises(RuntimeError, match="simulated"):
        derain_video(Recorder(derainer, fail_at=1), src, dst, batch_size=2, overwrite=True,
                     progress=False)
    assert dst.read_bytes() == b"precious"  # a failed run leaves the old file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "rain.mp4"]  # no temp
    with pytest.raises(MemderainError, match="overwrite the input"):
        derain_video(derainer, src, src, overwrite=True, progress=False)
    with pytest.raises(MemderainError, match="not a readable video"):
        derain_video(derainer, tmp_path / "out.mp4", tmp_path / "x.mp4", progress=False)


def test_fraction_rate_kept(derainer, tmp_path):
    src, dst = tmp_path / "ntsc.mp4", tmp_path / "out.mp4"
    make_video(src, frames=4, fps=Fraction(30000, 1001))
    res = derain_video(derainer, src, dst, progress=False)
    with av.open(str(dst)) as c:
        assert c.streams.video[0].average_rate == Fraction(30000, 1001) == res.fps


def test_derain_cli_video(tiny, tmp_path, capsys):
    from memderain.cli import main

    src, dst = tmp_path / "rain.mp4", tmp_path / "out" / "clean.mp4"
    make_video(src, frames=5, fps=10, audio="aac")
    assert main(["derain", str(src), "-o", str(dst), "--weights", str(tiny[0]),
                 "--device", "cpu"]) == 0
    assert "5 frames, 64x48 at 10 fps, audio copied" in capsys.readouterr().err
    assert len(decode(dst)) == 5 and audio_packets(dst) == audio_packets(src)
    # a folder with a video and an image: each is written under its own name
    folder = tmp_path / "mixed"
    folder.mkdir()
    src.rename(folder / "rain.mp4")
    from PIL import Image

    Image.fromarray(decode(folder / "rain.mp4")[0]).save(folder / "still.png")
    assert main(["derain", str(folder), "-o", str(tmp_path / "res"), "--weights", str(tiny[0]),
                 "--device", "cpu"]) == 0
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == ["rain.mp4", "still.png"]
    assert len(decode(tmp_path / "res" / "rain.mp4")) == 5
