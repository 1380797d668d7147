"""Run a fully convolutional network on a large image tile by tile, in bounded memory.

A :class:`TilePlan` covers an image with tiles that all have **one shape** (so a compiled
static-shape model, OpenVINO's, is built once per image size and reused by every tile), whose
origins are multiples of 8, and which overlap their neighbours by at least ``overlap`` px.
Each tile's output is used only on the part nearer its centre than its neighbours' (the
overlap is cut in the middle), so every output pixel comes from a tile whose internal edges
are at least ``overlap // 2`` px away; no blending, no full-size accumulator or weight map.
:func:`plan_tiles` picks the grid that computes the fewest pixels under a per-tile pixel
budget (the memory bound); :func:`tiled_forward` runs a function through a plan on tensors,
and ``Derainer`` runs it on uint8 images without holding them in float.

Why the result matches a whole-image pass: MemDerain is convolutional and its memory read
(Eq. 2-4) is per query location, so an output pixel depends only on the input within the
network's receptive field (radius :data:`MEMDERAIN_RECEPTIVE_RADIUS` px). Tile origins are
multiples of 8, so each tile sees the same 2x2 max-pool / stride-2 grid as the whole image.
Tiles that reach past the bottom/right border read the image padded the way the network pads
it (reflect up to a multiple of 8), so border tiles see what the whole image sees. What differs
is the zero padding of the convolutions at *internal* tile edges; its effect reaches at most
the receptive radius into the tile, and with the shipped weights far less: measured, the
output moves by at most 0.14 grey levels 32 px from an internal edge and by nothing from 38 px
on (docs/inference.md). With ``overlap >= 2 * MEMDERAIN_RECEPTIVE_RADIUS + 2`` tiled and
whole-image outputs agree to float rounding for any weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from memderain.choices import DEFAULT_OVERLAP

ALIGN = 8  # three 2x2 max-pools in the encoder (Table I)

# Default per-tile pixel budget for images above the whole-image limit. OpenVINO f32 holds
# about 1.07 GiB of activations per megapixel of tile (PyTorch about 1.8 GiB), so tiles of
# at most 0.5 MP keep a 12 MP photo under 1 GiB of peak RSS (docs/inference.md, Peak memory).
DEFAULT_TILE_PIXELS = 512 * 1024

# Receptive-field radius of MemDerain (Table I) in input pixels, per axis. Found by propagating
# index intervals backwards through the layers (3x3 conv: i <- i-1..i+1; 2x2 max-pool: j <- 2j,
# 2j+1; stride-2 transposed conv: o <- i with |o - 2i| <= 1; skips: union of both branches);
# over the 8 phases of the pooling grid an output depends on at most 68 px before it and 75 px
# after it. tests/test_tiling.py re-derives it and checks it by perturbing the input.
MEMDERAIN_RECEPTIVE_RADIUS = 75

# A tile costs a little beyond its pixels (a call into the runtime, conversions): when two
# grids compute about as many pixels, the one with fewer tiles wins (in pixels per tile).
_TILE_COST_PIXELS = 4096


@dataclass(frozen=True)
class Span:
    """One tile along one axis: it computes ``[start, end)`` (``end`` may pass the image's
    length, into the padding) and writes ``[keep_start, keep_end)`` of the output."""

    start: int
    end: int
    keep_start: int
    keep_end: int

    @property
    def length(self) -> int:
        return self.end - self.start


def _round_up(v: int, align: int = ALIGN) -> int:
    return -(-v // align) * align


def tile_length(length: int, n: int, overlap: int, align: int = ALIGN) -> int | None:
    """Shortest common tile length (a multiple of ``align``) with which ``n`` tiles at aligned
    origins cover ``length`` (padded up to a multiple of ``align``) and overlap their
    neighbours by at least ``overlap``; ``length`` itself for ``n == 1``; None when ``n``
    tiles cannot all be needed (a shorter grid does it)."""
    if n == 1:
        return length
    padded = _round_up(length, align)
    t = _round_up(math.ceil((padded + (n - 1) * overlap) / n), align)
    while (n - 1) * ((t - overlap) // align * align) < padded - t:
        t += align  # steps must be multiples of align: t - overlap rounded down
    if t >= padded or t - overlap < align or (padded - t) // align < n - 1:
        return None  # one tile would do, the tiles cannot advance, or some would coincide
    return t


def axis_spans(length: int, n: int, overlap: int, align: int = ALIGN) -> tuple[Span, ...]:
    """``n`` equal spans of :func:`tile_length` covering ``[0, length)``: origins are
    multiples of ``align``, the first starts at 0, the last ends at ``length`` padded up to a
    multiple of ``align``; each keeps the part of the overlap nearer its own centre."""
    t = tile_length(length, n, overlap, align)
    if t is None:
        raise ValueError(f"{n} tiles with overlap {overlap} do not fit an axis of {length} px")
    if n == 1:
        return (Span(0, length, 0, length),)
    units = (_round_up(length, align) - t) // align  # total travel of the origin, in align
    q, r = divmod(units, n - 1)
    starts = [0]
    for i in range(n - 1):
        starts.append(starts[-1] + (q + (1 if i < r else 0)) * align)
    cuts = [0] + [(starts[i + 1] + starts[i] + t) // 2 for i in range(n - 1)] + [length]
    return tuple(Span(s, s + t, cuts[i], cuts[i + 1]) for i, s in enumerate(starts))


@dataclass(frozen=True)
class TilePlan:
    """Equal tiles covering a ``height`` x ``width`` image: rows x cols spans."""

    height: int
    width: int
    rows: tuple[Span, ...]
    cols: tuple[Span, ...]
    overlap: int
    reflect: bool = True  # how tiles past the border are padded (as the network pads)

    @property
    def tile_shape(self) -> tuple[int, int]:
        return self.rows[0].length, self.cols[0].length

    @property
    def n_tiles(self) -> int:
        return len(self.rows) * len(self.cols)

    @property
    def whole(self) -> bool:
        return self.n_tiles == 1

    @property
    def computed_pixels(self) -> int:
        h, w = self.tile_shape
        return self.n_tiles * h * w

    @property
    def overhead(self) -> float:
        """Pixels computed per output pixel (1.0 for the whole image)."""
        return self.computed_pixels / (self.height * self.width)

    def tiles(self) -> Iterator[tuple[Span, Span]]:
        for r in self.rows:
            for c in self.cols:
                yield r, c

    def index(self, span: Span, length: int) -> slice | np.ndarray:
        """Rows or columns of the image a span reads: a slice inside the image, else indices
        that pad past the border as the network does (reflect, replicate for tiny images)."""
        if span.end <= length:
            return slice(span.start, span.end)
        idx = np.arange(span.start, span.end)
        if self.reflect:
            idx = np.where(idx < length, idx, 2 * (length - 1) - idx)
        return np.minimum(idx, length - 1)

    def describe(self) -> str:
        h, w = self.tile_shape
        if self.whole:
            return f"whole image {self.width}x{self.height}"
        return (f"{len(self.cols)}x{len(self.rows)} tiles of {w}x{h} px, overlap >= "
                f"{self.overlap}, {self.overhead:.3f}x the pixels")


def _candidates(length: int, overlap: int, align: int) -> list[tuple[int, int]]:
    """(n, tile length) for every tile count that shortens the tiles along one axis."""
    out: list[tuple[int, int]] = []
    for n in range(1, _round_up(length, align) // align + 1):
        t = tile_length(length, n, overlap, align)
        if t is None:
            if n > 1 and (not out or out[-1][1] - overlap <= 2 * align):
                break  # the tiles are as short as this overlap allows
            continue
        if not out or t < out[-1][1]:
            out.append((n, t))
    return out


def plan_tiles(
    height: int,
    width: int,
    max_pixels: int | None = None,
    max_side: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    align: int = ALIGN,
) -> TilePlan:
    """The grid of equal tiles that computes the fewest pixels with every tile at most
    ``max_pixels`` px in area and ``max_side`` px a side (None: no limit), neighbours
    overlapping by at least ``overlap`` px: the whole image, as one tile, when it fits.

    Raises ValueError when no grid fits the limits (a tile must be longer than ``overlap``).
    """
    if height < 1 or width < 1:
        raise ValueError(f"image must be at least 1x1, got {width}x{height}")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    if max_side is not None and (max_side < align or max_side % align):
        raise ValueError(f"tile side must be a positive multiple of {align}, got {max_side}")
    # the network pads bottom/right to a multiple of 8: reflect, or replicate when a pad is
    # not smaller than its axis (memderain.model.derainer.pad_to_multiple); tiles do the same
    reflect = (-height) % align < height and (-width) % align < width
    side = max_side if max_side is not None else max(height, width) + align
    cols = _candidates(width, overlap, align)
    best = None
    for ny, th in _candidates(height, overlap, align):
        if th > side:
            continue
        limit = side if max_pixels is None else min(side, max_pixels // th)
        # fewest columns whose tiles fit: more columns only add overlap
        fit = next(((nx, tw) for nx, tw in cols if tw <= limit), None)
        if fit is None:
            continue
        nx, tw = fit
        cost = (nx * ny * (th * tw + _TILE_COST_PIXELS), abs(th - tw))
        if best is None or cost < best[0]:
            best = (cost, ny, nx)
    if best is None:
        raise ValueError(
            f"no tiling of {width}x{height} fits tiles of at most {max_side or '-'} px a side "
            f"and {max_pixels or '-'} px with overlap {overlap} (tiles must be longer than "
            "the overlap)")
    _, ny, nx = best
    return TilePlan(height, width, axis_spans(height, ny, overlap, align),
                    axis_spans(width, nx, overlap, align), overlap, reflect)


def whole_image_plan(height: int, width: int) -> TilePlan:
    return TilePlan(height, width, (Span(0, height, 0, height),),
                    (Span(0, width, 0, width),), 0)


def gather(x: torch.Tensor, plan: TilePlan, r: Span, c: Span) -> torch.Tensor:
    """The (..., h, w) tile of ``x`` (..., H, W) that spans ``r``, ``c`` read (padded past the
    bottom/right border as the network pads)."""
    rows, cols = plan.index(r, plan.height), plan.index(c, plan.width)
    if isinstance(rows, np.ndarray):
        x = x.index_select(-2, torch.from_numpy(rows).to(x.device))
    else:
        x = x[..., rows, :]
    if isinstance(cols, np.ndarray):
        return x.index_select(-1, torch.from_numpy(cols).to(x.device))
    return x[..., cols]


def kept(y: torch.Tensor, r: Span, c: Span) -> torch.Tensor:
    """The part of a tile's output (..., h, w) that its spans keep."""
    return y[..., r.keep_start - r.start:r.keep_end - r.start,
             c.keep_start - c.start:c.keep_end - c.start]


def tiled_forward(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    plan: TilePlan | None = None,
    *,
    max_side: int | None = None,
    max_pixels: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
) -> torch.Tensor:
    """``fn`` applied to ``x`` (N, C, H, W) tile by tile as ``plan`` says (default:
    :func:`plan_tiles` with the given limits), each tile's centre part stitched into the
    output. ``fn`` maps (N, C, h, w) to (N, C', h, w). Memory: ``x``, the (N, C', H, W)
    output and one tile's forward pass."""
    height, width = x.shape[-2:]
    if plan is None:
        plan = plan_tiles(height, width, max_pixels, max_side, overlap)
    if plan.whole:
        return fn(x)
    out: torch.Tensor | None = None
    for r, c in plan.tiles():
        y = fn(gather(x, plan, r, c))
        if out is None:
            out = torch.empty(*y.shape[:-2], height, width, dtype=y.dtype, device=y.device)
        out[..., r.keep_start:r.keep_end, c.keep_start:c.keep_end] = kept(y, r, c)
    return out
