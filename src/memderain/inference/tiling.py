"""Run a fully convolutional network on a large image tile by tile, in bounded memory.

Pure functions: :func:`tile_spans` (1-D grid), :func:`tile_grid` (2-D boxes),
:func:`blend_profile` / :func:`blend_weights` (smooth weights), and :func:`tiled_forward`
(accumulate ``weight * fn(tile)`` and ``weight``, divide at the end).

Why the result matches a whole-image pass: MemDerain is convolutional and its memory read
(Eq. 2-4) is per query location, so an output pixel depends only on the input within the
network's receptive field (radius :data:`MEMDERAIN_RECEPTIVE_RADIUS` px). Tile origins are
multiples of 8, so each tile sees the same 2x2 max-pool / stride-2 grid as the whole image,
and the last tile of a row/column ends at the image border, so border padding is identical too.
What differs is the zero padding of the convolutions at *internal* tile edges; its effect
reaches at most the receptive radius into the tile. Weights are zero within ``margin`` pixels
of internal edges, so with ``margin >= MEMDERAIN_RECEPTIVE_RADIUS`` (75) the two agree up to
float rounding; with the default (smaller) margin they differ slightly, only near tile seams.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from memderain.choices import DEFAULT_OVERLAP

ALIGN = 8  # three 2x2 max-pools in the encoder (Table I)
DEFAULT_TILE = 512

# Receptive-field radius of MemDerain (Table I) in input pixels, per axis. Found by propagating
# index intervals backwards through the layers (3x3 conv: i <- i-1..i+1; 2x2 max-pool: j <- 2j,
# 2j+1; stride-2 transposed conv: o <- i with |o - 2i| <= 1; skips: union of both branches);
# over the 8 phases of the pooling grid an output depends on at most 68 px before it and 75 px
# after it. tests/test_tiling.py re-derives it and checks it by perturbing the input.
MEMDERAIN_RECEPTIVE_RADIUS = 75


def tile_spans(length: int, tile: int, overlap: int, align: int = ALIGN) -> list[tuple[int, int]]:
    """Half-open spans ``(start, end)`` covering ``[0, length)`` along one axis.

    Starts are multiples of ``align``; neighbours overlap by at least ``overlap``; every span is
    ``tile`` long except the last, which ends at ``length`` (so it is ``tile`` to
    ``tile + align - 1`` long). A length that fits in one tile gives one span.
    """
    if tile < align or tile % align:
        raise ValueError(f"tile must be a positive multiple of {align}, got {tile}")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile={tile}), got {overlap}")
    if length <= tile:
        return [(0, length)]
    step = max(align, (tile - overlap) // align * align)
    starts = list(range(0, length - tile, step))  # every start with start + tile < length
    last = (length - tile) // align * align  # aligned, and its span reaches the border
    if last > starts[-1]:
        starts.append(last)
    return [(s, s + tile) for s in starts[:-1]] + [(starts[-1], length)]


def tile_grid(
    height: int, width: int, tile: int, overlap: int, align: int = ALIGN
) -> list[tuple[int, int, int, int]]:
    """Boxes ``(top, bottom, left, right)`` (half-open) of the tiles covering an image."""
    rows, cols = tile_spans(height, tile, overlap, align), tile_spans(width, tile, overlap, align)
    return [(t, b, l, r) for t, b in rows for l, r in cols]


def default_margin(overlap: int) -> int:
    """Pixels next to an internal tile edge that get zero weight: a quarter of the overlap."""
    return overlap // 4


def blend_profile(
    n: int, overlap: int, margin: int, ramp_start: bool, ramp_end: bool
) -> torch.Tensor:
    """1-D weights (n,) for a span: 0 for ``margin`` px at an internal edge, then a raised-cosine
    ramp over the next ``overlap - 2 * margin`` px, then 1. Image-border ends are not ramped.

    Across an overlap of exactly ``overlap`` px the two neighbours' weights sum to 1.
    """
    w = torch.ones(n, dtype=torch.float64)
    if overlap <= 0:
        return w.float()
    width = max(overlap - 2 * margin, 1)
    d = torch.arange(n, dtype=torch.float64)

    def ramp(dist: torch.Tensor) -> torch.Tensor:
        t = ((dist + 0.5 - margin) / width).clamp(0, 1)
        return 0.5 - 0.5 * torch.cos(math.pi * t)

    if ramp_start:
        w = w * ramp(d)
    if ramp_end:
        w = w * ramp(n - 1 - d)
    return w.float()


def blend_weights(
    box: tuple[int, int, int, int], height: int, width: int, overlap: int, margin: int
) -> torch.Tensor:
    """(h, w) weight map of one tile box; only edges inside the image are ramped."""
    top, bottom, left, right = box
    wy = blend_profile(bottom - top, overlap, margin, top > 0, bottom < height)
    wx = blend_profile(right - left, overlap, margin, left > 0, right < width)
    return wy[:, None] * wx[None, :]


def tiled_forward(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    margin: int | None = None,
    align: int = ALIGN,
) -> torch.Tensor:
    """``fn`` applied to ``x`` (N, C, H, W) tile by tile, blended with smooth weights.

    ``fn`` maps (N, C, h, w) to (N, C', h, w). Memory: ``x``, the (N, C', H, W) accumulator and
    an (H, W) weight map, plus one tile's forward pass. If the image fits in one tile, ``fn`` is
    called once on the whole image. ``margin`` defaults to :func:`default_margin`; it must be at
    most ``overlap // 2`` so that every pixel keeps a positive weight.
    """
    height, width = x.shape[-2:]
    margin = default_margin(overlap) if margin is None else margin
    if not 0 <= margin <= overlap // 2:
        raise ValueError(f"margin must be in [0, overlap // 2 = {overlap // 2}], got {margin}")
    boxes = tile_grid(height, width, tile, overlap, align)
    if len(boxes) == 1:
        return fn(x)
    out: torch.Tensor | None = None
    weight_sum = torch.zeros(height, width, dtype=torch.float32, device=x.device)
    for box in boxes:
        top, bottom, left, right = box
        y = fn(x[..., top:bottom, left:right])
        if out is None:
            out = torch.zeros(*y.shape[:-2], height, width, dtype=y.dtype, device=y.device)
        w = blend_weights(box, height, width, overlap, margin).to(x.device)
        out[..., top:bottom, left:right] += y * w.to(y.dtype)
        weight_sum[top:bottom, left:right] += w
    return out / weight_sum.to(out.dtype)
