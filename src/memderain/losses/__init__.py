"""Training losses of Sec. III-D: L_b (Eq. 7), L_c (Eq. 8), L_s (Eq. 9), the background
selective whitening loss L_w (Eq. 10-13), their weighted sum (Eq. 14), the pseudo-GT L1 of the
ablation baselines, and the extra terms of the authors' public code."""

from memderain.losses.bsw import bsw_loss, bsw_mask, instance_covariance, kmeans_1d, pair_variance
from memderain.losses.extra import compactness_loss, ssim, ssim_consistency_loss
from memderain.losses.reconstruction import (
    background_loss,
    cross_loss,
    pseudo_gt_l1_loss,
    self_consistency_loss,
)
from memderain.losses.total import pseudo_gt_loss, siamese_loss

__all__ = [
    "background_loss",
    "bsw_loss",
    "bsw_mask",
    "compactness_loss",
    "cross_loss",
    "instance_covariance",
    "kmeans_1d",
    "pair_variance",
    "pseudo_gt_l1_loss",
    "pseudo_gt_loss",
    "self_consistency_loss",
    "siamese_loss",
    "ssim",
    "ssim_consistency_loss",
]
