"""`memderain eval --video`: per-frame PSNR/SSIM/VIF/FSIM of a de-rained video (Table III)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from memderain.checkpoint import save_checkpoint
from memderain.cli import main
from memderain.config import ModelConfig
from memderain.evaluation.metrics import compute_metrics, psnr
from memderain.model import build_model
from video_helpers import decode, make_video


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model(ModelConfig(channels=8, num_items=4))
    with torch.no_grad():
        model.decoder.output.bias.fill_(0.1)
    ckpt = save_checkpoint(tmp_path_factory.mktemp("video-eval") / "tiny.pt", model)
    return ckpt, model.eval()


def reference(model, rgb: np.ndarray) -> np.ndarray:
    """The model's uint8 result for one frame, computed without the evaluation code."""
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        y = (model(x * 2 - 1).background + 1) / 2
    return (y[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def test_eval_video_per_frame_csv(tiny, tmp_path):
    frames = make_video(tmp_path / "clean.mp4", frames=5, fps=10)  # clean video
    clean_dir = tmp_path / "clean_frames"
    clean_dir.mkdir()
    for i, f in enumerate(frames):  # frame folder, natural order (f2 before f10)
        Image.fromarray(f).save(clean_dir / f"f{i * 4}.png")
    rainy = tmp_path / "rain.mp4"
    make_video(rainy, frames=5, fps=10)  # same content: only compression differs
    out = tmp_path / "run"
    assert main(["eval", "--video", "--data", str(rainy), "--clean", str(clean_dir),
                 "--weights", str(tiny[0]), "--metrics", "all", "--out", str(out),
                 "--quiet"]) == 0
    with open(out / "per_frame.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["frame"]) for r in rows] == [0, 1, 2, 3, 4]
    decoded = decode(rainy)
    for r, rgb, clean in zip(rows, decoded, frames):
        expected = compute_metrics(reference(tiny[1], rgb), clean, ("psnr_y", "ssim_y",
                                                                    "vif_y", "fsim"))
        for k, v in expected.items():
            assert float(r[k]) == pytest.approx(v, abs=1e-5)
        assert float(r["input_psnr_y"]) == pytest.approx(psnr(rgb, clean, "y"), abs=1e-5)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["count"] == 5 and summary["layout"] == "video"
    assert summary["mean"]["fsim"] == pytest.approx(np.mean([float(r["fsim"]) for r in rows]))
    # a clean video works too; a frame-count mismatch is a clear error
    assert main(["eval", "--video", "--data", str(rainy), "--clean", str(tmp_path / "clean.mp4"),
                 "--weights", str(tiny[0]), "--out", str(tmp_path / "run2"), "--quiet"]) == 0
    (clean_dir / "f16.png").unlink()
    assert main(["eval", "--video", "--data", str(rainy), "--clean", str(clean_dir),
                 "--weights", str(tiny[0]), "--out", str(tmp_path / "run3"), "--quiet"]) == 1
