"""Validation on a paired folder in the ``memderain synth`` layout::

    VAL/frames/<scene>/*.png    rainy frames        VAL/clean/<scene>.png    clean background

PSNR / SSIM use :mod:`memderain.evaluation.metrics` (Y channel, the de-raining literature's
convention) when it is installed, else torchmetrics on RGB.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from memderain.data.scenes import list_images
from memderain.data.transforms import read_rgb, uint8_to_tensor
from memderain.errors import MemderainError


@dataclass(frozen=True)
class ValPair:
    rainy: Path
    clean: Path


def find_val_pairs(root: str | Path, max_scenes: int = 20, frames_per_scene: int = 2) -> list[ValPair]:
    """(rainy frame, clean background) pairs: up to ``max_scenes`` scenes (sorted by name) and
    ``frames_per_scene`` frames of each, evenly spaced in time."""
    root = Path(root)
    frames_dir, clean_dir = root / "frames", root / "clean"
    if not frames_dir.is_dir() or not clean_dir.is_dir():
        raise MemderainError(f"--val {root}: expected {frames_dir} and {clean_dir} "
                             "(the layout `memderain synth` writes)")
    pairs = []
    scenes = sorted(p for p in frames_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    for scene in scenes[:max_scenes]:
        clean = [p for p in list_images(clean_dir) if p.stem == scene.name]
        frames = list_images(scene)
        if not clean or not frames:
            continue
        picks = np.unique(np.linspace(0, len(frames) - 1, frames_per_scene).round().astype(int))
        pairs.extend(ValPair(frames[i], clean[0]) for i in picks)
    if not pairs:
        raise MemderainError(f"--val {root}: no scene has both frames/<scene>/ and clean/<scene>.png")
    return pairs


def _metric_fns():
    try:
        from memderain.evaluation import metrics

        return (lambda p, t: metrics.psnr(p, t)), (lambda p, t: metrics.ssim(p, t))
    except ImportError:  # pragma: no cover - evaluation ships with the package
        from torchmetrics.functional.image import peak_signal_noise_ratio as tm_psnr
        from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

        def psnr(p, t):
            return float(tm_psnr(p[None], t[None], data_range=1.0))

        def ssim(p, t):
            return float(tm_ssim(p[None], t[None], data_range=1.0))

        return psnr, ssim


def _rain_free(rainy: np.ndarray, clean: np.ndarray) -> bool:
    """A validation frame without rain decodes to exactly its clean background."""
    return np.array_equal(rainy, clean)


def has_rainy_frame(pairs: list[ValPair]) -> bool:
    """Whether any validation frame differs from its clean background."""
    return any(not _rain_free(read_rgb(p.rainy), read_rgb(p.clean)) for p in pairs)


PSNR_CAP = 100.0  # dB for identical images (a rain-free validation frame), so means stay finite


@torch.no_grad()
def validate(model: nn.Module, pairs: list[ValPair], device: torch.device) -> dict[str, float]:
    """Mean PSNR / SSIM of the de-rained frames and of the rainy inputs against the clean
    backgrounds (PSNR capped at PSNR_CAP per image: a rain-free frame equals its background).
    Also the mean PSNR over the frames with rain (``psnr_rainy``, with ``rainy_images``) and
    over the rain-free ones (``psnr_dry``), where there are any. The model is used in eval mode
    (memory read only) and restored afterwards."""
    psnr_fn, ssim_fn = _metric_fns()
    was_training = model.training
    model.eval()
    sums = {"psnr": 0.0, "ssim": 0.0, "psnr_input": 0.0, "ssim_input": 0.0}
    split: dict[str, list[float]] = {"rainy": [], "dry": []}
    try:
        for pair in pairs:
            rainy8, clean8 = read_rgb(pair.rainy), read_rgb(pair.clean)
            rainy, clean = uint8_to_tensor(rainy8), uint8_to_tensor(clean8)
            if rainy.shape != clean.shape:
                raise MemderainError(f"--val: {pair.rainy} and {pair.clean} differ in size")
            x = (rainy * 2 - 1)[None].to(device)
            pred = ((model(x).background[0].float().cpu() + 1) / 2).clamp(0, 1)
            score = min(psnr_fn(pred, clean), PSNR_CAP)
            sums["psnr"] += score
            sums["ssim"] += ssim_fn(pred, clean)
            sums["psnr_input"] += min(psnr_fn(rainy, clean), PSNR_CAP)
            sums["ssim_input"] += ssim_fn(rainy, clean)
            split["dry" if _rain_free(rainy8, clean8) else "rainy"].append(score)
    finally:
        model.train(was_training)
    out = {k: v / len(pairs) for k, v in sums.items()}
    out["images"] = float(len(pairs))
    out["rainy_images"] = float(len(split["rainy"]))
    for kind, scores in split.items():
        if scores:
            out[f"psnr_{kind}"] = sum(scores) / len(scores)
    return out
