"""Total training objectives: the Siamese loss of Eq. 14 and the pseudo-GT L1 of B_a / B_b."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from memderain.losses.bsw import bsw_loss
from memderain.losses.extra import compactness_loss, ssim_consistency_loss
from memderain.losses.real_rain import (
    agreement_identity_loss,
    median_brightness_loss,
    median_edge_loss,
    rain_floor_loss,
)
from memderain.losses.reconstruction import (
    background_loss,
    cross_loss,
    pseudo_gt_l1_loss,
    self_consistency_loss,
)

if TYPE_CHECKING:  # pragma: no cover
    from memderain.model.derainer import DerainOutput
    from memderain.training.config import LossConfig


def siamese_loss(
    cfg: LossConfig,
    i_w: torch.Tensor,
    i_v: torch.Tensor,
    out_w: DerainOutput,
    out_v: DerainOutput,
    items: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    median: torch.Tensor | None = None,
    has_median: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L = lambda_b L_b + lambda_s L_s + lambda_c L_c + lambda_w L_w (Eq. 14), plus the optional
    ``official`` extras (SSIM consistency, query compactness against ``items``) and the
    real-video remedies of :mod:`memderain.losses.real_rain` (``lambda_agree``,
    ``lambda_floor``, ``lambda_median``, ``lambda_edge``, ``lambda_brightness``; the last
    three need ``median``).

    ``out_w`` / ``out_v`` are the network outputs for the two frames ``i_w`` / ``i_v`` of each
    scene. ``mask`` (N, 1, H, W) of 0/1 leaves pixels out of every term (moving parts of real
    clips); ``median`` (N, 3, H, W) is the scene's temporal median, used where ``has_median``
    (N,) is 1 (real clips; synthetic scenes have none). Returns (total, {term name: detached
    value}); terms with weight 0 are skipped.
    """
    terms: dict[str, torch.Tensor] = {}
    b_w, b_v = out_w.background.float(), out_v.background.float()
    r_w, r_v = out_w.rain.float(), out_v.rain.float()
    i_w, i_v = i_w.float(), i_v.float()
    if mask is not None:
        mask = mask.float()
    if cfg.lambda_b:
        terms["b"] = background_loss(b_w, b_v, mask)
    if cfg.lambda_s:
        terms["s"] = self_consistency_loss(
            i_w, b_w, r_w, cfg.self_consistency, b_v=b_v, i_v=i_v, r_v=r_v, mask=mask
        )
    if cfg.lambda_c:
        terms["c"] = cross_loss(i_w, i_v, b_w, b_v, symmetric=cfg.cross_symmetric, mask=mask)
    if cfg.lambda_w:
        terms["w"] = bsw_loss(
            out_w.query, out_v.query, cfg.bsw_groups, cfg.bsw_low_groups, cfg.bsw_kmeans_iters,
            mask=mask,
        )
    if cfg.lambda_agree:
        terms["agree"] = agreement_identity_loss(i_w, i_v, r_w, r_v, cfg.agree_threshold, mask)
    if cfg.lambda_floor:
        terms["floor"] = 0.5 * (rain_floor_loss(r_w, cfg.floor_window, mask)
                                + rain_floor_loss(r_v, cfg.floor_window, mask))
    if (cfg.lambda_median or cfg.lambda_edge or cfg.lambda_brightness) and median is not None:
        m = torch.ones_like(b_w[:, :1]) if mask is None else mask
        if has_median is not None:
            m = m * has_median.float().view(-1, 1, 1, 1).to(m.device)
        median = median.float()
        for name, weight, fn in (("median", cfg.lambda_median, pseudo_gt_l1_loss),
                                 ("edge", cfg.lambda_edge, median_edge_loss),
                                 ("brightness", cfg.lambda_brightness, median_brightness_loss)):
            if weight:
                terms[name] = 0.5 * (fn(b_w, median, m) + fn(b_v, median, m))
    if cfg.lambda_ssim:
        terms["ssim"] = ssim_consistency_loss(b_w, b_v)
    if cfg.lambda_compact and items is not None:
        query = torch.cat([out_w.query, out_v.query]).float()
        terms["compact"] = compactness_loss(query, items)
    weights = {
        "b": cfg.lambda_b, "s": cfg.lambda_s, "c": cfg.lambda_c, "w": cfg.lambda_w,
        "ssim": cfg.lambda_ssim, "compact": cfg.lambda_compact, "agree": cfg.lambda_agree,
        "floor": cfg.lambda_floor, "median": cfg.lambda_median, "edge": cfg.lambda_edge,
        "brightness": cfg.lambda_brightness,
    }
    total = sum((weights[k] * v for k, v in terms.items()), torch.zeros((), device=b_w.device))
    return total, {k: v.detach() for k, v in terms.items()}


def pseudo_gt_loss(
    cfg: LossConfig, out: DerainOutput, target: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """lambda_l1 * mean |B - B_pseudo| (baselines B_a / B_b, Sec. IV-E1)."""
    l1 = pseudo_gt_l1_loss(out.background.float(), target.float())
    return cfg.lambda_l1 * l1, {"l1": l1.detach()}
