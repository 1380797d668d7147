"""Items/s of TimeLapseDataset / PseudoGTDataset, with and without the decoded-frame cache.

    python benchmarks/data_loading.py OUT/frames [--items 300] [--crop 256] [--workers 0]

OUT/frames is a `memderain synth` output (or any time-lapse root). Prints one line per setting.
"""

from __future__ import annotations

import argparse
import time

import torch

from memderain.data.pseudo_gt import PseudoGTDataset
from memderain.data.timelapse import TimeLapseDataset


def rate(ds, items: int, workers: int) -> float:
    n = min(items, len(ds))
    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[:n].tolist()
    if workers == 0:
        t0 = time.perf_counter()
        for k in perm:
            ds[k]
        return n / (time.perf_counter() - t0)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, perm), batch_size=16,
                                         num_workers=workers)
    t0 = time.perf_counter()
    for _ in loader:
        pass
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--items", type=int, default=300)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--workers", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    for name, make in [
        ("TimeLapseDataset cache=False", lambda: TimeLapseDataset(a.root, a.crop)),
        ("TimeLapseDataset resize=256 cache=False",
         lambda: TimeLapseDataset(a.root, a.crop, resize=(a.crop, a.crop))),
        ("TimeLapseDataset cache=True (preloaded)", lambda: TimeLapseDataset(a.root, a.crop,
                                                                             cache=True)),
        ("PseudoGTDataset median cache=True (preloaded)",
         lambda: PseudoGTDataset(a.root, a.crop, cache=True)),
    ]:
        ds = make()
        t0 = time.perf_counter()
        if getattr(ds.store, "cache", False):
            ds.preload()
        prep = time.perf_counter() - t0
        r = rate(ds, a.items, a.workers)
        mem = ds.store.nbytes() / 2**20
        print(f"{name:48s} {r:8.1f} items/s  (preload {prep:.1f} s, cache {mem:.0f} MiB, "
              f"{len(ds)} items, workers {a.workers})", flush=True)


if __name__ == "__main__":
    main()
