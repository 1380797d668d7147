"""Multi-process training helpers for ``torchrun --nproc_per_node N memderain train ...``.

Plain ``torch.distributed`` + DistributedDataParallel (gloo on CPU, nccl on GPU). The one
non-standard piece is the memory (Sec. III-C): its items are a buffer updated inside forward
(Eq. 5-6), not a parameter, so DDP's gradient all-reduce does not cover it. Each rank computes
its update term from its own batch and :func:`memory_reduce_fn` averages the terms across ranks
before they are added, so every rank applies the same update and keeps identical items
(``broadcast_buffers`` is therefore off).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def env_info() -> DistInfo:
    """Rank, world size and local rank from the environment torchrun sets (defaults: 1 process)."""
    return DistInfo(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")),
                    int(os.environ.get("LOCAL_RANK", "0")))


def setup_distributed(info: DistInfo, device: torch.device) -> None:
    """Join the process group torchrun describes (no-op for 1 process): nccl for CUDA devices,
    gloo otherwise."""
    if info.enabled and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30), **kwargs)


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def memory_reduce_fn(world_size: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """All-reduce (mean) of the (M, C) memory update term, for ``model.memory.reduce_fn``."""

    def reduce(term: torch.Tensor) -> torch.Tensor:
        term = term.clone()
        dist.all_reduce(term, op=dist.ReduceOp.SUM)
        return term / world_size

    return reduce


def mean_across_ranks(values: dict[str, float], info: DistInfo, device: torch.device) -> dict[str, float]:
    """Average a dict of scalars over ranks (for logging). All ranks must call it."""
    if not info.enabled or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return {k: float(v) / info.world_size for k, v in zip(keys, t.tolist())}


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_flag(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank if ``flag`` is true on any rank (e.g. a stop request)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


class ResumableDistributedSampler(DistributedSampler):
    """DistributedSampler (per-epoch shuffle seeded by ``seed + epoch``, shards by rank) that
    can start part-way into an epoch, so a resumed run reads exactly the batches a run without
    interruption would have read. ``start`` counts samples of this rank's shard."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True,
                         seed=seed, drop_last=True)
        self.start = 0

    def set_start(self, start: int) -> None:
        self.start = int(start)

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.start:])

    def __len__(self) -> int:
        return max(self.num_samples - self.start, 0)
