"""Tiling: equal-shape grids, what each tile keeps, the fewest pixels under a budget, and
agreement with a whole-image forward pass."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from memderain.config import ModelConfig
from memderain.inference.tiling import (
    DEFAULT_TILE_PIXELS,
    MEMDERAIN_RECEPTIVE_RADIUS,
    axis_spans,
    plan_tiles,
    tile_length,
    tiled_forward,
)
from memderain.model import MemDerain
from memderain.model.derainer import pad_to_multiple


def _check_axis(spans, length, overlap):
    """Equal spans at aligned origins, kept parts partition [0, length) in order, every kept
    pixel at least overlap // 2 px from an internal edge of its own tile."""
    t = spans[0].length
    assert all(s.length == t for s in spans)
    assert spans[0].start == 0 and spans[0].keep_start == 0 and spans[-1].keep_end == length
    if len(spans) == 1:
        assert (spans[0].start, spans[0].end) == (0, length)
        return
    assert t % 8 == 0 and spans[-1].end == -(-length // 8) * 8  # padded only up to 8k
    for s in spans:
        assert s.start % 8 == 0 and s.start <= s.keep_start < s.keep_end <= s.end
    for a, b in itertools.pairwise(spans):
        assert a.keep_end == b.keep_start  # no gap, no pixel written twice
        assert a.end - b.start >= overlap  # neighbours overlap by at least `overlap`
        assert a.end - a.keep_end >= overlap // 2 and b.keep_start - b.start >= overlap // 2


@pytest.mark.parametrize("length", [9, 64, 65, 100, 333, 1000, 1001, 4000])
@pytest.mark.parametrize("overlap", [0, 16, 40, 64])
def test_axis_spans_are_equal_aligned_and_keep_a_partition(length, overlap):
    for n in range(1, 12):
        if tile_length(length, n, overlap) is None:
            continue
        _check_axis(axis_spans(length, n, overlap), length, overlap)


@pytest.mark.parametrize("hw", [(3000, 4000), (4000, 6000), (1080, 1920), (720, 1280),
                                (1003, 1001), (333, 1001), (77, 91)])
@pytest.mark.parametrize("limits", [{"max_pixels": DEFAULT_TILE_PIXELS},
                                    {"max_pixels": 40_000}, {"max_side": 256},
                                    {"max_side": 64, "max_pixels": 3000}])
def test_plan_fits_the_limits_and_computes_the_fewest_pixels(hw, limits):
    """Against every other grid (rows x columns) of equal tiles within the same limits."""
    h, w = hw
    overlap = 16 if limits.get("max_side") == 64 else 64
    plan = plan_tiles(h, w, overlap=overlap, **limits)
    _check_axis(plan.rows, h, overlap)
    _check_axis(plan.cols, w, overlap)
    th, tw = plan.tile_shape
    assert th * tw <= limits.get("max_pixels", th * tw)
    assert max(th, tw) <= limits.get("max_side", max(th, tw))
    best = math.inf
    for ny, nx in itertools.product(range(1, 70), range(1, 70)):
        ty, tx = tile_length(h, ny, overlap), tile_length(w, nx, overlap)
        if ty is None or tx is None or ty * tx > limits.get("max_pixels", math.inf):
            continue
        if max(ty, tx) > limits.get("max_side", math.inf):
            continue
        best = min(best, nx * ny * tx * ty)
    assert plan.computed_pixels <= best * 1.02  # the tile-count tie-break may cost <= 2 %


def test_default_budget_on_phone_photos():
    """12 and 24 MP: one tile shape, tiles within the memory budget, <= 1.2x the pixels (the
    old 512 px grid with 64 px overlap computed 1.38x for 4000x3000, in 63 tiles)."""
    for h, w in [(3000, 4000), (4000, 6000)]:
        plan = plan_tiles(h, w, max_pixels=DEFAULT_TILE_PIXELS)
        assert plan.tile_shape[0] * plan.tile_shape[1] <= DEFAULT_TILE_PIXELS
        assert plan.overhead < 1.2 and plan.n_tiles < 63
    assert plan_tiles(720, 1280, max_pixels=DEFAULT_TILE_PIXELS).overhead < 1.06


def test_whole_image_when_it_fits_and_bad_arguments():
    assert plan_tiles(300, 200, max_pixels=60_000).whole
    assert plan_tiles(300, 200, max_side=304).whole
    assert not plan_tiles(300, 200, max_pixels=59_999).whole
    with pytest.raises(ValueError, match="multiple of 8"):
        plan_tiles(100, 100, max_side=60)
    with pytest.raises(ValueError, match="longer than the overlap"):
        plan_tiles(300, 300, max_side=64, overlap=64)
    with pytest.raises(ValueError):
        plan_tiles(0, 10)
    with pytest.raises(ValueError):
        plan_tiles(10, 10, overlap=-1)


def test_one_tile_shape_and_exact_for_local_filters():
    """Every call sees the same shape (one compiled model), odd-sized borders included; a
    3x3 filter (receptive radius 1) that pads like the network is reproduced exactly with any
    overlap >= 2: border tiles read the image reflect-padded, as the whole image is."""
    x = torch.rand(2, 3, 77, 91)
    calls = []

    def identity(t):
        calls.append(tuple(t.shape[-2:]))
        return t

    torch.testing.assert_close(tiled_forward(identity, x, max_side=32, overlap=16), x)
    assert len(calls) > 4 and set(calls) == {calls[0]} and max(calls[0]) <= 32
    kernel = torch.rand(3, 3, 3, 3)

    def filt(t):  # pads bottom/right to 8k first, as MemDerain does
        h, w = t.shape[-2:]
        return F.conv2d(pad_to_multiple(t)[0], kernel, padding=1)[..., :h, :w]

    torch.testing.assert_close(tiled_forward(filt, x, max_side=32, overlap=2), filt(x))


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


def test_tiled_memderain_equals_whole_image_when_overlap_covers_receptive_field():
    """Tolerance: 1e-5 on [-1, 1] outputs, i.e. float rounding only.

    Why it can be that tight: the memory read (Eq. 2-4) is per location and everything else is
    convolution, so an output pixel depends only on inputs within R = 75 px (per axis, see
    MEMDERAIN_RECEPTIVE_RADIUS). Tile origins are multiples of 8 (same max-pool grid) and
    tiles past the odd-sized border read it reflect-padded (as the network pads), so the only
    difference between a tile and the whole image is zero padding at internal tile edges, whose
    effect stays within R px of those edges. Each tile keeps only pixels at least
    overlap // 2 >= R + 1 px from its internal edges, so every output pixel is exact.
    """
    model = _tiny_model()
    x = torch.rand(1, 3, 203, 215) * 2 - 1
    r = MEMDERAIN_RECEPTIVE_RADIUS
    plan = plan_tiles(203, 215, max_side=176, overlap=2 * r + 2)
    assert plan.n_tiles == 9 and plan.rows[-1].end == 208  # 3 x 3, the last row padded
    with torch.inference_mode():
        whole = model(x).rain
        tiled = tiled_forward(lambda t: model(t).rain, x, plan)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)


