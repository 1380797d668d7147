"""Typed configuration shared by the whole package, plus YAML helpers.

Only :class:`ModelConfig` lives here because inference needs nothing else; training,
data and loss settings live in :mod:`memderain.training.config` and reuse the helpers
below (``config_from_dict`` rejects unknown keys so a typo in a YAML file is an error,
not a silently ignored setting).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import yaml

from memderain.errors import MemderainError

T = TypeVar("T")


class ConfigError(MemderainError, ValueError):
    """A configuration file or override is invalid (unknown key, wrong type...)."""


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of the network (paper Table I and Sec. III-C).

    Paper gaps and the choices made here:

    * ``channels``: Table I uses 64, the text (Sec. III-E) says C=32. Default 64 (Table I),
      which gives the paper's 0.82 M parameters.
    * ``normalize_query_in_update``: Eq. 6 adds raw queries to unit-norm items. Queries are
      ReLU features of arbitrary scale, so by default they are L2-normalised first (as in the
      memory-guided normality code of Park et al. that the memory follows); set False for the
      literal Eq. 6.
    * ``clamp_background``: B = I - R is clamped to the image range [-1, 1]. This keeps the
      output displayable and is what gives the self-consistency loss (Eq. 9) a non-zero value.
    * ``nonnegative_rain``: the decoder's R_hat is unconstrained in the paper. Rain streaks only
      add light (I = B + R with R >= 0 in Eq. 1), so this option clamps R_hat at 0: the network
      can then never brighten a pixel. Off by default (paper); on for the shipped model (trained
      with it from stage 3, preset ``default-streaks``), where it stops a learned brightening of
      rain-free regions (MODEL_CARD.md).
    * ``rain_gain``: R_hat is multiplied by this before B = I - R (1 = the paper). 0 makes the
      network an identity: what ``memderain adapt`` writes when neither the adapted nor the
      starting model beats the rainy input on the clip's held-out frames.
    """

    in_channels: int = 3  # RGB input I
    channels: int = 64  # feature width C of every conv layer (Table I)
    num_items: int = 20  # memory items M (Sec. III-E)
    use_memory: bool = True  # False gives the ablation baselines B_a / B_c (Table IV)
    read_temperature: float = 1.0  # divides the cosine similarity in Eq. 2 / Eq. 5 (paper: 1)
    normalize_query_in_update: bool = True  # see class docstring
    clamp_background: bool = True  # see class docstring
    nonnegative_rain: bool = False  # see class docstring
    rain_gain: float = 1.0  # see class docstring

    def __post_init__(self) -> None:
        if self.in_channels < 1 or self.channels < 1:
            raise ConfigError("model.in_channels and model.channels must be positive")
        if not 0.0 <= self.rain_gain <= 1.0:
            raise ConfigError("model.rain_gain must be in [0, 1]")
        if self.use_memory and self.num_items < 1:
            raise ConfigError("model.num_items must be >= 1 when use_memory is true")
        if self.read_temperature <= 0:
            raise ConfigError("model.read_temperature must be > 0")


def nearest_key(key: str, known) -> str | None:
    """The valid key closest to a misspelt ``key`` (difflib), or None."""
    import difflib

    near = difflib.get_close_matches(key, list(known), 1)
    return near[0] if near else None


def config_from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass ``cls`` from a plain dict, recursing into nested dataclasses.

    Unknown keys raise :class:`ConfigError` naming the key and the allowed ones.
    """
    data = dict(data or {})
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        prefix = f"{where}." if where else ""
        hints = [m for m in (nearest_key(k, known) for k in unknown) if m]
        hint = f" (did you mean {', '.join(prefix + h for h in hints)}?)" if hints else ""
        raise ConfigError(
            f"unknown key(s) {', '.join(prefix + k for k in unknown)}{hint}; allowed in "
            f"{where or cls.__name__}: {sorted(known)}"
        )
    kwargs = {}
    for name, value in data.items():
        f = known[name]
        ftype = f.type if not isinstance(f.type, str) else _resolve(cls, f.name)
        if dataclasses.is_dataclass(ftype) and isinstance(value, dict):
            value = config_from_dict(ftype, value, f"{where}.{name}" if where else name)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:  # pragma: no cover - defensive
        raise ConfigError(f"invalid {where or cls.__name__}: {exc}") from exc


def _resolve(cls: type, name: str) -> Any:
    import typing

    hints = typing.get_type_hints(cls)
    return hints[name]


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain-python dict (YAML / checkpoint safe) of a (nested) dataclass."""
    out = dataclasses.asdict(cfg)
    return _plain(out)


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with a one-line error for a missing or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at top level")
    return data
