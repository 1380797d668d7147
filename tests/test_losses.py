"""Pixel losses (Eq. 7-9), extra terms and the total (Eq. 14) on tiny hand-made tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memderain.losses import (
    background_loss,
    compactness_loss,
    cross_loss,
    pseudo_gt_l1_loss,
    self_consistency_loss,
    siamese_loss,
    ssim,
    ssim_consistency_loss,
)
from memderain.model.derainer import DerainOutput
from memderain.training.config import LossConfig


def _img(values):
    """(1, 1, 1, W) image from a list of pixel values."""
    return torch.tensor(values, dtype=torch.float32).view(1, 1, 1, -1)


def test_background_loss_is_mean_abs_difference():
    b_w, b_v = _img([0.0, 0.5, -1.0, 0.2]), _img([1.0, 0.5, 0.0, -0.2])
    # |0-1| + 0 + |-1-0| + |0.2+0.2| = 2.4 over 4 pixels
    assert background_loss(b_w, b_v).item() == pytest.approx(0.6)
    assert background_loss(b_v, b_w).item() == pytest.approx(0.6)
    assert background_loss(b_w, b_w).item() == 0.0


def test_cross_loss_one_direction_and_symmetric():
    i_w, i_v = _img([0.5, 0.5]), _img([0.0, -0.5])
    b_w, b_v = _img([0.4, 0.1]), _img([0.0, 0.5])
    forward = (abs(0.5 - 0.0) + abs(0.5 - 0.5)) / 2  # |I_w - B_v|
    backward = (abs(0.0 - 0.4) + abs(-0.5 - 0.1)) / 2  # |I_v - B_w|
    assert cross_loss(i_w, i_v, b_w, b_v, symmetric=False).item() == pytest.approx(forward)
    assert cross_loss(i_w, i_v, b_w, b_v).item() == pytest.approx((forward + backward) / 2)


def test_self_consistency_clipped_measures_out_of_range_part():
    i = _img([0.5, 0.0, -0.9])
    r = _img([-0.8, 0.3, 0.4])  # I - R = 1.3 (clamped to 1), -0.3, -1.3 (clamped to -1)
    b = (i - r).clamp(-1, 1)
    expected = (0.3 + 0.0 + 0.3) / 3  # what the clamp removed
    assert self_consistency_loss(i, b, r, "clipped").item() == pytest.approx(expected, abs=1e-6)
    # unclamped B = I - R makes the literal Eq. 9 vanish
    assert self_consistency_loss(i, i - r, r, "clipped").item() == pytest.approx(0.0, abs=1e-7)


def test_self_consistency_clipped_averages_both_frames():
    i_w, r_w = _img([0.5]), _img([-0.8])  # contributes 0.3
    i_v, r_v = _img([0.0]), _img([0.1])  # contributes 0
    b_w, b_v = (i_w - r_w).clamp(-1, 1), (i_v - r_v).clamp(-1, 1)
    val = self_consistency_loss(i_w, b_w, r_w, "clipped", b_v=b_v, i_v=i_v, r_v=r_v)
    assert val.item() == pytest.approx(0.15, abs=1e-6)


def test_self_consistency_crossed_by_hand():
    i_w, i_v = _img([0.6, 0.2]), _img([0.1, 0.2])
    r_w, r_v = _img([0.5, 0.0]), _img([0.0, 0.1])
    b_w, b_v = _img([0.1, 0.2]), _img([0.1, 0.0])
    one = (abs(0.6 - (0.1 + 0.5)) + abs(0.2 - (0.0 + 0.0))) / 2  # |I_w - (B_v + R_w)|
    two = (abs(0.1 - (0.1 + 0.0)) + abs(0.2 - (0.2 + 0.1))) / 2  # |I_v - (B_w + R_v)|
    assert self_consistency_loss(i_w, b_w, r_w, "crossed", b_v=b_v).item() == pytest.approx(one)
    both = self_consistency_loss(i_w, b_w, r_w, "crossed", b_v=b_v, i_v=i_v, r_v=r_v)
    assert both.item() == pytest.approx((one + two) / 2)
    with pytest.raises(ValueError):
        self_consistency_loss(i_w, b_w, r_w, "crossed")
    with pytest.raises(ValueError):
        self_consistency_loss(i_w, b_w, r_w, "literal")


def test_pseudo_gt_l1():
    assert pseudo_gt_l1_loss(_img([0.0, 1.0]), _img([0.5, 0.0])).item() == pytest.approx(0.75)


def test_ssim_matches_skimage_and_identity():
    from skimage.metrics import structural_similarity as sk_ssim

    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 24, 24, generator=g)
    y = (x + 0.2 * torch.randn(2, 3, 24, 24, generator=g)).clamp(0, 1)
    ref = sum(
        sk_ssim(y[n].permute(1, 2, 0).double().numpy(), x[n].permute(1, 2, 0).double().numpy(),
                gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0,
                channel_axis=2)
        for n in range(2)
    ) / 2
    assert ssim(y, x).item() == pytest.approx(ref, abs=1e-4)
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-5)
    # the loss is 1 - SSIM of [-1, 1] images compared in [0, 1]
    loss = ssim_consistency_loss(2 * y - 1, 2 * x - 1)
    assert loss.item() == pytest.approx(1 - ref, abs=1e-4)


def test_compactness_pulls_query_to_nearest_item():
    items = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    on_item = torch.tensor([3.0, 0.0]).view(1, 2, 1, 1)  # normalised (1, 0) = item 0
    assert compactness_loss(on_item, items).item() == pytest.approx(0.0, abs=1e-7)
    diag = torch.tensor([1.0, 0.9]).view(1, 2, 1, 1)  # nearest: item 0
    q = torch.nn.functional.normalize(torch.tensor([1.0, 0.9]), dim=0)
    expected = ((q - items[0]) ** 2).mean().item()
    assert compactness_loss(diag, items).item() == pytest.approx(expected, abs=1e-6)


def _fake_output(b, r, q):
    return DerainOutput(background=b, rain=r, query=q, read_weights=None)


def test_total_is_weighted_sum_and_zero_weights_skip_terms():
    g = torch.Generator().manual_seed(0)
    i_w, i_v = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1, torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    r_w, r_v = 0.5 * torch.randn(2, 3, 16, 16, generator=g), 0.5 * torch.randn(2, 3, 16, 16, generator=g)
    q_w, q_v = torch.rand(2, 8, 2, 2, generator=g), torch.rand(2, 8, 2, 2, generator=g)
    out_w = _fake_output((i_w - r_w).clamp(-1, 1), r_w, q_w)
    out_v = _fake_output((i_v - r_v).clamp(-1, 1), r_v, q_v)
    cfg = LossConfig(lambda_b=1.0, lambda_s=0.1, lambda_c=0.001, lambda_w=0.01)
    total, terms = siamese_loss(cfg, i_w, i_v, out_w, out_v)
    assert set(terms) == {"b", "s", "c", "w"}
    from memderain.losses import bsw_loss

    expected = (
        background_loss(out_w.background, out_v.background)
        + 0.1 * self_consistency_loss(i_w, out_w.background, r_w, "clipped",
                                      b_v=out_v.background, i_v=i_v, r_v=r_v)
        + 0.001 * cross_loss(i_w, i_v, out_w.background, out_v.background)
        + 0.01 * bsw_loss(q_w, q_v)
    )
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    # Table V "L_s + L_b" row: c and w are not computed at all
    total_sb, terms_sb = siamese_loss(
        LossConfig(lambda_c=0.0, lambda_w=0.0), i_w, i_v, out_w, out_v
    )
    assert set(terms_sb) == {"b", "s"}
    assert total_sb.item() == pytest.approx((terms["b"] + 0.1 * terms["s"]).item(), rel=1e-6)
    # official extras: their values, checked independently, and their weights in the total
    cfg_off = LossConfig(lambda_ssim=0.5, lambda_compact=0.01)
    items = torch.nn.functional.normalize(torch.randn(4, 8, generator=g), dim=1)
    total_off, terms_off = siamese_loss(cfg_off, i_w, i_v, out_w, out_v, items=items)
    assert {"ssim", "compact"} <= set(terms_off)
    from skimage.metrics import structural_similarity

    b01 = [((o.background + 1) / 2).numpy() for o in (out_w, out_v)]
    ssim_ref = np.mean([  # Gaussian 11x11, sigma 1.5, population covariance (Wang et al.)
        structural_similarity(b01[0][n], b01[1][n], channel_axis=0, data_range=1.0,
                              gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        for n in range(2)])
    assert terms_off["ssim"].item() == pytest.approx(1 - ssim_ref, abs=1e-5)
    q = torch.cat([q_w, q_v]).permute(0, 2, 3, 1).reshape(-1, 8)
    q = q / q.norm(dim=1, keepdim=True)
    nearest_sq = [min(float(((qi - it) ** 2).mean()) for it in items) for qi in q]
    assert terms_off["compact"].item() == pytest.approx(np.mean(nearest_sq), rel=1e-5)
    expected_off = sum(w * terms_off[k] for k, w in (
        ("b", cfg_off.lambda_b), ("s", cfg_off.lambda_s), ("c", cfg_off.lambda_c),
        ("w", cfg_off.lambda_w), ("ssim", 0.5), ("compact", 0.01)))
    assert total_off.item() == pytest.approx(float(expected_off), rel=1e-6)
