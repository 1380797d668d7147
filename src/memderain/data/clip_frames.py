"""Reading the frames of a clip: a folder of frame images (natural order) or a video file
(PyAV), evenly sampled and downsized. The one home of clip and frame reading:
:mod:`memderain.data.static_clip` (alignment, median, masks), :mod:`memderain.data.video_frames`
(``memderain extract-frames``) and :mod:`memderain.evaluation.video` build on it; it imports
none of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from memderain.errors import MemderainError

MIN_FRAMES = 3
DEFAULT_MAX_FRAMES = 60


class ClipError(MemderainError):
    """A clip cannot be used as a static scene (too short, camera moves, mixed sizes...)."""


def natural_key(path: Path) -> list:
    """Sort key: f2.png before f10.png."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def frame_files(folder: Path) -> list[Path]:
    """Image files of a frame folder in natural order."""
    from memderain.data.scenes import list_images

    return sorted(list_images(folder), key=natural_key)


def open_video(video: Path):
    """An open PyAV container of ``video`` with a video stream (one-line errors otherwise)."""
    import av

    if not video.is_file():
        raise MemderainError(f"video not found: {video}")
    try:
        container = av.open(str(video))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise MemderainError(f"cannot read video {video}: {exc}") from exc
    if not container.streams.video:
        container.close()
        raise MemderainError(f"{video} has no video stream")
    return container


def count_frames(video: str | Path) -> int:
    """Number of video frames (from the container, else by counting packets)."""
    import av

    with open_video(Path(video)) as c:
        stream = c.streams.video[0]
        if stream.frames and stream.frames > 0:
            return int(stream.frames)
        try:
            return sum(1 for p in c.demux(stream) if p.size)
        except av.FFmpegError as exc:
            raise MemderainError(f"cannot read video {video}: {exc}") from exc


