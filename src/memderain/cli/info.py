"""`memderain info`: version, parameter count, device and the checkpoint in use."""

from __future__ import annotations

import argparse
import platform

from memderain.choices import BACKENDS, PRECISIONS
from memderain.version import __version__


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="print version, parameter count, device and weights in use")
    p.add_argument("--weights", help="checkpoint to describe (default: the shipped model)")
    p.add_argument("--backend", default="auto",
                   choices=BACKENDS,
                   help="name the backend this choice resolves to (default auto)")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="name the arithmetic this choice resolves to (default auto)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from memderain.checkpoint import config_from_checkpoint, load_checkpoint
    from memderain.config import config_to_dict
    from memderain.inference.backends import describe_backend
    from memderain.model import build_model, count_parameters
    from memderain.weights import default_weights_path

    path = args.weights or default_weights_path()
    print(f"memderain {__version__}  (torch {torch.__version__}, python {platform.python_version()})")
    cuda = torch.cuda.is_available()
    print(f"device: {'cuda (' + torch.cuda.get_device_name(0) + ')' if cuda else 'cpu'}"
          f", {torch.get_num_threads()} CPU threads")
    device = torch.device("cuda" if cuda else "cpu")
    ckpt = load_checkpoint(path) if path is not None else {}
    meta = ckpt.get("meta") or {}
    print(f"backend: {describe_backend(args.backend, device, args.precision, meta)}")
    if path is None:
        model = build_model("paper")
        print("weights: none shipped with this install; pass --weights PATH to derain")
        print(f"model (paper Table I): {count_parameters(model):,} parameters, "
              f"{model.config.num_items} memory items x {model.config.channels}")
        return 0
    config = config_from_checkpoint(ckpt)
    model = build_model(config)
    print(f"weights: {path}")
    for key in ("name", "recipe", "steps", "trained_on", "wall_time_s", "hardware", "int8"):
        if key in meta:
            print(f"  {key}: {meta[key]}")
    print(f"  saved by memderain {ckpt.get('memderain_version', '?')}")
    print(f"model: {count_parameters(model):,} parameters, "
          f"{config.num_items if config.use_memory else 0} memory items x {config.channels}")
    print(f"  config: {config_to_dict(config)}")
    return 0
