"""Does a reduced inference precision keep quality? Y-PSNR per test preset, f32 vs bf16 / int8.

The backends' issues allow bf16 and int8 only where quality holds within 0.05 dB of f32. This
script measures it: for every rendered test set (``scripts/model_card.sh`` renders them under
``out/model-card``), the mean Y-PSNR of the model's outputs against the clean photos through
OpenVINO f32 (the same pixels as PyTorch, ``tests/test_backends.py``), bf16 (where the CPU does
it natively) and int8 (NNCF, :mod:`memderain.inference.int8`, when installed), each one's
difference from f32 and the largest pixel difference; then the held-out real clip
(``news_test1.mp4``, scored against its temporal median on static pixels, at ``--clip-side``).

``--record`` writes the int8 result into the checkpoint's meta (``meta["int8"]``: the largest
|int8 - f32| over every set and the clip, the calibration recipe, the sets): ``precision=auto``
then picks int8 for these weights when that is within 0.05 dB (``int8_certified``).

    python benchmarks/precision.py                              # shipped model, every set
    python benchmarks/precision.py --weights runs/x/best.pt --sets out/model-card/test-heavy
    python benchmarks/precision.py --weights W.pt --record      # certify W.pt's int8 (or not)
"""

from __future__ import annotations

import argparse
import statistics
import sys
from datetime import date
from pathlib import Path

import numpy as np

from memderain.checkpoint import atomic_torch_save, load_checkpoint
from memderain.evaluation.benchmarks import open_benchmark
from memderain.evaluation.metrics import psnr
from memderain.inference import int8
from memderain.inference.backends import native_bf16
from memderain.inference.predictor import load_model
from memderain.weights import default_weights_path

WORK = Path("out/model-card")
CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real_video" / "news_test1.mp4"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default=None, help="checkpoint (default: the shipped model)")
    p.add_argument("--threads", type=int, default=None, help="inference threads")
    p.add_argument("--sets", nargs="*", type=Path, default=None,
                   help=f"rendered test sets (default: every {WORK}/test-*)")
    p.add_argument("--clip", type=Path, default=CLIP, help="held-out real clip ('' to skip)")
    p.add_argument("--clip-side", type=int, default=960)
    p.add_argument("--record", action="store_true",
                   help="write the int8 result into the checkpoint's meta (see above)")
    args = p.parse_args(argv)
    sets = args.sets or sorted(d for d in WORK.glob("test-*") if (d / "synth.json").is_file())
    if not sets:
        print(f"no rendered test sets under {WORK}: run scripts/model_card.sh first")
        return 1
    names = ["f32"] + (["bf16"] if native_bf16() else []) + (
        ["int8"] if int8.nncf_installed() else [])
    models = {n: load_model(args.weights, backend="openvino", precision=n, threads=args.threads)
              for n in names}
    low = names[1:]
    print("| set | images | " + " | ".join(names) + " | "
          + " | ".join(f"{n} - f32 (dB) | max pixel diff {n}" for n in low) + " |")
    print("|---|" + "---:|" * (len(names) + 1 + 2 * len(low)))
    worst = {n: 0.0 for n in low}
    measured = []
    for root in sets:
        bench = open_benchmark(root)
        scores: dict[str, list[float]] = {m: [] for m in models}
        max_diff = {n: 0 for n in low}
        for pair in bench:
            rainy, clean = bench.load(pair)
            outs = {m: model.derain(rainy) for m, model in models.items()}
            for m, out in outs.items():
                scores[m].append(psnr(out, clean, "y"))
            for n in low:
                diff = np.abs(outs[n].astype(int) - outs["f32"].astype(int))
                max_diff[n] = max(max_diff[n], int(diff.max()))
        means = {m: statistics.mean(v) for m, v in scores.items()}
        _row(root.name, len(scores["f32"]), means, max_diff, worst)
        measured.append(root.name)
    if args.clip and args.clip.exists():
        from memderain.data.static_clip import load_static_clip
        from memderain.evaluation.clip_score import score_methods

        clip = load_static_clip(args.clip, 60, 8.0, args.clip_side or None)
        sc = score_methods(clip, {m: model.derain for m, model in models.items()})
        means = {m: sc[m].psnr_y for m in models}
        _row(f"{args.clip.stem} (real, vs temporal median)", len(clip), means,
             {n: "-" for n in low}, worst)
        measured.append(args.clip.stem)
    for n in low:
        print(f"\nlargest |{n} - f32| over the sets: {worst[n]:.3f} dB (bar: {int8.MAX_LOSS_DB})")
    if args.record:
        if "int8" not in worst:
            print("--record: NNCF is not installed, nothing measured")
            return 1
        path = Path(args.weights) if args.weights else default_weights_path()
        ckpt = load_checkpoint(path)
        ckpt.setdefault("meta", {})["int8"] = {
            "max_loss_db": round(worst["int8"], 4), "calibration": int8.CALIBRATION_ID,
            "sets": measured, "measured": date.today().isoformat()}
        atomic_torch_save(ckpt, path)
        verdict = "auto picks int8" if int8.int8_certified(ckpt["meta"]) else "auto stays float"
        print(f"recorded in {path}: {ckpt['meta']['int8']} ({verdict})")
    return 0


def _row(name, count, means, max_diff, worst) -> None:
    for n in max_diff:
        worst[n] = max(worst[n], abs(means[n] - means["f32"]))
    cells = " | ".join(f"{v:.3f}" for v in means.values())
    deltas = " | ".join(f"{means[n] - means['f32']:+.3f} | {max_diff[n]}" for n in max_diff)
    print(f"| {name} | {count} | {cells} | {deltas} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