def iter_frames(video: str | Path, upright: bool = False):
    """Yield (index, uint8 HxWx3 RGB) of every decoded frame. ``upright``: turn each frame by
    the container's display rotation (a phone video stored sideways), as a player shows it;
    off by default, so frames keep their stored size (what the video writer expects)."""
    import av

    with open_video(Path(video)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for i, frame in enumerate(c.decode(stream)):
                rgb = frame.to_ndarray(format="rgb24")
                turn = round((getattr(frame, "rotation", 0) or 0) / 90) % 4 if upright else 0
                yield i, np.ascontiguousarray(np.rot90(rgb, turn)) if turn else rgb
        except av.FFmpegError as exc:
            raise MemderainError(f"cannot decode video {video}: {exc}") from exc


# ----------------------------------------------------------------------------- lossless?
# frame files and video codecs that store every pixel as it was (no quantised transform, no
# chroma subsampling); anything else (JPEG, H.264, ...) counts as compressed
LOSSLESS_SUFFIXES = frozenset({".png", ".tif", ".tiff", ".bmp", ".ppm", ".pgm", ".pnm"})
LOSSLESS_CODECS = frozenset({"ffv1", "png", "apng", "rawvideo", "huffyuv", "ffvhuff", "utvideo",
                             "magicyuv", "qtrle", "tiff", "bmp"})
_SUBSAMPLED = ("420", "422", "411", "410", "440")


SIDECAR = "_clip"  # sub-folder of an extracted scene (memderain extract-frames): clip.json
# a frame whose colour went through 4:2:0 / 4:2:2 (any video codec's usual format) and back
# shows it: its colour differences alternate every other pixel. Measured (median over Cb/Cr
# and both axes of the larger of the even/odd energy ratios of first and second differences):
# decoded H.264 frames 31-121, PNG frames of the rendered-truth clips 1.0-5.9
SUBSAMPLED_RATIO = 10.0


def colour_subsampled(frames: list[np.ndarray] | np.ndarray, count: int = 3) -> bool:
    """Whether the frames' colour was stored at half resolution (4:2:0 / 4:2:2) and
    upsampled again: PNG frames decoded from a video keep its codec's losses."""
    ratios = []
    for f in list(frames)[:count]:
        f = np.asarray(f, np.float64)
        if f.ndim != 3 or min(f.shape[:2]) < 8:
            continue
        cb = -0.168736 * f[..., 0] - 0.331264 * f[..., 1] + 0.5 * f[..., 2]
        cr = 0.5 * f[..., 0] - 0.418688 * f[..., 1] - 0.081312 * f[..., 2]
        for c in (cb, cr):
            for axis in (0, 1):
                per_axis = []
                for n in (1, 2):
                    d = np.square(np.diff(c, n=n, axis=axis))
                    even = float(np.take(d, range(0, d.shape[axis], 2), axis=axis).mean())
                    odd = float(np.take(d, range(1, d.shape[axis], 2), axis=axis).mean())
                    lo, hi = sorted((even, odd))
                    per_axis.append(hi / max(lo, 1e-9) if hi > 1e-6 else 1.0)
                ratios.append(max(per_axis))
    return bool(ratios) and float(np.median(ratios)) > SUBSAMPLED_RATIO


# a frame decoded from a JPEG (and saved again without loss, at its size) keeps the JPEG's
# quantised DCT: on the 8x8 grid from the top-left corner its luma coefficients sit on integer
# multiples of the quantisation steps. Score: the median over the 63 AC coefficients of the
# best step's mean cos(2 pi c / step), zero bin left out. Measured: never-compressed and
# resized frames -0.01-0.07; JPEG quality 80-95 0.90-0.98 on photos, 0.51-0.89 on smooth
# synthetic frames; camera and web JPEGs (their own tables, quality about 80-95) 0.89-0.98;
# quality 98 0.52-0.58 on photos, 0.07 on smooth frames. Counting a frame as compressed is
# the safe side: on the rendered yard clip `motion` ranked the methods as the truth did at
# every JPEG quality tried (80, 90, 95, 98), `strict` only at 98
DCT_QUANTISED_SCORE = 0.25
_AC = [(u, v) for u in range(8) for v in range(8) if u or v]
_STEPS = np.arange(2, 41, dtype=np.float64)  # quantisation tables hold integer steps


def dct_quantisation(frames: list[np.ndarray] | np.ndarray) -> float:
    """How strongly the 8x8 luma DCT coefficients (JPEG's grid and transform) of one frame, or
    of several pooled, sit on multiples of one step each: about 0 for frames never
    JPEG-compressed, 0.5 and more for frames decoded from a JPEG of quality 95 or less
    (:data:`DCT_QUANTISED_SCORE`); 0 when too few blocks carry a coefficient to tell (under
    200, about 3 frames of 64x64)."""
    from scipy.fft import dctn

    if isinstance(frames, np.ndarray) and frames.ndim in (2, 3):
        frames = [frames]
    pooled = []
    for f in frames:
        f = np.asarray(f, np.float64)
        if f.ndim == 3:
            f = f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114  # JFIF's luma
        h, w = f.shape[0] // 8 * 8, f.shape[1] // 8 * 8
        if h and w:
            blocks = (f[:h, :w] - 128.0).reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3)
            blocks = blocks.reshape(-1, 8, 8)
            blocks = blocks[::max(1, len(blocks) // 4000)]  # plenty to tell, and fast at 4K
            pooled.append(dctn(blocks, axes=(1, 2), norm="ortho"))  # JPEG's scaling
    if not pooled:
        return 0.0
    coefficients = np.concatenate(pooled)
    scores = []
    for u, v in _AC:
        c = coefficients[:, u, v]
        off_zero = np.abs(c)[:, None] > _STEPS / 2  # flat blocks sit in the zero bin
        counts = off_zero.sum(axis=0)
        # the best of 39 steps of a mean of N cosines reaches about 1.9 / sqrt(N) by chance
        if counts.max() >= 200:
            cosines = np.where(off_zero, np.cos(2 * np.pi * c[:, None] / _STEPS), 0.0)
            means = cosines.sum(axis=0) / np.maximum(counts, 1)
            scores.append(float(means[counts >= 200].max()))
    return float(np.median(scores)) if scores else 0.0


def decoded_from_lossy(frames: list[np.ndarray] | np.ndarray, count: int = 3) -> bool:
    """Whether frames stored without loss went through a lossy codec before: colour at half
    resolution (:func:`colour_subsampled`, any video codec) or JPEG's quantised DCT
    (:func:`dct_quantisation`), judged on the first ``count`` frames."""
    first = list(frames)[:count]
    return colour_subsampled(first, count) or dct_quantisation(first) > DCT_QUANTISED_SCORE


def lossless_frames(source: str | Path, names: list[str] | None = None) -> bool:
    """Whether the frames of a clip were stored without loss: a folder of PNG / TIFF / BMP /
    PNM frames (``names``: the frame files read, default all of the folder) that show no
    earlier lossy codec (the first three files are read: :func:`decoded_from_lossy`) and that
    were not extracted from a compressed source (``_clip/clip.json`` of ``memderain
    extract-frames`` says so), or a video whose codec is lossless (FFV1, PNG, raw, ...) with
    full-resolution colour and no earlier codec's traces. False for JPEG frames, H.264 and
    every other lossy codec, and whenever it cannot be told (the clip score then keeps its
    compression-safe reference: :mod:`memderain.evaluation.clip_mask`)."""
    source = Path(source)
    if source.is_dir():
        sidecar = source / SIDECAR / "clip.json"
        if sidecar.is_file():
            try:
                if json.loads(sidecar.read_text()).get("lossless") is not True:
                    return False  # extracted from a compressed (or unknown) source
            except (OSError, ValueError):
                return False
        files = names if names is not None else [f.name for f in frame_files(source)]
        if not files or any(Path(n).suffix.lower() not in LOSSLESS_SUFFIXES for n in files):
            return False
        from memderain.data.transforms import read_rgb

        try:
            return not decoded_from_lossy([read_rgb(source / n) for n in files[:3]])
        except (OSError, ValueError, MemderainError):
            return False
    if not source.is_file():
        return False
    try:
        with open_video(source) as c:
            ctx = c.streams.video[0].codec_context
            fmt = ctx.pix_fmt or ""
            if ctx.name not in LOSSLESS_CODECS or any(k in fmt for k in _SUBSAMPLED):
                return False
        # a lossless codec keeps what a lossy one lost before it (frames of an H.264 clip or
        # JPEGs re-encoded): half-resolution colour, or JPEG's quantised DCT
        first = []
        for _, rgb in iter_frames(source):
            first.append(rgb)
            if len(first) == 3:
                break
        return not decoded_from_lossy(first)
    except MemderainError:
        return False


# ----------------------------------------------------------------------------- reading
def read_clip_frames(source: str | Path, max_frames: int | None = DEFAULT_MAX_FRAMES,
                     max_side: int | None = None, every: int | None = None,
                     progress: Callable | None = None, upright: bool = False
                     ) -> tuple[list[np.ndarray], list[str], list[int]]:
    """Up to ``max_frames`` evenly spaced uint8 RGB frames of a video file or frame folder
    (or, with ``every=N``, frames 0, N, 2N, ...), downsized (antialiased bicubic) to at most
    ``max_side`` pixels on the longer side. ``progress(iterable, total)`` may wrap the reading;
    ``upright`` turns video frames by the container's display rotation (rain falls down).

    Returns (frames, names, indices in the source). Raises :class:`ClipError` for fewer than
    :data:`MIN_FRAMES` frames or frames of different sizes.
    """
    from memderain.data.transforms import read_rgb

    source = Path(source)
    if max_frames is not None and max_frames < MIN_FRAMES:
        raise ClipError(f"a static-camera clip needs at least {MIN_FRAMES} frames (the temporal "
                        f"median of fewer is no background); asked for {max_frames}")
    if source.is_dir():
        files = frame_files(source)
        picks = _pick(len(files), max_frames, every)
        frames = [_fit(read_rgb(files[i]), max_side)
                  for i in (progress(picks, len(picks)) if progress is not None else picks)]
        names = [files[i].name for i in picks]
    elif source.is_file():
        total = count_frames(source)
        wanted = set(_pick(total, max_frames, every))
        frames, names, picks = [], [], []
        decoded = iter_frames(source, upright)
        for i, rgb in (progress(decoded, total) if progress is not None else decoded):
            if i in wanted:
                frames.append(_fit(rgb, max_side))
                names.append(f"frame_{i:06d}")
                picks.append(i)
    else:
        raise ClipError(f"clip not found: {source} (expected a video file or a folder of frames)")
    if len(frames) < MIN_FRAMES:
        raise ClipError(f"{source}: {len(frames)} frame(s); a static-camera clip needs at least "
                        f"{MIN_FRAMES} (the temporal median of fewer is no background)")
    sizes = sorted({f.shape[:2] for f in frames})
    if len(sizes) > 1:
        raise ClipError(f"{source}: frames of different sizes {sizes[:3]}; frames of one static "
                        "camera share one size")
    return frames, names, list(picks)


def _fit(rgb: np.ndarray, max_side: int | None) -> np.ndarray:
    h, w = rgb.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return rgb
    from PIL import Image

    s = max_side / max(h, w)
    img = Image.fromarray(rgb).resize((max(1, round(w * s)), max(1, round(h * s))),
                                      Image.Resampling.BICUBIC)
    return np.asarray(img)


def _pick(total: int, count: int | None, every: int | None = None) -> list[int]:
    if every is not None:
        return list(range(0, total, every))[:count] if count else list(range(0, total, every))
    if count is None or total <= count:
        return list(range(total))
    return sorted(set(np.linspace(0, total - 1, count).round().astype(int).tolist()))
