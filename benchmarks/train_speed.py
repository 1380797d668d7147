"""Training throughput (pairs/s) of the full trainer on CPU: crop sizes x {eager, channels_last,
torch.compile}, plus the bare Table I network + Adam as a reference.

    python benchmarks/train_speed.py                       # 64, 128, 256 crops, batch 16
    python benchmarks/train_speed.py --sizes 64 --modes eager channels_last --steps 5

One "pair" = the two frames (I_w, I_v) of one scene, i.e. two images through the network.
Data: small synthetic scenes decoded once into memory (data.cache), so the numbers are the
compute cost of a step (forward of 2B images, Eq. 7-14 losses, backward, Adam, cosine lr).
Runs on CUDA when available (train.device=auto); pass --set-style extras via --extra, e.g.
``--extra train.amp=bf16``.
Timing skips ``--warmup`` steps (and torch.compile's compilation).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def trainer_pairs_per_s(root: Path, size: int, mode: str, batch: int, steps: int, warmup: int,
                        channels: int, preset: str, extra: list[str]) -> float:
    from memderain.training.config import load_experiment
    from memderain.training.trainer import Trainer

    overrides = [
        f"train.steps={steps + warmup}", f"train.batch_size={batch}", f"data.crop_size={size}",
        f"model.channels={channels}", "data.num_workers=0", "data.cache=true",
        "train.progress=false", "train.image_every=0", "train.ckpt_every=1000000",
        "train.ckpt_minutes=0", f"train.channels_last={mode != 'eager'}",
        f"train.threads={torch.get_num_threads()}",
        f"train.compile={mode == 'compile'}",
    ]
    cfg = load_experiment(preset, overrides, {"data.root": str(root / "frames")})
    stamps: list[float] = []
    with tempfile.TemporaryDirectory() as run:
        trainer = Trainer(cfg, run, argv=["bench"],
                          callbacks=(lambda t, s, v: stamps.append(time.perf_counter()),))
        trainer.fit()
    timed = stamps[warmup - 1:]  # from the end of the last warm-up step
    return batch * (len(timed) - 1) / (timed[-1] - timed[0])


def bare_pairs_per_s(size: int, batch: int, steps: int, warmup: int, channels: int) -> float:
    """Table I network + Adam on random tensors, channels_last, L1 loss only."""
    from memderain.config import ModelConfig
    from memderain.model import build_model

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = build_model(ModelConfig(channels=channels)).train().to(device)
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 2e-4, foreach=True)
    x = (torch.rand(2 * batch, 3, size, size, device=device) * 2 - 1).contiguous(
        memory_format=torch.channels_last)
    for i in range(warmup + steps):
        if i == warmup:
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        loss = model(x).background.abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--modes", nargs="+", default=["eager", "channels_last", "compile"],
                    choices=["eager", "channels_last", "compile"])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=4, help="timed steps per measurement")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--channels", type=int, default=64, help="C of Table I (64)")
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--no-bare", action="store_true", help="skip the bare-network reference")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--extra", nargs="*", default=[], metavar="KEY=VALUE",
                    help="more config overrides for the trainer runs, e.g. train.amp=bf16")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from training_helpers import make_scenes

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, load average {load:.1f}; batch {args.batch} pairs, "
          f"C={args.channels}, preset {args.preset}")
    print(f"{'crop':>5} {'mode':>14} {'pairs/s':>8} {'s/step':>7} {'load':>5}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            root = make_scenes(Path(tmp) / str(size), scenes=4, frames=6, size=size + 16)
            names = ([] if args.no_bare else ["bare network"]) + list(args.modes)
            for name in names:
                if name == "bare network":
                    rate = bare_pairs_per_s(size, args.batch, args.steps, args.warmup,
                                            args.channels)
                else:
                    rate = trainer_pairs_per_s(root, size, name, args.batch, args.steps,
                                               args.warmup, args.channels, args.preset, args.extra)
                load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
                print(f"{size:>5} {name:>14} {rate:>8.2f} {args.batch / rate:>7.2f} {load:>5.1f}",
                      flush=True)


if __name__ == "__main__":
    main()
