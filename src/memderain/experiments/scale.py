"""Named sizes of an experiment: the settings applied on top of every preset of an ablation,
plus the size of the synthetic data it builds when none is given.

The paper trains each row of Tables IV and V for about a day on a GPU (C=64, 256x256 crops,
batch 16). An :class:`ExperimentScale` shrinks that uniformly: every variant gets the same
overrides, so the rows stay comparable with each other (not with the paper's absolute numbers).

``cpu`` (the default) runs all 9 distinct trainings of Tables IV/V x 2 seeds plus their
evaluation in about 110 min on 2 CPU cores. Measured with ``benchmarks/ablation_speed.py``
(C=32, 64 px crops, batch 8, frames cached, torch 2.13 CPU, 2-core development machine,
training data = 180 ``backgrounds/train`` photos x 8 frames, max side 256):

================  =====================  =====================  ==========================
threads           Siamese (loss_sbcw;     pseudo-GT (Ba)         evaluation, 512 px test
                  Bc: 0.279)                                     image (de-rain + metrics)
================  =====================  =====================  ==========================
1 (load ~1-2)     0.286-0.293 s/step      0.139-0.144 s/step     0.30-0.32 s
2, idle machine   0.168 s/step            0.078 s/step           0.21 s
2, load ~2.5      0.382 s/step            --                     0.20 s
================  =====================  =====================  ==========================

One thread is the default: on a core shared with other jobs two threads can be slower than one,
while one thread costs the same whatever runs on the other core. Prediction for 1300 steps, one
thread: 2 seeds x 1300 x (7 Siamese x 0.290 + 2 pseudo-GT x 0.143) s = 100 min of training,
18 x 69 test images x 0.31 s = 6.5 min of evaluation, ~2 min of per-run set-up (frame cache
3.5 s, logger, first step) and 0.5 min to render the data: about **110 min**. Checked: two
1300-step loss_sbcw runs side by side (one thread each) took 6.2 and 6.5 min. With
``--threads 2`` on an idle machine the same set takes about 65 min.

"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from memderain.errors import MemderainError


@dataclass(frozen=True)
class ExperimentScale:
    """Training overrides common to all variants, and the size of the auto-built data."""

    name: str
    # -- training (applied as `--set` overrides on top of each preset) -----------------------
    steps: int
    channels: int = 32  # model.channels (Table I: 64; Sec. III-E text: 32)
    num_items: int | None = None  # model.num_items (None: the preset's M = 20)
    crop_size: int = 64  # data.crop_size
    batch_size: int = 8  # train.batch_size (pairs per step)
    cache: bool = True  # data.cache: decode the frames once into RAM
    num_workers: int = 0  # data.num_workers
    threads: int = 0  # train.threads (0: torch's default); --threads overrides
    term_weights: str = "official"  # Eq. 14 weights of the terms a variant switches on:
    # "paper" (the presets': lambda_s 0.1, lambda_c 0.001) or "official" (authors' code: 1, 1);
    # see memderain.experiments.variants and docs/experiments.md (paper weights collapse here)
    log_every: int = 50
    ckpt_every: int = 500  # last.pt every N steps (resume granularity) ...
    ckpt_minutes: float = 5.0  # ... and at least this often
    image_every: int = 0  # TensorBoard sample images (0: none)
    # -- data built when --train / --test are not given (memderain synth) -------------------
    train_frames: int = 8  # frames per training scene
    train_max_side: int = 256  # training photos downsized to this longer side
    train_limit: int | None = None  # first N training photos (None: all)
    train_rain: str = "mixed"
    train_seed: int = 0
    test_frames: int = 1  # frames per test scene (also: frames evaluated per scene)
    test_max_side: int = 512  # the synth default
    test_limit: int | None = None
    test_rain: str = "heldout"  # a rain setting never used in training
    test_seed: int = 1
    real_max_side: int = 512  # --real photos downsized to this longer side (NIQE, figure)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.channels < 1 or self.test_frames < 1:
            raise MemderainError(f"scale {self.name}: steps, batch_size, channels, test_frames "
                                 "must be >= 1")
        if self.term_weights not in ("paper", "official"):
            raise MemderainError(f"term weights must be 'paper' or 'official', got "
                                 f"{self.term_weights!r}")

    def overrides(self) -> list[str]:
        """The ``--set`` strings applied to every variant (same syntax as ``memderain train``)."""
        out = [f"model.channels={self.channels}"]
        if self.num_items is not None:
            out.append(f"model.num_items={self.num_items}")
        out += [
            f"data.crop_size={self.crop_size}", f"data.cache={str(self.cache).lower()}",
            f"data.num_workers={self.num_workers}", f"train.batch_size={self.batch_size}",
            f"train.steps={self.steps}", f"train.log_every={self.log_every}",
            f"train.ckpt_every={self.ckpt_every}", f"train.ckpt_minutes={self.ckpt_minutes}",
            f"train.image_every={self.image_every}", f"train.threads={self.threads}",
        ]
        return out

    def with_changes(self, **changes) -> ExperimentScale:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


SCALES: dict[str, ExperimentScale] = {
    # 2 CPU cores, ~110 min for 9 variants x 2 seeds (measurements in the module docstring).
    "cpu": ExperimentScale(name="cpu", steps=1300, threads=1),
    # Seconds, for tests: a C=8 network, 32 px crops, 3 steps, tiny data.
    "smoke": ExperimentScale(
        name="smoke", steps=3, channels=8, num_items=4, crop_size=32, batch_size=2,
        threads=1, log_every=1, ckpt_every=2, ckpt_minutes=0, train_frames=3,
        train_max_side=48, train_limit=3, test_frames=1, test_max_side=48, test_limit=2,
        real_max_side=200),
}


def get_scale(name: str) -> ExperimentScale:
    if name not in SCALES:
        raise MemderainError(f"--scale {name!r}: unknown; choose from {', '.join(SCALES)}")
    return SCALES[name]
