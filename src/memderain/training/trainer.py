"""The training loop: Siamese (Eq. 14) or pseudo-GT (B_a / B_b) training of MemDerain.

One step of Siamese training (Sec. III): the two frames (I_w, I_v) of every scene in the batch
go through the network in *one* forward on ``cat([w, v])`` (so the memory update of Eq. 5-6
sees the queries of both frames), then the outputs are split and the losses of Eq. 7-13 are
combined by Eq. 14. Adam, learning rate annealed with a cosine every iteration.

Exact resume: the data stream is a pure function of (seed, epoch, position) — the sampler's
shuffle is seeded by seed + epoch and every dataset item draws from its own generator seeded by
(seed, epoch, index) — so ``last.pt`` stores the position in the stream next to the weights,
memory items, optimiser, scheduler and RNG states, and a resumed run continues bit-for-bit.
"""

from __future__ import annotations

import math
import platform
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from memderain.checkpoint import (
    OUTPUT_CONSTRAINT_FIELDS,
    load_checkpoint,
    load_state_into,
    save_checkpoint,
    unwrap_model,
)
from memderain.errors import MemderainError
from memderain.losses import pseudo_gt_loss, siamese_loss
from memderain.model import DerainOutput, build_model, split_pair
from memderain.training import distributed as D
from memderain.training.checkpoint import (
    load_train_checkpoint,
    rng_state,
    save_train_checkpoint,
    set_rng_state,
)
from memderain.training.config import ExperimentConfig, experiment_to_dict, save_resolved_config
from memderain.training.logging import RunLogger
from memderain.training.precision import resolve_amp
from memderain.version import __version__

# config keys that may change between a run and its resume (everything else must match)
RESUMABLE_CHANGES = {
    "name", "data.root", "data.real_root", "data.val", "data.num_workers", "data.cache",
    "data.val_max_scenes",
    "data.val_frames_per_scene", "data.val_metric", "train.steps", "train.device",
    "train.compile", "train.amp",
    "train.log_every", "train.image_every", "train.ckpt_every", "train.ckpt_minutes",
    "train.val_every", "train.progress", "train.threads", "train.stop_at", "train.snapshot_every",
}
Callback = Callable[["Trainer", int, dict[str, float]], None]


