"""Render synthetic time-lapse scenes from clean photographs (``memderain synth``).

Each clean photo becomes one static scene of T rainy frames (:mod:`memderain.data.rain`, engine
v1 or v2). Layout::

    OUT/frames/<scene>/t000.png ... t{T-1}.png   rainy frames (``OUT/frames`` = training root)
    OUT/clean/<scene>.png                          the (downsized) clean background = ground truth
    OUT/synth.json                                 settings, seed, memderain version, per scene
                                                   size and rain statistics

Scene ``<scene>`` is the photo's file stem. Every scene has its own generator seeded from
(seed, CRC32 of the scene name), so a scene's frames depend only on the seed, the rain setting,
``frames`` and ``max_side`` -- not on ``--limit``, the order of files or the number of workers.
Output is byte-identical for a seed. Each scene is written to a hidden temporary folder and moved
into place when complete; ``synth.json`` is written last.
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from memderain.atomicfile import atomic_output
from memderain.config import config_to_dict
from memderain.data.rain import AnyRainConfig, engine_of, rain_config, synthesize
from memderain.data.rain_real import RealLayerParams
from memderain.data.scenes import list_images
from memderain.data.transforms import read_rgb, resize_pil, uint8_to_tensor
from memderain.errors import MemderainError
from memderain.version import __version__

PNG_COMPRESS_LEVEL = 1  # ~3x faster to write than level 6, files ~3 % larger


@dataclass(frozen=True)
class SynthOptions:
    frames: int = 8  # T rainy frames per scene
    rain: str = "mixed"  # preset name or YAML file (see memderain.data.rain.RAIN_PRESETS)
    seed: int = 0
    max_side: int | None = 512  # downsize backgrounds whose longer side exceeds this
    limit: int | None = None  # only the first N photos (sorted by name)
    overwrite: bool = False  # replace a previous `memderain synth` output in OUT
    bank: str | None = None  # rain-layer bank of engine real-layers (memderain rain-layers)


def scene_generator(seed: int, name: str) -> torch.Generator:
    """Generator of scene ``name``: independent of the other scenes and of their order."""
    state = np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]).generate_state(2)
    return torch.Generator().manual_seed((int(state[0]) << 31) ^ int(state[1]))


def load_background(path: Path, max_side: int | None) -> np.ndarray:
    """uint8 HxWx3 clean background, downsized (antialiased bicubic) to ``max_side``."""
    arr = read_rgb(path)
    h, w = arr.shape[:2]
    if max_side is not None and max(h, w) > max_side:
        s = max_side / max(h, w)
        size = (max(1, round(h * s)), max(1, round(w * s)))
        arr = np.array(resize_pil(Image.fromarray(arr), size))
    return arr


def render_scene(background: np.ndarray, frames: int, cfg: AnyRainConfig,
                 generator: torch.Generator) -> tuple[np.ndarray, dict]:
    """uint8 frames (T,H,W,3) of one scene and a small dict of its rain statistics."""
    scene = synthesize(uint8_to_tensor(background), frames, cfg, generator)
    out = scene.frames.mul(255).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
    p = scene.params
    stats: dict = {"size": list(background.shape[:2])}
    if isinstance(p, RealLayerParams):
        stats.update(clip=p.clip, first_layer=p.start, scale=round(p.scale, 3),
                     angle_deg=round(p.angle_deg, 2), flip=p.flip, gain=round(p.gain, 3))
    else:
        on = p.density[0] > 0
        stats.update(
            layers=int(p.layer[on].unique().numel()) if hasattr(p, "layer") else int(on.sum()),
            angle_deg=round(float(torch.rad2deg(p.angle[:, 0]).mean()), 2),
            length_px=round(float(p.length[:, 0].mean()), 2))
    stats |= {
        "rain_coverage": round(float((scene.rain > 0).float().mean()), 4),
        "rain_mean": round(float(scene.rain.mean()), 4),
        "psnr_rainy_vs_clean": round(_psnr(out, background), 2),
    }
    return out.numpy(), stats


def _psnr(frames: torch.Tensor, clean: np.ndarray) -> float:
    err = (frames.float() - torch.from_numpy(clean).float()).pow(2).mean()
    return float(10 * torch.log10(255.0 ** 2 / err.clamp_min(1e-10)))


def _save_png(arr: np.ndarray, path: Path) -> None:
    Image.fromarray(arr, "RGB").save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


def write_scene(out: Path, name: str, background: np.ndarray, frames: np.ndarray) -> None:
    """Write one scene: frames into a hidden temp folder, then moved into place."""
    final = out / "frames" / name
    tmp = out / "frames" / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for t, frame in enumerate(frames):
        _save_png(frame, tmp / f"t{t:03d}.png")
    with atomic_output(out / "clean" / f"{name}.png", overwrite=True) as p:
        _save_png(background, p)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def _job(args: tuple) -> tuple[str, dict]:
    path, name, out, opts, cfg = args
    torch.set_num_threads(1)  # scenes run in parallel processes; small ops hate contention
    background = load_background(path, opts.max_side)
    frames, stats = render_scene(background, opts.frames, cfg, scene_generator(opts.seed, name))
    write_scene(out, name, background, frames)
    return name, stats


def list_backgrounds(clean_dir: str | Path, limit: int | None = None) -> list[Path]:
    clean_dir = Path(clean_dir)
    if not clean_dir.is_dir():
        raise MemderainError(f"CLEAN_DIR is not a folder: {clean_dir}")
    files = list_images(clean_dir)
    if not files:
        raise MemderainError(f"no images (.png/.jpg/...) in {clean_dir}")
    stems: dict[str, Path] = {}
    for f in files:
        if f.stem in stems:
            raise MemderainError(f"{clean_dir}: {stems[f.stem].name} and {f.name} would make "
                                 f"the same scene {f.stem!r}; rename one")
        stems[f.stem] = f
    return files[:limit] if limit is not None else files


def prepare_output(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty OUT unless ``overwrite`` and OUT holds only a previous synth output,
    which is then removed (frames/, clean/, synth.json) so no stale scene survives."""
    if out.exists() and not out.is_dir():
        raise MemderainError(f"OUT exists and is not a folder: {out}")
    if not out.exists() or not any(out.iterdir()):
        out.mkdir(parents=True, exist_ok=True)
        return
    if not overwrite:
        raise MemderainError(f"OUT {out} is not empty; pass --overwrite to replace a previous "
                             "`memderain synth` output there")
    ours = {"frames", "clean", "synth.json"}
    foreign = sorted(p.name for p in out.iterdir() if p.name not in ours)
    if foreign:
        raise MemderainError(f"OUT {out} holds files that `memderain synth` did not write "
                             f"({', '.join(foreign[:3])}); refusing to overwrite, use another OUT")
    for name in ("frames", "clean"):
        shutil.rmtree(out / name, ignore_errors=True)
    (out / "synth.json").unlink(missing_ok=True)


