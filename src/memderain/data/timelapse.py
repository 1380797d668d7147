"""Time-lapse training data: pairs of different frames of one static scene (paper Sec. IV-B1).

The Siamese training of the paper feeds two rainy images ``I_w, I_v`` of the same scene n
(Eq. 7-11 use q_w, q_v); no ground truth is needed. Layout::

    root/<scene>/<frame>.png|jpg ...     (e.g. ``OUT/frames`` written by ``memderain synth``)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from memderain.data.augment import AugmentConfig, augmented_crops
from memderain.data.scenes import Scene, find_scenes
from memderain.data.transforms import (
    item_generator,
    paired_hflip,
    paired_random_crop,
    read_rgb,
    uint8_hwc_to_signed,
)
from memderain.errors import MemderainError


class FrameStore:
    """Decodes frames of scenes to uint8 HxWx3, resized once, with an optional memory cache.

    ``resize`` (int = shorter side, ``(h, w)`` = exact) is applied first, then frames whose
    shorter side is below ``min_side`` are upscaled (bicubic, aspect kept) so a crop of
    ``min_side`` fits; upscaling keeps real image content at the borders, where padding would
    teach the network about artificial edges.
    """

    def __init__(self, scenes: list[Scene], resize=None, min_side: int | None = None,
                 cache: bool = False):
        self.scenes, self.resize, self.min_side, self.cache = scenes, resize, min_side, cache
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def frame(self, s: int, t: int) -> np.ndarray:
        key = (s, t)
        arr = self._cache.get(key)
        if arr is None:
            arr = read_rgb(self.scenes[s].frames[t], self.resize, self.min_side)
            if self.cache:
                self._cache[key] = arr
        return arr

    def median(self, s: int, quantile: float = 0.5) -> np.ndarray:
        """Per-pixel temporal median of scene ``s`` (uint8; cached with ``cache``).

        ``quantile`` other than 0.5 takes the order statistic ``round(quantile * (T - 1))`` of
        the T frames instead (0 = the darkest value of each pixel): rendered rain only adds
        light, so on noise-free renders a low one is the background where the median still
        holds heavy rain (6-frame ``heavy-streaks`` scenes: median 28.2 dB, second darkest
        38.9 dB against the clean photo).
        """
        key = (s, -1) if quantile == 0.5 else (s, -1, quantile)
        arr = self._cache.get(key)
        if arr is None:
            stack = np.stack([self.frame(s, t) for t in range(len(self.scenes[s].frames))])
            if quantile == 0.5:
                arr = np.median(stack, axis=0).round().astype(np.uint8)
            else:
                k = round(quantile * (len(stack) - 1))
                arr = np.partition(stack, k, axis=0)[k]
            if self.cache:
                self._cache[key] = arr
        return arr

    def preload(self) -> None:
        """Decode every frame now (call before creating DataLoader workers: forked workers
        then share the decoded frames instead of each decoding their own copy)."""
        for s, scene in enumerate(self.scenes):
            for t in range(len(scene.frames)):
                self.frame(s, t)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._cache.values())


class TimeLapseDataset(Dataset):
    """Items ``{"w": (3,H,W), "v": (3,H,W), "scene": str}``: two *different* frames of one
    scene, cropped at the same position, float32 in [-1, 1] (paper Sec. III-E).

    Args:
        root: folder of scene folders, each holding the frames of one static camera.
        crop_size: side of the square random crop (``None`` = whole frames; then all scenes
            must share one size to be batched).
        resize: resize frames before cropping; int = shorter side, ``(h, w)`` = exact size
            (the paper resizes to 256x256: ``resize=(256, 256)``). ``None`` = keep.
        hflip: random left-right flip of both frames (off: the paper uses no flips).
        seed: base seed; item ``i`` in epoch ``e`` uses a generator seeded by (seed, e, i), so
            runs are reproducible and DataLoader workers never repeat each other.
        min_frames: scenes with fewer frames are skipped with a warning (must be >= 2).
        cache: keep decoded uint8 frames in memory (see :meth:`preload`).
        pairs_per_scene: ``None`` indexes every unordered pair: each scene contributes
            C(T, 2) items. An int ``k`` gives each scene ``k`` items, each a uniformly random
            pair of distinct frames (balances scenes with different T; every pair reachable).
        with_median: add the scene's temporal median (``median``, cropped like both frames), a
            mask of ones and ``has_median`` = 1: the pseudo target of ``loss.lambda_median``.
        median_quantile: that target's temporal quantile (0.5 = median; see
            :meth:`FrameStore.median`).

    Which of the two frames is ``w`` is random per item. Call :meth:`set_epoch` at the start
    of every epoch to draw fresh crop positions (like ``DistributedSampler.set_epoch``).
    """

    def __init__(self, root: str | Path, crop_size: int | None = 256, resize=None,
                 hflip: bool = False, seed: int = 0, min_frames: int = 2, *,
                 cache: bool = False, pairs_per_scene: int | None = None,
                 augment: AugmentConfig | None = None, with_median: bool = False,
                 median_quantile: float = 0.5):
        if min_frames < 2:
            raise MemderainError(f"TimeLapseDataset needs min_frames >= 2, got {min_frames}")
        if crop_size is not None and crop_size < 1:
            raise MemderainError(f"crop_size must be positive, got {crop_size}")
        if pairs_per_scene is not None and pairs_per_scene < 1:
            raise MemderainError(f"pairs_per_scene must be >= 1, got {pairs_per_scene}")
        self.root = Path(root)
        self.scenes = find_scenes(self.root, min_frames)
        self.crop_size, self.hflip, self.seed = crop_size, hflip, seed
        self.pairs_per_scene = pairs_per_scene
        self.augment = augment if augment is not None and augment.enabled else None
        self.with_median = with_median
        if not 0.0 <= median_quantile <= 1.0:
            raise MemderainError(f"median_quantile must be in [0, 1], got {median_quantile}")
        self.median_quantile = median_quantile
        if self.augment is not None and crop_size is None:
            raise MemderainError("augmentations need a crop_size")
        self.epoch = 0
        self.store = FrameStore(self.scenes, resize, crop_size, cache)
        if pairs_per_scene is None:
            rows = [(s, i, j) for s, sc in enumerate(self.scenes)
                    for i in range(len(sc.frames)) for j in range(i + 1, len(sc.frames))]
            self._pairs = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
        else:
            self._pairs = None

    def __len__(self) -> int:
        if self._pairs is None:
            return len(self.scenes) * self.pairs_per_scene
        return len(self._pairs)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose crop positions / pairs the items use."""
        self.epoch = int(epoch)

    def preload(self) -> None:
        """Decode all frames into the cache now (needs ``cache=True``)."""
        if not self.store.cache:
            raise MemderainError("TimeLapseDataset.preload() needs cache=True")
        self.store.preload()

    def pair_of(self, index: int, generator: torch.Generator | None = None
                ) -> tuple[int, int, int]:
        """``(scene index, frame w, frame v)`` of item ``index`` in the current epoch."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        g = generator if generator is not None else item_generator(self.seed, self.epoch, index)
        if self._pairs is None:
            s = index // self.pairs_per_scene
            n = len(self.scenes[s].frames)
            i = int(torch.randint(0, n, (1,), generator=g))
            j = int(torch.randint(0, n - 1, (1,), generator=g))
            return s, i, j + (j >= i)
        s, i, j = (int(v) for v in self._pairs[index])
        if float(torch.rand((), generator=g)) < 0.5:
            i, j = j, i
        return s, i, j

    def __getitem__(self, index: int) -> dict:
        g = item_generator(self.seed, self.epoch, index)
        s, i, j = self.pair_of(index, g)
        frames = [self.store.frame(s, i), self.store.frame(s, j)]
        if self.with_median:
            frames.append(self.store.median(s, self.median_quantile))
        if self.augment is not None:
            crops = augmented_crops(frames, self.crop_size, self.augment, g,
                                    targets=len(frames) - 2)
        else:
            if self.crop_size is not None:
                frames = paired_random_crop(frames, self.crop_size, g, channels_last=True)
            crops = [uint8_hwc_to_signed(f) for f in frames]
        if self.hflip:
            crops = paired_hflip(crops, g)
        item = {"w": crops[0], "v": crops[1], "scene": self.scenes[s].name}
        if self.with_median:  # the scene's temporal median as a pseudo target (lambda_median)
            item.update(median=crops[2], mask=torch.ones_like(crops[0][:1]),
                        has_median=torch.tensor(1.0))
        return item

    def __repr__(self) -> str:
        return (f"TimeLapseDataset({str(self.root)!r}, scenes={len(self.scenes)}, "
                f"items={len(self)}, crop_size={self.crop_size})")
