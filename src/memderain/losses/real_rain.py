"""Remedies for the darkening that Siamese training learns on real video (no paper equation).

With R >= 0 (rain only adds light), every frame-to-frame difference that is not rain (sensor
noise, compression, flicker) is learned by L_b / L_c (Eq. 7-8) as something to subtract, so
the background comes out darker and flatter. Three terms push back, each a config weight
(``loss.lambda_agree``, ``loss.lambda_floor``, ``loss.lambda_median``):

* :func:`agreement_identity_loss`: where the two frames agree (no rain in either), the rain
  estimate of both must be 0: an identity term on rain-free pixels.
* :func:`rain_floor_loss`: rain is thin; darkening is smooth. The local *floor* of R_hat
  (a k x k minimum filter) is 0 wherever streaks are thinner than k, and equals the smooth
  offset a darkening model subtracts, so its mean is penalised.
* the clip's temporal median as a pseudo target on its static pixels
  (:func:`memderain.losses.reconstruction.pseudo_gt_l1_loss` with a mask), as SPA-Data built
  its ground truth.

Two more keep what the median target alone lets slip (``loss.lambda_edge``,
``loss.lambda_brightness``; issue 31: an adapted model that thinned the rain but moved roof
lines and darkened the frame):

* :func:`median_edge_loss`: the background's horizontal and vertical differences against the
  median's, on pixel pairs that are both static: edges and texture are kept (an L1 on values
  tolerates a blur whose per-pixel error is small but whose edges are gone);
* :func:`median_brightness_loss`: the mean luminance of the background against the median's
  on the static pixels, per image: a global darkening that the per-pixel L1 spreads thin.

All images NCHW in [-1, 1]; masks (N, 1, H, W) of 0/1 as in
:mod:`memderain.losses.reconstruction`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from memderain.losses.reconstruction import masked_mean


def agreement_mask(i_w: torch.Tensor, i_v: torch.Tensor, threshold: float) -> torch.Tensor:
    """(N, 1, H, W) float: 1 where the frames differ by less than ``threshold`` (in [-1, 1]
    units, all channels), i.e. where neither frame shows rain."""
    return ((i_w - i_v).abs().amax(dim=1, keepdim=True) < threshold).to(i_w.dtype)


def agreement_identity_loss(i_w: torch.Tensor, i_v: torch.Tensor, r_w: torch.Tensor,
                            r_v: torch.Tensor, threshold: float,
                            mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean |R_hat| of both frames on the pixels where the two inputs agree (and ``mask``)."""
    agree = agreement_mask(i_w.detach(), i_v.detach(), threshold)
    if mask is not None:
        agree = agree * mask.to(agree.dtype)
    return 0.5 * (masked_mean(r_w.abs(), agree) + masked_mean(r_v.abs(), agree))


def rain_floor(rain: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Local minimum of R_hat over ``window`` x ``window`` (per channel, same size)."""
    pad = window // 2
    padded = F.pad(-rain, (pad, pad, pad, pad), mode="replicate")
    return -F.max_pool2d(padded, window, stride=1)


def rain_floor_loss(rain: torch.Tensor, window: int = 7, mask: torch.Tensor | None = None
                    ) -> torch.Tensor:
    """Mean |local floor of R_hat|: zero for thin streaks, the offset itself for darkening."""
    return masked_mean(rain_floor(rain, window).abs(), mask)


def _luma(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) mean of the channels (a luminance proxy that works for grey too)."""
    return x.mean(dim=1, keepdim=True)


def median_edge_loss(background: torch.Tensor, median: torch.Tensor,
                     mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean |d(B) - d(median)| over horizontal and vertical neighbour differences d, on the
    pairs whose two pixels are both in ``mask`` (all pairs when None)."""
    diff = background - median
    dx, dy = diff[..., :, 1:] - diff[..., :, :-1], diff[..., 1:, :] - diff[..., :-1, :]
    mx = my = None
    if mask is not None:
        mx = mask[..., :, 1:] * mask[..., :, :-1]
        my = mask[..., 1:, :] * mask[..., :-1, :]
    return 0.5 * (masked_mean(dx.abs(), mx) + masked_mean(dy.abs(), my))


def median_brightness_loss(background: torch.Tensor, median: torch.Tensor,
                           mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over images of |mean luminance of B - that of the median| on ``mask``'s pixels
    (images with an empty mask count 0)."""
    diff = _luma(background - median)
    if mask is None:
        mask = torch.ones_like(diff)
    mask = mask.to(diff.dtype)
    per_image = (diff * mask).sum(dim=(1, 2, 3)) / mask.sum(dim=(1, 2, 3)).clamp_min(1.0)
    return per_image.abs().mean()
