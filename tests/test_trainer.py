"""Training configuration, presets, the loop (lr schedule, checkpoints, exact resume,
validation, TensorBoard) and a learning smoke test, on tiny synthetic scenes."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from memderain.checkpoint import load_checkpoint, model_from_checkpoint
from memderain.cli import main
from memderain.config import ConfigError
from memderain.errors import MemderainError
from memderain.training.config import (
    load_experiment,
    preset_names,
    save_resolved_config,
)
from memderain.training.trainer import Trainer, lr_factor
from training_helpers import make_scenes

TINY = [  # a C=8 network on 32 px crops, batch 2, one thread, no worker processes
    "model.channels=8", "model.num_items=4", "data.crop_size=32", "data.num_workers=0",
    "train.batch_size=2", "train.threads=1", "train.progress=false", "train.log_every=1",
    "train.image_every=0", "train.ckpt_minutes=0",
]


pytestmark = pytest.mark.usefixtures("restore_torch_globals")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    """2 scenes x 3 frames of 48 px: 6 pairs -> 3 batches of 2 per epoch."""
    return make_scenes(tmp_path_factory.mktemp("scenes"), scenes=2, frames=3, size=48)


def _cfg(scenes: Path, *overrides: str, preset: str = "paper", val: bool = False):
    values = {"data.root": str(scenes / "frames")}
    if val:
        values["data.val"] = str(scenes)
    return load_experiment(preset, [*TINY, *overrides], values)


# -- configuration ------------------------------------------------------------------------
def test_paper_preset_has_the_paper_settings():
    cfg = load_experiment("paper")
    assert (cfg.loss.lambda_b, cfg.loss.lambda_s, cfg.loss.lambda_c, cfg.loss.lambda_w) == (
        1.0, 0.1, 0.001, 0.01)
    assert (cfg.loss.bsw_groups, cfg.loss.bsw_low_groups) == (4, 2)
    assert cfg.optim.lr == 2e-4 and cfg.optim.betas == (0.9, 0.999)
    assert cfg.optim.scheduler == "cosine" and cfg.train.batch_size == 16
    assert cfg.data.crop_size == 256 and not cfg.data.hflip
    assert cfg.model.channels == 64 and cfg.model.num_items == 20 and cfg.model.use_memory


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_loads(name):
    """Every value a preset sets (after its `base:` chain) arrives in the typed config, and
    the model it describes builds with the stated channels and memory size."""
    from memderain.model import build_model
    from memderain.training.config import experiment_to_dict, load_config_dict

    cfg = load_experiment(name)
    assert cfg.name == name
    resolved = experiment_to_dict(cfg)

    def leaves(d, prefix=()):
        for k, v in d.items():
            yield from leaves(v, prefix + (k,)) if isinstance(v, dict) else [(prefix + (k,), v)]

    for keys, value in leaves(load_config_dict(name)):
        got = resolved
        for k in keys:
            got = got[k]
        want = list(value) if isinstance(value, tuple) else value
        assert got == pytest.approx(want) if isinstance(want, float) else got == want, keys
    model = build_model(cfg.model)
    assert model.config == cfg.model
    assert (model.memory is not None) == cfg.model.use_memory
    if cfg.model.use_memory:
        assert tuple(model.memory.items.shape) == (cfg.model.num_items, cfg.model.channels)


def test_ablation_presets_select_the_right_terms():
    ba, bb, bc, bd = (load_experiment(n) for n in ("Ba", "Bb", "Bc", "Bd"))
    assert ba.loss.kind == bb.loss.kind == "pseudo_gt"
    assert not ba.model.use_memory and bb.model.use_memory
    assert bc.loss.kind == bd.loss.kind == "siamese"
    assert not bc.model.use_memory and bd.model.use_memory
    assert bc.loss.lambda_w == bd.loss.lambda_w == 0
    table_v = {  # Table V rows: which of L_s, L_b, L_c, L_w are on
        "loss_sb": (1, 1, 0, 0), "loss_sbw": (1, 1, 0, 1), "loss_bc": (0, 1, 1, 0),
        "loss_bcw": (0, 1, 1, 1), "loss_sbc": (1, 1, 1, 0), "loss_sbcw": (1, 1, 1, 1),
    }
    for name, on in table_v.items():
        lc = load_experiment(name).loss
        assert tuple(int(w > 0) for w in (lc.lambda_s, lc.lambda_b, lc.lambda_c, lc.lambda_w)) == on
        assert load_experiment(name).model.use_memory
    official = load_experiment("official").loss
    assert (official.lambda_b, official.lambda_s, official.lambda_c) == (1.0, 1.0, 1.0)
    assert (official.lambda_ssim, official.lambda_compact, official.lambda_w) == (0.5, 0.01, 0.01)


def test_overrides_are_typed_and_validated():
    cfg = load_experiment("paper", ["train.steps=100", "loss.lambda_w=0", "optim.lr=1e-3",
                                    "optim.betas=[0.5, 0.9]", "data.resize=null"])
    assert load_experiment("paper", ["data.resize=[256, 320]"]).data.resize == (256, 320)
    assert load_experiment("paper", ["data.resize=300"]).data.resize == 300
    with pytest.raises(ConfigError, match="data.resize"):
        load_experiment("paper", ["data.resize=big"])
    assert cfg.train.steps == 100 and cfg.loss.lambda_w == 0.0
    assert isinstance(cfg.loss.lambda_w, float) and cfg.optim.lr == 1e-3
    assert cfg.optim.betas == (0.5, 0.9) and cfg.data.resize is None
    with pytest.raises(ConfigError, match="lamda_w"):
        load_experiment("paper", ["loss.lamda_w=0"])
    # an override typo names the key and the nearest valid one, not the preset
    with pytest.raises(ConfigError) as err:
        load_experiment("cpu-small", ["train.stepz=10"])
    assert str(err.value) == ("--set train.stepz=10: unknown key train.stepz; "
                              "did you mean train.steps?")
    with pytest.raises(ConfigError, match="train.steps has no sub-keys"):
        load_experiment("paper", ["train.steps.x=1"])
    with pytest.raises(ConfigError, match="train.steps"):
        load_experiment("paper", ["train.steps=many"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_experiment("paper", ["train.steps"])
    with pytest.raises(ConfigError, match="not a preset"):
        load_experiment("no-such-preset")


def test_yaml_file_with_base_and_resolved_config_roundtrip(tmp_path):
    (tmp_path / "mine.yaml").write_text("base: paper\nname: mine\ntrain: {steps: 7}\n")
    cfg = load_experiment(tmp_path / "mine.yaml", ["loss.lambda_c=0.5"])
    assert cfg.name == "mine" and cfg.train.steps == 7 and cfg.loss.lambda_c == 0.5
    assert cfg.loss.lambda_s == 0.1  # inherited from paper
    path = save_resolved_config(tmp_path / "run", cfg, ["memderain", "train", "--set", "a=b c"])
    assert load_experiment(path) == cfg
    assert (tmp_path / "run" / "command.txt").read_text().strip() == "memderain train --set 'a=b c'"
    assert yaml.safe_load(path.read_text())["loss"]["lambda_c"] == 0.5


# -- the loop -----------------------------------------------------------------------------
def test_lr_factor_cosine():
    assert lr_factor(0, 100, 0, "cosine", 0.0) == 1.0
    assert lr_factor(50, 100, 0, "cosine", 0.0) == pytest.approx(0.5)
    assert lr_factor(100, 100, 0, "cosine", 0.1) == pytest.approx(0.1)
    assert lr_factor(4, 100, 10, "cosine", 0.0) == pytest.approx(0.5)  # warm-up
    assert lr_factor(30, 100, 0, "constant", 0.0) == 1.0


def test_cosine_schedule_steps_every_iteration(scenes, tmp_path):
    cfg = _cfg(scenes, "train.steps=4", "optim.lr=1e-3", "optim.min_lr=1e-4")
    lrs = []
    tr = Trainer(cfg, tmp_path / "run", argv=["t"],
                 callbacks=(lambda t, step, vals: lrs.append(vals["lr"]),))
    tr.fit()
    expected = [1e-4 + 0.9e-3 * 0.5 * (1 + math.cos(math.pi * s / 4)) for s in range(1, 5)]
    assert lrs == pytest.approx(expected)
    assert lrs[0] < 1e-3 and lrs[-1] == pytest.approx(1e-4)


def _train(cfg, run, crash_at=None, resume=False):
    def crash(trainer, step, values):
        if step == crash_at:
            raise RuntimeError("simulated kill")

    tr = Trainer(cfg, run, resume=resume, argv=["t"], callbacks=(crash,) if crash_at else ())
    try:
        tr.fit()
    except RuntimeError as exc:
        assert "simulated kill" in str(exc)
    return tr


@pytest.mark.parametrize("ckpt_every", [2, 3])  # mid-epoch and at an epoch boundary
def test_resume_after_kill_is_exact(scenes, tmp_path, ckpt_every):
    cfg = _cfg(scenes, "train.steps=6", f"train.ckpt_every={ckpt_every}", "optim.lr=1e-3")
    straight = _train(cfg, tmp_path / "a")
    _train(cfg, tmp_path / "b", crash_at=5)  # last.pt holds step 4 (or 3); steps after are lost
    saved = load_checkpoint(tmp_path / "b" / "last.pt")["train_state"]["step"]
    assert saved == (4 // ckpt_every) * ckpt_every
    resumed = _train(cfg, tmp_path / "b", resume=True)
    assert resumed.step == straight.step == 6
    sa, sb = straight.model.state_dict(), resumed.model.state_dict()
    assert "memory.items" in sa
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    st_a = straight.optimizer.state_dict()["state"]
    st_b = resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(st_a[k]["exp_avg_sq"], st_b[k]["exp_avg_sq"]) for k in st_a)
    # the final checkpoints agree too, and are ordinary (weights_only) memderain checkpoints
    ca, cb = (load_checkpoint(tmp_path / r / "last.pt") for r in ("a", "b"))
    assert ca["train_state"]["step"] == cb["train_state"]["step"] == 6
    assert torch.equal(ca["state_dict"]["memory.items"], cb["state_dict"]["memory.items"])
    model, _ = model_from_checkpoint(tmp_path / "b" / "last.pt")
    assert not model.training


def test_stop_at_then_resume_with_new_data_is_exact(scenes, tmp_path):
    """train.stop_at ends a run early without changing its schedule, and a resume may switch
    the training folder: a straight run over the same data is reproduced bit for bit."""
    cfg = _cfg(scenes, "train.steps=5", "train.ckpt_every=100", "optim.lr=1e-3")
    straight = _train(cfg, tmp_path / "a")
    first = _cfg(scenes, "train.steps=5", "train.ckpt_every=100", "optim.lr=1e-3",
                 "train.stop_at=3")
    tr = Trainer(first, tmp_path / "b", argv=["t"])
    summary = tr.fit()
    assert summary["steps"] == 3 and summary["stopped_early"]
    assert load_checkpoint(tmp_path / "b" / "last.pt")["train_state"]["step"] == 3
    again = Trainer(first, tmp_path / "b", resume=True, argv=["t"]).fit()  # already there
    assert again["steps"] == 3 and again["stopped_early"]
    copy = tmp_path / "copy"
    shutil.copytree(scenes, copy)  # the same scenes under another path
    moved = _cfg(copy, "train.steps=5", "train.ckpt_every=100", "optim.lr=1e-3")
    resumed = _train(moved, tmp_path / "b", resume=True)
    assert resumed.step == 5
    sa, sb = straight.model.state_dict(), resumed.model.state_dict()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    with pytest.raises(ConfigError, match="stop_at"):
        _cfg(scenes, "train.stop_at=-1")


def test_resume_rejects_a_different_config_and_existing_run(scenes, tmp_path):
    cfg = _cfg(scenes, "train.steps=1")
    Trainer(cfg, tmp_path / "r", argv=["t"]).fit()
    with pytest.raises(MemderainError, match="--resume"):
        Trainer(cfg, tmp_path / "r", argv=["t"])
    other = _cfg(scenes, "train.steps=2", "loss.lambda_b=2")
    with pytest.raises(MemderainError, match="loss.lambda_b"):
        Trainer(other, tmp_path / "r", resume=True, argv=["t"])
    longer = _cfg(scenes, "train.steps=2")  # more steps is a valid change
    tr = Trainer(longer, tmp_path / "r", resume=True, argv=["t"])
    assert tr.step == 1
    assert tr.fit()["steps"] == 2


def test_pseudo_gt_baseline_grad_clip_validation_and_tensorboard(scenes, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = _cfg(scenes, "train.steps=2", "optim.grad_clip=0.5", "train.val_every=1",
               "train.image_every=1", "data.val_max_scenes=1", "data.val_frames_per_scene=1",
               preset="Ba", val=True)
    seen = []
    tr = Trainer(cfg, tmp_path / "ba", argv=["t"], callbacks=(lambda t, s, v: seen.append(v),))
    summary = tr.fit()
    assert set(seen[0]) >= {"loss/total", "loss/l1", "grad_norm", "lr"}
    assert summary["validation"]["images"] == 1 and math.isfinite(summary["validation"]["psnr"])
    assert (tmp_path / "ba" / "best.pt").is_file() and (tmp_path / "ba" / "last.pt").is_file()
    # the reported validation PSNR is that of the model in best.pt on the validation pair,
    # recomputed here independently of the trainer
    from memderain.evaluation.metrics import psnr
    from memderain.inference.predictor import Derainer
    from memderain.training.validate import find_val_pairs

    (pair,) = find_val_pairs(scenes, 1, 1)
    best = Derainer(tmp_path / "ba" / "best.pt", backend="torch")
    assert best.model.memory is None  # B_a: no memory
    rainy = np.asarray(Image.open(pair.rainy).convert("RGB"))
    clean = np.asarray(Image.open(pair.clean).convert("RGB"))
    out = best.derain(rainy.astype(np.float32) / 255)
    assert summary["validation"]["psnr"] == pytest.approx(
        psnr(out, clean.astype(np.float32) / 255), abs=0.05)
    assert summary["validation"]["psnr_input"] == pytest.approx(psnr(rainy, clean), abs=1e-6)
    acc = EventAccumulator(str(tmp_path / "ba" / "tb")).Reload()
    tags = acc.Tags()
    assert {"loss/total", "lr", "val/psnr", "perf/pairs_per_s"} <= set(tags["scalars"])
    assert "samples" in tags["images"]
    assert [e.step for e in acc.Scalars("loss/total")] == [1, 2]


def test_cli_train_then_resume_and_errors(scenes, tmp_path, capsys, monkeypatch):
    import shlex
    import sys

    out = tmp_path / "cli"
    args = ["train", "--config", "Bc", "--data", str(scenes / "frames"), "--out", str(out),
            *[a for s in TINY for a in ("--set", s)], "--set", "train.steps=2"]
    # the console script, installed in a checkout folder that is itself named "memderain"
    monkeypatch.setattr(sys, "argv", ["/home/u/memderain/.venv/bin/memderain", *args])
    assert main(args) == 0
    err = capsys.readouterr().err  # a start-up line before the slow part, then what it got
    assert err.startswith("memderain train: Bc: reading ")
    assert "2 scene(s), 6 items per epoch, batch 2 x 1 process(es)" in err
    assert "device cpu" in err and "precision fp32" in err and "from step 0 of 2" in err
    assert (out / "last.pt").is_file() and (out / "config.yaml").is_file()
    assert (out / "command.txt").read_text() == shlex.join(["memderain", *args]) + "\n"
    # any other program (pytest in that same folder): its command line, unchanged
    other = ["/home/u/memderain/.venv/bin/pytest", "-x", "tests"]
    monkeypatch.setattr(sys, "argv", other)
    assert main([*args[:-2], "--set", "train.steps=3", "--resume"]) == 0
    assert (out / "command.txt").read_text() == shlex.join(other) + "\n"
    assert main(args) == 1  # the run exists and --resume was not given
    err = capsys.readouterr().err
    assert "--resume" in err and "Traceback" not in err
    assert main([*args, "--resume"]) == 0  # finished run: nothing left to do
    assert load_checkpoint(out / "last.pt")["train_state"]["step"] == 3
    assert main([*args, "--set", "loss.kind=nonsense"]) == 1
    assert main(["train", "--config", "list"]) == 0
    assert "loss_sbcw" in capsys.readouterr().out


# -- learning -----------------------------------------------------------------------------
@pytest.mark.slow
def test_training_removes_rain_on_held_out_scenes(tmp_path):
    """150 steps of the `official` recipe on 8 synthetic 64 px scenes with 4 px wide streaks
    (C=16 network): on 4 held-out scenes the de-rained frames must be >= 8 dB closer (PSNR) to
    the clean background than the rainy inputs, and >= 5 dB better than the best trivial 3x3
    filter (median, min, opening) of the same inputs. Streaks this wide defeat those filters;
    thin 1 px streaks would not (a 3x3 min filter gained ~15 dB on them). Measured: input 17.9,
    best filter 21.4, model 30.5 dB."""
    from memderain.evaluation.metrics import psnr
    from memderain.evaluation.trivial import TRIVIAL_FILTERS
    from memderain.training.validate import find_val_pairs, validate

    train = make_scenes(tmp_path / "train", scenes=8, frames=6, size=64, seed=1, width=4,
                        density=0.003)
    test = make_scenes(tmp_path / "test", scenes=4, frames=2, size=64, seed=2, width=4,
                       density=0.003)
    cfg = load_experiment("official", [
        "train.steps=150", "train.batch_size=8", "data.crop_size=64", "model.channels=16",
        "model.num_items=8", "data.num_workers=0", "data.cache=true", "optim.lr=1e-3",
        "train.threads=1", "train.progress=false", "train.image_every=0",
    ], {"data.root": str(train / "frames")})
    tr = Trainer(cfg, tmp_path / "run", argv=["t"])
    tr.fit()
    pairs = find_val_pairs(test, 10, 2)
    res = validate(tr.model, pairs, torch.device("cpu"))
    read = lambda p: np.asarray(Image.open(p).convert("RGB"))
    best_filter = max(
        float(np.mean([psnr(fn(read(p.rainy)), read(p.clean), "y") for p in pairs]))
        for fn in TRIVIAL_FILTERS.values())
    assert res["psnr"] >= res["psnr_input"] + 8.0, res
    assert res["psnr"] >= best_filter + 5.0, (res, best_filter)


@pytest.mark.slow
def test_sigterm_saves_a_resumable_checkpoint(scenes, tmp_path):
    """A SIGTERM (preemption, `kill`) ends the run after the current step with last.pt saved."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "term"
    cmd = [sys.executable, "-m", "memderain", "train", "--config", "paper", "--data",
           str(scenes / "frames"), "--out", str(out), *[a for s in TINY for a in ("--set", s)],
           "--set", "train.steps=100000", "--set", "train.ckpt_every=5"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # wait for a condition, not a time: the step-5 checkpoint exists only once the loop (and
    # with it the SIGTERM handler) runs
    deadline = time.monotonic() + 300
    while not (out / "last.pt").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, "training ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-2000:]
    step = load_checkpoint(out / "last.pt")["train_state"]["step"]
    assert 5 <= step < 100000
    assert f"stopped at step {step}" in stdout


def test_wall_time_checkpoints_and_bf16_autocast(scenes, tmp_path):
    """ckpt_minutes saves last.pt between step checkpoints; bf16 autocast trains (CPU here);
    fp16 without CUDA is a clear error."""
    cfg = _cfg(scenes, "train.steps=3", "train.ckpt_every=1000", "train.ckpt_minutes=1e-6",
               "train.amp=bf16")
    saved_steps = []

    def look(trainer, step, values):
        path = trainer.last_path
        saved_steps.append(load_checkpoint(path)["train_state"]["step"] if path.exists() else None)
        assert math.isfinite(values["loss/total"])

    Trainer(cfg, tmp_path / "bf16", argv=["t"], callbacks=(look,)).fit()
    assert saved_steps == [None, 1, 2]  # each step's save happens after the callbacks
    if not torch.cuda.is_available():
        with pytest.raises(MemderainError, match="fp16"):
            Trainer(_cfg(scenes, "train.amp=fp16"), tmp_path / "fp16", argv=["t"])


def test_init_from_starts_with_the_checkpoints_weights_and_memory(scenes, tmp_path):
    first = _train(_cfg(scenes, "train.steps=3", "optim.lr=1e-3"), tmp_path / "a")
    trained = {k: v.clone() for k, v in first.model.state_dict().items()}
    first.close()
    init = str(tmp_path / "a" / "last.pt")
    tr = Trainer(_cfg(scenes, "train.steps=2", f"train.init_from={init}"), tmp_path / "b",
                 argv=["t"])
    state = tr.model.state_dict()
    assert trained.keys() == state.keys()
    for k, want in trained.items():  # weights and memory items loaded, before any step
        torch.testing.assert_close(state[k], want, msg=k)
    assert tr.step == 0  # a fresh schedule and optimiser, not a resume
    tr.fit()
    tr.close()
    # an output constraint may change (no weight depends on it); an architecture field may not
    constrained = Trainer(_cfg(scenes, "train.steps=2", f"train.init_from={init}",
                               "model.nonnegative_rain=true"), tmp_path / "e", argv=["t"])
    assert constrained.model.config.nonnegative_rain
    torch.testing.assert_close(constrained.model.state_dict(), trained)
    constrained.close()
    bad = _cfg(scenes, "train.steps=2", f"train.init_from={init}", "model.num_items=3")
    with pytest.raises(MemderainError, match="model config"):
        Trainer(bad, tmp_path / "c", argv=["t"])
    missing = _cfg(scenes, "train.steps=2", f"train.init_from={tmp_path / 'nope.pt'}")
    with pytest.raises(MemderainError):
        Trainer(missing, tmp_path / "d", argv=["t"])


def test_validation_of_a_rain_free_frame_stays_finite(tmp_path, tiny_config):
    """A validation frame without rain equals its background: PSNR is capped, not inf."""
    from memderain.model import MemDerain
    from memderain.training.validate import PSNR_CAP, find_val_pairs, validate

    bg = (np.random.default_rng(0).random((24, 32, 3)) * 255).astype(np.uint8)
    for sub in ("frames/dry", "clean"):
        (tmp_path / sub).mkdir(parents=True)
    Image.fromarray(bg).save(tmp_path / "frames" / "dry" / "t000.png")
    Image.fromarray(bg).save(tmp_path / "clean" / "dry.png")
    res = validate(MemDerain(tiny_config), find_val_pairs(tmp_path, 5, 1), torch.device("cpu"))
    assert res["psnr_input"] == PSNR_CAP
    assert math.isfinite(res["psnr"]) and res["psnr"] <= PSNR_CAP


def _val_folder(root: Path, wet: bool) -> Path:
    """A validation folder with one rain-free frame and, if ``wet``, one rainy frame."""
    rng = np.random.default_rng(1)
    for name in ("dry", "wet") if wet else ("dry",):
        bg = (rng.random((24, 32, 3)) * 200).astype(np.uint8)
        rainy = bg.copy()
        if name == "wet":
            rainy[:, ::5] = 255   # bright vertical streaks
        (root / "frames" / name).mkdir(parents=True)
        (root / "clean").mkdir(exist_ok=True)
        Image.fromarray(rainy).save(root / "frames" / name / "t000.png")
        Image.fromarray(bg).save(root / "clean" / f"{name}.png")
    return root


def test_validation_splits_rainy_and_rain_free_frames(tmp_path, tiny_config):
    """The trainer's mean mixes rain-free frames (near the cap) with rainy ones; the split
    reports each, and the overall mean is their frame-weighted mean."""
    from memderain.model import MemDerain
    from memderain.training.validate import find_val_pairs, validate

    res = validate(MemDerain(tiny_config), find_val_pairs(_val_folder(tmp_path, True), 5, 1),
                   torch.device("cpu"))
    assert res["images"] == 2 and res["rainy_images"] == 1
    assert res["psnr"] == pytest.approx((res["psnr_rainy"] + res["psnr_dry"]) / 2)
    assert res["psnr_dry"] > res["psnr_rainy"]


def test_best_checkpoint_can_be_picked_on_rainy_frames_only(scenes, tmp_path, capsys):
    with pytest.raises(ConfigError, match="val_metric"):
        _cfg(scenes, "data.val_metric=ssim")
    wet = _val_folder(tmp_path / "wet", True)
    cfg = load_experiment("paper", [*TINY, "train.steps=1", "train.val_every=1",
                                    "data.val_metric=psnr_rainy", "data.val_frames_per_scene=1",
                                    "train.progress=true"],
                          {"data.root": str(scenes / "frames"), "data.val": str(wet)})
    tr = Trainer(cfg, tmp_path / "run", argv=["t"])
    summary = tr.fit()
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "validation" in ln)
    # the input's score is named as such, the split names its frames (not "rainy 25.70")
    assert "(the input itself: " in line and "; frames with rain " in line
    assert "; rain-free frames " in line and "rainy input" not in line
    assert tr.best_psnr == pytest.approx(summary["validation"]["psnr_rainy"])
    assert tr.best_psnr != pytest.approx(summary["validation"]["psnr"])
    # a validation folder without rain cannot pick on rainy frames: a clear error
    dry = _val_folder(tmp_path / "dry", False)
    cfg = load_experiment("paper", [*TINY, "train.steps=1", "train.val_every=1",
                                    "data.val_metric=psnr_rainy"],
                          {"data.root": str(scenes / "frames"), "data.val": str(dry)})
    with pytest.raises(MemderainError, match="no frame of --val"):
        Trainer(cfg, tmp_path / "run-dry", argv=["t"]).fit()