def synthesize_folder(clean_dir: str | Path, out: str | Path, opts: SynthOptions,
                      workers: int = 1, progress: Callable | None = None) -> dict:
    """Render every photo of ``clean_dir`` into ``out`` (layout in the module docstring).

    ``progress(iterable, total)`` wraps the per-scene loop (e.g. tqdm). Returns the manifest
    written to ``out/synth.json``.
    """
    if opts.frames < 1:
        raise MemderainError(f"--frames must be >= 1, got {opts.frames}")
    if opts.max_side is not None and opts.max_side < 8:
        raise MemderainError(f"--max-side must be >= 8, got {opts.max_side}")
    if opts.limit is not None and opts.limit < 1:
        raise MemderainError(f"--limit must be >= 1, got {opts.limit}")
    cfg = rain_config(opts.rain, opts.bank)
    files = list_backgrounds(clean_dir, opts.limit)
    out = Path(out)
    prepare_output(out, opts.overwrite)
    (out / "frames").mkdir(exist_ok=True)
    (out / "clean").mkdir(exist_ok=True)
    jobs = [(f, f.stem, out, opts, cfg) for f in files]
    wrap = progress or (lambda it, total: it)
    stats: dict[str, dict] = {}
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp

        # forkserver, not fork: a process that already runs OpenVINO / oneDNN thread pools
        # (the test suite, a notebook) crashed in a forked pool; the server forks clean workers
        ctx = (mp.get_context("forkserver") if "forkserver" in mp.get_all_start_methods()
               else None)
        with (ctx or mp).Pool(min(workers, len(jobs))) as pool:
            for name, s in wrap(pool.imap_unordered(_job, jobs), len(jobs)):
                stats[name] = s
    else:
        threads = torch.get_num_threads()
        try:
            for name, s in wrap(map(_job, jobs), len(jobs)):
                stats[name] = s
        finally:
            torch.set_num_threads(threads)
    manifest = {
        "memderain_version": __version__,
        "layout": {"frames": "frames/<scene>/tNNN.png", "clean": "clean/<scene>.png"},
        "clean_dir": str(Path(clean_dir).resolve()),
        "seed": opts.seed,
        "frames": opts.frames,
        "max_side": opts.max_side,
        "rain": str(opts.rain),
        "rain_engine": engine_of(cfg),
        "rain_config": config_to_dict(cfg),
        "scenes": {k: stats[k] for k in sorted(stats)},
    }
    with atomic_output(out / "synth.json", overwrite=True) as p:
        p.write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest
