"""Tiling: grid geometry, blending weights, and agreement with a whole-image forward pass."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from memderain.config import ModelConfig
from memderain.inference.tiling import (
    MEMDERAIN_RECEPTIVE_RADIUS,
    blend_profile,
    blend_weights,
    tile_grid,
    tile_spans,
    tiled_forward,
)
from memderain.model import MemDerain


@pytest.mark.parametrize("length", [1, 7, 64, 65, 100, 333, 1000, 1001])
@pytest.mark.parametrize("tile,overlap", [(64, 0), (64, 16), (96, 40), (128, 120)])
def test_tile_spans_cover_aligned_overlapping_and_end_at_border(length, tile, overlap):
    spans = tile_spans(length, tile, overlap)
    if length <= tile:
        assert spans == [(0, length)]
        return
    assert spans[0][0] == 0 and spans[-1][1] == length
    for s, e in spans:
        assert s % 8 == 0
    for s, e in spans[:-1]:
        assert e - s == tile
    s, e = spans[-1]
    assert tile <= e - s < tile + 8
    for (s0, e0), (s1, e1) in itertools.pairwise(spans):
        assert s0 < s1 and e1 > e0  # strictly advancing
        assert e0 - s1 >= overlap  # neighbours overlap by at least `overlap`


def test_tile_spans_reject_bad_arguments():
    with pytest.raises(ValueError):
        tile_spans(100, 60, 8)  # not a multiple of 8
    with pytest.raises(ValueError):
        tile_spans(100, 64, 64)  # overlap must be < tile


def test_blend_profile_shape_and_partition_of_unity():
    overlap, margin, n = 32, 8, 80
    both = blend_profile(n, overlap, margin, True, True)
    assert torch.all(both[:margin] == 0) and torch.all(both[-margin:] == 0)
    assert torch.all(both[overlap - margin : n - overlap + margin] == 1)
    assert torch.all(blend_profile(n, overlap, margin, False, False) == 1)
    # two neighbours overlapping by exactly `overlap` px: weights sum to 1 there
    right_end_of_a = blend_profile(n, overlap, margin, False, True)[-overlap:]
    left_end_of_b = blend_profile(n, overlap, margin, True, False)[:overlap]
    torch.testing.assert_close(right_end_of_a + left_end_of_b, torch.ones(overlap))


@pytest.mark.parametrize(
    "hw,tile,overlap,margin", [((203, 150), 64, 16, 4), ((90, 300), 48, 40, 20)]
)
def test_every_pixel_gets_positive_weight(hw, tile, overlap, margin):
    h, w = hw
    total = torch.zeros(h, w)
    for box in tile_grid(h, w, tile, overlap):
        t, b, l, r = box
        total[t:b, l:r] += blend_weights(box, h, w, overlap, margin)
    assert total.min() > 0


def test_identity_and_local_filter_are_reproduced_exactly():
    """A 3x3 filter has receptive radius 1, so margin >= 1 removes every zero-padding effect."""
    x = torch.rand(2, 3, 77, 91)
    calls = []

    def identity(t):
        calls.append(t.shape[-2:])
        return t

    torch.testing.assert_close(tiled_forward(identity, x, 32, 16), x)
    assert len(calls) > 4 and all(h < 40 and w < 40 for h, w in calls)  # bounded tile size
    kernel = torch.rand(3, 3, 3, 3)

    def filt(t):
        return F.conv2d(t, kernel, padding=1)

    torch.testing.assert_close(tiled_forward(filt, x, 32, 16, margin=1), filt(x))


def _interval_radius() -> int:
    """Receptive radius of Table I by backward propagation of 1-D index intervals (independent
    of the model code): conv3x3 i <- [i-1, i+1]; 2x2 pool j <- [2j, 2j+1]; stride-2 transposed
    conv o <- {i : |o - 2i| <= 1}; skip concatenations take the union."""

    def conv(iv, n=2):
        return (iv[0] - n, iv[1] + n)

    def pool(iv):
        return (2 * iv[0], 2 * iv[1] + 1)

    def up(iv):
        return (math.ceil((iv[0] - 1) / 2), math.floor((iv[1] + 1) / 2))

    def union(a, b):
        return (min(a[0], b[0]), max(a[1], b[1]))

    radius = 0
    for o in range(800, 808):  # the 8 phases of the pooling grid
        d1 = conv((o, o), 1 + 2)  # output conv + conv_D1a/b
        d2 = conv(up(d1))
        d3 = conv(up(d2))
        q = conv(up(d3))  # conv_D4a/b over {q, p_hat}; the memory read is per location
        e3 = union(d3, pool(conv(q)))
        e2 = union(d2, pool(conv(e3)))
        e1 = union(d1, pool(conv(e2)))
        lo, hi = conv(e1)
        radius = max(radius, o - lo, hi - o)
    return radius


def test_receptive_radius_constant_matches_derivation_and_perturbation():
    """Changing every input pixel farther than R from a pixel (per axis) leaves its output
    unchanged, for the phases of the pooling grid where the reach is largest."""
    assert MEMDERAIN_RECEPTIVE_RADIUS == _interval_radius() == 75
    r = MEMDERAIN_RECEPTIVE_RADIUS
    model = _tiny_model()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 176, 176, generator=g) * 2 - 1
    with torch.inference_mode():
        base = model(x).rain
        for py, px in [(2, 6), (6, 2)]:
            cy, cx = 80 + py, 80 + px
            x2 = torch.rand(x.shape, generator=g) * 2 - 1
            x2[..., cy - r : cy + r + 1, cx - r : cx + r + 1] = x[
                ..., cy - r : cy + r + 1, cx - r : cx + r + 1
            ]
            torch.testing.assert_close(
                model(x2).rain[..., cy, cx], base[..., cy, cx], atol=1e-6, rtol=0
            )


def _tiny_model() -> MemDerain:
    """C=8 net with He-initialised convs: unlike PyTorch's default init (whose signal fades
    with depth), the deep 1/8-scale path then matters, so tile seams would show."""
    model = MemDerain(ModelConfig(channels=8, num_items=4)).eval()
    for mod in model.modules():
        if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
            nn.init.zeros_(mod.bias)
    return model


def test_tiled_memderain_equals_whole_image_when_margin_covers_receptive_field():
    """Tolerance: 1e-5 on [-1, 1] outputs, i.e. float rounding only.

    Why it can be that tight: the memory read (Eq. 2-4) is per location and everything else is
    convolution, so an output pixel depends only on inputs within R = 75 px (per axis, see
    MEMDERAIN_RECEPTIVE_RADIUS). Tile origins are multiples of 8 (same max-pool grid) and the
    last tiles end at the odd-sized border (same reflect padding), so the only difference
    between a tile and the whole image is zero padding at internal tile edges, whose effect
    stays within R px of those edges. Blending weights are zero within margin >= R px of every
    internal edge, so each output pixel is a weighted mean of values that are all exact.
    """
    model = _tiny_model()
    x = torch.rand(1, 3, 200, 215) * 2 - 1
    r = MEMDERAIN_RECEPTIVE_RADIUS
    with torch.inference_mode():
        whole = model(x).rain
        tiled = tiled_forward(lambda t: model(t).rain, x, tile=176, overlap=2 * r + 2, margin=r + 1)
    assert len(tile_grid(200, 215, 176, 2 * r + 2)) == 6  # 2 x 3, odd-sized last column
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)


def test_small_margin_differs_only_near_internal_tile_edges():
    """With margin < R, outputs may differ, but only where some tile with non-zero weight has
    the pixel within R px of one of its internal edges; everywhere else they agree to 1e-5."""
    model = _tiny_model()
    h, w, tile, overlap, margin = 250, 301, 200, 32, 8
    x = torch.rand(1, 3, h, w) * 2 - 1
    r = MEMDERAIN_RECEPTIVE_RADIUS
    with torch.inference_mode():
        whole = model(x).rain
        tiled = tiled_forward(lambda t: model(t).rain, x, tile, overlap, margin)
    exposed = torch.zeros(h, w, dtype=torch.bool)
    for box in tile_grid(h, w, tile, overlap):
        t, b, l, rt = box
        near = torch.zeros(b - t, rt - l, dtype=torch.bool)
        if t > 0:
            near[:r] = True
        if b < h:
            near[-r:] = True
        if l > 0:
            near[:, :r] = True
        if rt < w:
            near[:, -r:] = True
        exposed[t:b, l:rt] |= near & (blend_weights(box, h, w, overlap, margin) > 0)
    diff = (tiled - whole).abs().amax(dim=(0, 1))
    assert diff[~exposed].max() <= 1e-5
    assert diff[exposed].max() > 1e-3  # seams do show with a small margin: the check can fail
