"""Turn a training checkpoint into the shipped default model (package data).

    python scripts/make_default_weights.py runs/default-gpu/lr2e-4/best.pt \
        --config runs/default-gpu/lr2e-4/config.yaml

Writes src/memderain/weights/memderain_default.pt (fp32 weights + memory items + model config +
meta; no optimiser state, so ~3.3 MB) and memderain_default.yaml (the run's resolved training
config = the recipe). Refuses to replace existing files without --overwrite.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from memderain.checkpoint import atomic_torch_save, load_checkpoint
from memderain.weights import DEFAULT_RECIPE_NAME, DEFAULT_WEIGHTS_NAME, WEIGHTS_DIR


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--config", type=Path, required=True, help="the run's config.yaml")
    ap.add_argument("--recipe", help="recipe text for `memderain info` (default: the run's name)")
    ap.add_argument("--nonnegative-rain", action="store_true",
                    help="ship with model.nonnegative_rain (R_hat clamped at 0 at inference)")
    ap.add_argument("--trained-on", default="synthetic time-lapse scenes from "
                    "../shared/data/backgrounds/train",
                    help="what the card says it saw (the run's own trained_on is a local path)")
    ap.add_argument("--out-dir", type=Path, default=WEIGHTS_DIR)
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args()
    weights, recipe = args.out_dir / DEFAULT_WEIGHTS_NAME, args.out_dir / DEFAULT_RECIPE_NAME
    for path in (weights, recipe):
        if path.exists() and not args.overwrite:
            print(f"error: {path} exists (pass --overwrite)", file=sys.stderr)
            return 1
    ckpt = load_checkpoint(args.checkpoint)
    ckpt.pop("train_state", None)
    meta = dict(ckpt.get("meta") or {})
    recipe_text = args.recipe or meta.get("recipe", "?")
    meta.update(name="memderain_default", source_checkpoint=args.checkpoint.name,
                recipe=f"{recipe_text} (training config: weights/{DEFAULT_RECIPE_NAME}, MODEL_CARD.md)")
    # the run's trained_on is a path on the training machine; the card names the data
    meta["trained_on"] = args.trained_on
    ckpt["meta"] = meta
    if args.nonnegative_rain:
        ckpt["model_config"]["nonnegative_rain"] = True
    atomic_torch_save(ckpt, weights)
    shutil.copyfile(args.config, recipe)
    print(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB) and {recipe}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
