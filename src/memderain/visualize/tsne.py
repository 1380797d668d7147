"""t-SNE of query features and memory items (paper Fig. 10).

Query vectors q^k (the C-dim columns of the encoder's query map) are assigned to their
nearest item by the cosine similarity of Eq. 3 (the item with the largest read weight alpha,
Eq. 2). Queries and items are L2-normalised and embedded *jointly* by one t-SNE (cosine
metric), so the stars (items) and points (queries) share one 2-D map; points take the colour
of their item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from matplotlib.figure import Figure

from memderain.errors import MemderainError
from memderain.model.derainer import MemDerain
from memderain.visualize.common import DPI, save_figure


@dataclass
class TSNEResult:
    path: Path  # the PNG written
    queries: np.ndarray  # (K, C) sampled query vectors (raw, not normalised)
    items: np.ndarray  # (M, C) memory items
    assignment: np.ndarray  # (K,) index of each query's nearest item (argmax cosine)
    embedding: np.ndarray  # (K, 2) t-SNE positions of the queries
    item_embedding: np.ndarray  # (M, 2) t-SNE positions of the items
    point_colors: np.ndarray  # (K, 4) RGBA face colours drawn for the queries
    item_colors: np.ndarray  # (M, 4) RGBA face colours drawn for the items (stars)


@torch.no_grad()
def query_features(model: MemDerain, images: Sequence[torch.Tensor]) -> np.ndarray:
    """All query vectors (K, C) of the (3, H, W) [0, 1] images, row-major per image."""
    rows = []
    for image01 in images:
        q = model.eval()(image01[None].float() * 2 - 1).query[0]  # (C, h, w)
        rows.append(q.flatten(1).t().cpu().numpy())
    return np.concatenate(rows, axis=0)


def item_palette(m: int) -> np.ndarray:
    """(M, 4) distinct RGBA colours: tab20 for up to 20 items (the paper's M), else hsv."""
    if m <= 20:
        return colormaps["tab20"](np.arange(m))
    return colormaps["hsv"](np.linspace(0, 1, m, endpoint=False))


def tsne_plot(
    model: MemDerain,
    images: Sequence[torch.Tensor],
    out_path: str | Path,
    *,
    max_points: int = 1000,
    perplexity: float = 30.0,
    seed: int = 0,
    max_iter: int | None = None,
    overwrite: bool = False,
) -> TSNEResult:
    """Sample up to ``max_points`` queries of ``images``, embed them with the items, plot.

    ``max_iter``: t-SNE iterations (scikit-learn's default 1000 when None; >= 250).
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    if model.memory is None:
        raise MemderainError("this model has no memory (use_memory: false); nothing to embed")
    queries = query_features(model, images)
    rng = np.random.default_rng(seed)
    if len(queries) > max_points:
        queries = queries[np.sort(rng.choice(len(queries), max_points, replace=False))]
    items = model.memory.items.float().cpu().numpy()
    with torch.no_grad():  # Eq. 3 cosine similarity, as the model reads the memory
        sim = model.memory.similarity(torch.from_numpy(queries))
    assignment = sim.argmax(dim=1).numpy()
    joint = F.normalize(torch.from_numpy(np.concatenate([queries, items])), dim=1).numpy()
    n = len(joint)
    if n < 5:
        raise MemderainError(f"only {len(queries)} query vectors; use a larger image")
    extra = {"max_iter": max_iter} if max_iter else {}
    tsne = TSNE(
        n_components=2,
        perplexity=min(perplexity, (n - 1) / 3),
        metric="cosine",
        init="random",
        random_state=seed,
        **extra,
    )
    # scikit-learn's OpenMP threads fight torch's (two libgomp runtimes, both spinning): for
    # a few thousand points one thread is ~10x faster than two on a busy 2-core machine.
    with threadpool_limits(limits=1 if n <= 5000 else None, user_api="openmp"):
        xy = tsne.fit_transform(joint)
    emb, item_emb = xy[: len(queries)], xy[len(queries) :]

    palette = item_palette(len(items))
    fig = Figure(figsize=(7, 6), dpi=DPI)
    ax = fig.add_axes((0.08, 0.08, 0.7, 0.86))
    points = ax.scatter(emb[:, 0], emb[:, 1], c=palette[assignment], s=8, linewidths=0)
    stars = ax.scatter(item_emb[:, 0], item_emb[:, 1], c=palette, marker="*", s=320,
                       edgecolors="black", linewidths=0.8, zorder=3)
    for m, (x, y) in enumerate(item_emb):
        ax.annotate(str(m), (x, y), fontsize=7, ha="center", va="center", zorder=4)
    counts = np.bincount(assignment, minlength=len(items))
    handles = [
        ax.scatter([], [], color=palette[m], marker="*", s=60, label=f"item {m} ({counts[m]})")
        for m in range(len(items))
    ]
    fig.legend(handles=handles, loc="center right", fontsize=7, frameon=False)
    ax.set_title(f"t-SNE of {len(queries)} query features and {len(items)} memory items",
                 fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    path = save_figure(fig, Path(out_path), overwrite)
    return TSNEResult(path, queries, items, assignment, emb, item_emb,
                      np.asarray(points.get_facecolors()), np.asarray(stars.get_facecolors()))
