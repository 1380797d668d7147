"""The paper's ablation study (Tables IV and V) at small scale, in one resumable call.

Every row of Table IV (B_a .. B_d) and Table V (the six loss combinations) is a shipped
preset. :func:`run_ablations` applies the same :class:`ExperimentScale` overrides (and any
extra ``--set`` overrides) to each preset, trains it for every seed with the ordinary trainer
(:class:`memderain.training.trainer.Trainer`), evaluates the final checkpoint on a paired
synthetic test set with the evaluation code of ``memderain eval`` (Y and RGB PSNR/SSIM), scores
the rainy input once (identity baseline) and writes ``ablations.md`` / ``.csv`` /
``summary.json`` (:mod:`.ablation_report`). Rows with identical resolved configs (B_d and
loss_sbc) share one training run.

Folder layout (``OUT``)::

    experiment.json                 scale, overrides and data settings (a later call must match)
    data/train, data/test           synthetic scenes, when --train / --test are not given
    runs/<run>-s<seed>/             a trainer run folder (config.yaml, last.pt, tb/) ...
    runs/<run>-s<seed>/eval/        ... and its evaluation (summary.json, per_image.csv)
    identity/                       the rainy input scored as output
    real/                           NIQE on --real photos (input, B_c, full model) + outputs
    ablations.md, ablations.csv, summary.json, real_examples.png

Resume: a run with ``last.pt`` at the final step and an evaluation is skipped; an unfinished
one continues from its ``last.pt`` (exact resume, see docs/training.md).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from memderain.atomicfile import atomic_output
from memderain.errors import MemderainError
from memderain.experiments import data as exp_data
from memderain.experiments.evaluate import (
    eval_device,
    evaluate_checkpoint,
    real_figure,
    real_niqe,
)
from memderain.experiments.scale import ExperimentScale
from memderain.experiments.variants import (
    FULL_MODEL,
    NO_MEMORY_SIAMESE,
    VARIANTS,
    select,
    training_groups,
    variant_config,
)

SETUP_FILE = "experiment.json"
SETUP_KIND = "memderain.ablations.setup"
# what this command writes into OUT; --overwrite removes these (data/ is rebuilt only if needed)
OWN_ENTRIES = ("runs", "identity", "real", "ablations.md", "ablations.csv", "summary.json",
               "real_examples.png")


@dataclass(frozen=True)
class AblationOptions:
    out: Path
    scale: ExperimentScale
    seeds: tuple[int, ...] = (0, 1)
    only: tuple[str, ...] = ()  # variant names; empty = all
    overrides: tuple[str, ...] = ()  # extra `--set KEY=VALUE` for every variant
    train: Path | None = None
    test: Path | None = None
    backgrounds_train: Path | None = None
    backgrounds_test: Path | None = None
    real: Path | None = None
    device: str = "auto"
    threads: int | None = None  # None: the scale's
    overwrite: bool = False
    progress: bool = False  # the trainer's tqdm bar
    jobs: int = 1  # runs trained side by side in worker processes (a GPU, or many CPU cores)
    argv: tuple[str, ...] = ("memderain", "experiment", "ablations")


@dataclass(frozen=True)
class RunResult:
    run: str  # run folder name, e.g. "Bd-s0"
    group: str  # the preset actually trained, e.g. "Bd" (also serves loss_sbc)
    variants: tuple[str, ...]
    seed: int
    steps: int
    train_wall_s: float
    eval_wall_s: float
    mean: dict  # metrics of the de-rained output (psnr_y, ssim_y, psnr_rgb, ssim_rgb)
    input_mean: dict  # the same for the rainy input
    skipped: bool = False
    hardware: str = "?"  # where it was trained (the checkpoint's meta)


# ----------------------------------------------------------------------------- setup
def _setup(opts: AblationOptions) -> dict:
    """What the results depend on; a later call on the same OUT must give the same dict."""
    s = opts.scale
    scale = {k: v for k, v in s.to_dict().items() if k not in ("threads", "real_max_side")}

    def source(given, backgrounds, kind):
        if given is not None:
            return {"path": str(given.resolve())}
        if backgrounds is None:
            return None
        return exp_data.synth_spec(backgrounds, s, kind)

    return {"kind": SETUP_KIND, "scale": scale, "overrides": list(opts.overrides),
            "train": source(opts.train, opts.backgrounds_train, "train"),
            "test": source(opts.test, opts.backgrounds_test, "test")}


def _claim_out(out: Path, setup: dict, overwrite: bool) -> None:
    """Refuse a non-empty OUT made by something else or with another setup (unless
    ``overwrite``: then this command's previous results are removed), then record ``setup``."""
    if out.exists() and not out.is_dir():
        raise MemderainError(f"--out {out} exists and is not a folder")
    setup_path = out / SETUP_FILE
    if out.is_dir() and any(out.iterdir()):
        if not setup_path.is_file():
            raise MemderainError(f"--out {out} is not empty and was not made by `memderain "
                                 "experiment ablations`; use a new or empty folder")
        try:
            old = json.loads(setup_path.read_text())
        except (OSError, ValueError) as exc:
            raise MemderainError(f"{setup_path}: unreadable ({exc})") from None
        if old != setup:
            if not overwrite:
                diff = sorted(k for k in set(old) | set(setup) if old.get(k) != setup.get(k))
                raise MemderainError(f"--out {out} holds ablations made with a different "
                                     f"{'/'.join(diff)}; pass --overwrite to discard them or "
                                     "use another --out")
            for name in OWN_ENTRIES:
                p = out / name
                if p.is_dir():
                    shutil.rmtree(p)
                elif p.exists():
                    p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    with atomic_output(setup_path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(setup, indent=1) + "\n")


def _validate(opts: AblationOptions) -> None:
    if not opts.seeds or any(s < 0 for s in opts.seeds) or len(set(opts.seeds)) != len(opts.seeds):
        raise MemderainError(
            f"--seeds: need distinct non-negative integers, got {list(opts.seeds)}")
    if opts.threads is not None and opts.threads < 0:
        raise MemderainError("--threads must be >= 0")
    if opts.jobs < 1:
        raise MemderainError(f"--jobs must be >= 1, got {opts.jobs}")
    select(list(opts.only))  # unknown names raise
    for flag, path in (("--train", opts.train), ("--backgrounds-train", opts.backgrounds_train),
                       ("--backgrounds-test", opts.backgrounds_test), ("--real", opts.real)):
        if path is not None and not path.is_dir():
            raise MemderainError(f"{flag} {path}: not a folder")
    if opts.train is None and opts.backgrounds_train is None:
        raise MemderainError("no training data: pass --train DIR (scene folders of frames) or "
                             "--backgrounds-train DIR (clean photos to render rain on)")
    if opts.test is None and opts.backgrounds_test is None:
        raise MemderainError("no test data: pass --test DIR (synth layout) or "
                             "--backgrounds-test DIR (clean photos to render rain on)")
    if opts.test is not None and not ((opts.test / "frames").is_dir()
                                      and (opts.test / "clean").is_dir()):
        raise MemderainError(f"--test {opts.test}: expected the `memderain synth` layout "
                             "(frames/<scene>/ and clean/<scene>.png)")
    _configs(opts, Path("train"))  # bad --set keys / values raise before OUT is touched


# ----------------------------------------------------------------------------- configs
def _configs(opts: AblationOptions, train_root: Path, extra: list[str] = (),
             names: list[str] | None = None) -> dict:
    over = opts.scale.overrides() + list(opts.overrides) + list(extra)
    return {n: variant_config(n, opts.scale.term_weights, over, {"data.root": str(train_root)})
            for n in (names or [v.name for v in VARIANTS])}


def _threads(opts: AblationOptions) -> int:
    return opts.scale.threads if opts.threads is None else opts.threads


def _run_config(opts: AblationOptions, train_root: Path, group: str, seed: int):
    threads = _threads(opts)
    extra = [f"train.seed={seed}", f"train.device={opts.device}", f"train.threads={threads}",
             f"train.progress={str(opts.progress).lower()}", f"name={group}"]
    return _configs(opts, train_root, extra, [group])[group]


# ----------------------------------------------------------------------------- one run
def _checkpoint_state(path: Path) -> tuple[int, float]:
    """(step, training wall time in s) recorded in a trainer checkpoint."""
    from memderain.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    state = ckpt.get("train_state") or {}
    return int(state.get("step", 0)), float(ckpt.get("meta", {}).get("wall_time_s", 0.0))


def _hardware(last: Path) -> str:
    from memderain.checkpoint import load_checkpoint

    return str(load_checkpoint(last).get("meta", {}).get("hardware", "?"))


def _result(summary: dict, skipped: bool, last: Path) -> RunResult:
    return RunResult(run=summary["method"], group=summary["group"],
                     variants=tuple(summary["variants"]), seed=summary["seed"],
                     steps=summary["steps"], train_wall_s=summary["train_wall_s"],
                     eval_wall_s=summary["wall_time_s"], mean=summary["mean"],
                     input_mean=summary["input_mean"], skipped=skipped,
                     hardware=_hardware(last))


def train_and_evaluate(opts: AblationOptions, train_root: Path, test_root: Path, group: str,
                       variants: tuple[str, ...], seed: int) -> RunResult:
    """Train ``group`` with ``seed`` (resuming its ``last.pt``) and evaluate it; skip what is
    already done."""
    from memderain.training.trainer import Trainer

    cfg = _run_config(opts, train_root, group, seed)
    run = f"{group}-s{seed}"
    run_dir = opts.out / "runs" / run
    eval_summary = run_dir / "eval" / "summary.json"
    last = run_dir / "last.pt"
    steps = cfg.train.steps
    if eval_summary.is_file() and last.is_file():
        done = json.loads(eval_summary.read_text())
        if done.get("steps") == steps:
            return _result(done, skipped=True, last=last)
    step, train_wall = _checkpoint_state(last) if last.is_file() else (0, 0.0)
    if step < steps:
        trainer = Trainer(cfg, run_dir, resume=True, argv=list(opts.argv))
        try:
            summary = trainer.fit()
        finally:
            trainer.close()
        if summary["stopped_early"]:
            raise MemderainError(f"stopped at step {summary['steps']} of {steps} in {run_dir} "
                                 "(signal); run the same command again to resume")
        step, train_wall = summary["steps"], float(summary["wall_time_s"])
    if step != steps:
        raise MemderainError(f"{last} is at step {step}, expected {steps}; pass --overwrite "
                             "to start the experiment again")
    threads = _threads(opts)
    done = evaluate_checkpoint(
        last, test_root, run_dir / "eval", opts.scale.test_frames, eval_device(opts.device),
        threads, {"method": run, "group": group, "variants": list(variants), "seed": seed,
                  "steps": step, "train_wall_s": train_wall})
    return _result(done, skipped=False, last=last)


def _run_all(opts: AblationOptions, train_root: Path, test_root: Path,
             todo: list[tuple[str, tuple[str, ...], int]]):
    """Yield a :class:`RunResult` per (group, variants, seed), in order of completion.

    With ``opts.jobs > 1`` the runs are spread over that many worker processes ("spawn", so
    CUDA works in them); each run still writes only its own folder, so a kill leaves every run
    resumable exactly as in the sequential case.
    """
    if opts.jobs == 1 or len(todo) <= 1:
        for group, variants, seed in todo:
            yield train_and_evaluate(opts, train_root, test_root, group, variants, seed)
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(opts.jobs, len(todo)), mp_context=ctx) as pool:
        pending = {pool.submit(train_and_evaluate, opts, train_root, test_root, g, v, s)
                   for g, v, s in todo}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise


