"""`memderain export`: write the network as ONNX or TorchScript ([0, 1] image in and out)."""

from __future__ import annotations

import argparse

from memderain.choices import EXPORT_FORMATS as FORMATS
from memderain.choices import EXPORT_SUFFIXES as SUFFIXES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export the model to ONNX or TorchScript (dynamic batch, height and width)",
        description="Export the de-raining network. The file takes an image (N, 3, H, W) in "
        "[0, 1], any H and W, and returns the de-rained image in [0, 1].",
    )
    p.add_argument("--format", choices=FORMATS, required=True, help="output format")
    p.add_argument("--weights", help="checkpoint to export (default: the shipped model)")
    p.add_argument("-o", "--output", required=True,
                   help="file to write: " + "; ".join(f"{f} {' / '.join(s)}"
                                                      for f, s in SUFFIXES.items()))
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from memderain.export import (
        INPUT_NAME,
        OUTPUT_NAME,
        check_export_path,
        export_model,
        load_for_export,
    )

    check_export_path(args.output, args.format, args.overwrite)  # before loading anything
    wrapper, weights = load_for_export(args.weights)
    out = export_model(wrapper, args.output, args.format, overwrite=args.overwrite)
    print(f"wrote {args.format} model of {weights} to {out}")
    if args.format == "onnx":
        print(f"  input {INPUT_NAME!r}: float32 (N, 3, H, W) in [0, 1]; output {OUTPUT_NAME!r}")
    else:
        print("  load with torch.jit.load(path); call it on a float32 (N, 3, H, W) tensor in [0, 1]")
    return 0