def test_resume_under_another_val_metric_forgets_the_old_best(scenes, tmp_path):
    """best_psnr of one measure is no bar for another: resuming with a changed
    data.val_metric keeps training exact but starts the best.pt comparison afresh."""
    wet = _val_folder(tmp_path / "wet", True)
    values = {"data.root": str(scenes / "frames"), "data.val": str(wet)}
    base = [*TINY, "train.steps=2", "train.val_every=1"]
    first = Trainer(load_experiment("paper", [*base, "train.stop_at=1"], values),
                    tmp_path / "run", argv=["t"])
    first.fit()
    assert first.best_psnr > 0
    same = Trainer(load_experiment("paper", base, values), tmp_path / "run", argv=["t"],
                   resume=True)
    assert same.best_psnr == first.best_psnr
    other = Trainer(load_experiment("paper", [*base, "data.val_metric=psnr_rainy"], values),
                    tmp_path / "run", argv=["t"], resume=True)
    assert other.best_psnr == -math.inf


def test_amp_auto_follows_the_cpu(monkeypatch):
    """train.amp=auto: bf16 where the CPU has AMX / AVX512-BF16, fp32 on AVX2-only CPUs."""
    import memderain.training.precision as tr

    cpu = torch.device("cpu")
    monkeypatch.setattr(tr, "cpu_has_native_bf16", lambda: True)
    assert tr.resolve_amp("auto", cpu) == "bf16"
    monkeypatch.setattr(tr, "cpu_has_native_bf16", lambda: False)
    assert tr.resolve_amp("auto", cpu) == "none"
    assert tr.resolve_amp("auto", torch.device("cuda")) == "bf16"
    assert tr.resolve_amp("none", torch.device("cuda")) == "none"
    assert tr.resolve_amp("bf16", cpu) == "bf16"


