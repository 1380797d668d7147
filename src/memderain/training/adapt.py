"""Test-time adaptation: self-supervised fine-tuning of a model on one static-camera clip.

``memderain adapt CLIP -o ADAPTED.pt`` loads the clip (:func:`load_static_clip`: aligned
frames, temporal median, static mask), starts from the shipped (or given) weights and trains
on pairs of the clip's own frames (:class:`~memderain.data.clip_pairs.ClipPairs`) with the
Siamese losses of Eq. 7-14 and the real-video remedies of :mod:`memderain.losses.real_rain`,
all restricted to static pixels. No ground truth is used: the temporal median is computed
from the rainy frames themselves.

Budget and safety: training stops after ``steps`` optimiser steps (the cosine learning-rate
schedule spans them: reproducible) or, without ``steps``, after ``minutes`` of wall time (the
cosine then follows the share of the budget spent). A resume
file ``ADAPTED.pt.resume`` (weights, memory items, optimiser, step, elapsed time, RNG) is
written atomically every ``save_every_s`` seconds and on interruption (Ctrl-C, SIGTERM);
``resume=True`` continues from it, ``overwrite=True`` starts again, and neither is refused
while it exists (a plain re-run must not silently throw the interrupted work away). ``ADAPTED.pt`` itself is written once, atomically, at the end, so an
interrupted run never leaves a half-written or half-adapted weights file behind and an
existing file stays as it was.

Never a worse model (issue 31): every ``holdout_every``-th frame (default 5) is left out of
the training. At the end the adapted model, the starting model and the identity (the rainy
frames themselves) are scored on those frames against the temporal median
(:mod:`memderain.evaluation.clip_score`, its default reference: strict for a clip stored
without loss, motion for a compressed one); the adapted model is written only if it beats both.
Otherwise the better of the other two is written instead (the starting weights, or the starting
weights with ``rain_gain`` 0, an identity) and :attr:`AdaptResult.verdict` says which; with
``strict=True`` nothing is written and :class:`AdaptRefused` is raised with the numbers.
Several clips of one camera adapt one model together (``clip_source`` a list).
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from memderain.atomicfile import OutputError, check_writable
from memderain.checkpoint import (
    atomic_torch_save,
    load_checkpoint,
    make_checkpoint,
    model_from_checkpoint,
)
from memderain.data.clip_pairs import ClipPairs, evenly_spaced, holdout_split
from memderain.data.static_clip import (
    DEFAULT_MAX_FRAMES,
    DEFAULT_MAX_SHIFT,
    StaticClip,
    load_static_clip,
)
from memderain.errors import MemderainError
from memderain.evaluation.clip_score import (
    ClipReference,
    score_subsets,
    torch_method,
)
from memderain.losses import siamese_loss
from memderain.model import split_pair
from memderain.training import adapt_defaults as defaults
from memderain.training.adapt_defaults import DEFAULT_OBJECTIVE
from memderain.training.checkpoint import rng_state, set_rng_state
from memderain.training.config import LossConfig
from memderain.training.precision import resolve_amp
from memderain.version import __version__

# What adaptation optimises: named loss settings, measured side by side in docs/real-rain.md.
OBJECTIVES: dict[str, LossConfig] = {
    # the shipped model's recipe (default-streaks): Eq. 14 with the official extras
    "siamese": LossConfig(lambda_b=1.0, lambda_s=1.0, lambda_c=1.0, lambda_w=0.01,
                          lambda_ssim=0.5, lambda_compact=0.01),
    "siamese+agree": LossConfig(lambda_b=1.0, lambda_s=1.0, lambda_c=1.0, lambda_w=0.01,
                                lambda_ssim=0.5, lambda_compact=0.01, lambda_agree=1.0),
    "siamese+floor": LossConfig(lambda_b=1.0, lambda_s=1.0, lambda_c=1.0, lambda_w=0.01,
                                lambda_ssim=0.5, lambda_compact=0.01, lambda_floor=1.0),
    "median": LossConfig(lambda_b=0.0, lambda_s=0.0, lambda_c=0.0, lambda_w=0.0,
                         lambda_median=1.0),
    "siamese+median": LossConfig(lambda_b=1.0, lambda_s=1.0, lambda_c=0.0, lambda_w=0.01,
                                 lambda_ssim=0.5, lambda_compact=0.01, lambda_median=1.0),
    # the median target plus its edges (issue 31: keep roof lines and window frames), and
    # plus its mean brightness on the static pixels (no global darkening)
    "median+edges": LossConfig(lambda_b=0.0, lambda_s=0.0, lambda_c=0.0, lambda_w=0.0,
                               lambda_median=1.0, lambda_edge=1.0),
    "median+edges+brightness": LossConfig(lambda_b=0.0, lambda_s=0.0, lambda_c=0.0,
                                          lambda_w=0.0, lambda_median=1.0, lambda_edge=1.0,
                                          lambda_brightness=1.0),
}


class AdaptRefused(MemderainError):
    """``strict`` adaptation that did not beat the starting model and the identity."""


@dataclass(frozen=True)
class AdaptConfig:
    """Settings of one adaptation (defaults fit 2 CPU cores and a 640x480 clip)."""

    minutes: float = defaults.MINUTES  # wall time of the whole run, reading the clip included
    steps: int = 0  # fixed number of steps, trained in full (0: as many as fit in `minutes`)
    objective: str = DEFAULT_OBJECTIVE
    crop_size: int = defaults.CROP_SIZE
    batch_size: int = defaults.BATCH_SIZE  # pairs per step
    focus: float = defaults.FOCUS  # share of crops drawn where the frame has rain (ClipPairs)
    lr: float = defaults.LR
    warmup_steps: int = 10
    seed: int = 0
    max_frames: int = DEFAULT_MAX_FRAMES
    max_side: int = 0  # downsize frames to this longer side first (0: keep)
    max_shift: float = DEFAULT_MAX_SHIFT
    stabilise: str = "auto"  # hand-held clips: "auto" / "off" / "on" (load_static_clip)
    # leave every N-th frame out of training: the safety check scores them (0/1: none, and
    # then no check)
    holdout_every: int = defaults.HOLDOUT_EVERY
    check_pixels: int = defaults.CHECK_PIXELS  # held-out pixels the closing check scores (0: all)
    threads: int = 0  # torch CPU threads (0: torch's default)
    device: str = "auto"
    # "auto": bf16 autocast on CUDA and on CPUs with AMX / AVX512-BF16 (2x the steps in the
    # same minutes there), fp32 elsewhere; "f32" / "bf16" force it
    precision: str = "auto"
    save_every_s: float = 60.0
    # R_hat >= 0 (the shipped model's clamp) lets the network only subtract light, so under
    # sensor noise the best it can do toward the median is to darken a little everywhere
    # (measured on yard.mp4: -0.55 grey levels after 150 steps, +0.10 without the clamp);
    # False lets the adapted model also lift pixels toward the median; None keeps the
    # starting checkpoint's setting
    nonnegative_rain: bool | None = False
    loss: LossConfig | None = field(default=None, compare=False)  # overrides `objective`

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES and self.loss is None:
            raise MemderainError(f"unknown objective {self.objective!r}; choose one of "
                                 f"{', '.join(OBJECTIVES)}")
        if self.minutes <= 0 and self.steps <= 0:
            raise MemderainError("give a positive --minutes or --steps")
        if self.crop_size < 16 or self.crop_size % 8:
            raise MemderainError(f"--crop must be a multiple of 8 and >= 16, got {self.crop_size}")
        if self.batch_size < 1 or self.lr <= 0 or self.steps < 0:
            raise MemderainError("need --batch >= 1, --lr > 0, --steps >= 0")
        if not 0.0 <= self.focus <= 1.0:
            raise MemderainError(f"--focus must be in [0, 1], got {self.focus}")
        if self.precision not in ("auto", "f32", "bf16"):
            raise MemderainError(f"--precision must be auto, f32 or bf16, got {self.precision!r}")

    def loss_config(self) -> LossConfig:
        return self.loss if self.loss is not None else OBJECTIVES[self.objective]


@dataclass
class AdaptResult:
    path: Path | None  # what was written (None: nothing, strict)
    steps: int
    seconds: float
    frames_used: list[int]  # of the first clip (``used`` has every clip's)
    frames_held_out: list[int]
    losses: dict[str, float]
    clip: StaticClip
    clips: list[StaticClip] = field(default_factory=list)
    used: list[list[int]] = field(default_factory=list)
    held: list[list[int]] = field(default_factory=list)
    # "adapted", "start" or "identity": what was written; "unchecked" without held-out frames
    verdict: str = "unchecked"
    heldout: dict[str, dict[str, float]] = field(default_factory=dict)  # method -> scores
    checked: list[list[int]] = field(default_factory=list)  # held-out frames the check scored
    reference: str = ""  # the clip score's reference of the check ("strict" / "motion"; mixed)

    def heldout_line(self) -> str:
        """One line: the held-out scores of the three candidates and what was written."""
        if not self.heldout:
            return "no frame held out (a clip of fewer than --holdout-every frames): not checked"
        s = self.heldout
        base = s["input"]["psnr_y"]
        parts = [f"input {base:.2f} dB"] + [
            f"{name} {s[name]['psnr_y']:.2f} ({s[name]['psnr_y'] - base:+.2f}, brightness "
            f"{s[name]['brightness']:+.2f})" for name in ("start", "adapted")]
        n = sum(len(h) for h in self.held)
        k = sum(len(c) for c in self.checked) if self.checked else n
        frames = f"{n}" if k == n else f"{k} of {n}, evenly spread"
        if self.reference:
            frames += f"; {self.reference} reference"
        return f"held-out frames ({frames}): " + ", ".join(parts)


def check_frames(clips: Sequence[StaticClip], held: Sequence[Sequence[int]],
                 max_pixels: int) -> list[list[int]]:
    """The held-out frames the closing check scores: per clip, evenly spread over its held-out
    frames, at most ``max_pixels`` pixels over all clips (shared equally), at least one frame
    of each clip that holds any out; all of them for ``max_pixels`` <= 0."""
    if max_pixels <= 0:
        return [list(h) for h in held]
    share = max_pixels / max(1, sum(1 for h in held if h))
    out = []
    for c, h in zip(clips, held, strict=True):
        k = min(len(h), max(1, int(share // (c.frames.shape[1] * c.frames.shape[2]))))
        out.append(evenly_spaced(h, k))
    return out


def resume_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".resume")


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MemderainError(f"device {name!r} requested but CUDA is not available")
    return dev


def _lr_factor(step: int, done: float, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then a cosine over ``done`` in [0, 1], the share
    of the run behind us (steps for a step count, wall time for a time budget)."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * min(max(done, 0.0), 1.0)))


Progress = Callable[[int, int, dict[str, float]], None]  # (step, total, values)


def adapt(clip_source: str | Path | Sequence[str | Path], out: str | Path,
          weights: str | Path | None = None, cfg: AdaptConfig | None = None, *,
          resume: bool = False, overwrite: bool = False, strict: bool = False,
          clip: StaticClip | Sequence[StaticClip] | None = None,
          progress: Progress | None = None,
          callback: Callable[[int, torch.nn.Module], None] | None = None,
          read_progress: Callable | None = None) -> AdaptResult:
    """Adapt ``weights`` (default: the shipped model) to the clip(s) and write ``out``.

    ``clip_source``: one clip or several of one camera (adapted together). ``clip`` may pass
    already loaded :class:`StaticClip` s of ``clip_source``. ``strict``: write nothing (raise
    :class:`AdaptRefused`) unless the adapted model beats the starting model and the identity
    on the held-out frames.
    ``progress(step, total, values)`` is called after every step, and ``callback(step, model)``
    too (benchmarks score the model there; tests interrupt the run). ``read_progress(iterable,
    total)`` may wrap the reading of the clip's frames (a bar before the first step). Raises
    :class:`MemderainError` on bad input before any work.
    """
    from memderain.weights import default_weights_path

    cfg = cfg or AdaptConfig()
    out = Path(out)
    state_path = resume_path(out)
    if out.exists() and not overwrite:
        raise MemderainError(f"{out} exists; pass --overwrite to replace it")
    if out.suffix != ".pt":
        raise MemderainError(f"-o {out}: adapted weights are a checkpoint; use a .pt name")
    if resume and not state_path.is_file():
        raise MemderainError(f"--resume: no interrupted adaptation at {state_path}")
    if state_path.exists() and not (resume or overwrite):
        raise MemderainError(f"{state_path} holds an interrupted adaptation: continue it with "
                             "--resume, or start again with --overwrite")
    check_writable(out, name=f"-o {out}")  # before minutes of training, not after
    base = Path(weights) if weights is not None else default_weights_path()
    if base is None:
        raise MemderainError("no shipped model in this install; pass --weights CKPT")
    t_call = time.monotonic()
    device = _device(cfg.device)
    saved_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        sources = ([clip_source] if isinstance(clip_source, (str, Path))
                   else list(clip_source))
        if clip is None:
            clips = [load_static_clip(src, cfg.max_frames, cfg.max_shift, cfg.max_side or None,
                                      progress=read_progress, stabilise=cfg.stabilise)
                     for src in sources]
        else:
            clips = [clip] if isinstance(clip, StaticClip) else list(clip)
        used, held = zip(*(holdout_split(len(c), cfg.holdout_every) for c in clips), strict=True)
        used, held = [list(u) for u in used], [list(h) for h in held]
        for src, u in zip(sources, used, strict=True):
            if len(u) < 2:
                raise MemderainError(f"{src}: {len(u)} frame(s) left to adapt on")
        crop = min([cfg.crop_size] + [(min(c.frames.shape[1:3]) // 8) * 8 for c in clips])
        dataset = ClipPairs(clips, crop, items_per_epoch=max(64, 16 * cfg.batch_size),
                            seed=cfg.seed, frames=used, focus=cfg.focus)
        start_model, ckpt = model_from_checkpoint(base)  # as shipped: the check's "start"
        start_model = start_model.to(device).eval()
        checked = check_frames(clips, held, cfg.check_pixels)
        # each clip's reference once, for both halves of the check (it sorts every frame)
        refs = [ClipReference(c) if h else None for c, h in zip(clips, checked, strict=True)]
        # strict for clips stored without loss, else motion (clip_mask.resolve_kind)
        reference = "/".join(sorted({r.kind for r in refs if r is not None}))
        t_check = time.monotonic()
        start_scores = _heldout_scores(clips, checked, {"start": torch_method(start_model)},
                                       refs)
        check_s = time.monotonic() - t_check  # the adapted model's check costs about the same
        model, _ = model_from_checkpoint(base)
        if cfg.nonnegative_rain is not None:  # an output constraint: no weight depends on it
            model.config = dataclasses.replace(model.config,
                                               nonnegative_rain=cfg.nonnegative_rain)
        # channels_last (NHWC): 1.19x the fp32 steps/s of NCHW on a 2-core EPYC, 1.06x in
        # bf16, same arithmetic (docs/real-rain.md, after the repeats of the default run)
        model = model.to(device, memory_format=torch.channels_last).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        step, elapsed, total = 0, 0.0, cfg.steps  # total 0: as many steps as the budget allows
        if resume:
            saved = load_checkpoint(state_path)
            state = saved["train_state"]
            if state.get("adapt_config") != _cfg_dict(cfg):
                raise MemderainError(f"--resume: {state_path} was started with other settings "
                                     "(same clip, weights and options are needed; --overwrite "
                                     "starts again)")
            model.load_state_dict(saved["state_dict"])
            optimizer.load_state_dict(state["optimizer"])
            set_rng_state(state["rng"])
            step, elapsed = int(state["step"]), float(state["elapsed"])
        else:
            torch.manual_seed(cfg.seed)
        loss_cfg = cfg.loss_config()
        amp = resolve_amp({"f32": "none"}.get(cfg.precision, cfg.precision), device)
        # the budget covers the whole command: keep room for the closing check; a step count
        # is trained in full however long it takes (reproducible: the same steps, the same
        # weights, on a busy machine too)
        budget = (cfg.minutes * 60.0 - 1.2 * check_s if cfg.minutes > 0 and not cfg.steps
                  else math.inf)
        values: dict[str, float] = {}

        def save_state() -> None:
            meta = {"recipe": "adapt (interrupted)", "base_weights": str(base)}
            ts = {"step": step, "elapsed": elapsed,
                  "optimizer": optimizer.state_dict(), "rng": rng_state(),
                  "adapt_config": _cfg_dict(cfg)}
            atomic_torch_save(make_checkpoint(model, meta, ts), state_path)

        t_loop = last_save = time.monotonic()
        elapsed0, step0 = elapsed, step
        elapsed = elapsed0 + t_loop - t_call  # reading the clip counts against the budget
        try:
            while (total == 0 or step < total) and elapsed < budget:
                dataset.set_epoch(step)
                batch = _batch(dataset, step, cfg.batch_size, device)
                # a step count: the cosine runs over steps (reproducible); a time budget: over
                # wall time, so slow first steps or a busy machine never end the run early
                done = step / total if total else elapsed / budget
                for group in optimizer.param_groups:
                    group["lr"] = cfg.lr * _lr_factor(step, done, cfg.warmup_steps)
                values = _step(model, optimizer, loss_cfg, batch, amp == "bf16")
                step += 1
                now = time.monotonic()
                elapsed = elapsed0 + now - t_call
                per_step = (now - t_loop) / (step - step0)
                expected = total or step + max(0, int((budget - elapsed) / per_step))
                if progress is not None:
                    progress(step, expected, values)
                if callback is not None:
                    callback(step, model)
                if time.monotonic() - last_save > cfg.save_every_s:
                    save_state()
                    last_save = time.monotonic()
        except BaseException:
            if step > 0:
                save_state()
            raise
        model = model.to(memory_format=torch.contiguous_format).eval()
        scores = _heldout_scores(clips, checked, {"adapted": torch_method(model)}, refs)
        heldout = {**start_scores, **scores}
        verdict = _verdict(heldout)
        per_clip = [{"clip": str(Path(c.source).resolve()) if c.source else "",
                     "frames": len(c), "frame_indices": list(map(int, c.indices)),
                     "frames_used": u, "frames_held_out": h, "frames_checked": k,
                     "alignment": dict(c.alignment)}
                    for c, u, h, k in zip(clips, used, held, checked, strict=True)]
        meta = {
            "recipe": f"adapt ({cfg.objective if cfg.loss is None else 'custom loss'})",
            "base_weights": str(base), "steps": step,
            "wall_time_s": round(elapsed0 + time.monotonic() - t_call, 1),
            "memderain_version": __version__,
            "adapt": {**per_clip[0], "clips": per_clip, "config": _cfg_dict(cfg),
                      "verdict": verdict, "heldout": heldout, "reference": reference},
            "base_meta": dict(ckpt.get("meta", {})),
        }
        result = AdaptResult(out, step, elapsed, used[0], held[0], values, clips[0], clips,
                             used, held, verdict, heldout, checked, reference)
        if verdict not in ("adapted", "unchecked"):
            if strict:
                if state_path.exists():
                    state_path.unlink()
                raise AdaptRefused(f"the adapted model does not beat the starting model and "
                                   f"the rainy input on the held-out frames; nothing written "
                                   f"({result.heldout_line()})")
            model = start_model.cpu()
            if verdict == "identity":  # leave the clip as it is: R_hat x 0
                model.config = dataclasses.replace(model.config, rain_gain=0.0)
        _save_result(make_checkpoint(model, meta), out)
        if state_path.exists():
            state_path.unlink()
        return result
    finally:
        torch.set_num_threads(saved_threads)


def _heldout_scores(clips: Sequence[StaticClip], held: Sequence[Sequence[int]],
                    methods: dict, refs: Sequence[ClipReference | None]
                    ) -> dict[str, dict[str, float]]:
    """{method (and "input"): {psnr_y, brightness, hf_error}} on the held-out frames of
    every clip against its reference ``refs``, pooled (mean squared error weighted by
    frames); {} when none is held out."""
    per = [(len(h), score_subsets(c, methods, {"held": h}, reference=r)["held"])
           for c, h, r in zip(clips, held, refs, strict=True) if h]
    if not per:
        return {}
    total = sum(n for n, _ in per)
    out = {}
    for name in per[0][1]:
        mse = sum(n * 255.0 ** 2 / 10 ** (sc[name].psnr_y / 10) for n, sc in per) / total
        out[name] = {  # plain floats: the checkpoint's meta must load with weights_only
            "psnr_y": round(float(10 * math.log10(255.0 ** 2 / max(mse, 1e-12))), 3),
            "brightness": round(float(sum(n * sc[name].brightness for n, sc in per)) / total, 3),
            "hf_error": round(float(sum(n * sc[name].hf_error for n, sc in per)) / total, 3)}
    return out


def _verdict(scores: dict[str, dict[str, float]]) -> str:
    """What to write: "adapted" if it beats the starting model and the identity on the
    held-out frames (Y-PSNR), else the better of those two; "unchecked" without scores."""
    if not scores:
        return "unchecked"
    psnr = {k: v["psnr_y"] for k, v in scores.items()}
    if psnr["adapted"] > max(psnr["start"], psnr["input"]):
        return "adapted"
    return "start" if psnr["start"] > psnr["input"] else "identity"


def _save_result(checkpoint: dict, out: Path) -> None:
    """Write the adapted checkpoint to ``out``; if that fails (the folder became read-only,
    the disk is full), keep the work in the temporary folder and say where, in one line."""
    try:
        atomic_torch_save(checkpoint, out)
        return
    except OSError as exc:
        reason = exc.strerror or str(exc)
    try:
        fd, kept = tempfile.mkstemp(prefix=f"{out.stem}.", suffix=out.suffix)
        with os.fdopen(fd, "wb") as fh:
            torch.save(checkpoint, fh)
    except OSError as exc:
        raise OutputError(f"-o {out}: cannot write ({reason}); the adapted weights are lost "
                          f"(no temporary copy either: {exc.strerror or exc})") from None
    raise OutputError(f"-o {out}: cannot write ({reason}); the adapted weights are saved in "
                      f"{kept} instead (move them where you like)")


def _cfg_dict(cfg: AdaptConfig) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    for k in ("minutes", "save_every_s", "threads", "device", "precision"):  # may change on --resume
        d.pop(k)
    if d["loss"] is None:
        d.pop("loss")
    return d


def _batch(dataset: ClipPairs, step: int, size: int, device: torch.device) -> dict:
    items = [dataset[(step * size + k) % len(dataset)] for k in range(size)]
    batch = {k: torch.stack([it[k] for it in items]).to(device)
             for k in ("w", "v", "mask", "median", "has_median")}
    return {k: t.contiguous(memory_format=torch.channels_last) if t.ndim == 4 else t
            for k, t in batch.items()}


def _step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss_cfg: LossConfig,
          batch: dict, bf16: bool = False) -> dict[str, float]:
    w, v = batch["w"], batch["v"]
    with torch.autocast(w.device.type, dtype=torch.bfloat16, enabled=bf16):
        out = model(torch.cat([w, v]))
    out = type(out)(*(t.float() if torch.is_tensor(t) else t for t in out))  # losses in fp32
    out_w, out_v = split_pair(out, w.shape[0])
    items = model.memory.items if model.memory is not None else None
    loss, terms = siamese_loss(loss_cfg, w, v, out_w, out_v, items=items, mask=batch["mask"],
                               median=batch["median"], has_median=batch["has_median"])
    if not torch.isfinite(loss):
        raise MemderainError("adaptation diverged (non-finite loss); lower --lr")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"loss": float(loss.detach()), **{k: float(t) for k, t in terms.items()}}


__all__ = ["OBJECTIVES", "AdaptConfig", "AdaptRefused", "AdaptResult", "adapt", "resume_path"]
