"""Background selective whitening loss (Eq. 10-13): covariance, variance, k-means, mask, loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memderain.losses.bsw import (
    bsw_loss,
    bsw_mask,
    instance_covariance,
    kmeans_1d,
    pair_variance,
)


def test_instance_covariance_is_the_correlation_matrix():
    g = torch.Generator().manual_seed(0)
    q = torch.rand(2, 5, 4, 6, generator=g) * torch.arange(1, 6).view(1, 5, 1, 1)
    sigma = instance_covariance(q, eps=0.0)
    for n in range(2):
        ref = np.corrcoef(q[n].reshape(5, -1).double().numpy())
        np.testing.assert_allclose(sigma[n].numpy(), ref, atol=1e-5)


def test_pair_variance_is_elementwise_two_sample_variance():
    a = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    b = torch.tensor([[[1.0, 0.0], [5.0, 4.5]]])
    v = pair_variance(a, b)
    ref = np.var(np.stack([a.numpy(), b.numpy()]), axis=0)  # population variance of 2 samples
    np.testing.assert_allclose(v.numpy(), ref, atol=1e-7)
    assert torch.allclose(v, (a - b) ** 2 / 4)


def test_kmeans_1d_matches_sklearn_lloyd_with_same_init():
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(m, 0.3, 20) for m in (0.0, 2.0, 5.0, 9.0)]).astype(np.float32)
    rng.shuffle(values)
    labels, centres = kmeans_1d(torch.from_numpy(values)[None], k=4, iters=50)
    init = np.quantile(values, (np.arange(4) + 0.5) / 4).reshape(-1, 1)
    km = KMeans(4, init=init, n_init=1, algorithm="lloyd", max_iter=50, tol=0).fit(values[:, None])
    ref_centres = np.sort(km.cluster_centers_[:, 0])
    np.testing.assert_allclose(centres[0].numpy(), ref_centres, atol=1e-4)
    # same partition (labels are ranks of the sorted centres)
    ref_rank = np.argsort(np.argsort(km.cluster_centers_[:, 0]))[km.labels_]
    np.testing.assert_array_equal(labels[0].numpy(), ref_rank)


def _sym(n, entries):
    m = torch.zeros(n, n)
    for (i, j), val in entries.items():
        m[i, j] = m[j, i] = val
    return m


def test_mask_selects_exactly_the_entries_equal_across_frames():
    c = 8
    pairs = [(i, j) for i in range(c) for j in range(i + 1, c)]  # 28 upper entries
    g = torch.Generator().manual_seed(0)
    base = {p: float(torch.rand(1, generator=g) * 2 - 1) for p in pairs}
    equal = set(pairs[::2]) | {pairs[1]}  # 15 entries identical in both frames
    sigma_w, sigma_v = _sym(c, base), dict(base)
    for k, p in enumerate(pairs):
        if p not in equal:  # the others differ a lot, at two different magnitudes
            sigma_v[p] = base[p] + (0.8 if k % 3 else 1.6)
    sigma_v = _sym(c, sigma_v)
    mask = bsw_mask(pair_variance(sigma_w[None], sigma_v[None]))[0]
    expected = _sym(c, {p: 1.0 for p in equal})
    assert torch.equal(mask, expected)
    assert torch.equal(mask, mask.t()) and mask.diagonal().abs().sum() == 0


def test_mask_takes_the_two_lowest_of_four_variance_groups_per_sample():
    c = 9  # 36 upper entries, 9 per group
    pairs = [(i, j) for i in range(c) for j in range(i + 1, c)]
    levels = torch.tensor([0.0, 0.01, 1.0, 4.0])
    perm = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(1))
    group = {pairs[int(k)]: idx % 4 for idx, k in enumerate(perm)}
    var = _sym(c, {p: float(levels[gr]) + 1e-4 * (hash(p) % 7) for p, gr in group.items()})
    # second sample: reversed order of groups -> a different mask, computed independently
    var2 = _sym(c, {p: float(levels[3 - gr]) for p, gr in group.items()})
    mask = bsw_mask(torch.stack([var, var2]), groups=4, low_groups=2)
    assert torch.equal(mask[0], _sym(c, {p: 1.0 for p, gr in group.items() if gr < 2}))
    assert torch.equal(mask[1], _sym(c, {p: 1.0 for p, gr in group.items() if gr >= 2}))
    # l = 1: only the lowest group
    mask1 = bsw_mask(var[None], groups=4, low_groups=1)[0]
    assert torch.equal(mask1, _sym(c, {p: 1.0 for p, gr in group.items() if gr == 0}))


def test_mask_is_not_differentiated_and_loss_gradient_uses_fixed_mask():
    g = torch.Generator().manual_seed(0)
    q_w = torch.rand(2, 6, 4, 4, generator=g).requires_grad_(True)
    q_v = torch.rand(2, 6, 4, 4, generator=g).requires_grad_(True)
    var = pair_variance(instance_covariance(q_w), instance_covariance(q_v))
    assert var.requires_grad
    mask = bsw_mask(var)
    assert not mask.requires_grad and mask.grad_fn is None
    loss = bsw_loss(q_w, q_v)
    loss.backward()
    # reference: the same loss with the mask as a constant, computed by hand
    qw2, qv2 = q_w.detach().clone().requires_grad_(True), q_v.detach().clone().requires_grad_(True)
    const = mask.clone()
    ref = 0.5 * sum(
        ((instance_covariance(q) * const).abs().sum(dim=(1, 2)) / (6 * 5)).mean() for q in (qw2, qv2)
    )
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    assert torch.allclose(q_w.grad, qw2.grad, atol=1e-7)
    assert torch.allclose(q_v.grad, qv2.grad, atol=1e-7)
    assert q_w.grad.abs().sum() > 0


def test_loss_whitens_background_channels_of_real_query_maps():
    """Channels 0-5 are identical in both frames (background); channel 6 (rain) follows the
    background in one frame and opposes it in the other. The mask covers exactly the
    correlations among the background channels, and the loss is their mean |correlation|."""
    g = torch.Generator().manual_seed(0)
    base = torch.rand(1, 1, 6, 6, generator=g)
    bg = base + 0.5 * torch.rand(1, 6, 6, 6, generator=g)  # correlated background channels
    noise = 0.2 * torch.rand(1, 1, 6, 6, generator=g)
    q_w = torch.cat([bg, base + noise], dim=1)
    q_v = torch.cat([bg, 1 - base + noise], dim=1)
    sig_w, sig_v = instance_covariance(q_w), instance_covariance(q_v)
    mask = bsw_mask(pair_variance(sig_w, sig_v))[0]
    expected = torch.zeros(7, 7)
    expected[:6, :6] = 1.0
    expected.fill_diagonal_(0.0)
    assert torch.equal(mask, expected)
    ref = (sig_w[0, :6, :6].abs().sum() - sig_w[0, :6, :6].diagonal().abs().sum()) / (7 * 6)
    assert bsw_loss(q_w, q_v).item() == pytest.approx(ref.item(), rel=1e-5)


@pytest.mark.cuda
def test_bsw_on_cuda_matches_cpu():
    q_w, q_v = torch.rand(2, 8, 4, 4), torch.rand(2, 8, 4, 4)
    cpu = bsw_loss(q_w, q_v)
    gpu = bsw_loss(q_w.cuda(), q_v.cuda())
    assert gpu.item() == pytest.approx(cpu.item(), rel=1e-4)
