"""Video de-raining with PyAV: decode, de-rain in batches, encode, frame by frame, overlapped.

The method is single-image (paper Sec. IV-D runs it per frame on video); nothing is shared
between frames. Memory stays constant whatever the length: at most ``batch_size`` decoded
frames plus the encoder's look-ahead are held. The output keeps the size, the frame rate and
the timestamps of the input; the first audio stream is copied packet by packet when the
output container can hold its codec, else re-encoded (AAC / Opus), else dropped with a note.
The output is written to a temporary file beside ``dst`` and renamed at the end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from memderain.atomicfile import atomic_output
from memderain.choices import VIDEO_EXTENSIONS
from memderain.errors import MemderainError

# Audio codecs each container can take as-is; others are re-encoded to the fallback codec.
_COPYABLE_AUDIO = {
    ".mp4": {"aac", "mp3", "ac3", "eac3", "opus", "flac", "alac"},
    ".m4v": {"aac", "mp3", "ac3", "eac3", "alac"},
    ".webm": {"opus", "vorbis"},
    ".avi": {"mp3", "ac3", "pcm_s16le", "pcm_u8", "aac"},
}
_AUDIO_FALLBACK = {".webm": "libopus"}  # everything else: "aac"
_VIDEO_CODEC = {".webm": "libvpx-vp9", ".avi": "mpeg4"}  # everything else: "libx264"


class VideoError(MemderainError):
    """A video cannot be read or written."""


@dataclass
class VideoResult:
    path: Path
    frames: int
    fps: Fraction
    width: int
    height: int
    audio: str  # "none", "copied", "re-encoded (CODEC)" or "dropped (REASON)"
    seconds: float


def is_video_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _open_input(src: Path):
    import av

    if not src.is_file():
        raise VideoError(f"video not found: {src}")
    try:
        container = av.open(str(src))
    except av.error.FFmpegError as exc:
        raise VideoError(f"{src}: not a readable video ({exc.__class__.__name__})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{src}: has no video stream")
    return container


def iter_frames(path: str | Path) -> Iterator[np.ndarray]:
    """uint8 HxWx3 RGB frames of a video file, one at a time (constant memory)."""
    import av

    container = _open_input(Path(path))
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24")
    except av.error.FFmpegError as exc:
        raise VideoError(f"{path}: decoding failed ({exc})") from None
    finally:
        container.close()


def _frame_rate(stream) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate:
        raise VideoError("cannot tell the frame rate of the input video")
    return Fraction(rate)


def _add_video_stream(out, suffix: str, vin, rate: Fraction, codec: str | None, crf: int):
    width, height = vin.codec_context.width, vin.codec_context.height
    codec = codec or _VIDEO_CODEC.get(suffix, "libx264")
    stream = out.add_stream(codec, rate=rate)
    stream.width, stream.height = width, height
    even = width % 2 == 0 and height % 2 == 0
    stream.pix_fmt = "yuv420p" if even or codec == "mpeg4" else "yuv444p"
    if codec == "libx264":
        stream.options = {"crf": str(crf), "preset": "medium"}
    elif codec == "libvpx-vp9":
        stream.options = {"crf": str(crf + 13), "b": "0"}
    else:
        stream.bit_rate = max(1_000_000, width * height * 8)
    # Keep the input's timestamps (variable frame rate survives), except in AVI, whose
    # time base is the frame period: there frames are renumbered 0, 1, 2...
    stream.time_base = Fraction(1) / rate if suffix == ".avi" else (vin.time_base or Fraction(1) / rate)
    stream.codec_context.time_base = stream.time_base
    return stream


class _Audio:
    """Copies (or re-encodes) the first audio stream of the input into the output."""

    def __init__(self, out, suffix: str, ain) -> None:
        import av

        self.ain, self.mode, self.encoder, self.aout = ain, "none", None, None
        if ain is None:
            return
        name = ain.codec_context.name
        copyable = _COPYABLE_AUDIO.get(suffix)
        try:
            if copyable is None or name in copyable:
                self.aout = out.add_stream_from_template(ain)
                self.mode = "copied"
            else:
                codec = _AUDIO_FALLBACK.get(suffix, "aac")
                rate = ain.codec_context.sample_rate or 48000
                if codec == "libopus" and rate not in (8000, 12000, 16000, 24000, 48000):
                    rate = 48000
                channels = ain.codec_context.channels or 2
                layout = {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")  # named order
                self.aout = out.add_stream(codec, rate=rate, layout=layout)
                self.aout.codec_context.format = av.Codec(codec, "w").audio_formats[0]
                self.mode = f"re-encoded ({name} -> {codec})"
        except (av.error.FFmpegError, ValueError) as exc:
            self.aout, self.mode = None, f"dropped ({exc.__class__.__name__})"

    @property
    def transcode(self) -> bool:
        return self.mode.startswith("re-encoded")

    def handle(self, out, packet) -> None:
        if self.aout is None:
            return
        if not self.transcode:
            if packet.dts is None:  # flush packet of the demuxer
                return
            packet.stream = self.aout
            out.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None  # let the encoder's FIFO re-time the resampled audio
            out.mux(self.aout.encode(frame))

    def flush(self, out) -> None:
        if self.aout is not None and self.transcode:
            out.mux(self.aout.encode(None))


def _derain_batch(derainer: Any, frames: list, tile: int | None) -> list[np.ndarray]:
    """RGB uint8 frames -> de-rained RGB uint8 frames, one at a time through
    ``Derainer.derain_uint8`` (above the whole-image limit in tiles of at most
    ``VIDEO_TILE_PIXELS``; a batched forward was no faster on CPU and held the activations of
    every frame at once)."""
    from memderain.inference.predictor import VIDEO_TILE_PIXELS

    return [derainer.derain_uint8(np.ascontiguousarray(f), tile, tile_pixels=VIDEO_TILE_PIXELS)
            for f in frames]


def derain_video(
    derainer: Any,
    src: str | Path,
    dst: str | Path,
    *,
    batch_size: int = 4,
    tile: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    codec: str | None = None,
    crf: int = 18,
    max_frames: int | None = None,
) -> VideoResult:
    """De-rain every frame of ``src`` into ``dst`` (a :class:`Derainer` does each batch).

    ``codec`` defaults to H.264 (libx264, CRF ``crf``) for .mp4/.mov/.mkv, VP9 for .webm and
    MPEG-4 Part 2 for .avi. ``max_frames`` stops early (for previews).
    """
    import av
    from tqdm import tqdm

    src, dst = Path(src), Path(dst)
    if batch_size < 1:
        raise VideoError("--batch-size must be >= 1")
    if dst.suffix.lower() not in VIDEO_EXTENSIONS:
        raise VideoError(f"{dst}: output must end in one of {', '.join(VIDEO_EXTENSIONS)}")
    if dst.resolve() == src.resolve():
        raise VideoError(f"{dst}: output would overwrite the input")
    start = time.perf_counter()
    inp = _open_input(src)
    try:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        ain = inp.streams.audio[0] if inp.streams.audio else None
        rate = _frame_rate(vin)
        total = vin.frames or None
        if max_frames:
            total = min(total, max_frames) if total else max_frames
        with atomic_output(dst, overwrite) as tmp:
            try:
                out = av.open(str(tmp), mode="w")
            except (av.error.FFmpegError, OSError) as exc:  # name dst, not the temporary file
                raise VideoError(f"{dst}: cannot write ({exc.__class__.__name__})") from None
            try:
                vout = _add_video_stream(out, dst.suffix.lower(), vin, rate, codec, crf)
                audio = _Audio(out, dst.suffix.lower(), ain)
                bar = tqdm(total=total, unit="frame", desc=src.name,
                           disable=None if progress else True)  # None: off when not a TTY
                renumber = dst.suffix.lower() == ".avi"
                pending: list = []  # decoded frames waiting for a batch: (pts, time_base, rgb)
                count = 0
                # decode, de-rain and encode overlap: one worker thread runs the network on
                # batch k while this thread encodes batch k-1 and decodes batch k+1 (FFmpeg,
                # torch and OpenVINO release the GIL); order is kept, one batch in flight
                inflight: tuple | None = None

                def encode(job: tuple) -> None:
                    nonlocal count
                    future, batch = job
                    outs = future.result()
                    for i, ((pts, tb, _), rgb) in enumerate(zip(batch, outs)):
                        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                        frame = frame.reformat(format=vout.pix_fmt)
                        if renumber:
                            pts, tb = count + i, vout.time_base
                        frame.pts, frame.time_base = pts, tb
                        out.mux(vout.encode(frame))
                    count += len(batch)
                    bar.update(len(batch))

                def flush_batch() -> None:
                    nonlocal inflight, pending
                    job = (pool.submit(_derain_batch, derainer, [p[2] for p in pending], tile),
                           pending)
                    pending = []
                    if inflight is not None:
                        encode(inflight)
                    inflight = job

                streams = [vin] + ([ain] if audio.aout is not None else [])
                done = False
                decoded = 0
                with ThreadPoolExecutor(max_workers=1,
                                        thread_name_prefix="memderain-derain") as pool:
                    for packet in inp.demux(streams):
                        if packet.stream.type == "audio":
                            audio.handle(out, packet)
                            continue
                        for frame in packet.decode():
                            pts = frame.pts if frame.pts is not None else decoded
                            tb = frame.time_base or Fraction(1) / rate
                            pending.append((pts, tb, frame.to_ndarray(format="rgb24")))
                            decoded += 1
                            if len(pending) >= batch_size:
                                flush_batch()
                            if max_frames and decoded >= max_frames:
                                done = True
                                break
                        if done:
                            break
                    if pending:
                        flush_batch()
                    if inflight is not None:
                        encode(inflight)
                out.mux(vout.encode(None))
                audio.flush(out)
                bar.close()
            except av.error.FFmpegError as exc:
                raise VideoError(f"{dst}: encoding failed ({exc})") from None
            finally:
                out.close()
            if count == 0:
                raise VideoError(f"{src}: no frames could be decoded")
        w, h = vin.codec_context.width, vin.codec_context.height
    finally:
        inp.close()
    return VideoResult(dst, count, rate, w, h, audio.mode, time.perf_counter() - start)
