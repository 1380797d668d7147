"""`memderain experiment ablations` (paper Tables IV/V) end to end at the `smoke` scale on tiny
synthetic scenes: report files agree with the measured evaluations (and with an independent
`memderain eval`), B_d / loss_sbc share a run, reruns skip, interrupted runs resume exactly,
bad input is a one-line error."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from memderain.cli import main
from memderain.experiments.scale import SCALES
from memderain.experiments.variants import BY_NAME, VARIANTS, training_groups, variant_config
from memderain.training.config import experiment_to_dict, load_experiment
from training_helpers import make_scenes, smooth_background

ONLY = ["Ba", "Bc", "Bd", "loss_sbc", "loss_sbcw"]


pytestmark = pytest.mark.usefixtures("restore_torch_globals")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("abl-data")
    make_scenes(root / "train", scenes=3, frames=3, size=48, seed=0)
    make_scenes(root / "test", scenes=2, frames=2, size=48, seed=1)
    g = torch.Generator().manual_seed(5)
    for i in range(3):  # "real" photos: big enough for NIQE's 96 px blocks
        arr = (smooth_background(200, g) * 255).round().byte().permute(1, 2, 0).numpy()
        (root / "real").mkdir(exist_ok=True)
        Image.fromarray(np.ascontiguousarray(arr)).save(root / "real" / f"r{i}.png")
    return {"train": root / "train" / "frames", "test": root / "test", "real": root / "real"}


def _cmd(out: Path, data: dict, *extra: str) -> list[str]:
    # --device cpu: what these tests check (e.g. "cpu x1" in the report) must not change on a
    # machine with a GPU, where the default --device auto picks CUDA
    return ["experiment", "ablations", "--out", str(out), "--scale", "smoke", "--device", "cpu",
            "--train", str(data["train"]), "--test", str(data["test"]), *extra]


@pytest.fixture(scope="module")
def experiment(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("abl") / "exp"
    argv = _cmd(out, data, "--only", *ONLY, "--seeds", "0", "1", "--real", str(data["real"]),
                "--set", "optim.lr=0.0005")
    assert main(argv) == 0
    return out, argv


def _md_rows(md: str) -> dict[str, list[str]]:
    """Variant name -> cells of its row in the Table IV / V sections of ablations.md."""
    rows = {}
    for line in md.split("## Real rain")[0].splitlines():
        m = re.search(r"`(\w+)`", line)
        if line.startswith("|") and m and m.group(1) in BY_NAME:
            rows[m.group(1)] = [c.strip() for c in line.strip("|").split("|")]
    return rows


def test_report_rows_match_measured_results(experiment):
    out, _ = experiment
    summary = json.loads((out / "summary.json").read_text())
    rows = {r["variant"]: r for r in summary["rows"]}
    assert list(rows) == ONLY  # table order, selected only
    # every number is the mean / half-range of the per-run evaluation files
    for name, row in rows.items():
        evals = [json.loads((out / "runs" / run / "eval" / "summary.json").read_text())
                 for run in row["runs"]]
        assert [e["seed"] for e in evals] == [0, 1]
        for m in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb"):
            vals = [e["mean"][m] for e in evals]
            assert row["mean"][m] == pytest.approx(np.mean(vals), abs=1e-12)
            assert row["spread"][m] == pytest.approx((max(vals) - min(vals)) / 2, abs=1e-12)
            assert [row["per_seed"][s][m] for s in ("0", "1")] == vals
        assert (row["paper"]["psnr_y"], row["paper"]["ssim_y"]) == (
            BY_NAME[name].paper_psnr, BY_NAME[name].paper_ssim)
    # ablations.md shows exactly those numbers, in the right table
    md = (out / "ablations.md").read_text()
    cells = _md_rows(md)
    assert set(cells) == set(ONLY)
    table_iv, table_v = md.split("## Real rain")[0].split("## Table V")
    assert "`Bd`" in table_iv and "`loss_sbc`" in table_v and "`Ba`" not in table_v
    for name, row in rows.items():
        c = cells[name]
        r = row
        assert f"{r['mean']['psnr_y']:.2f} ± {r['spread']['psnr_y']:.2f}" in c
        assert f"{r['mean']['ssim_y']:.4f} ± {r['spread']['ssim_y']:.4f}" in c
        per_seed = " / ".join(f"{r['per_seed'][s]['psnr_y']:.2f}" for s in ("0", "1"))
        assert per_seed in c
        assert f"{BY_NAME[name].paper_psnr:.2f}" in c and f"{BY_NAME[name].paper_ssim:.3f}" in c
    # the Table V checkmarks follow the configs: loss_sbc has no L_w, loss_sbcw has it
    assert cells["loss_sbc"][:4] == ["✓", "✓", "✓", ""]
    assert cells["loss_sbcw"][:4] == ["✓", "✓", "✓", "✓"]
    assert f"{summary['identity']['psnr_y']:.2f}" in md
    assert "half the range" in md and "C=8" in md and "3 steps" in md
    assert "`official`: lambda_b = 1, lambda_s = 1, lambda_c = 1, lambda_w = 0.01" in md


def test_csv_has_one_row_per_variant_and_seed(experiment):
    out, _ = experiment
    summary = json.loads((out / "summary.json").read_text())
    with open(out / "ablations.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["variant"], r["seed"]) for r in rows] == [(v, s) for v in ONLY for s in "01"]
    per_seed = {r["variant"]: r["per_seed"] for r in summary["rows"]}
    for r in rows:
        for m in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb"):
            assert float(r[m]) == pytest.approx(per_seed[r["variant"]][r["seed"]][m], abs=1e-12)
        assert float(r["input_psnr_y"]) == pytest.approx(summary["identity"]["psnr_y"])


def test_bd_and_loss_sbc_share_one_run(experiment):
    out, _ = experiment
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == sorted(f"{g}-s{s}" for g in ("Ba", "Bc", "Bd", "loss_sbcw") for s in (0, 1))
    summary = json.loads((out / "summary.json").read_text())
    rows = {r["variant"]: r for r in summary["rows"]}
    assert rows["loss_sbc"]["runs"] == rows["Bd"]["runs"] == ["Bd-s0", "Bd-s1"]
    assert rows["loss_sbc"]["per_seed"] == rows["Bd"]["per_seed"]
    assert "loss_sbcw" not in rows["Bd"]["runs"][0]
    # the scale and --set reached the trainer
    cfg = load_experiment(str(out / "runs" / "Bd-s1" / "config.yaml"))
    assert (cfg.model.channels, cfg.data.crop_size, cfg.train.steps, cfg.train.seed) == (
        8, 32, 3, 1)
    assert cfg.optim.lr == 0.0005 and cfg.loss.lambda_w == 0 and cfg.model.use_memory
    assert (cfg.loss.lambda_s, cfg.loss.lambda_c) == (1, 1)  # smoke: official term weights


def test_term_weights_keep_switched_off_terms_off():
    paper = {v.name: variant_config(v.name, "paper") for v in VARIANTS}
    official = {v.name: variant_config(v.name, "official") for v in VARIANTS}
    ref = load_experiment("official").loss
    for name, cfg in paper.items():
        assert cfg == load_experiment(name)  # "paper" = the presets as shipped
        p, o = cfg.loss, official[name].loss
        for term in "bscw":
            key = f"lambda_{term}"
            on = getattr(p, key) > 0 and p.kind == "siamese"
            want = getattr(ref, key) if on else getattr(p, key)
            assert getattr(o, key) == want, (name, key)
        assert o.lambda_ssim == p.lambda_ssim and o.lambda_l1 == p.lambda_l1
    assert official["loss_sb"].loss.lambda_c == 0 and official["loss_sb"].loss.lambda_s == 1
    assert (official["loss_sbcw"].loss.lambda_c, official["loss_sbcw"].loss.lambda_w) == (1, 0.01)
    assert official["Ba"] == paper["Ba"]
    # --set overrides come after the re-weighting
    assert variant_config("Bd", "official", ["loss.lambda_c=0.5"]).loss.lambda_c == 0.5


@pytest.mark.parametrize("weights", ["paper", "official"])
def test_groups_found_by_comparing_resolved_configs(weights):
    over = SCALES["cpu"].overrides()
    configs = {v.name: experiment_to_dict(variant_config(v.name, weights, over,
                                                         {"data.root": "x"}))
               for v in VARIANTS}
    groups = training_groups(configs)
    assert groups["Bd"] == ["Bd", "loss_sbc"]
    assert len(groups) == 9 and all(len(v) == 1 for k, v in groups.items() if k != "Bd")
    # a different override on one of them splits the group
    configs["loss_sbc"]["optim"]["lr"] = 1.0
    assert training_groups(configs)["Bd"] == ["Bd"]


def test_independent_eval_gives_the_same_numbers(experiment, data, tmp_path):
    out, _ = experiment
    run_eval = json.loads((out / "runs" / "Bc-s1" / "eval" / "summary.json").read_text())
    assert main(["eval", "--data", str(data["test"]), "--weights",
                 str(out / "runs" / "Bc-s1" / "last.pt"), "--frames-per-scene", "1",
                 "--out", str(tmp_path / "ev"), "--quiet"]) == 0
    ref = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert ref["count"] == run_eval["count"] == 2
    for m in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb"):
        assert run_eval["mean"][m] == pytest.approx(ref["mean"][m], abs=1e-9)
        assert run_eval["input_mean"][m] == pytest.approx(ref["input_mean"][m], abs=1e-9)


def test_real_photos_niqe_and_figure(experiment):
    out, _ = experiment
    summary = json.loads((out / "summary.json").read_text())
    real = summary["real"]
    assert set(real) == {"input", "Bc-s0", "Bc-s1", "loss_sbcw-s0", "loss_sbcw-s1"}
    assert all(v["count"] == 3 and np.isfinite(v["mean"]["niqe_output"]) for v in real.values())
    with Image.open(out / "real_examples.png") as im:  # 2 photos x (input, B_c, full)
        assert im.size == (3 * 256, 2 * (256 + 24))
    md = (out / "ablations.md").read_text()
    assert "NIQE" in md and "real_examples.png" in md
    assert f"{real['input']['mean']['niqe_input']:.3f}" in md


def test_second_invocation_skips_finished_runs(experiment, capsys):
    out, argv = experiment
    before = json.loads((out / "summary.json").read_text())
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/last.pt")}
    capsys.readouterr()
    assert main(argv) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("[")]
    assert len(lines) == 8 and all("done earlier" in x for x in lines)
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    after = json.loads((out / "summary.json").read_text())
    assert after["rows"] == before["rows"] and after["real"] == before["real"]


def test_interrupted_run_resumes_where_it_stopped(data, tmp_path, monkeypatch):
    from memderain.training.trainer import Trainer

    argv = ["--only", "Bd", "--seeds", "0", "--steps", "6"]
    assert main(_cmd(tmp_path / "straight", data, *argv)) == 0
    calls = []
    original = Trainer.train_step

    def interrupted(self, batch):
        calls.append(self.step)
        if self.step == 4:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(Trainer, "train_step", interrupted)
    assert main(_cmd(tmp_path / "killed", data, *argv)) == 130
    run = tmp_path / "killed" / "runs" / "Bd-s0"
    assert (run / "last.pt").is_file() and not (run / "eval").exists()
    calls.clear()
    monkeypatch.setattr(Trainer, "train_step", lambda self, b: (calls.append(self.step),
                                                                 original(self, b))[1])
    assert main(_cmd(tmp_path / "killed", data, *argv)) == 0
    assert calls == [4, 5]  # continued from last.pt (step 4), did not start over
    a, b = (json.loads((tmp_path / d / "runs" / "Bd-s0" / "eval" / "summary.json").read_text())
            for d in ("straight", "killed"))
    assert a["mean"] == b["mean"] and b["steps"] == 6


def test_builds_data_from_backgrounds(tmp_path):
    g = torch.Generator().manual_seed(1)
    for split, n in (("train", 3), ("test", 2)):
        (tmp_path / split).mkdir()
        for i in range(n):
            arr = (smooth_background(48, g) * 255).round().byte().permute(1, 2, 0).numpy()
            Image.fromarray(np.ascontiguousarray(arr)).save(tmp_path / split / f"p{i}.png")
    out = tmp_path / "exp"
    assert main(["experiment", "ablations", "--out", str(out), "--scale", "smoke", "--only", "Ba",
                 "--seeds", "0", "--backgrounds-train", str(tmp_path / "train"),
                 "--backgrounds-test", str(tmp_path / "test")]) == 0
    train = json.loads((out / "data" / "train" / "synth.json").read_text())
    test = json.loads((out / "data" / "test" / "synth.json").read_text())
    assert (train["rain"], len(train["scenes"]), train["frames"]) == ("mixed", 3, 3)
    assert (test["rain"], len(test["scenes"]), test["frames"]) == ("heldout", 2, 1)
    md = (out / "ablations.md").read_text()
    assert "rain `mixed`" in md and "rain `heldout`" in md


@pytest.mark.parametrize("case", ["unknown-variant", "missing-train", "no-data", "bad-test",
                                  "bad-set", "foreign-out", "other-config"])
def test_bad_input_is_a_one_line_error(case, data, tmp_path, capsys):
    out = tmp_path / "exp"
    argv = _cmd(out, data, "--only", "Ba", "--seeds", "0")
    if case == "unknown-variant":
        argv = _cmd(out, data, "--only", "Ba", "Bx")
    elif case == "missing-train":
        argv = _cmd(out, {**data, "train": tmp_path / "nope"})
    elif case == "no-data":
        argv = ["experiment", "ablations", "--out", str(out), "--scale", "smoke"]
    elif case == "bad-test":
        argv = _cmd(out, {**data, "test": data["train"]})
    elif case == "bad-set":
        argv = _cmd(out, data, "--set", "train.stepz=3")
    elif case == "foreign-out":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    elif case == "other-config":
        assert main(argv) == 0
        capsys.readouterr()
        argv = _cmd(out, data, "--only", "Ba", "--seeds", "0", "--steps", "4")
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("memderain experiment: error:") and "\n" not in err
    assert "Traceback" not in err
    if case == "foreign-out":
        assert (out / "notes.txt").read_text() == "mine"
    elif case != "other-config":
        assert not out.exists()  # nothing written for bad input
    if case == "other-config":  # --overwrite discards the old results and runs again
        assert main([*argv, "--overwrite"]) == 0
        assert json.loads((out / "summary.json").read_text())["scale"]["steps"] == 4


def test_jobs_give_the_same_results_as_one_process(data, tmp_path):
    """--jobs 2 trains in spawned worker processes; each run is the same seeded computation."""
    argv = ["--only", "Ba", "Bc", "--seeds", "0", "--steps", "3"]
    assert main(_cmd(tmp_path / "one", data, *argv)) == 0
    assert main(_cmd(tmp_path / "two", data, *argv, "--jobs", "2")) == 0
    a, b = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("one", "two"))
    assert [r["variant"] for r in a["rows"]] == ["Ba", "Bc"] == [r["variant"] for r in b["rows"]]
    for ra, rb in zip(a["rows"], b["rows"]):
        assert ra["per_seed"]["0"]["psnr_y"] == pytest.approx(rb["per_seed"]["0"]["psnr_y"],
                                                              abs=1e-4)


def test_experiment_folder_survives_a_move(tmp_path, capsys):
    """The data spec names the photos by content, so a moved OUT (another machine) resumes."""
    import shutil

    g = torch.Generator().manual_seed(2)
    for split, n in (("train", 2), ("test", 2)):
        (tmp_path / "a" / split).mkdir(parents=True)
        for i in range(n):
            arr = (smooth_background(40, g) * 255).round().byte().permute(1, 2, 0).numpy()
            Image.fromarray(np.ascontiguousarray(arr)).save(tmp_path / "a" / split / f"p{i}.png")
    args = ["--scale", "smoke", "--only", "Ba", "--seeds", "0"]
    assert main(["experiment", "ablations", "--out", str(tmp_path / "a" / "exp"), *args,
                 "--backgrounds-train", str(tmp_path / "a" / "train"),
                 "--backgrounds-test", str(tmp_path / "a" / "test")]) == 0
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    capsys.readouterr()
    assert main(["experiment", "ablations", "--out", str(tmp_path / "b" / "exp"), *args,
                 "--backgrounds-train", str(tmp_path / "b" / "train"),
                 "--backgrounds-test", str(tmp_path / "b" / "test")]) == 0
    assert "done earlier" in capsys.readouterr().out
    a, b = (json.loads((tmp_path / d / "exp" / "summary.json").read_text()) for d in "ab")
    assert a["rows"] == b["rows"]  # the copy's finished run was reused, not trained again


def test_report_names_the_training_hardware(experiment):
    out, _ = experiment
    summary = json.loads((out / "summary.json").read_text())
    runs = len(summary["runs"])
    assert summary["hardware"] == {next(iter(summary["hardware"])): runs}
    hw = next(iter(summary["hardware"]))
    assert hw.startswith("cpu x1")
    assert f"| trained on | {hw} ({runs} runs) |" in (out / "ablations.md").read_text()