def test_small_overlap_differs_only_near_internal_tile_edges():
    """With overlap // 2 < R, outputs may differ, but only at pixels whose own tile has an
    internal edge within R px; everywhere else they agree to 1e-5."""
    model = _tiny_model()
    h, w = 250, 301
    x = torch.rand(1, 3, h, w) * 2 - 1
    r = MEMDERAIN_RECEPTIVE_RADIUS
    plan = plan_tiles(h, w, max_side=200, overlap=32)
    with torch.inference_mode():
        whole = model(x).rain
        tiled = tiled_forward(lambda t: model(t).rain, x, plan)
    exposed = torch.zeros(h, w, dtype=torch.bool)
    for rs, cs in plan.tiles():
        near = torch.zeros(rs.length, cs.length, dtype=torch.bool)
        if rs.start > 0:
            near[:r] = True
        if rs.keep_end < h:
            near[-r:] = True
        if cs.start > 0:
            near[:, :r] = True
        if cs.keep_end < w:
            near[:, -r:] = True
        part = near[rs.keep_start - rs.start:rs.keep_end - rs.start,
                    cs.keep_start - cs.start:cs.keep_end - cs.start]
        exposed[rs.keep_start:rs.keep_end, cs.keep_start:cs.keep_end] = part
    diff = (tiled - whole).abs().amax(dim=(0, 1))
    assert diff[~exposed].max() <= 1e-5
    assert diff[exposed].max() > 1e-3  # seams do show with a small overlap: the check can fail
