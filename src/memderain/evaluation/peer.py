"""How much of a peer's streak removal a de-rained real photo reproduces (no ground truth).

Real rain photos have no clean target. A published method's outputs (a *peer*, e.g. MOSS's
for ``../shared/data/real``) show where rain is, but Y-PSNR toward them is dominated by the
global colour and contrast changes the peer also makes. :func:`streak_removal` looks at fine
structure only, on the Y channel (0..255):

* ``highpass(x) = x - lowpass(x)``, with a separable median over ``k`` pixels (a row median,
  then a column median) as the low-pass: a global or slowly varying colour change does not
  count, and thin streaks pass whole, without the halo a box filter would spread around them;
* the peer's removed streaks: ``d_peer = highpass(Y_in - Y_peer)``, and the streak mask is
  ``d_peer > threshold`` (rain brightens, so removing it lowers Y);
* ``removal`` = ``sum(clip(d_ours, 0, d_peer)) / sum(d_peer)`` over the mask, with
  ``d_ours = highpass(Y_in - Y_ours)``: 1 means every streak the peer removed is gone as far
  as the peer took it, 0 means none is (overshoot is not rewarded);
* ``detail_change`` = mean ``|d_ours|`` off the mask, in grey levels: how much fine structure
  the method changed where the peer saw no streak. Blurring raises it; so does removing faint
  rain the peer left. ``peer_detail_change`` is the peer's own value, for scale.

A blur removes streaks too, so ``removal`` must be read beside ``detail_change``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter

from memderain.errors import MemderainError
from memderain.evaluation.metrics import rgb_to_y


@dataclass(frozen=True)
class StreakRemoval:
    removal: float              # fraction of the peer's streak removal reproduced, 0..1
    detail_change: float        # mean |fine-structure change| off the streaks, grey levels
    peer_detail_change: float   # the same for the peer's output
    streak_fraction: float      # share of pixels in the peer's streak mask


def _highpass(y: np.ndarray, size: int) -> np.ndarray:
    low = median_filter(y, size=(1, size), mode="reflect")
    return y - median_filter(low, size=(size, 1), mode="reflect")


class PeerStreaks:
    """The streaks a peer removed from one rainy photo, computed once; :meth:`score` compares
    any number of outputs for that photo with them."""

    def __init__(self, rainy, peer, size: int = 15, threshold: float = 6.0):
        self.size = size
        self.y_in = rgb_to_y(rainy, rounded=False)
        y_peer = self._y(peer, "peer")
        self.d_peer = _highpass(self.y_in - y_peer, size)
        self.mask = self.d_peer > threshold
        off = ~self.mask
        self.peer_detail_change = float(np.abs(self.d_peer[off]).mean()) if off.any() else 0.0

    def _y(self, img, what: str) -> np.ndarray:
        y = rgb_to_y(img, rounded=False)
        if y.shape != self.y_in.shape:
            raise MemderainError(f"image sizes differ: rainy {self.y_in.shape}, {what} "
                                 f"{y.shape} (HxW)")
        return y

    def score(self, output) -> StreakRemoval:
        d_ours = _highpass(self.y_in - self._y(output, "output"), self.size)
        mask, off, d_peer = self.mask, ~self.mask, self.d_peer
        total = float(d_peer[mask].sum())
        removal = float(np.clip(d_ours[mask], 0.0, d_peer[mask]).sum()) / total if total else 0.0
        return StreakRemoval(
            removal=removal,
            detail_change=float(np.abs(d_ours[off]).mean()) if off.any() else 0.0,
            peer_detail_change=self.peer_detail_change,
            streak_fraction=float(mask.mean()),
        )


def streak_removal(rainy, output, peer, size: int = 15,
                   threshold: float = 6.0) -> StreakRemoval:
    """Compare ``output``'s removed fine structure with ``peer``'s (uint8 HxWx3 RGB images of
    one size, or float tensors as :func:`memderain.evaluation.metrics.rgb_to_y` takes). For
    several outputs of one photo, build :class:`PeerStreaks` once and call its ``score``."""
    return PeerStreaks(rainy, peer, size, threshold).score(output)
