"""One front for every rain engine: preset names, YAML rain files and rendering.

Engine v1 (:mod:`memderain.data.synthetic_rain`, presets ``mixed``, ``light``, ``heavy``,
``mixed-streaks``, ``heldout``) is kept unchanged so earlier experiments reproduce; engine v2
(:mod:`memderain.data.rain_v2`, presets ``v2``, ``v2-streaks``, ``test-light``,
``test-heavy``, ``test-unseen``) is the training default from the v2 model on. Engine
``real-layers`` (:mod:`memderain.data.rain_real`) composites real rain lifted off static
clips (a bank of :mod:`memderain.data.rain_layers`). This front imports the engines; the
engines never import it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from memderain.config import ConfigError, config_from_dict, config_to_dict, load_yaml
from memderain.data import synthetic_rain
from memderain.data.rain_real import REAL_LAYERS_PRESETS, RealLayersConfig, synthesize_real_layers
from memderain.data.rain_v2 import V2_PRESETS, RainV2Config, synthesize_v2
from memderain.data.synthetic_rain import RainConfig, RainyScene

AnyRainConfig = RainConfig | RainV2Config | RealLayersConfig

RAIN_PRESETS: dict[str, AnyRainConfig] = {**synthetic_rain.RAIN_PRESETS, **V2_PRESETS,
                                          **REAL_LAYERS_PRESETS}
TEST_PRESETS = ("test-light", "test-heavy", "test-unseen", "heldout")  # test backgrounds only


def engine_of(cfg: AnyRainConfig) -> str:
    if isinstance(cfg, RealLayersConfig):
        return "real-layers"
    return "v2" if isinstance(cfg, RainV2Config) else "v1"


def rain_config(spec: str | Path | AnyRainConfig, bank: str | Path | None = None
                ) -> AnyRainConfig:
    """A preset name, a YAML file, or a config -> config of the right engine.

    A YAML file holds the fields of one engine's config, optionally with ``preset: NAME`` to
    start from a preset (its engine decides the fields; default ``mixed``, engine v1).
    ``bank`` sets the bank folder of engine ``real-layers`` (refused for the other engines).
    """
    cfg = _rain_config(spec)
    if bank is not None:
        if not isinstance(cfg, RealLayersConfig):
            raise ConfigError(f"--bank is for --rain real-layers, not {spec}")
        from dataclasses import replace

        cfg = replace(cfg, bank=str(bank))
    return cfg


def _rain_config(spec: str | Path | AnyRainConfig) -> AnyRainConfig:
    if isinstance(spec, (RainConfig, RainV2Config, RealLayersConfig)):
        return spec
    name = str(spec)
    if name in RAIN_PRESETS:
        return RAIN_PRESETS[name]
    if not name.lower().endswith((".yaml", ".yml")):
        raise ConfigError(f"unknown rain setting {name!r}: use one of {sorted(RAIN_PRESETS)} "
                          "or a .yaml file")
    data = load_yaml(name)
    base = data.pop("preset", "mixed")
    if base not in RAIN_PRESETS:
        raise ConfigError(f"{name}: unknown preset {base!r}; choose from {sorted(RAIN_PRESETS)}")
    start = RAIN_PRESETS[base]
    merged = {**config_to_dict(start), **data}
    return config_from_dict(type(start), merged, where=f"rain ({name})")


def synthesize(background: torch.Tensor, num_frames: int, config: str | AnyRainConfig,
               generator: torch.Generator) -> RainyScene:
    """Render ``num_frames`` rainy frames of one static scene with either engine."""
    cfg = rain_config(config)
    if isinstance(cfg, RealLayersConfig):
        return synthesize_real_layers(background, num_frames, cfg, generator)
    if isinstance(cfg, RainV2Config):
        return synthesize_v2(background, num_frames, cfg, generator)
    return synthetic_rain.synthesize(background, num_frames, cfg, generator)
