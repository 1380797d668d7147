"""Command line: ``memderain SUBCOMMAND ...``. Each subcommand lives in its own module under
``memderain.cli`` and exposes ``register(subparsers)``, which adds its parser and sets
``func(args) -> int``. The CLI is a thin mirror of the library: it parses flags and calls it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from memderain.errors import MemderainError
from memderain.signals import sigterm_as_interrupt
from memderain.version import __version__

# Order here is the order of `memderain --help`.
SUBCOMMANDS = [
    "memderain.cli.info",
    "memderain.cli.derain",
    "memderain.cli.eval",
    "memderain.cli.report",
    "memderain.cli.export",
    "memderain.cli.visualize",
    "memderain.cli.serve",
    "memderain.cli.synth",
    "memderain.cli.extract_frames",
    "memderain.cli.rain_layers",
    "memderain.cli.adapt",
    "memderain.cli.train",
    "memderain.cli.experiment",
]


def recorded_command() -> list[str]:
    """The command line a run folder records: ``memderain ARGS`` when the ``memderain`` console
    script is the running program (judged by its file name, not by the folders around it),
    otherwise the process's own ``sys.argv`` unchanged (pytest, ``python -m memderain``...)."""
    if sys.argv and Path(sys.argv[0]).name in ("memderain", "memderain.exe"):
        return ["memderain", *sys.argv[1:]]
    return list(sys.argv)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``memderain`` parser with every subcommand, or with just the one named ``only``
    (what :func:`main` builds when the command line names one: a `memderain derain` then does
    not import the training and evaluation modules, about 0.4 s of start-up)."""
    parser = argparse.ArgumentParser(
        prog="memderain",
        description="Memory-guided single-image de-raining (Cho, Kim, Sohn, IEEE TIP 2022).",
    )
    parser.add_argument("--version", action="version", version=f"memderain {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        if only is None or name.rsplit(".", 1)[1].replace("_", "-") == only:
            importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    named = {n.rsplit(".", 1)[1].replace("_", "-") for n in SUBCOMMANDS}
    parser = build_parser(argv[0] if argv and argv[0] in named else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    with sigterm_as_interrupt() as term:  # SIGTERM cleans up like Ctrl-C
        try:
            code = int(args.func(args) or 0)
        except MemderainError as exc:
            print(f"memderain {args.command}: error: {exc}", file=sys.stderr)
            return 1
        except BrokenPipeError:  # e.g. `memderain info | head`: the reader left; not an error
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the flush at exit
            return 0
        except KeyboardInterrupt:
            print(f"memderain {args.command}: "
                  f"{'terminated' if term.received else 'interrupted'}", file=sys.stderr)
            code = 130
    return 143 if term.received and code == 130 else code  # 128 + SIGTERM, as the shell says
