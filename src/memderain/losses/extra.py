"""Extra terms of the authors' public code that the paper does not list (``official`` preset).

* :func:`ssim` / :func:`ssim_consistency_loss`: 1 - SSIM(B_w, B_v), a structural version of
  the background consistency L_b (Eq. 7).
* :func:`compactness_loss`: the feature-compactness loss of the memory module the paper builds
  on (Park et al., CVPR 2020): every query is pulled towards its nearest memory item.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _gaussian_window(size: int, sigma: float, channels: int, like: torch.Tensor) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32, device=like.device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :]).to(like.dtype)
    return window.expand(channels, 1, size, size).contiguous()


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Differentiable mean SSIM (Wang et al. 2004) of NCHW images, Gaussian 11x11 window,
    sigma 1.5, 'valid' filtering (no padded border). Windows larger than the image shrink to it.
    Returns a scalar (mean over batch, channels and positions)."""
    c = x.shape[1]
    size = min(window_size, x.shape[-1], x.shape[-2])
    window = _gaussian_window(size, sigma, c, x)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    # one grouped conv for the five local statistics
    stacked = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    stats = F.conv2d(stacked, window.repeat(5, 1, 1, 1), groups=5 * c)
    mu_x, mu_y, e_xx, e_yy, e_xy = stats.split(c, dim=1)
    var_x, var_y = e_xx - mu_x**2, e_yy - mu_y**2
    cov = e_xy - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return (num / den).mean()


def ssim_consistency_loss(b_w: torch.Tensor, b_v: torch.Tensor) -> torch.Tensor:
    """1 - SSIM(B_w, B_v) of two backgrounds in [-1, 1] (compared in [0, 1])."""
    return 1.0 - ssim((b_w + 1) / 2, (b_v + 1) / 2, data_range=1.0)


def compactness_loss(query: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """Mean squared distance between each L2-normalised query q^k (N, C, h, w) and its nearest
    memory item (cosine similarity of Eq. 3, items (M, C), no gradient to the items)."""
    q = F.normalize(query.permute(0, 2, 3, 1).reshape(-1, query.shape[1]), dim=1)
    p = F.normalize(items.detach().to(q.dtype), dim=1)
    nearest = (q @ p.t()).argmax(dim=1)
    return F.mse_loss(q, p[nearest])
