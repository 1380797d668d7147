"""Rain-streak-aware memory (Sec. III-C): M items of dimension C, read with Eq. 2-4, updated
with Eq. 5-6.

The items are *state*, not parameters: they are a registered buffer (so they are saved in
checkpoints and moved with ``.to()``), never receive gradients, and change only through
:meth:`MemoryModule.update`, which :meth:`MemoryModule.forward` calls in training mode only.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class MemoryModule(nn.Module):
    """Memory of ``num_items`` unit-norm items of size ``dim``.

    Args:
        num_items: M, the number of items (paper: 20).
        dim: C, the query/item dimension (channels of the query map).
        temperature: similarities are divided by it before both softmaxes (paper: 1).
        normalize_query_in_update: L2-normalise queries before Eq. 6 (see ModelConfig).
    """

    items: torch.Tensor

    def __init__(
        self,
        num_items: int = 20,
        dim: int = 64,
        temperature: float = 1.0,
        normalize_query_in_update: bool = True,
    ) -> None:
        super().__init__()
        self.num_items = num_items
        self.dim = dim
        self.temperature = temperature
        self.normalize_query_in_update = normalize_query_in_update
        # "The memory items are randomly initialized" (Sec. III-E); unit norm like after Eq. 6.
        self.register_buffer("items", F.normalize(torch.randn(num_items, dim), dim=1))
        # Optional all-reduce of the update term, set by the distributed trainer so that all
        # ranks apply the same update and keep identical items. Not saved in checkpoints.
        self.reduce_fn: Callable[[torch.Tensor], torch.Tensor] | None = None

    # -- Eq. 3 -------------------------------------------------------------------------------
    def similarity(self, queries: torch.Tensor) -> torch.Tensor:
        """Cosine similarity d(p_m, q^k) (Eq. 3) for queries (K, C) -> (K, M)."""
        q = F.normalize(queries, dim=1)
        p = F.normalize(self.items.to(q.dtype), dim=1)
        return q @ p.t()

    @staticmethod
    def _flatten(query_map: torch.Tensor) -> torch.Tensor:
        n, c, h, w = query_map.shape
        return query_map.permute(0, 2, 3, 1).reshape(n * h * w, c)

    # -- Eq. 2 and 4 -------------------------------------------------------------------------
    def read(self, query_map: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Read the memory for every query of ``query_map`` (N, C, h, w).

        Returns the retrieved features p_hat (N, C, h, w) (Eq. 4) and the read weights
        alpha (N, M, h, w), a softmax over items of the cosine similarity (Eq. 2).
        Gradients flow to the queries through alpha; the items get none.
        """
        n, c, h, w = query_map.shape
        sim = self.similarity(self._flatten(query_map)) / self.temperature  # (K, M)
        alpha = torch.softmax(sim, dim=1)  # Eq. 2: over items
        p_hat = alpha @ self.items.to(alpha.dtype)  # Eq. 4: (K, C)
        p_hat = p_hat.reshape(n, h, w, c).permute(0, 3, 1, 2)
        alpha = alpha.reshape(n, h, w, self.num_items).permute(0, 3, 1, 2)
        return p_hat, alpha

    # -- Eq. 5 and 6 -------------------------------------------------------------------------
    @torch.no_grad()
    def update_term(self, query_map: torch.Tensor) -> torch.Tensor:
        """sum_k beta^{k,m} q^k for every item (M, C), with beta of Eq. 5 (softmax over queries).

        All queries of the batch (both frames of a Siamese pair included) form the set k=1..K.
        """
        queries = self._flatten(query_map.detach().float())
        sim = self.similarity(queries) / self.temperature  # (K, M)
        beta = torch.softmax(sim, dim=0)  # Eq. 5: over queries
        if self.normalize_query_in_update:
            queries = F.normalize(queries, dim=1)
        return beta.t() @ queries  # (M, C)

    @torch.no_grad()
    def update(self, query_map: torch.Tensor) -> None:
        """Eq. 6: p_m <- Norm_L2(p_m + sum_k beta^{k,m} q^k), in place."""
        term = self.update_term(query_map)
        if self.reduce_fn is not None:
            term = self.reduce_fn(term)
        # A new tensor (not copy_) so the autograd graph of this step's read stays valid.
        self.items = F.normalize(self.items.float() + term, dim=1).to(self.items.dtype)

    def forward(self, query_map: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Read, then (training mode only) update. Returns (p_hat, alpha) as :meth:`read`."""
        p_hat, alpha = self.read(query_map)
        if self.training:
            self.update(query_map)
        return p_hat, alpha

    def extra_repr(self) -> str:
        return f"num_items={self.num_items}, dim={self.dim}, temperature={self.temperature}"
