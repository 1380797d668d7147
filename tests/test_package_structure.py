"""Where things live (issue 33.12-13): the names the docs give import from the package, the
clip/frame reader has one home in data/ with no import circle, CPU facts have one home."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import memderain

SRC = Path(memderain.__file__).parent
ROOT = SRC.parents[1]


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at top level or inside functions (absolute names)."""
    tree = ast.parse(path.read_text())
    found = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    found |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    return found


def test_data_package_exports_the_datasets_the_docs_name():
    from memderain.data import PseudoGTDataset, TimeLapseDataset
    from memderain.data.pseudo_gt import PseudoGTDataset as P
    from memderain.data.timelapse import TimeLapseDataset as T

    assert TimeLapseDataset is T and PseudoGTDataset is P
    import memderain.data

    for name in memderain.data.__all__:
        assert getattr(memderain.data, name) is not None, name


def test_data_package_import_stays_light():
    code = "import sys, memderain.data; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


def test_clip_reading_has_one_home_without_a_circle():
    data = SRC / "data"
    reader = imported_modules(data / "clip_frames.py")
    assert not {m for m in reader if m.startswith("memderain.evaluation")}, reader
    assert not {"memderain.data.static_clip", "memderain.data.video_frames"} & reader, reader
    static = imported_modules(data / "static_clip.py")
    assert "memderain.data.video_frames" not in static, static
    assert not {m for m in static if m.startswith("memderain.evaluation")}, static
    assert "memderain.data.static_clip" in imported_modules(data / "video_frames.py")
    # old import paths keep working and name the same functions
    from memderain.data import clip_frames
    from memderain.data.static_clip import ClipError, read_clip_frames
    from memderain.data.video_frames import count_frames, iter_frames
    from memderain.evaluation.video import frame_files

    assert frame_files is clip_frames.frame_files and ClipError is clip_frames.ClipError
    assert read_clip_frames is clip_frames.read_clip_frames
    assert (count_frames, iter_frames) == (clip_frames.count_frames, clip_frames.iter_frames)


def test_frame_files_natural_order(tmp_path):
    from PIL import Image

    from memderain.data.clip_frames import frame_files

    for name in ("f10.png", "f2.png", "f1.png", "notes.txt"):
        if name.endswith(".png"):
            Image.new("RGB", (4, 4)).save(tmp_path / name)
        else:
            (tmp_path / name).write_text("x")
    assert [p.name for p in frame_files(tmp_path)] == ["f1.png", "f2.png", "f10.png"]


def test_cpu_facts_have_one_home():
    from memderain import cpu
    from memderain.training import precision

    assert precision.cpu_flags is cpu.cpu_flags
    assert isinstance(cpu.cpu_name(), str) and isinstance(cpu.cpu_flags(), set)
    for path in (ROOT / "benchmarks").glob("*.py"):
        mods = imported_modules(path)
        assert "adapt_real" not in mods or path.name == "adapt_real.py", path.name
        text = path.read_text()
        assert "def cpu_name" not in text and "/proc/cpuinfo\").read_text" not in text, path.name
