"""`memderain eval` / `memderain report` end to end on tiny generated data."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from skimage.metrics import peak_signal_noise_ratio

from memderain.checkpoint import model_from_checkpoint, save_checkpoint
from memderain.cli import main
from memderain.config import ModelConfig
from memderain.evaluation import metrics as M
from memderain.model import MemDerain


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    """input/ + target/ folder with 3 rainy/clean pairs of 48x56 pixels."""
    root = tmp_path_factory.mktemp("bench") / "TinySet"
    rng = np.random.default_rng(0)
    for i in range(3):
        clean = data.astronaut()[100 + 48 * i:148 + 48 * i, 200:256]
        streaks = (rng.random(clean.shape[:2]) < 0.05)[..., None] * 90
        rainy = np.clip(clean.astype(int) + streaks, 0, 255).astype(np.uint8)
        for sub, img in (("input", rainy), ("target", clean)):
            (root / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(root / sub / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, MemDerain(ModelConfig(channels=8, num_items=4)), meta={"name": "tiny"})
    return path


def _rows(run: Path) -> list[dict]:
    with open(run / "per_image.csv") as fh:
        return list(csv.DictReader(fh))


def _read(path: Path) -> np.ndarray:
    return np.array(Image.open(path).convert("RGB"))


def test_eval_checkpoint_scores_the_model_output(bench, ckpt, tmp_path, capsys):
    run = tmp_path / "run"
    rc = main(["eval", "--data", str(bench), "--weights", str(ckpt), "--out", str(run),
               "--save-outputs", "--device", "cpu", "--quiet"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "TinySet (paired layout, 3 images): tiny" in printed and "PSNR (Y)" in printed
    summary = json.loads((run / "summary.json").read_text())
    assert summary["method"] == "tiny" and summary["count"] == 3 and summary["layout"] == "paired"
    rows = _rows(run)
    assert [r["name"] for r in rows] == ["0", "1", "2"]

    model, _ = model_from_checkpoint(ckpt)
    for r in rows:
        rainy, clean = _read(bench / "input" / f"{r['name']}.png"), _read(Path(r["clean"]))
        saved = _read(run / "outputs" / f"{r['name']}.png")
        # The saved output is the model applied to the rainy image, independently recomputed.
        with torch.no_grad():
            x = torch.from_numpy(rainy).permute(2, 0, 1)[None].float() / 255 * 2 - 1
            b = (model(x).background[0] + 1) / 2
        expect = (b.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        assert np.abs(saved.astype(int) - expect).max() <= 1
        # ... and the CSV holds its metrics (RGB PSNR checked with skimage).
        assert float(r["psnr_rgb"]) == pytest.approx(
            peak_signal_noise_ratio(clean, saved, data_range=255), abs=1e-5)
        assert float(r["ssim_y"]) == pytest.approx(M.ssim(saved, clean, "y"), abs=1e-5)
        assert float(r["input_psnr_y"]) == pytest.approx(M.psnr(rainy, clean, "y"), abs=1e-5)
    for key in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb"):
        assert summary["mean"][key] == pytest.approx(np.mean([float(r[key]) for r in rows]),
                                                     abs=1e-5)


def test_identity_baseline_and_report_tables(bench, ckpt, tmp_path, capsys):
    ident, model = tmp_path / "ident", tmp_path / "model"
    assert main(["eval", "--data", str(bench), "--baseline", "identity", "--out", str(ident),
                 "--metrics", "all", "--quiet"]) == 0
    rows = _rows(ident)
    for r in rows:
        assert float(r["psnr_y"]) == pytest.approx(float(r["input_psnr_y"]))
        assert float(r["vif_y"]) == pytest.approx(float(r["input_vif_y"]))
    assert main(["eval", "--data", str(bench), "--weights", str(ckpt), "--out", str(model),
                 "--metrics", "all", "--name", "Ours", "--device", "cpu", "--quiet"]) == 0
    capsys.readouterr()

    md, table_csv = tmp_path / "t.md", tmp_path / "t.csv"
    assert main(["report", str(ident), str(model), "--out", str(md), "--csv", str(table_csv)]) == 0
    lines = md.read_text().splitlines()
    assert lines[0] == "| Method | TinySet PSNR | TinySet SSIM |"
    assert lines[2].startswith("| identity |") and lines[3].startswith("| Ours |")
    s_ident = json.loads((ident / "summary.json").read_text())["mean"]
    assert f"{s_ident['psnr_y']:.2f}" in lines[2] and f"{s_ident['ssim_y']:.3f}" in lines[2]
    assert lines[2].count("**") + lines[3].count("**") == 4  # one best per column, bold
    with open(table_csv) as fh:
        got = list(csv.DictReader(fh))
    assert float(got[0]["TinySet PSNR"]) == pytest.approx(s_ident["psnr_y"], abs=1e-5)

    # a layout the runs cannot fill, and an existing --out: errors, and nothing printed first
    capsys.readouterr()
    assert main(["report", str(ident), "--layout", "niqe"]) == 1
    cap = capsys.readouterr()
    assert cap.out == "" and "hold none of its metrics" in cap.err and "table2" in cap.err
    assert main(["report", str(ident), "--out", str(md)]) == 1
    cap = capsys.readouterr()
    assert cap.out == "" and "--overwrite" in cap.err

    assert main(["report", str(tmp_path), "--layout", "table3"]) == 0  # a folder of runs
    out = capsys.readouterr().out
    assert "| Method | TinySet PSNR | TinySet VIF | TinySet FSIM | TinySet SSIM |" in out
    s_model = json.loads((model / "summary.json").read_text())["mean"]
    assert f"{s_model['fsim']:.3f}" in out and f"{s_model['vif_y']:.3f}" in out


def test_existing_run_bad_folder_and_bad_report_are_one_line_errors(bench, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["eval", "--data", str(bench), "--baseline", "identity", "--out", str(run), "--quiet"]
    assert main(args) == 0
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "already holds an evaluation" in err and "Traceback" not in err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["eval", "--data", str(empty), "--baseline", "identity", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "rain100" in err and "didmdn" in err
    assert main(["report", str(empty)]) == 1
    assert "no summary.json" in capsys.readouterr().err
    photos = tmp_path / "photos"  # rainy photos without ground truth: suggest --real
    photos.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(photos / "a.png")
    assert main(["eval", "--data", str(photos), "--baseline", "identity", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--real {photos}" in err


def test_eval_real_reports_niqe_of_input_and_output(tmp_path, capsys):
    real = tmp_path / "real"
    real.mkdir()
    Image.fromarray(data.astronaut()[:200, :300]).save(real / "a.jpg", quality=95)
    Image.fromarray(data.coffee()[:200, :300]).save(real / "b.png")
    run = tmp_path / "realrun"
    assert main(["eval", "--real", str(real), "--baseline", "identity", "--out", str(run),
                 "--quiet"]) == 0
    rows = _rows(run)
    assert [r["name"] for r in rows] == ["a", "b"]
    for r in rows:
        assert float(r["niqe_input"]) == pytest.approx(float(r["niqe_output"]))
        assert 0 < float(r["niqe_input"]) < 30
    assert main(["report", str(run), "--layout", "niqe"]) == 0
    assert "NIQE input" in capsys.readouterr().out
