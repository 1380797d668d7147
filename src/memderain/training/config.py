"""Training configuration: frozen dataclasses, YAML presets, dotted command-line overrides.

A run is described by one :class:`ExperimentConfig`::

    name: paper
    model: {...}    # memderain.config.ModelConfig (Table I, Sec. III-C)
    data:  {...}    # DataConfig
    loss:  {...}    # LossConfig (Eq. 7-14)
    optim: {...}    # OptimConfig (Sec. III-E)
    train: {...}    # TrainConfig

Sources, in order: the preset or YAML file (``--config paper`` or ``--config my.yaml``; a file
may start with ``base: PRESET_OR_FILE`` and override only what differs), then
``--set section.key=value`` overrides (values parsed as YAML: ``0``, ``1e-4``, ``true``,
``null``, ``[0.9, 0.99]``). The resolved config is written to the run folder.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
import types
import typing
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from memderain.atomicfile import normal_permissions
from memderain.choices import config_preset_names as preset_names
from memderain.config import (
    ConfigError,
    ModelConfig,
    config_from_dict,
    config_to_dict,
    load_yaml,
    nearest_key,
)
from memderain.data.augment import AugmentConfig

LOSS_KINDS = ("siamese", "pseudo_gt")
SELF_CONSISTENCY_FORMS = ("clipped", "crossed")
SCHEDULERS = ("cosine", "constant")
AMP_MODES = ("none", "bf16", "fp16", "auto")


@dataclass(frozen=True)
class DataConfig:
    """Where the time-lapse scenes are and how pairs are cut from them (Sec. III-E, IV-B1)."""

    root: str | None = None  # scene folders of frames (``--data`` sets it)
    val: str | None = None  # paired folder in the `memderain synth` layout (``--val``)
    crop_size: int = 256  # paper: 256 x 256
    resize: int | tuple[int, int] | None = None  # shorter side or [h, w] before cropping
    hflip: bool = False  # paper: no flips / rotations
    min_frames: int = 2
    pseudo_gt_reducer: str = "median"  # B_a / B_b target: "median" or "mean" (footnote 4)
    num_workers: int = 2  # DataLoader worker processes (0: load in the main process)
    cache: bool = False  # keep decoded frames in memory (small data sets; decoded once)
    val_max_scenes: int = 20  # validation cost control
    val_frames_per_scene: int = 2
    # what picks best.pt: "psnr" (every validation frame) or "psnr_rainy" (only frames with
    # rain; rain-free frames score near the PSNR cap and otherwise dominate the mean)
    val_metric: str = "psnr"
    # real static-camera clips (scene folders of frames, e.g. from `memderain extract-frames`;
    # aligned, median and motion mask computed when the run starts) mixed into the pairs
    real_root: str | None = None
    real_ratio: float = 0.5  # share of pairs drawn from real_root (when it is set)
    real_max_shift: float = 8.0  # refuse real scenes whose camera moves more (pixels)
    # give synthetic scenes their temporal median as a pseudo target too (loss.lambda_median;
    # the paper's B_a/B_b target, here beside the Siamese terms): an anchor against darkening
    synthetic_median: bool = False
    # which temporal order statistic of a rendered scene is that target: 0.5 = the median;
    # lower = darker (rendered rain only adds light, so on noise-free renders a low quantile is
    # the background where the median keeps heavy rain; real clips keep their median, since
    # sensor noise would bias a low quantile dark)
    synthetic_quantile: float = 0.5
    # rotation, scale, colour and JPEG of synthetic pairs (memderain.data.augment; paper: none)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.crop_size < 8 or self.crop_size % 8:
            raise ConfigError("data.crop_size must be a positive multiple of 8")
        if self.pseudo_gt_reducer not in ("median", "mean"):
            raise ConfigError("data.pseudo_gt_reducer must be 'median' or 'mean'")
        if not 0.0 <= self.synthetic_quantile <= 1.0:
            raise ConfigError("data.synthetic_quantile must be in [0, 1]")
        if not 0.0 <= self.real_ratio <= 1.0:
            raise ConfigError("data.real_ratio must be in [0, 1]")
        if self.val_metric not in ("psnr", "psnr_rainy"):
            raise ConfigError("data.val_metric must be 'psnr' or 'psnr_rainy'")
        if self.num_workers < 0 or self.val_max_scenes < 1 or self.val_frames_per_scene < 1:
            raise ConfigError("data.num_workers >= 0, data.val_max_scenes / val_frames_per_scene >= 1")


@dataclass(frozen=True)
class LossConfig:
    """Weights of Eq. 14 and the choices for the paper's gaps (see docs/training.md).

    ``kind="siamese"``: lambda_b L_b + lambda_s L_s + lambda_c L_c + lambda_w L_w (+ the
    ``official`` extras lambda_ssim (1 - SSIM(B_w, B_v)) and lambda_compact (query
    compactness)). ``kind="pseudo_gt"``: lambda_l1 |B - median frame| (baselines B_a / B_b).
    A weight of 0 switches the term off (it is then not computed).
    """

    kind: str = "siamese"
    lambda_b: float = 1.0  # Eq. 7 (paper: 1)
    lambda_s: float = 0.1  # Eq. 9 (paper: 0.1)
    lambda_c: float = 0.001  # Eq. 8 (paper: 0.001)
    lambda_w: float = 0.01  # Eq. 13 (paper: blank; authors' code: 0.01)
    lambda_ssim: float = 0.0  # authors' code only
    lambda_compact: float = 0.0  # authors' code only
    lambda_l1: float = 1.0  # pseudo_gt kind only
    self_consistency: str = "clipped"  # Eq. 9 reading: "clipped" (literal) or "crossed"
    cross_symmetric: bool = True  # Eq. 8 both directions (w->v and v->w), averaged
    bsw_groups: int = 4  # h (Sec. III-E)
    bsw_low_groups: int = 2  # l (Sec. III-E)
    bsw_kmeans_iters: int = 10
    # real-video remedies (memderain.losses.real_rain; no paper equation). 0 = off, as in the
    # paper; the default* presets turn lambda_median on, `memderain adapt` chooses per objective
    lambda_agree: float = 0.0  # |R_hat| where the two frames agree (no rain in either)
    agree_threshold: float = 0.024  # frames "agree" below this difference, [-1, 1] units (3/255)
    lambda_floor: float = 0.0  # local floor (min over floor_window) of R_hat: smooth darkening
    floor_window: int = 7
    lambda_median: float = 0.0  # |B - temporal median| on static pixels of real clips
    lambda_edge: float = 0.0  # |grad B - grad median| on static pixel pairs (edges kept)
    lambda_brightness: float = 0.0  # |mean B - mean median| per image on static pixels

    def __post_init__(self) -> None:
        if self.kind not in LOSS_KINDS:
            raise ConfigError(f"loss.kind must be one of {LOSS_KINDS}, got {self.kind!r}")
        if self.self_consistency not in SELF_CONSISTENCY_FORMS:
            raise ConfigError(f"loss.self_consistency must be one of {SELF_CONSISTENCY_FORMS}")
        weights = [getattr(self, f.name) for f in fields(self) if f.name.startswith("lambda_")]
        if any(w < 0 for w in weights):
            raise ConfigError("loss weights (lambda_*) must be >= 0")
        if not 1 <= self.bsw_low_groups <= self.bsw_groups:
            raise ConfigError("need 1 <= loss.bsw_low_groups <= loss.bsw_groups")
        if self.agree_threshold <= 0 or self.floor_window < 1 or self.floor_window % 2 == 0:
            raise ConfigError("need loss.agree_threshold > 0 and an odd loss.floor_window >= 1")


@dataclass(frozen=True)
class OptimConfig:
    """Adam + cosine annealing stepped every iteration (Sec. III-E)."""

    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    scheduler: str = "cosine"  # "cosine" (to min_lr at the last step) or "constant"
    min_lr: float = 0.0
    warmup_steps: int = 0  # linear warm-up before the cosine (paper: none)
    grad_clip: float = 0.0  # max global grad norm; 0 = off

    def __post_init__(self) -> None:
        if self.lr <= 0 or len(self.betas) != 2 or self.min_lr < 0 or self.grad_clip < 0:
            raise ConfigError("optim: need lr > 0, two betas, min_lr >= 0, grad_clip >= 0")
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(f"optim.scheduler must be one of {SCHEDULERS}")
        if self.warmup_steps < 0:
            raise ConfigError("optim.warmup_steps must be >= 0")


@dataclass(frozen=True)
class TrainConfig:
    """Loop, logging, checkpointing and performance switches."""

    steps: int = 100_000  # optimiser steps (paper: not given; ~24 h on one GPU)
    batch_size: int = 16  # pairs per step, per process (paper: 16)
    seed: int = 0
    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
    threads: int = 0  # torch CPU threads per process (0: torch's default)
    channels_last: bool = True
    compile: bool = False  # torch.compile the model
    # "bf16" / "fp16" autocast (fp16: CUDA, with a GradScaler); "auto": bf16 on CUDA and on
    # CPUs with AMX or AVX512-BF16 (2-3x faster there), fp32 elsewhere (bf16 is several times
    # slower on AVX2-only CPUs), decided on every start, so a run resumed on another machine
    # takes that machine's best
    amp: str = "none"
    deterministic: bool = True  # torch.use_deterministic_algorithms (warn-only)
    log_every: int = 50  # TensorBoard scalars
    image_every: int = 1000  # TensorBoard sample images (0: never)
    ckpt_every: int = 2000  # steps between last.pt saves
    ckpt_minutes: float = 30.0  # and at least this often in wall time (0: off)
    val_every: int = 5000  # steps between validations (if data.val is set)
    snapshot_every: int = 0  # keep a weights-only copy snapshots/step-NNNNNN.pt every this many
    # steps (0: off), for choosing a step afterwards on checks never trained on
    progress: bool = True  # tqdm bar (only on a TTY)
    stop_at: int = 0  # stop after this step (0: off), saving last.pt, without changing the
    # schedule (which follows `steps`): a session-sized piece of a long run, resumed later
    init_from: str | None = None  # start from this checkpoint's weights + memory items (the
    # optimiser, schedule and step start fresh; ignored when resuming). Its model config must
    # match model: except the output constraints nonnegative_rain / clamp_background

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.threads < 0:
            raise ConfigError("train.steps, train.batch_size must be >= 1, train.threads >= 0")
        if self.snapshot_every < 0:
            raise ConfigError("train.snapshot_every must be >= 0 (0: no snapshots)")
        if self.stop_at < 0:
            raise ConfigError("train.stop_at must be >= 0 (0: train to train.steps)")
        if self.amp not in AMP_MODES:
            raise ConfigError(f"train.amp must be one of {AMP_MODES}")
        if min(self.log_every, self.ckpt_every, self.val_every) < 1 or self.image_every < 0:
            raise ConfigError("train.log_every, ckpt_every, val_every must be >= 1")


@dataclass(frozen=True)
class ExperimentConfig:
    name: str = "experiment"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# -- typing / coercion ----------------------------------------------------------------------
def _check_value(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:  # Optional[X] / X | Y | None
        if value is None and type(None) in args:
            return None
        errors = []
        for alt in (a for a in args if a is not type(None)):
            try:
                return _check_value(value, alt, where)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return tuple(_check_value(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    return value


def _typed(cls: type, data: dict[str, Any], where: str) -> dict[str, Any]:
    """Check/coerce the scalar types of ``data`` against dataclass ``cls`` (ints for floats OK)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    out = {}
    for key, value in data.items():
        if key not in hints:
            out[key] = value  # config_from_dict reports unknown keys
        elif dataclasses.is_dataclass(hints[key]):
            out[key] = _typed(hints[key], value, f"{where}.{key}" if where else key)
        else:
            out[key] = _check_value(value, hints[key], f"{where}.{key}" if where else key)
    return out


