"""Rank-0 logging of a training run: TensorBoard scalars and sample images, a tqdm progress
bar (steps, ETA, pairs/s) on a terminal, a plain status line every 30 s otherwise."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from memderain.model import DerainOutput
from memderain.training.config import TrainConfig

PLAIN_EVERY_S = 30.0


def _unit(x: torch.Tensor) -> torch.Tensor:
    return ((x.detach().float().cpu() + 1) / 2).clamp(0, 1)


def sample_grid(x: torch.Tensor, out: DerainOutput, kind: str, rows: int = 4) -> torch.Tensor:
    """(3, H*rows, W*cols) image in [0, 1]: per row I_w | B_w | R_w | I_v | B_v (Siamese) or
    I | B | R (pseudo-GT); R is shown as (R + 1) / 2."""
    if kind == "siamese":
        n = x.shape[0] // 2
        cols = [x[:n], out.background[:n], out.rain[:n], x[n:], out.background[n:]]
    else:
        cols = [x, out.background, out.rain]
    k = min(rows, cols[0].shape[0])
    cols = [_unit(c[:k]) for c in cols]
    row_imgs = torch.cat(cols, dim=3)  # (k, 3, H, W*cols)
    return torch.cat(list(row_imgs), dim=1)  # (3, H*k, W*cols)


class RunLogger:
    def __init__(self, run_dir: Path, cfg: TrainConfig, start_step: int, world_size: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.cfg, self.world = cfg, world_size
        self.writer = SummaryWriter(str(Path(run_dir) / "tb"), purge_step=start_step or None)
        self.tty = cfg.progress and sys.stderr.isatty()
        self.bar = tqdm(total=cfg.steps, initial=start_step, unit="step", dynamic_ncols=True,
                        disable=not self.tty, desc="train")
        self.pairs_per_s = 0.0
        self._last = time.perf_counter()
        self._last_plain = time.monotonic()
        self._start_step, self._start_time = start_step, time.monotonic()

    def step(self, step: int, values: dict[str, float], log_now: bool) -> None:
        now = time.perf_counter()
        dt, self._last = max(now - self._last, 1e-9), now  # includes data loading
        rate = self.cfg.batch_size * self.world / dt
        self.pairs_per_s = rate if self.pairs_per_s == 0 else 0.9 * self.pairs_per_s + 0.1 * rate
        self.bar.update(1)
        if log_now:
            self.scalars(step, values)
            self.writer.add_scalar("perf/pairs_per_s", self.pairs_per_s, step)
            self.bar.set_postfix(loss=f"{values.get('loss/total', 0):.4f}",
                                 pairs_s=f"{self.pairs_per_s:.2f}", lr=f"{values.get('lr', 0):.2e}")
        if not self.tty and self.cfg.progress and (
            time.monotonic() - self._last_plain > PLAIN_EVERY_S or step == self.cfg.steps
        ):
            self._last_plain = time.monotonic()
            done = step - self._start_step
            eta = (self.cfg.steps - step) * (time.monotonic() - self._start_time) / max(done, 1)
            print(f"step {step}/{self.cfg.steps}  loss {values.get('loss/total', 0):.4f}  "
                  f"{self.pairs_per_s:.2f} pairs/s  eta {eta / 60:.1f} min", flush=True)

    def message(self, text: str) -> None:
        """A line for the user, printed above the progress bar (or plainly without one)."""
        if self.tty:
            self.bar.write(text)
        elif self.cfg.progress:
            print(text, flush=True)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.writer.add_scalar(k, v, step)

    def images(self, step: int, x: torch.Tensor, out: DerainOutput, kind: str) -> None:
        self.writer.add_image("samples", sample_grid(x, out, kind), step)

    def close(self) -> None:
        self.bar.close()
        self.writer.close()
