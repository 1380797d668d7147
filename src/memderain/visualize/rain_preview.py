"""Side-by-side grid of synthetic rainy crops and crops of real rainy photos
(``memderain synth --preview``), so a person can judge by eye whether a rain setting looks real.

Both kinds of photo are first brought to the same scale (longer side ``max_side``, the scale
``memderain synth`` renders at), then a seeded random ``PANEL_PX`` square is cut from each.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from memderain.data.rain import rain_config, synthesize
from memderain.data.synth import load_background, scene_generator
from memderain.data.transforms import uint8_to_tensor
from memderain.visualize.common import PANEL_PX, Panel, grid_figure, save_figure


def _crop(arr: np.ndarray, rng: np.random.Generator, side: int = PANEL_PX) -> np.ndarray:
    """A random ``side`` square of an HxWx3 array (zero-padded if the image is smaller)."""
    h, w = arr.shape[:2]
    out = np.zeros((side, side, 3), arr.dtype)
    y = int(rng.integers(0, max(h - side, 0) + 1))
    x = int(rng.integers(0, max(w - side, 0) + 1))
    part = arr[y:y + side, x:x + side]
    out[:part.shape[0], :part.shape[1]] = part
    return out


def _pick(files: Sequence[Path], count: int, rng: np.random.Generator) -> list[Path]:
    order = rng.permutation(len(files))
    return [files[int(order[i % len(files)])] for i in range(count)]


def synthetic_crops(clean_files: Sequence[Path], rain: str, count: int, seed: int = 0,
                    max_side: int = 512, bank: str | Path | None = None
                    ) -> list[tuple[np.ndarray, str]]:
    """``count`` (crop HxWx3 float [0, 1], title) of one rainy frame of random clean photos
    (``bank``: the rain-layer bank of ``rain`` = ``real-layers``)."""
    cfg = rain_config(rain, bank)
    rng = np.random.default_rng(seed)
    crops = []
    for i, path in enumerate(_pick(clean_files, count, rng)):
        bg = load_background(path, max_side)
        scene = synthesize(uint8_to_tensor(bg), 1, cfg, scene_generator(seed + i, path.stem))
        frame = scene.frames[0].permute(1, 2, 0).numpy()
        crops.append((_crop(frame, rng), f"synthetic ({rain}): {path.stem}"))
    return crops


def real_crops(real_files: Sequence[Path], count: int, seed: int = 0, max_side: int = 512
               ) -> list[tuple[np.ndarray, str]]:
    """``count`` (crop, title) of real photos, each downsized to ``max_side`` first."""
    rng = np.random.default_rng(seed + 1)
    return [(_crop(load_background(p, max_side).astype(np.float32) / 255, rng), f"real: {p.stem}")
            for p in _pick(real_files, count, rng)]


def rain_preview(clean_files: Sequence[Path], real_files: Sequence[Path], path: str | Path,
                 rain: str = "v2", count: int = 6, seed: int = 0, max_side: int = 512,
                 columns: int = 6, overwrite: bool = False, bank: str | Path | None = None
                 ) -> Path:
    """Write a PNG: rows of synthetic crops first, then rows of real crops (if any)."""
    panels: list[Panel] = synthetic_crops(clean_files, rain, count, seed, max_side, bank)
    rows = [panels[i:i + columns] for i in range(0, len(panels), columns)]
    if real_files:
        real = real_crops(real_files, count, seed, max_side)
        rows += [real[i:i + columns] for i in range(0, len(real), columns)]
    return save_figure(grid_figure(rows), Path(path), overwrite)


def layer_preview(clips: dict, lifted: dict, path: str | Path, clean_dir: str | Path | None = None,
                  seed: int = 0, blend: str = "add", gain: float = 1.0,
                  overwrite: bool = False) -> Path:
    """``memderain rain-layers --preview``: one row per clip, a ``PANEL_PX`` square where its
    rainiest layer has the most rain: the real frame, the layer (x4 for visibility), the layer
    put back on the clip's median, and the layer on a clean photo of ``clean_dir`` (seeded)."""
    from memderain.data.rain_layers import apply_blend
    from memderain.data.scenes import list_images

    rng = np.random.default_rng(seed)
    cleans = list_images(Path(clean_dir)) if clean_dir else []
    rows = []
    for name, clip in clips.items():
        layers = lifted[name][0]
        t = int(np.argmax([ly.density for ly in layers]))
        layer = layers[t].layer
        h, w = layer.shape
        side = min(PANEL_PX, h, w)
        y, x = _densest_window(layer, side)
        crop = (slice(y, y + side), slice(x, x + side))
        med = clip.median[crop].astype(np.float32) / 255
        row = [(clip.frames[t][crop].astype(np.float32) / 255, f"{name}: real frame"),
               (np.repeat(np.clip(layer[crop] * 4, 0, 1)[..., None], 3, axis=2),
                f"lifted layer x4 ({layers[t].density:.1%})"),
               (apply_blend(med, layer[crop][..., None] * gain, blend), "layer on its median")]
        if cleans:
            bg = load_background(cleans[int(rng.integers(len(cleans)))], 512)
            bg = _crop(bg, rng, side).astype(np.float32) / 255
            row.append((apply_blend(bg, layer[crop][..., None] * gain, blend),
                        "layer on a clean photo"))
        rows.append([(_pad(a, PANEL_PX), title) for a, title in row])
    return save_figure(grid_figure(rows), Path(path), overwrite)


def _densest_window(layer: np.ndarray, side: int) -> tuple[int, int]:
    """Top-left corner of the ``side`` square holding the most rain (coarse search)."""
    h, w = layer.shape
    step = max(1, side // 4)
    best, where = -1.0, (0, 0)
    for y in range(0, h - side + 1, step):
        for x in range(0, w - side + 1, step):
            s = float(layer[y:y + side, x:x + side].sum())
            if s > best:
                best, where = s, (y, x)
    return where


def _pad(arr: np.ndarray, side: int) -> np.ndarray:
    out = np.zeros((side, side, 3), np.float32)
    out[:arr.shape[0], :arr.shape[1]] = arr[:side, :side]
    return out
