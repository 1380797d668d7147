"""Tiny test videos written with PyAV (moving gradients, optional sine-tone audio track)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def frame_image(i: int, width: int, height: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    streaks = ((xx + 3 * yy + 7 * i) % 11 == 0) * 60  # rain-like diagonal lines that move
    img = np.stack([(xx * 4 + i * 10) % 200 + streaks, (yy * 5) % 200 + streaks,
                    ((xx + yy) * 3 + i * 7) % 200 + streaks], -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def encode_video(path: Path, frames: list[np.ndarray], codec: str = "libx264",
                 pix_fmt: str = "yuv420p", rate: int = 5, options: dict | None = None) -> Path:
    """Write ``frames`` (uint8 HxWx3 RGB) as a video of ``codec`` / ``pix_fmt``; return path."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=rate)
        vs.width, vs.height, vs.pix_fmt = frames[0].shape[1], frames[0].shape[0], pix_fmt
        if options:
            vs.options = options
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            out.mux(vs.encode(vf))
        out.mux(vs.encode(None))
    return path


def make_video(path: Path, frames: int = 10, width: int = 64, height: int = 48, fps: int = 12,
               audio: str | None = None, sample_rate: int = 16000) -> list[np.ndarray]:
    """Write an H.264 video (plus an ``audio`` codec track, e.g. "aac" or "pcm_s16le");
    return the RGB frames that were encoded (before compression)."""
    images = [frame_image(i, width, height) for i in range(frames)]
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"crf": "10"}
        aus = out.add_stream(audio, rate=sample_rate, layout="mono") if audio else None
        for i, img in enumerate(images):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        if aus is not None:
            t = np.arange(int(sample_rate * frames / fps)) / sample_rate
            samples = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
            for start in range(0, len(samples), 1024):
                chunk = samples[start:start + 1024][None]
                af = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
                af.sample_rate, af.pts = sample_rate, start
                out.mux(aus.encode(af))
            out.mux(aus.encode(None))
    return images


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return []
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]
