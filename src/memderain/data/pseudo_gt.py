"""Rainy frame + temporal pseudo ground truth, for the ablation baselines B_a / B_b.

Paper Sec. IV-E1 and footnote 4: for a static scene "simply averaging all frames over time can
be used for pseudo ground truth data"; B_a / B_b are trained with an L1 loss on (rain frame,
pseudo GT) pairs. The temporal *median* (default here) removes bright streaks better than the
mean, which keeps a faint veil of every streak; ``reducer="mean"`` is the paper's literal
choice.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from memderain.data.scenes import find_scenes
from memderain.data.timelapse import FrameStore
from memderain.data.transforms import (
    item_generator,
    paired_hflip,
    paired_random_crop,
    uint8_hwc_to_signed,
)
from memderain.errors import MemderainError

REDUCERS = ("median", "mean")


def temporal_reduce(frames: np.ndarray | torch.Tensor, reducer: str = "median") -> np.ndarray:
    """Reduce uint8 frames (T,H,W,3) over time to one uint8 HxWx3 frame.

    ``median``: ``torch.median`` over T (the lower of the two middle values for even T, so
    the result is exactly one of the frame values). ``mean``: the average, rounded to uint8
    (as a saved pseudo-GT image would be).
    """
    t = torch.as_tensor(frames)
    if t.ndim != 4 or t.dtype != torch.uint8:
        raise MemderainError(f"expected uint8 frames (T,H,W,C), got {t.dtype} {tuple(t.shape)}")
    if reducer == "median":
        out = t.median(dim=0).values
    elif reducer == "mean":
        out = t.float().mean(dim=0).round_().to(torch.uint8)
    else:
        raise MemderainError(f"unknown reducer {reducer!r}; choose one of {REDUCERS}")
    return out.numpy()


class PseudoGTDataset(Dataset):
    """Items ``{"input": (3,H,W), "target": (3,H,W), "scene": str}`` in [-1, 1].

    One item per frame of every scene (``input``), paired with the temporal median / mean of
    that scene (``target``), both cropped at the same random position. Each scene's reduction
    is computed once, on first use, and kept in memory as uint8 (call :meth:`preload` before
    starting DataLoader workers to compute them once for all workers).

    Args mirror :class:`~memderain.data.timelapse.TimeLapseDataset` (``root``, ``crop_size``,
    ``seed``, keyword-only ``resize``, ``hflip``, ``min_frames``, ``cache``) plus ``reducer``.
    """

    def __init__(self, root: str | Path, crop_size: int | None = 256, reducer: str = "median",
                 seed: int = 0, *, resize=None, hflip: bool = False, min_frames: int = 2,
                 cache: bool = False):
        if reducer not in REDUCERS:
            raise MemderainError(f"unknown reducer {reducer!r}; choose one of {REDUCERS}")
        if min_frames < 2:
            raise MemderainError(f"PseudoGTDataset needs min_frames >= 2, got {min_frames}")
        if crop_size is not None and crop_size < 1:
            raise MemderainError(f"crop_size must be positive, got {crop_size}")
        self.root = Path(root)
        self.scenes = find_scenes(self.root, min_frames)
        self.crop_size, self.reducer, self.seed, self.hflip = crop_size, reducer, seed, hflip
        self.epoch = 0
        self.store = FrameStore(self.scenes, resize, crop_size, cache)
        self._index = np.asarray([(s, t) for s, sc in enumerate(self.scenes)
                                  for t in range(len(sc.frames))], dtype=np.int64)
        self._targets: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._index)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose crop positions the items use."""
        self.epoch = int(epoch)

    def target(self, s: int) -> np.ndarray:
        """uint8 HxWx3 pseudo ground truth of scene ``s`` (computed once, then cached)."""
        out = self._targets.get(s)
        if out is None:
            frames = np.stack([self.store.frame(s, t)
                               for t in range(len(self.scenes[s].frames))])
            out = self._targets[s] = temporal_reduce(frames, self.reducer)
        return out

    def preload(self) -> None:
        """Compute every scene's pseudo ground truth now."""
        for s in range(len(self.scenes)):
            self.target(s)

    def __getitem__(self, index: int) -> dict:
        s, t = (int(v) for v in self._index[index])
        g = item_generator(self.seed, self.epoch, index)
        x, y = self.store.frame(s, t), self.target(s)
        if self.crop_size is not None:
            x, y = paired_random_crop([x, y], self.crop_size, g, channels_last=True)
        x, y = uint8_hwc_to_signed(x), uint8_hwc_to_signed(y)
        if self.hflip:
            x, y = paired_hflip([x, y], g)
        return {"input": x, "target": y, "scene": self.scenes[s].name}

    def __repr__(self) -> str:
        return (f"PseudoGTDataset({str(self.root)!r}, scenes={len(self.scenes)}, "
                f"items={len(self)}, reducer={self.reducer!r}, crop_size={self.crop_size})")