def experiment_from_dict(data: dict[str, Any], where: str = "config") -> ExperimentConfig:
    """Validated :class:`ExperimentConfig` from a plain dict (unknown keys and bad types raise)."""
    data = {k: v for k, v in data.items() if k != "base"}
    return config_from_dict(ExperimentConfig, _typed(ExperimentConfig, data, ""), where)


# -- presets and files ----------------------------------------------------------------------
def _preset_path(name: str) -> Any:
    return resources.files("memderain") / "configs" / f"{name}.yaml"


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config_dict(source: str | Path, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """Raw dict of a preset name or YAML path, with ``base:`` inheritance resolved."""
    source = str(source)
    if source in _seen:
        raise ConfigError(f"config 'base' cycle: {' -> '.join(_seen + (source,))}")
    path = Path(source)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        data = load_yaml(path)
    elif source in preset_names():
        text = _preset_path(source).read_text()
        data = yaml.safe_load(text) or {}
    else:
        raise ConfigError(
            f"--config {source!r}: no such file and not a preset; presets: {', '.join(preset_names())}"
        )
    base = data.pop("base", None)
    if base is not None:
        if not isinstance(base, str):
            raise ConfigError(f"{source}: 'base' must be a preset name or a path")
        if not Path(base).is_absolute() and path.parent != Path(".") and (path.parent / base).is_file():
            base = str(path.parent / base)
        data = _deep_merge(load_config_dict(base, _seen + (source,)), data)
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.steps=100"`` -> (["train", "steps"], 100); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. train.steps=100")
    key, raw = text.split("=", 1)
    keys = [k for k in key.strip().split(".") if k]
    if not keys:
        raise ConfigError(f"--set {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return keys, value


def apply_overrides(
    data: dict[str, Any], overrides: list[str] | tuple[str, ...] = (), values: dict | None = None
) -> dict[str, Any]:
    """Apply dotted ``KEY=VALUE`` overrides (value parsed as YAML) and ``values``
    ({"data.root": "/some/path"}, taken verbatim) to a nested dict; a new dict is returned."""
    out = _deep_merge({}, data)
    items = [parse_override(text) + (text,) for text in overrides or ()]
    items += [(key.split("."), value, f"{key}={value}") for key, value in (values or {}).items()]
    for keys, value, text in items:
        node = out
        for k in keys[:-1]:
            child = node.get(k)
            if child is None:
                child = node[k] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {k!r} is not a section")
            else:
                child = node[k] = dict(child)
            node = child
        node[keys[-1]] = value
    return out


def _check_key(keys: list[str], text: str) -> None:
    """Raise a ConfigError naming an unknown ``--set`` key and the nearest valid one."""
    cls: Any = ExperimentConfig
    for depth, key in enumerate(keys):
        known = {f.name: f for f in fields(cls)}
        if key not in known:
            path = ".".join(keys[:depth + 1])
            near = nearest_key(key, known)
            hint = f"; did you mean {'.'.join([*keys[:depth], near])}?" if near else \
                f"; known here: {', '.join(sorted(known))}"
            raise ConfigError(f"--set {text}: unknown key {path}{hint}")
        ftype = typing.get_type_hints(cls)[key]
        if not dataclasses.is_dataclass(ftype):
            if depth + 1 < len(keys):
                raise ConfigError(f"--set {text}: {'.'.join(keys[:depth + 1])} has no sub-keys")
            return
        cls = ftype


def load_experiment(
    source: str | Path = "paper",
    overrides: list[str] | tuple[str, ...] = (),
    values: dict[str, Any] | None = None,
) -> ExperimentConfig:
    """Preset name or YAML path, plus dotted overrides -> validated ExperimentConfig."""
    for text in overrides or ():
        _check_key(parse_override(text)[0], text)
    data = apply_overrides(load_config_dict(source), overrides, values)
    try:
        return experiment_from_dict(data, str(source))
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def experiment_to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    return config_to_dict(cfg)


def save_resolved_config(
    run_dir: str | Path, cfg: ExperimentConfig, argv: list[str] | None = None
) -> Path:
    """Write ``config.yaml`` (reloadable with ``--config``) and ``command.txt`` into the run
    folder, atomically. Returns the config path."""
    import os
    import tempfile

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    argv = list(sys.argv if argv is None else argv)
    header = f"# resolved config written by: {shlex.join(argv)}\n"
    text = header + yaml.safe_dump(experiment_to_dict(cfg), sort_keys=False)
    for name, body in (("config.yaml", text), ("command.txt", shlex.join(argv) + "\n")):
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=run_dir)
        with os.fdopen(fd, "w") as fh:
            fh.write(body)
        normal_permissions(tmp)
        os.replace(tmp, run_dir / name)
    return run_dir / "config.yaml"
