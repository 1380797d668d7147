"""Background selective whitening (BSW) loss, Sec. III-D4, Eq. 10-13.

Pipeline for one Siamese pair (query maps q_w, q_v of the two frames, (N, C, h, w)):

1. Sigma_s(q): instance-normalise each channel of q over its h*w positions, then take the
   C x C covariance (1/hw) q q^T per sample (a correlation matrix: diagonal = 1).
2. V = element-wise variance of Sigma_s across the two frames (Eq. 10-11), which equals
   (Sigma_w - Sigma_v)^2 / 4.
3. Split the strict-upper-triangle entries of V (per sample; the matrices are symmetric and the
   diagonal of a correlation matrix is constant) into ``groups`` (h = 4) clusters by 1-D
   k-means; the ``low_groups`` (l = 2) clusters with the lowest centres form G_low.
4. M = 1 on G_low (Eq. 12), symmetric, computed without gradient.
5. L_w = mean over entries and over both frames of |Sigma_s * M| (Eq. 13): the covariances that
   do not change between the frames (background) are pushed to zero ("whitened"), those that
   change with the rain are left alone.

The mean in step 5 runs over all strict-upper-triangle entries (masked ones count as 0), so
L_w stays in [0, 1] and does not depend on C. Pure torch, CPU or GPU.
"""

from __future__ import annotations

import torch

IN_EPS = 1e-5


def instance_covariance(query: torch.Tensor, eps: float = IN_EPS,
                        weight: torch.Tensor | None = None) -> torch.Tensor:
    """Sigma_s: covariance (N, C, C) of the instance-normalised query map (N, C, h, w).

    ``weight`` (N, 1, h, w) of 0/1 restricts the statistics to the positions with weight 1
    (real clips: query cells whose pixels are all static); None uses every position."""
    n, c = query.shape[:2]
    f = query.reshape(n, c, -1).float()
    if weight is None:
        f = f - f.mean(dim=2, keepdim=True)
        f = f / torch.sqrt(f.pow(2).mean(dim=2, keepdim=True) + eps)
        return f @ f.transpose(1, 2) / f.shape[2]
    w = weight.reshape(n, 1, -1).to(f.dtype)
    total = w.sum(dim=2, keepdim=True).clamp_min(1.0)
    f = f - (f * w).sum(dim=2, keepdim=True) / total
    f = f / torch.sqrt((f.pow(2) * w).sum(dim=2, keepdim=True) / total + eps)
    return (f * w) @ f.transpose(1, 2) / total


def pair_variance(sigma_w: torch.Tensor, sigma_v: torch.Tensor) -> torch.Tensor:
    """V (Eq. 10-11): element-wise variance of two covariance matrices."""
    mu = 0.5 * (sigma_v + sigma_w)  # Eq. 10
    return 0.5 * ((sigma_v - mu) ** 2 + (sigma_w - mu) ** 2)  # Eq. 11


@torch.no_grad()
def kmeans_1d(values: torch.Tensor, k: int = 4, iters: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched 1-D k-means (Lloyd) of ``values`` (B, E) into ``k`` clusters per row.

    Deterministic: centres start at the quantiles (j + 0.5) / k of each row. In 1-D every
    cluster is a run of the sorted values between the midpoints of consecutive centres, so an
    iteration is a ``searchsorted`` plus prefix sums (a value on a midpoint goes to the lower
    cluster, as ``argmin`` of the distances would). An empty cluster keeps its centre.
    Returns (labels (B, E) long, centres (B, k) ascending); labels are *ranks*: 0 = lowest centre.
    """
    values = values.float()
    b, e = values.shape
    ordered, _ = values.sort(dim=1)
    probs = (torch.arange(k, dtype=values.dtype, device=values.device) + 0.5) / k
    centres = torch.quantile(values, probs, dim=1).t().contiguous()  # (B, k), ascending
    zero = values.new_zeros(b, 1)
    prefix = torch.cat([zero, ordered.cumsum(dim=1)], dim=1)  # (B, E + 1)
    for _ in range(iters):
        mids = 0.5 * (centres[:, 1:] + centres[:, :-1])  # (B, k - 1)
        cuts = torch.searchsorted(ordered, mids.contiguous(), right=True)  # values <= mid
        ends = torch.cat([cuts, torch.full_like(cuts[:, :1], e)], dim=1)  # (B, k)
        starts = torch.cat([torch.zeros_like(cuts[:, :1]), cuts], dim=1)
        counts = (ends - starts).to(values.dtype)
        sums = prefix.gather(1, ends) - prefix.gather(1, starts)
        new = torch.where(counts > 0, sums / counts.clamp_min(1), centres)
        if torch.equal(new, centres):
            break
        centres = new
    mids = 0.5 * (centres[:, 1:] + centres[:, :-1])
    labels = torch.searchsorted(mids.contiguous(), values.contiguous(), right=False)
    return labels, centres


@torch.no_grad()
def bsw_mask(
    variance: torch.Tensor, groups: int = 4, low_groups: int = 2, iters: int = 10
) -> torch.Tensor:
    """M (Eq. 12) for V (N, C, C): 1 where V[i, j] (i < j) falls in the ``low_groups`` lowest of
    ``groups`` 1-D k-means clusters of that sample's strict upper triangle, mirrored to j > i;
    0 on the diagonal. Returned detached, same dtype as ``variance``."""
    if not 1 <= low_groups <= groups:
        raise ValueError(f"need 1 <= low_groups <= groups, got l={low_groups}, h={groups}")
    n, c, _ = variance.shape
    iu = torch.triu_indices(c, c, offset=1, device=variance.device)
    upper = variance.detach()[:, iu[0], iu[1]]  # (N, E)
    labels, _ = kmeans_1d(upper, groups, iters)
    low = (labels < low_groups).to(variance.dtype)
    mask = variance.new_zeros(n, c, c)
    mask[:, iu[0], iu[1]] = low
    return mask + mask.transpose(1, 2)


def bsw_loss(
    query_w: torch.Tensor,
    query_v: torch.Tensor,
    groups: int = 4,
    low_groups: int = 2,
    iters: int = 10,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """L_w (Eq. 13) for the query maps of the two frames of a pair, (N, C, h, w) each.

    mean over both frames and all strict-upper-triangle entries of |Sigma_s * M|; gradients flow
    into Sigma_s (hence the encoder), never through M. A pixel ``mask`` (N, 1, H, W) keeps only
    the query cells whose pixels all have mask 1 (min-pooled to the query grid).
    """
    weight = None
    if mask is not None:
        h, w = query_w.shape[-2:]
        weight = -torch.nn.functional.adaptive_max_pool2d(-mask.float(), (h, w))
    sigma_w = instance_covariance(query_w, weight=weight)
    sigma_v = instance_covariance(query_v, weight=weight)
    mask = bsw_mask(pair_variance(sigma_w.detach(), sigma_v.detach()), groups, low_groups, iters)
    c = sigma_w.shape[1]
    entries = max(c * (c - 1), 1)  # off-diagonal entries (mask and Sigma are symmetric)
    per_frame = [(s * mask).abs().sum(dim=(1, 2)) / entries for s in (sigma_w, sigma_v)]
    return 0.5 * (per_frame[0] + per_frame[1]).mean()
