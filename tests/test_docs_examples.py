"""Every command and import shown in the README and docs code blocks exists.

Code blocks are parsed, not run: ``memderain SUBCOMMAND`` must be a subcommand, each
``--config NAME`` a preset or a file the block itself mentions, each long option of a
subcommand one it accepts, and every ``from X import Y`` / ``import X`` line must import.
"""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import pytest

from memderain.cli import build_parser
from memderain.training.config import preset_names

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "MODEL_CARD.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.DOTALL)


def code_lines(path: Path) -> list[str]:
    lines = []
    for block in FENCE.findall(path.read_text()):
        joined = re.sub(r"\\\n\s*", " ", block)  # shell line continuations
        lines += [ln.strip() for ln in joined.splitlines() if ln.strip()]
    return lines


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return action.choices


def _commands(line: str) -> list[list[str]]:
    """Each ``memderain ...`` invocation in a shell line (after && ; | and $R-style prefixes)."""
    out = []
    for part in re.split(r"&&|;|\|", line):
        part = part.strip()
        if not part.startswith("memderain ") or "<" in part:
            continue
        try:
            out.append(shlex.split(part.split("#")[0]))
        except ValueError:
            continue
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_commands_in_docs_exist(doc):
    subs = _subparsers()
    presets = set(preset_names())
    for line in code_lines(doc):
        for argv in _commands(line):
            if len(argv) < 2 or argv[1].startswith("-"):
                continue
            assert argv[1] in subs, f"{doc.name}: unknown subcommand in {line!r}"
            parser, start = subs[argv[1]], 2
            while True:  # nested subcommands: `experiment ablations`, `visualize tsne`
                nested = [a for a in parser._actions
                          if a.__class__.__name__ == "_SubParsersAction"]
                if not nested or start >= len(argv) or argv[start] not in nested[0].choices:
                    break
                parser, start = nested[0].choices[argv[start]], start + 1
            known = {opt for a in parser._actions for opt in a.option_strings}
            for i, tok in enumerate(argv[start:], start=start):
                if tok.startswith("--"):
                    opt = tok.split("=")[0]
                    assert opt in known, f"{doc.name}: {argv[1]} has no option {opt}: {line!r}"
                if tok == "--config" and i + 1 < len(argv):
                    name = argv[i + 1]
                    assert name in presets or name.endswith((".yaml", ".yml")) \
                        or "$" in name, f"{doc.name}: no preset {name!r}: {line!r}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_imports_in_docs_work(doc):
    for line in code_lines(doc):
        line = line.lstrip(">. ").split("#")[0].strip()
        m = re.match(r"from ([\w.]+) import \(?([\w, ]+)\)?$", line)
        if m and m.group(1).split(".")[0] == "memderain":
            module = importlib.import_module(m.group(1))
            for name in (n.strip() for n in m.group(2).split(",") if n.strip()):
                assert hasattr(module, name) or importlib.util.find_spec(
                    f"{m.group(1)}.{name}") is not None, f"{doc.name}: {line!r}"
        m = re.match(r"import (memderain[\w.]*)$", line)
        if m:
            importlib.import_module(m.group(1))


def test_help_names_every_preset_and_what_derain_takes(capsys):
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split()).replace("- ", "-")
    for name in preset_names():
        assert name in text, f"train --help does not name preset {name}"
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    top = capsys.readouterr().out
    assert "videos" in top and "GIFs" in top
    with pytest.raises(SystemExit):
        parser.parse_args(["derain", "--help"])
    assert "video" in capsys.readouterr().out


def test_device_is_one_option_with_one_meaning(capsys):
    subs = _subparsers()
    seen = {}

    def walk(name, parser):
        for action in parser._actions:
            if "--device" in action.option_strings:
                seen[name] = (action.default, action.help, action.type)
            if action.__class__.__name__ == "_SubParsersAction":
                for sub_name, sub in action.choices.items():
                    walk(f"{name} {sub_name}", sub)

    for name, parser in subs.items():
        walk(name, parser)
    assert {"derain", "eval", "serve", "adapt", "visualize grid"} <= set(seen)
    assert len(set(seen.values())) == 1, seen  # same default, help and parsing everywhere
    parser = build_parser()
    assert parser.parse_args(["derain", "x.png", "-o", "o", "--device", "cuda:1"]).device \
        == "cuda:1"
    with pytest.raises(SystemExit):
        parser.parse_args(["eval", "--data", "d", "--device", "gpu"])
    assert "use cpu, cuda, cuda:N or auto" in capsys.readouterr().err