def lr_factor(step: int, total: int, warmup: int, schedule: str, floor: float) -> float:
    """Multiplier of the base lr after ``step`` scheduler steps: linear warm-up, then cosine
    annealing from 1 to ``floor`` (= min_lr / lr) at ``total`` (SGDR without restarts)."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    t = min(max(step - warmup, 0) / max(total - warmup, 1), 1.0)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))


def resolve_device(name: str, info: D.DistInfo) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise MemderainError(f"train.device={name!r} but no CUDA device is available")
        if device.index is None:
            device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    return device


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flat(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


class Trainer:
    """Build everything from an :class:`ExperimentConfig` and train into ``run_dir``.

    Files in ``run_dir``: ``config.yaml`` + ``command.txt`` (resolved config, exact command),
    ``last.pt`` (every ``train.ckpt_every`` steps / ``train.ckpt_minutes`` and at the end),
    ``best.pt`` (best validation PSNR, with ``data.val``), ``tb/`` (TensorBoard).
    """

    def __init__(self, cfg: ExperimentConfig, run_dir: str | Path, *, resume: bool = False,
                 overwrite: bool = False, argv: list[str] | None = None,
                 callbacks: tuple[Callback, ...] = ()) -> None:
        if cfg.data.root is None:
            raise MemderainError("no training data: pass --data DIR (or set data.root)")
        self.cfg, self.run_dir, self.callbacks = cfg, Path(run_dir), tuple(callbacks)
        self.argv = list(sys.argv if argv is None else argv)
        self.last_path, self.best_path = self.run_dir / "last.pt", self.run_dir / "best.pt"
        if self.last_path.exists() and not (resume or overwrite):
            raise MemderainError(f"{self.last_path} exists: pass --resume to continue that run "
                                 "or --overwrite to start again")
        self.resume = resume and self.last_path.exists()
        t = cfg.train
        self.dist = D.env_info()  # rank / world size from torchrun's environment
        self.device = resolve_device(t.device, self.dist)
        D.setup_distributed(self.dist, self.device)
        self.amp = resolve_amp(t.amp, self.device)
        if self.amp == "fp16" and self.device.type != "cuda":
            raise MemderainError("train.amp=fp16 needs a CUDA device (use bf16 or none on CPU)")
        self._saved_globals = (torch.get_num_threads(),
                               torch.are_deterministic_algorithms_enabled(),
                               torch.is_deterministic_algorithms_warn_only_enabled())
        if t.threads:
            torch.set_num_threads(t.threads)
        if t.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop size: autotuned conv kernels pay
        torch.manual_seed(t.seed)  # same initial weights and memory items on every rank
        self.model = build_model(cfg.model).to(self.device)
        if t.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if self.dist.enabled and self.model.memory is not None:
            self.model.memory.reduce_fn = D.memory_reduce_fn(self.dist.world_size)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.optim.lr,
                                          betas=tuple(cfg.optim.betas), eps=cfg.optim.eps,
                                          weight_decay=cfg.optim.weight_decay,
                                          foreach=True)  # CPU default is a per-tensor loop
        o = cfg.optim
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda s: lr_factor(s, t.steps, o.warmup_steps, o.scheduler, o.min_lr / o.lr))
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == "fp16")
        self.step, self.epoch, self.batches_in_epoch, self.best_psnr = 0, 0, 0, -math.inf
        self._build_data()
        if self.resume:
            self._load(self.last_path)
        elif t.init_from:
            self._init_weights(Path(t.init_from))
        self.forward_model: torch.nn.Module = self.model
        if t.compile:
            self.forward_model = torch.compile(self.model)
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward_model = DistributedDataParallel(
                self.forward_model, device_ids=ids, broadcast_buffers=False)
        self.logger: RunLogger | None = None
        self._stop_requested = False

    # -- data --------------------------------------------------------------------------------
    def _build_data(self) -> None:
        d, t = self.cfg.data, self.cfg.train
        if self.cfg.loss.kind == "siamese":
            from memderain.data.timelapse import TimeLapseDataset

            self.dataset = TimeLapseDataset(d.root, d.crop_size, d.resize, d.hflip, t.seed,
                                            d.min_frames, cache=d.cache, augment=d.augment,
                                            with_median=d.synthetic_median,
                                            median_quantile=d.synthetic_quantile)
            if d.real_root is not None:
                self.dataset = self._mix_real(self.dataset)
        else:
            from memderain.data.pseudo_gt import PseudoGTDataset

            self.dataset = PseudoGTDataset(d.root, d.crop_size, d.pseudo_gt_reducer, t.seed,
                                           resize=d.resize, hflip=d.hflip,
                                           min_frames=d.min_frames, cache=d.cache)
        if d.cache and d.num_workers > 0:
            self.dataset.preload()  # decode once, before workers fork
        self.sampler = D.ResumableDistributedSampler(
            self.dataset, self.dist.world_size, self.dist.rank, seed=t.seed)
        if self.sampler.num_samples < t.batch_size:
            raise MemderainError(
                f"{d.root}: {len(self.dataset)} training items, fewer than "
                f"train.batch_size={t.batch_size} x {self.dist.world_size} process(es)")
        self.loader = DataLoader(self.dataset, batch_size=t.batch_size, sampler=self.sampler,
                                 num_workers=d.num_workers, drop_last=True,
                                 pin_memory=self.device.type == "cuda")
        self.val_pairs = None
        if d.val is not None:
            from memderain.training.validate import find_val_pairs, has_rainy_frame

            self.val_pairs = find_val_pairs(d.val, d.val_max_scenes, d.val_frames_per_scene)
            if d.val_metric == "psnr_rainy" and not has_rainy_frame(self.val_pairs):
                raise MemderainError(f"data.val_metric=psnr_rainy, but no frame of --val {d.val} "
                                     "has rain; use data.val_metric=psnr")

    def _mix_real(self, synthetic):
        """Pairs of real clips (every scene folder under ``data.real_root``, aligned and masked
        by :func:`~memderain.data.static_clip.load_static_clip`) mixed in at ``real_ratio``."""
        from memderain.data.clip_pairs import ClipPairs, MixedPairs
        from memderain.data.scenes import find_scenes
        from memderain.data.static_clip import load_static_clip

        d, t = self.cfg.data, self.cfg.train
        root = Path(d.real_root)
        scenes = find_scenes(root, 3)
        clips = [load_static_clip(root / sc.name, None, d.real_max_shift) for sc in scenes]
        real = ClipPairs(clips, d.crop_size, items_per_epoch=max(len(synthetic), 1),
                         seed=t.seed, hflip=d.hflip)
        return MixedPairs(synthetic, real, d.real_ratio, seed=t.seed)

    def describe(self) -> str:
        """One line: what this run trains on, where, and from which step."""
        t = self.cfg.train
        ds = self.dataset
        synth = getattr(ds, "synthetic", ds)
        scenes = len(getattr(synth, "scenes", []))
        real = getattr(ds, "real", None)
        real_text = (f" + {len(real.clips)} real clip(s) at {self.cfg.data.real_ratio:.0%} of "
                     "the pairs" if real is not None else "")
        start = f"resuming at step {self.step}" if self.step else "from step 0"
        return (f"{scenes} scene(s){real_text}, {len(ds)} items per epoch, batch {t.batch_size}"
                f" x {self.dist.world_size} process(es), {self.cfg.data.crop_size} px crops; "
                f"device {self.device} ({self._device_name()}), precision "
                f"{'fp32' if self.amp == 'none' else self.amp}"
                + (" (train.amp=auto)" if t.amp == "auto" else "") + f"; {start} of {t.steps}"
                + (f" (stop at {t.stop_at})" if t.stop_at else "")
                + f" -> {self.run_dir}")

    def _batches(self) -> Iterator[dict]:
        """Endless stream of batches; resumes at (epoch, batches_in_epoch)."""
        bs = self.cfg.train.batch_size
        while True:
            self.sampler.set_epoch(self.epoch)
            self.dataset.set_epoch(self.epoch)  # before the iterator copies it to workers
            self.sampler.set_start(self.batches_in_epoch * bs)
            yield from self.loader
            self.epoch, self.batches_in_epoch = self.epoch + 1, 0

    # -- one optimisation step ---------------------------------------------------------------
    def _autocast(self):
        amp = self.amp
        dtype = torch.bfloat16 if amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype, enabled=amp != "none")

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.train.channels_last else x

    def train_step(self, batch: dict) -> tuple[dict[str, float], DerainOutput, torch.Tensor]:
        """Forward, loss, backward, optimiser and scheduler step. Returns (logged values, the
        network output, the network input)."""
        lc = self.cfg.loss
        if lc.kind == "siamese":
            w, v = self._prepare(batch["w"]), self._prepare(batch["v"])
            x = torch.cat([w, v])
        else:
            x, target = self._prepare(batch["input"]), self._prepare(batch["target"])
        with self._autocast():
            out = self.forward_model(x)
        memory = unwrap_model(self.model).memory
        if lc.kind == "siamese":
            out_w, out_v = split_pair(out, w.shape[0])
            items = memory.items if memory is not None else None
            real = {k: self._prepare(batch[k]) if batch[k].ndim == 4 else batch[k].to(self.device)
                    for k in ("mask", "median", "has_median") if k in batch}
            loss, terms = siamese_loss(lc, w, v, out_w, out_v, items=items, **real)
        else:
            loss, terms = pseudo_gt_loss(lc, out, target)
        if not torch.isfinite(loss):
            raise MemderainError(f"loss is {loss.item()} at step {self.step}; lower optim.lr or "
                                 "set optim.grad_clip")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        values = {"loss/total": float(loss.detach())}
        values.update({f"loss/{k}": float(v) for k, v in terms.items()})
        if self.cfg.optim.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
            values["grad_norm"] = float(norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        return values, out, x

    # -- checkpoints -------------------------------------------------------------------------
    def train_state(self) -> dict[str, Any]:
        return {
            "step": self.step, "epoch": self.epoch, "batches_in_epoch": self.batches_in_epoch,
            "world_size": self.dist.world_size,
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "rng": rng_state(), "best_psnr": float(self.best_psnr),
            "best_metric": self.cfg.data.val_metric,
            "experiment": experiment_to_dict(self.cfg),
        }

    def _device_name(self) -> str:
        if self.device.type == "cuda":
            return torch.cuda.get_device_name(self.device)
        return f"{platform.machine()}, {torch.get_num_threads()} threads"

    def meta(self) -> dict[str, Any]:
        return {
            "name": self.cfg.name, "recipe": self.cfg.name, "steps": self.step,
            "trained_on": str(Path(self.cfg.data.root).resolve()), "memderain_version": __version__,
            "wall_time_s": round(self._wall_before + time.monotonic() - self._t0, 1),
            "hardware": f"{self.device.type} x{self.dist.world_size} ({self._device_name()})",
            "command": " ".join(self.argv),
        }

    def save(self, path: Path | None = None) -> Path | None:
        """Write ``last.pt`` (or ``path``) on rank 0."""
        if not self.dist.is_main:
            return None
        state = self.train_state()
        meta = self.meta()
        state["wall_time_s"] = meta["wall_time_s"]
        out = save_train_checkpoint(path or self.last_path, self.model, state, meta)
        self._last_save = time.monotonic()
        return out

    def snapshot(self) -> Path | None:
        """Weights-only copy ``snapshots/step-NNNNNN.pt`` of this step (rank 0): a few MB, no
        optimiser, so a long run can keep many and pick or average them afterwards."""
        if not self.dist.is_main:
            return None
        path = self.run_dir / "snapshots" / f"step-{self.step:06d}.pt"
        return save_checkpoint(path, self.model, meta=self.meta())

    def _init_weights(self, path: Path) -> None:
        """Fine-tuning start: weights and memory items of ``path``. Its model config must match
        this run's except for the output constraints (``OUTPUT_CONSTRAINT_FIELDS``), which
        change no weight: a model trained with an unconstrained R_hat can be fine-tuned with
        ``nonnegative_rain`` on."""
        load_state_into(self.model, load_checkpoint(path), f"train.init_from {path}",
                        ignore_fields=OUTPUT_CONSTRAINT_FIELDS)

    def _load(self, path: Path) -> None:
        state = load_train_checkpoint(path, self.model)
        # keys added to the config after the run started cannot be compared: they take this
        # run's values (e.g. the real-video loss weights, which act only on real pairs)
        current = _flat(experiment_to_dict(self.cfg))
        stored = current | _flat(state["experiment"])
        diffs = sorted(k for k, v in current.items()
                       if k not in RESUMABLE_CHANGES and stored.get(k) != v)
        if diffs:
            raise MemderainError(f"--resume: the config differs from the run in {self.run_dir} "
                                 f"in {', '.join(diffs[:6])}; use the run's config.yaml")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.batches_in_epoch = int(state["batches_in_epoch"])
        old_world = int(state.get("world_size", 1))
        if old_world != self.dist.world_size:  # keep the epoch position, data order differs
            self.batches_in_epoch = self.batches_in_epoch * old_world // self.dist.world_size
        self.best_psnr = float(state.get("best_psnr", -math.inf))
        if state.get("best_metric", "psnr") != self.cfg.data.val_metric:
            self.best_psnr = -math.inf   # best.pt was picked by another measure: start afresh
        self._resumed_wall = float(state.get("wall_time_s", 0.0))

    # -- loop --------------------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:  # pragma: no cover - exercised by hand
        self._stop_requested = True

    def validate(self) -> dict[str, float] | None:
        """PSNR/SSIM on ``data.val`` (rank 0); keeps ``best.pt``; logs and prints the result."""
        if self.val_pairs is None or not self.dist.is_main:
            return None
        from memderain.training.validate import validate

        res = validate(self.model, self.val_pairs, self.device)
        key = self.cfg.data.val_metric   # psnr_rainy: __init__ checked that --val has rain
        best = res[key] > self.best_psnr
        if best:
            self.best_psnr = res[key]
            self.save(self.best_path)
        names = {"rainy": "frames with rain", "dry": "rain-free frames"}
        split = "".join(f"; {names[k]} {res[f'psnr_{k}']:.2f}" for k in ("rainy", "dry")
                        if f"psnr_{k}" in res)
        text = (f"step {self.step}: validation PSNR {res['psnr']:.2f} dB (the input itself: "
                f"{res['psnr_input']:.2f}{split}), SSIM {res['ssim']:.4f} (input "
                f"{res['ssim_input']:.4f})" + (f" -> best.pt ({key})" if best else ""))
        if self.logger is not None:
            self.logger.scalars(self.step, {f"val/{k}": v for k, v in res.items()})
            self.logger.message(text)
        else:
            print(text, flush=True)
        return res

    def fit(self) -> dict[str, Any]:
        """Train to ``train.steps`` (or stop at ``train.stop_at``, as SIGTERM does); returns a
        summary (steps, wall time, losses, validation)."""
        t = self.cfg.train
        self._t0 = self._last_save = time.monotonic()
        self._wall_before = getattr(self, "_resumed_wall", 0.0)
        if self.dist.is_main:
            save_resolved_config(self.run_dir, self.cfg, self.argv)
            self.logger = RunLogger(self.run_dir, t, self.step, self.dist.world_size)
        old_handler = None
        if self.dist.is_main or self.dist.enabled:
            try:
                old_handler = signal.signal(signal.SIGTERM, self._on_signal)
            except ValueError:  # not the main thread
                old_handler = None
        values: dict[str, float] = {}
        val: dict[str, float] | None = None
        stream = self._batches()
        saved_at = self.step
        end = min(t.steps, t.stop_at) if t.stop_at else t.steps
        try:
            while self.step < end:
                batch = next(stream)
                values, out, x = self.train_step(batch)
                self.batches_in_epoch += 1
                values["lr"] = self.optimizer.param_groups[0]["lr"]
                log_now = self.step % t.log_every == 0 or self.step == t.steps
                if log_now:
                    values = D.mean_across_ranks(values, self.dist, self.device)
                if self.logger is not None:
                    self.logger.step(self.step, values, log_now)
                    if t.image_every and self.step % t.image_every == 0:
                        self.logger.images(self.step, x, out, self.cfg.loss.kind)
                for cb in self.callbacks:
                    cb(self, self.step, values)
                if self.val_pairs is not None and self.step % t.val_every == 0:
                    val = self.validate()
                    D.barrier(self.dist)
                due = self.step % t.ckpt_every == 0 or (
                    t.ckpt_minutes > 0 and time.monotonic() - self._last_save > 60 * t.ckpt_minutes)
                if D.broadcast_flag(due, self.dist, self.device):
                    self.save()
                    saved_at = self.step
                if t.snapshot_every and self.step % t.snapshot_every == 0:
                    self.snapshot()
                if D.broadcast_flag(self._stop_requested, self.dist, self.device):
                    break
            if self.val_pairs is not None and self.step % t.val_every != 0:
                val = self.validate()
        except KeyboardInterrupt:
            if self.step > saved_at:
                self.save()
            raise
        finally:
            if old_handler is not None:
                signal.signal(signal.SIGTERM, old_handler)
            if self.logger is not None:
                self.logger.close()
        if self.step > saved_at:
            self.save()
        D.barrier(self.dist)
        return {"steps": self.step, "losses": values, "validation": val,
                "last": str(self.last_path), "stopped_early": self.step < t.steps,
                "wall_time_s": round(self._wall_before + time.monotonic() - self._t0, 1)}

    def close(self) -> None:
        """Leave the process group and restore the global torch settings changed in __init__."""
        if self.model.memory is not None:
            self.model.memory.reduce_fn = None
        threads, deterministic, warn_only = self._saved_globals
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        D.cleanup_distributed()
