"""SIGTERM is handled like Ctrl-C wherever work is written (issue 33.7): a video `derain`
removes its temporary file, `adapt` keeps its `.resume` state; exit status 143."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_real_clips import _clip_with_truth
from video_helpers import make_video

# Runs the CLI with one hook (HOOK_MODULE.HOOK_NAME) slowed down and announcing its first call
# in a marker file, so the test sends SIGTERM while the work is surely under way.
WRAPPER = """
import sys, time, importlib
from pathlib import Path
module, name, marker = sys.argv[1], sys.argv[2], Path(sys.argv[3])
mod = importlib.import_module(module)
owner = getattr(mod, name.split(".")[0]) if "." in name else mod
attr = name.split(".")[-1]
original = getattr(owner, attr)
def slow(*args, **kwargs):
    time.sleep(0.2)
    result = original(*args, **kwargs)
    marker.touch()  # one call done: the signal comes during the next one
    return result
setattr(owner, attr, slow)
from memderain.cli import main
sys.exit(main(sys.argv[4:]))
"""


def run_and_terminate(tmp_path: Path, hook: tuple[str, str], command: list[str]):
    marker = tmp_path / "started"
    proc = subprocess.Popen([sys.executable, "-c", WRAPPER, *hook, str(marker), *command],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"work never started: {proc.communicate()[1][-2000:]}")
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def test_sigterm_during_video_derain_leaves_no_temporary_file(tmp_path):
    video = tmp_path / "clip.mp4"
    make_video(video, frames=40, width=64, height=48)
    out = tmp_path / "out"
    code, err = run_and_terminate(
        tmp_path, ("memderain.inference.predictor", "Derainer.derain_uint8"),
        ["derain", str(video), "-o", str(out), "--backend", "torch"])
    assert code == 143, err
    assert "memderain derain: terminated" in err
    assert not out.exists() or list(out.iterdir()) == [], list(out.iterdir())


def test_sigterm_during_adapt_keeps_the_resume_state(tmp_path):
    folder, _, _ = _clip_with_truth(tmp_path, n=4)
    weights = tmp_path / "a.pt"
    code, err = run_and_terminate(
        tmp_path, ("memderain.training.adapt", "_step"),
        ["adapt", str(folder), "-o", str(weights), "--steps", "500", "--crop", "32",
         "--batch", "1"])
    assert code == 143, err
    assert "--resume" in err
    assert Path(f"{weights}.resume").is_file() and not weights.exists()


def test_sigterm_handler_is_restored_after_the_command():
    from memderain.signals import sigterm_as_interrupt

    before = signal.getsignal(signal.SIGTERM)
    with sigterm_as_interrupt() as guard, pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGTERM)
    assert guard.received and signal.getsignal(signal.SIGTERM) is before
