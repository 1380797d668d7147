"""Average the weights of several checkpoints of one run (snapshots of `train.snapshot_every`).

    python scripts/average_weights.py runs/stage6/snapshots/step-0006*.pt -o runs/stage6/avg.pt

A uniform mean of every floating-point tensor, as stochastic weight averaging does at the end of
a run (Izmailov et al. 2018): the steps of a fine-tune scatter around a minimum (stage 5's
steps 1500 and 1796 were 5 dB apart on clean crops), their mean sits nearer its centre. The
memory items (state updated by Eq. 5-6, not gradients) are averaged too and L2-normalised
again, as Eq. 6 keeps them. All checkpoints must share one model config, so only snapshots of
one run (or of one fine-tune's start) make sense together. Writes a weights-only checkpoint
(`memderain derain --weights`, `benchmarks/selection.py --weights`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from memderain.checkpoint import atomic_torch_save, config_from_checkpoint, load_checkpoint
from memderain.errors import MemderainError


def average(paths: list[Path]) -> dict:
    """The first checkpoint with its state_dict replaced by the mean over ``paths``."""
    ckpts = [load_checkpoint(p) for p in paths]
    first = ckpts[0]
    for path, ckpt in zip(paths[1:], ckpts[1:]):
        if config_from_checkpoint(ckpt) != config_from_checkpoint(first):
            raise MemderainError(f"{path}: another model config than {paths[0]}")
        if ckpt["state_dict"].keys() != first["state_dict"].keys():
            raise MemderainError(f"{path}: other weights than {paths[0]}")
    state = {}
    for key, value in first["state_dict"].items():
        if value.is_floating_point():
            value = torch.stack([c["state_dict"][key] for c in ckpts]).mean(0)
        state[key] = value
    if "memory.items" in state:
        state["memory.items"] = F.normalize(state["memory.items"], dim=-1)
    out = {k: v for k, v in first.items() if k != "train_state"}
    out["state_dict"] = state
    out["meta"] = dict(first.get("meta", {}),
                       averaged=[str(p) for p in paths],
                       averaged_steps=[c.get("meta", {}).get("steps") for c in ckpts])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", type=Path, nargs="+")
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args()
    if args.out.exists() and not args.overwrite:
        print(f"error: {args.out} exists (pass --overwrite)", file=sys.stderr)
        return 1
    try:
        ckpt = average(args.checkpoints)
    except MemderainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    atomic_torch_save(ckpt, args.out)
    print(f"wrote {args.out}: mean of {len(args.checkpoints)} checkpoints "
          f"(steps {ckpt['meta']['averaged_steps']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
