"""Siamese training pairs cut from real static-camera clips, with their masks and median.

Items match :class:`~memderain.data.timelapse.TimeLapseDataset` (``w``, ``v`` in [-1, 1],
``scene``) plus what real footage needs (:mod:`memderain.data.static_clip`):

* ``mask`` (1, H, W): 1 where both frames show the static background (plus rain), so the
  losses leave moving cars, swaying trees and changing subtitles out;
* ``median`` (3, H, W): the clip's temporal median (the pseudo target of ``loss.lambda_median``)
  and ``has_median`` = 1.

:func:`synthetic_extras` gives synthetic items the same keys (mask of ones, no median), so
real and synthetic pairs batch together (:class:`MixedPairs`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from memderain.data.static_clip import StaticClip, luminance
from memderain.data.transforms import item_generator, random_crop_box, uint8_hwc_to_signed
from memderain.errors import MemderainError


class ClipPairs(Dataset):
    """Random pairs of distinct frames of in-memory clips, cropped at one random position.

    Args:
        clips: aligned clips (:func:`~memderain.data.static_clip.load_static_clip`).
        crop_size: square crop side (clips smaller than it are refused).
        items_per_epoch: items per epoch (each draws its clip, its pair and its crop).
        seed: item ``i`` of epoch ``e`` is drawn from a generator seeded by (seed, e, i).
        frames: per clip, the frame indices that may be used (None: all), e.g. to keep some
            frames out of an adaptation and score them afterwards.
        hflip: random left-right flip of the whole item.
        focus: share of items whose crop is drawn where frame ``w`` has rain (positive
            luminance over the median on static pixels, summed over the crop) instead of
            uniformly: on a large frame with light rain most uniform crops hold none.
    """

    def __init__(self, clips: Sequence[StaticClip], crop_size: int, items_per_epoch: int = 1000,
                 seed: int = 0, frames: Sequence[Sequence[int]] | None = None,
                 hflip: bool = True, focus: float = 0.0):
        if not clips:
            raise MemderainError("ClipPairs needs at least one clip")
        self.clips = list(clips)
        self.frames = [list(range(len(c))) if frames is None else list(frames[k])
                       for k, c in enumerate(self.clips)]
        for c, f in zip(self.clips, self.frames, strict=True):
            h, w = c.frames.shape[1:3]
            if min(h, w) < crop_size:
                raise MemderainError(f"{c.source}: frames of {w}x{h} px are smaller than the "
                                     f"{crop_size} px crop")
            if len(f) < 2:
                raise MemderainError(f"{c.source}: needs at least 2 frames to pair, got {len(f)}")
        self.crop_size, self.items, self.seed, self.hflip = crop_size, items_per_epoch, seed, hflip
        self.epoch = 0
        valid = [[c.valid(t) for t in range(len(c))] for c in self.clips]
        self._masks = [[torch.from_numpy(v) for v in per_clip] for per_clip in valid]
        self.focus = focus
        self._rain_cdf = [[_rain_cdf(c, t, crop_size, valid[k][t]) for t in range(len(c))]
                          for k, c in enumerate(self.clips)] if focus > 0 else None

    def __len__(self) -> int:
        return self.items

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def draw(self, index: int) -> tuple[int, int, int, int, int, bool]:
        """(clip, frame w, frame v, crop top, crop left, flip) of item ``index`` this epoch."""
        g = item_generator(self.seed, self.epoch, index)
        k = int(torch.randint(0, len(self.clips), (1,), generator=g))
        clip, usable = self.clips[k], self.frames[k]
        i = int(torch.randint(0, len(usable), (1,), generator=g))
        j = int(torch.randint(0, len(usable) - 1, (1,), generator=g))
        tw, tv = usable[i], usable[j + (j >= i)]
        h, w = clip.frames.shape[1:3]
        top, left, _, _ = random_crop_box(h, w, self.crop_size, g)
        if self._rain_cdf is not None and float(torch.rand((), generator=g)) < self.focus:
            cdf, cols = self._rain_cdf[k][tw]
            pick = int(torch.searchsorted(cdf, torch.rand(1, generator=g) * cdf[-1]))
            top, left = (pick // cols) * _STRIDE, (pick % cols) * _STRIDE
        flip = self.hflip and float(torch.rand((), generator=g)) < 0.5
        return k, tw, tv, top, left, flip

    def __getitem__(self, index: int) -> dict:
        k, tw, tv, top, left, flip = self.draw(index)
        clip, c = self.clips[k], self.crop_size
        box = (slice(top, top + c), slice(left, left + c))
        mask = (self._masks[k][tw][box] & self._masks[k][tv][box]).float()[None]
        out = {"w": uint8_hwc_to_signed(clip.frames[tw][box]),
               "v": uint8_hwc_to_signed(clip.frames[tv][box]),
               "mask": mask, "median": uint8_hwc_to_signed(clip.median[box]),
               "has_median": torch.tensor(1.0), "scene": f"clip{k}"}
        if flip:
            for key in ("w", "v", "mask", "median"):
                out[key] = out[key].flip(-1)
        return out


_STRIDE = 8  # crop positions for focused sampling lie on this grid


def _rain_cdf(clip: StaticClip, t: int, crop: int, valid: np.ndarray
              ) -> tuple[torch.Tensor, int]:
    """Cumulative rain energy of the crops of frame t (top-left corners on a grid), and the
    number of grid columns: energy = luminance above the median by more than 4 grey levels on
    ``valid`` pixels, summed over the crop, plus a floor so every crop stays possible."""
    rain = luminance(clip.frames[t]) - luminance(clip.median)
    rain = np.clip(rain - 4.0, 0, None) * valid
    integral = np.pad(rain.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    h, w = rain.shape
    ys = np.arange(0, h - crop + 1, _STRIDE)
    xs = np.arange(0, w - crop + 1, _STRIDE)
    sums = (integral[ys[:, None] + crop, xs[None] + crop] - integral[ys[:, None], xs[None] + crop]
            - integral[ys[:, None] + crop, xs[None]] + integral[ys[:, None], xs[None]])
    sums = sums + 0.05 * sums.mean() + 1e-6
    return torch.from_numpy(np.cumsum(sums.ravel()).astype(np.float64)), len(xs)


def synthetic_extras(item: dict) -> dict:
    """Give a synthetic pair the keys of a real one: a mask of ones and no median (unless the
    item brings its own, ``TimeLapseDataset(with_median=True)``)."""
    w = item["w"]
    return {"mask": torch.ones_like(w[:1]), "median": torch.zeros_like(w),
            "has_median": torch.tensor(0.0), **item}


class MixedPairs(Dataset):
    """Synthetic and real pairs in one stream: item ``i`` is real with probability
    ``real_ratio`` (drawn from its own generator, so the mix is reproducible and resumable)."""

    def __init__(self, synthetic: Dataset, real: Dataset, real_ratio: float, seed: int = 0):
        if not 0.0 <= real_ratio <= 1.0:
            raise MemderainError(f"real_ratio must be in [0, 1], got {real_ratio}")
        self.synthetic, self.real, self.ratio, self.seed = synthetic, real, real_ratio, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.synthetic)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        for d in (self.synthetic, self.real):
            d.set_epoch(epoch)

    def preload(self) -> None:
        preload = getattr(self.synthetic, "preload", None)
        if preload is not None:
            preload()

    def __getitem__(self, index: int) -> dict:
        g = item_generator(self.seed + 7919, self.epoch, index)
        if float(torch.rand((), generator=g)) < self.ratio:
            return self.real[int(torch.randint(0, len(self.real), (1,), generator=g))]
        return synthetic_extras(self.synthetic[index])


def holdout_split(n: int, every: int) -> tuple[list[int], list[int]]:
    """(frames used, frames left out): every ``every``-th frame (1-based: frames every-1,
    2*every-1, ...) is left out; ``every`` <= 1 leaves none out."""
    if every <= 1:
        return list(range(n)), []
    out = [t for t in range(n) if (t + 1) % every == 0]
    return [t for t in range(n) if (t + 1) % every != 0], out


def evenly_spaced(items: Sequence[int], k: int) -> list[int]:
    """At most ``k`` entries of ``items``, evenly spaced with both ends kept (the middle one
    for ``k`` = 1): which held-out frames a check scores."""
    items = list(items)
    if len(items) <= k:
        return items
    if k <= 1:
        return items[len(items) // 2:len(items) // 2 + 1]
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)]