# ----------------------------------------------------------------------------- driver
def run_ablations(opts: AblationOptions, log: Callable[[str], None] = print) -> dict:
    """Train and evaluate every selected variant for every seed (resumably) and write the
    report files into ``opts.out``. Returns the ``summary.json`` content."""
    from memderain.experiments.ablation_report import write_report

    t_start = time.time()
    _validate(opts)
    _claim_out(opts.out, _setup(opts), opts.overwrite)
    s = opts.scale
    log(f"ablations, {s.name} scale (C={s.channels}, crop {s.crop_size}, batch {s.batch_size}, "
        f"{s.steps} steps), seeds {' '.join(map(str, opts.seeds))} -> {opts.out}")
    train = exp_data.training_set(opts.out, opts.train, opts.backgrounds_train, opts.scale)
    test = exp_data.test_set(opts.out, opts.test, opts.backgrounds_test, opts.scale)
    from memderain.training.config import experiment_to_dict

    configs = {n: experiment_to_dict(c) for n, c in _configs(opts, train.root).items()}
    selected = [v.name for v in select(list(opts.only))]
    groups = {g: tuple(vs) for g, vs in training_groups(configs).items()
              if any(v in selected for v in vs)}
    threads = _threads(opts)
    identity_dir = opts.out / "identity"
    if (identity_dir / "summary.json").is_file():
        identity = json.loads((identity_dir / "summary.json").read_text())
    else:
        identity = evaluate_checkpoint(None, test.root, identity_dir, opts.scale.test_frames,
                                       "cpu", threads, {"method": "identity"})
    m = identity["mean"]
    log(f"rainy input (identity): PSNR(Y) {m['psnr_y']:.2f} dB, SSIM(Y) {m['ssim_y']:.4f} "
        f"on {identity['count']} test images")
    results: list[RunResult] = []
    context = {"train": train.spec, "test": test.spec, "device": eval_device(opts.device),
               "threads": threads, "seeds": list(opts.seeds), "selected": selected,
               "groups": {g: list(vs) for g, vs in groups.items()}, "t_start": t_start,
               "overrides": list(opts.overrides), "identity": identity,
               "configs": {n: configs[n] for n in selected}}
    todo = [(group, variants, seed) for seed in opts.seeds for group, variants in groups.items()]
    for i, r in enumerate(_run_all(opts, train.root, test.root, todo), 1):
        results.append(r)
        variants = groups[r.group]
        label = ", ".join(v for v in variants if v in selected)
        if r.group not in selected:
            label += f" (run {r.group})"
        state = "done earlier" if r.skipped else (
            f"train {r.train_wall_s / 60:.1f} min, eval {r.eval_wall_s:.0f} s")
        log(f"[{i}/{len(todo)}] {label} seed {r.seed}: {r.steps} steps, {state}, "
            f"PSNR(Y) {r.mean['psnr_y']:.2f} dB, SSIM(Y) {r.mean['ssim_y']:.4f}")
        write_report(opts, results, context)
    if opts.real is not None:
        wanted = [g for g, vs in groups.items() if {FULL_MODEL, NO_MEMORY_SIAMESE} & set(vs)]
        runs = {f"{g}-s{s}": opts.out / "runs" / f"{g}-s{s}" / "last.pt"
                for g in wanted for s in opts.seeds}
        if runs:
            context["real"] = real_niqe(opts.out / "real", opts.real, runs,
                                        opts.scale.real_max_side, eval_device(opts.device),
                                        _threads(opts))
            first = opts.seeds[0]
            bc = next((f"{g}-s{first}" for g in wanted if NO_MEMORY_SIAMESE in groups[g]), None)
            full = next((f"{g}-s{first}" for g in wanted if FULL_MODEL in groups[g]), None)
            context["real_figure"] = real_figure(
                opts.out / "real_examples.png", opts.real, opts.out / "real", bc, full,
                opts.scale.real_max_side).name
            context["real_groups"] = {NO_MEMORY_SIAMESE: bc and bc.rsplit("-s", 1)[0],
                                      FULL_MODEL: full and full.rsplit("-s", 1)[0]}
            log("real photos: NIQE " + ", ".join(
                f"{k} {v['mean']['niqe_output']:.3f}" for k, v in context["real"].items()))
        else:
            log(f"--real: neither {NO_MEMORY_SIAMESE} nor {FULL_MODEL} is selected; skipped")
    summary = write_report(opts, results, context)
    log(f"wrote {opts.out / 'ablations.md'}, ablations.csv and summary.json")
    return summary