def test_snapshots_keep_the_weights_of_every_nth_step(scenes, tmp_path):
    """train.snapshot_every keeps weights-only copies that equal the model at that step: the
    run can be stopped at step 2 and the step-2 snapshot holds the same weights as last.pt."""
    cfg = _cfg(scenes, "train.steps=4", "train.ckpt_every=100", "optim.lr=1e-3",
               "train.snapshot_every=2", "train.stop_at=2")
    _train(cfg, tmp_path / "run")
    snaps = sorted(p.name for p in (tmp_path / "run" / "snapshots").iterdir())
    assert snaps == ["step-000002.pt"]
    snap = load_checkpoint(tmp_path / "run" / "snapshots" / "step-000002.pt")
    last = load_checkpoint(tmp_path / "run" / "last.pt")
    assert "train_state" not in snap and snap["meta"]["steps"] == 2
    for key, value in last["state_dict"].items():
        assert torch.equal(value, snap["state_dict"][key]), key
    resumed = _cfg(scenes, "train.steps=4", "train.ckpt_every=100", "optim.lr=1e-3",
                   "train.snapshot_every=2")
    _train(resumed, tmp_path / "run", resume=True)
    snaps = sorted(p.name for p in (tmp_path / "run" / "snapshots").iterdir())
    assert snaps == ["step-000002.pt", "step-000004.pt"]
    with pytest.raises(ConfigError, match="snapshot_every"):
        _cfg(scenes, "train.snapshot_every=-1")
