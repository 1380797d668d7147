"""Start-up of the command line (issue 33.11): `--help` of memderain and of every subcommand
runs without importing torch, and the torch-free names in `memderain.choices` agree with the
modules that implement them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from memderain.cli import SUBCOMMANDS

COMMANDS = [[], *([n.rsplit(".", 1)[1].replace("_", "-")] for n in SUBCOMMANDS)]

PROBE = """
import sys
from memderain.cli import main
try:
    main(sys.argv[1:] + ["--help"])
except SystemExit as exc:
    assert exc.code == 0, exc.code
print("TORCH" if "torch" in sys.modules else "NO-TORCH")
"""


def test_package_import_does_not_import_torch():
    code = ("import sys, memderain, memderain.cli; memderain.cli.build_parser(); "
            "print('torch' in sys.modules, memderain.__version__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == "False", out


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0] if c else "memderain")
def test_help_does_not_import_torch(command):
    res = subprocess.run([sys.executable, "-c", PROBE, *command], capture_output=True, text=True,
                         check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[-1] == "NO-TORCH", command
    assert "usage: memderain" in res.stdout


def test_lazy_package_names_are_the_real_objects():
    import memderain
    from memderain.inference.predictor import load_model
    from memderain.model import MemDerain

    assert memderain.load_model is load_model and memderain.MemDerain is MemDerain
    assert set(memderain.__all__) <= set(dir(memderain))
    with pytest.raises(AttributeError):
        memderain.no_such_name  # noqa: B018


def test_choices_agree_with_their_modules():
    from memderain import choices
    from memderain.data.rain import RAIN_PRESETS
    from memderain.evaluation.benchmarks import LAYOUTS
    from memderain.evaluation.trivial import TRIVIAL_FILTERS

    assert list(choices.RAIN_PRESET_NAMES) == sorted(RAIN_PRESETS)
    assert list(choices.LAYOUT_NAMES) == list(LAYOUTS)
    assert list(choices.TRIVIAL_FILTER_NAMES) == list(TRIVIAL_FILTERS)
