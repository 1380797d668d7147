"""Seconds per training step of ablation variants at an experiment scale, and seconds per test
image of their evaluation: the numbers the `cpu` scale's step count is chosen from.

    memderain synth ../shared/data/backgrounds/train /tmp/abl/train --frames 8 --max-side 256
    memderain synth ../shared/data/backgrounds/test /tmp/abl/test --frames 1 --rain heldout --seed 1
    python benchmarks/ablation_speed.py --train /tmp/abl/train/frames --test /tmp/abl/test \
        --variants loss_sbcw Ba --steps 300 --threads 1 2

Prints, per (variant, threads): s/step after --warmup steps, and s/image of the evaluation
(de-rain + Y/RGB PSNR/SSIM) of the resulting checkpoint on --eval-images test images; then the
predicted wall time of the whole scale (every distinct variant x seeds) for a few step counts.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch


def time_training(variant: str, root: str, scale, steps: int, warmup: int, threads: int,
                  run_dir: Path) -> float:
    from memderain.experiments.variants import variant_config
    from memderain.training.trainer import Trainer

    over = scale.overrides() + [f"train.steps={steps + warmup}", f"train.threads={threads}",
                                "train.progress=false", "train.ckpt_every=1000000",
                                "train.ckpt_minutes=0"]
    cfg = variant_config(variant, scale.term_weights, over, {"data.root": root})
    stamps: list[float] = []
    trainer = Trainer(cfg, run_dir, overwrite=True, argv=["bench"],
                      callbacks=(lambda t, s, v: stamps.append(time.perf_counter()),))
    try:
        trainer.fit()
    finally:
        trainer.close()
    timed = stamps[warmup - 1:]
    return (timed[-1] - timed[0]) / (len(timed) - 1)


def time_eval(ckpt: Path, test: str, images: int, threads: int) -> float:
    import memderain
    from memderain.evaluation.benchmarks import open_benchmark
    from memderain.evaluation.metrics import STANDARD_METRICS
    from memderain.evaluation.runner import evaluate_benchmark

    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        bench = open_benchmark(test, "synth", frames_per_scene=1)
        derainer = memderain.load_model(ckpt)
        t0 = time.perf_counter()
        rows, _, _ = evaluate_benchmark(bench, derainer.derain, STANDARD_METRICS, limit=images,
                                        progress=False)
        return (time.perf_counter() - t0) / len(rows)
    finally:
        torch.set_num_threads(saved)


def main() -> None:
    from memderain.experiments.scale import get_scale
    from memderain.experiments.variants import VARIANTS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", required=True, help="training root (scene folders of frames)")
    p.add_argument("--test", required=True, help="test folder in the synth layout")
    p.add_argument("--scale", default="cpu")
    p.add_argument("--variants", nargs="+", default=["loss_sbcw", "Ba"])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--eval-images", type=int, default=20)
    p.add_argument("--test-scenes", type=int, default=69, help="for the prediction")
    p.add_argument("--seeds", type=int, default=2, help="for the prediction")
    args = p.parse_args()
    scale = get_scale(args.scale)
    print(f"scale {scale.name}: {' '.join(scale.overrides())}; load {os.getloadavg()}")
    results: dict[tuple[str, int], tuple[float, float]] = {}
    for threads in args.threads:
        for variant in args.variants:
            with tempfile.TemporaryDirectory() as tmp:
                s = time_training(variant, args.train, scale, args.steps, args.warmup, threads,
                                  Path(tmp))
                e = time_eval(Path(tmp) / "last.pt", args.test, args.eval_images, threads)
            results[(variant, threads)] = (s, e)
            print(f"{variant:10s} threads {threads}: {s:.3f} s/step ({scale.batch_size / s:.1f} "
                  f"pairs/s), eval {e:.3f} s/image; load {os.getloadavg()[0]:.2f}", flush=True)
    # prediction: pseudo-GT variants (Ba, Bb) cost like the measured pseudo-GT one, all
    # Siamese variants like the measured Siamese one (the slowest: memory + BSW)
    siamese = [v.name for v in VARIANTS if v.name not in ("Ba", "Bb", "loss_sbc")]  # 7 runs
    for threads in args.threads:
        s_sia, e = results.get((args.variants[0], threads), (None, None))
        s_pgt = results.get(("Ba", threads), (s_sia, e))[0]
        if s_sia is None:
            continue
        eval_s = 9 * args.seeds * args.test_scenes * e + args.test_scenes * 0.1
        for steps in (1000, 1500, 2000, 2500, 3000):
            train_s = args.seeds * steps * (len(siamese) * s_sia + 2 * s_pgt)
            print(f"threads {threads}: {steps} steps -> training {train_s / 60:.0f} min + "
                  f"evaluation {eval_s / 60:.0f} min = {(train_s + eval_s) / 60:.0f} min")


if __name__ == "__main__":
    main()
