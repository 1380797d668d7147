"""Pixel losses of Sec. III-D (Eq. 7-9) and the pseudo-GT L1 of the ablation baselines.

All images are NCHW in [-1, 1]. Every loss is a **mean** over batch, channels and pixels
(the paper writes sums; a mean keeps the weights of Eq. 14 independent of crop and batch size).
Every loss takes an optional ``mask`` (N, 1, H, W) of 0/1: only pixels with mask 1 count (real
clips: the static pixels, where frames differ by rain only; see
:mod:`memderain.data.static_clip`). Without a mask the plain mean is taken.
"""

from __future__ import annotations

import torch

SELF_CONSISTENCY_FORMS = ("clipped", "crossed")


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of ``x`` (N, C, H, W) over the pixels where ``mask`` (N, 1, H, W) is 1 (all
    channels); the plain mean when ``mask`` is None; 0 when the mask is empty."""
    if mask is None:
        return x.mean()
    mask = mask.to(x.dtype)
    count = mask.sum() * x.shape[1]
    return (x * mask).sum() / count.clamp_min(1.0)


def background_loss(b_w: torch.Tensor, b_v: torch.Tensor, mask: torch.Tensor | None = None
                    ) -> torch.Tensor:
    """L_b (Eq. 7): mean |B_w - B_v| between the backgrounds predicted for two frames of one
    scene. Symmetric in (w, v) by construction."""
    return masked_mean((b_w - b_v).abs(), mask)


def cross_loss(
    i_w: torch.Tensor,
    i_v: torch.Tensor,
    b_w: torch.Tensor,
    b_v: torch.Tensor,
    symmetric: bool = True,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """L_c (Eq. 8): mean |I_w - B_v|, the background of one frame against the *other* input.

    Eq. 8 sums over the pair {w, v}, which we read as unordered, so by default both directions
    are used and averaged: (|I_w - B_v| + |I_v - B_w|) / 2 (same scale as one direction, so
    lambda_c keeps its meaning). ``symmetric=False`` gives the single direction w -> v.
    """
    forward = masked_mean((i_w - b_v).abs(), mask)
    if not symmetric:
        return forward
    return 0.5 * (forward + masked_mean((i_v - b_w).abs(), mask))


def self_consistency_loss(
    i_w: torch.Tensor,
    b_w: torch.Tensor,
    r_w: torch.Tensor,
    form: str = "clipped",
    b_v: torch.Tensor | None = None,
    i_v: torch.Tensor | None = None,
    r_v: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """L_s (Eq. 9): mean |I - (B + R)|.

    With B = I - R the literal Eq. 9 is identically zero, so two non-trivial readings exist:

    * ``"clipped"`` (literal Eq. 9 with the model's B): the network clamps B to [-1, 1]
      (``ModelConfig.clamp_background``), so |I_w - (B_w + R_w)| is the amount by which
      I - R leaves the image range: it penalises out-of-range rain predictions. Averaged over
      both frames when ``i_v, r_v`` and ``b_v`` are given (Eq. 9 sums over w in T).
    * ``"crossed"``: |I_w - (B_v + R_w)| (and |I_v - (B_w + R_v)|): frame w must be explained by
      the *other* frame's background plus its own rain. Needs ``b_v`` (and ``i_v, r_v`` for the
      second direction).
    """
    if form not in SELF_CONSISTENCY_FORMS:
        raise ValueError(f"self-consistency form must be one of {SELF_CONSISTENCY_FORMS}, got {form!r}")
    if form == "clipped":
        loss = masked_mean((i_w - (b_w + r_w)).abs(), mask)
        if i_v is not None and r_v is not None and b_v is not None:
            loss = 0.5 * (loss + masked_mean((i_v - (b_v + r_v)).abs(), mask))
        return loss
    if b_v is None:
        raise ValueError("crossed self-consistency needs b_v, the other frame's background")
    loss = masked_mean((i_w - (b_v + r_w)).abs(), mask)
    if i_v is not None and r_v is not None:
        loss = 0.5 * (loss + masked_mean((i_v - (b_w + r_v)).abs(), mask))
    return loss


def pseudo_gt_l1_loss(background: torch.Tensor, target: torch.Tensor,
                      mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean |B - B_pseudo|: the supervised L1 of the ablation baselines B_a / B_b (Sec. IV-E1),
    where the target is the temporal average/median of the scene (footnote 4)."""
    return masked_mean((background - target).abs(), mask)
