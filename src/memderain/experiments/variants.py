"""The rows of the paper's ablation tables and which training run each row needs.

Table IV (network/objective): B_a, B_b (L1 to the temporal pseudo ground truth, without / with
memory), B_c, B_d (Siamese L_s + L_b + L_c, without / with memory). Table V (losses, with
memory): every combination the paper lists of L_s, L_b, L_c, L_w. Each row is a shipped preset
(``memderain/configs/<name>.yaml``). ``PAPER`` holds the paper's RealDataset PSNR / SSIM.

Two rows can describe the same training (B_d and loss_sbc, Table IV/V): :func:`training_groups`
finds them by comparing the resolved configs and trains one run for both.

Term weights (:func:`variant_config`): ``paper`` keeps the presets' weights of Eq. 14
(lambda_s 0.1, lambda_c 0.001); ``official`` gives every term a preset switches on the weight of
the ``official`` preset (the authors' code: L_b, L_s, L_c all 1, lambda_w 0.01) and leaves the
switched-off terms off. Short runs need it: with the paper's weights L_b (minimised by any
constant output) dominates and the Siamese variants collapse (docs/experiments.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from memderain.errors import MemderainError

TERM_WEIGHTS = ("paper", "official")


@dataclass(frozen=True)
class Variant:
    name: str  # preset name = row id
    table: str  # "IV" or "V"
    label: str  # row label as in the paper
    description: str
    paper_psnr: float  # paper, RealDataset
    paper_ssim: float


VARIANTS: tuple[Variant, ...] = (
    Variant("Ba", "IV", "B_a", "no memory, L1 to temporal median", 36.62, 0.965),
    Variant("Bb", "IV", "B_b", "memory, L1 to temporal median", 38.03, 0.972),
    Variant("Bc", "IV", "B_c", "no memory, Siamese L_s+L_b+L_c", 39.82, 0.982),
    Variant("Bd", "IV", "B_d", "memory, Siamese L_s+L_b+L_c", 41.08, 0.985),
    Variant("loss_sb", "V", "L_s + L_b", "memory", 39.92, 0.981),
    Variant("loss_sbw", "V", "L_s + L_b + L_w", "memory", 40.35, 0.982),
    Variant("loss_bc", "V", "L_b + L_c", "memory", 40.01, 0.982),
    Variant("loss_bcw", "V", "L_b + L_c + L_w", "memory", 40.57, 0.984),
    Variant("loss_sbc", "V", "L_s + L_b + L_c", "memory (= B_d)", 41.08, 0.985),
    Variant("loss_sbcw", "V", "L_s + L_b + L_c + L_w", "memory (full model)", 41.56, 0.988),
)
BY_NAME = {v.name: v for v in VARIANTS}
FULL_MODEL = "loss_sbcw"  # the paper's model (Table V, last row)
NO_MEMORY_SIAMESE = "Bc"  # compared with the full model on real photos


def select(names: list[str] | None) -> list[Variant]:
    """Variants in table order; ``names`` (``--only``) picks a subset, unknown names raise."""
    if not names:
        return list(VARIANTS)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise MemderainError(f"--only: unknown variant(s) {', '.join(unknown)}; choose from "
                             f"{', '.join(BY_NAME)}")
    return [v for v in VARIANTS if v.name in set(names)]


def training_groups(configs: dict[str, dict]) -> dict[str, list[str]]:
    """Group variants whose resolved configs (plain dicts, ``name`` ignored) are equal.

    ``configs`` maps variant name -> resolved config dict of *all* variants, so the grouping
    (and the run folder, named after the first variant of a group in table order) does not
    depend on which subset is selected. Returns {run name: [variant names]}.
    """
    groups: dict[str, list[str]] = {}
    keys: list[tuple[str, dict]] = []
    for v in VARIANTS:
        if v.name not in configs:
            continue
        body = {k: val for k, val in configs[v.name].items() if k != "name"}
        for run, other in keys:
            if other == body:
                groups[run].append(v.name)
                break
        else:
            keys.append((v.name, body))
            groups[v.name] = [v.name]
    return groups


def variant_config(name: str, term_weights: str = "paper", overrides=(), values=None):
    """Resolved :class:`~memderain.training.config.ExperimentConfig` of variant ``name``: its
    preset, re-weighted for ``term_weights="official"`` (see the module docstring), then the
    dotted ``overrides`` / ``values`` as in ``memderain train --set``."""
    from memderain.config import ConfigError
    from memderain.training.config import apply_overrides, experiment_from_dict, load_config_dict

    if term_weights not in TERM_WEIGHTS:
        raise MemderainError(f"term weights must be one of {TERM_WEIGHTS}, got {term_weights!r}")
    data = load_config_dict(name)
    loss = dict(data.get("loss") or {})
    if term_weights == "official" and loss.get("kind", "siamese") == "siamese":
        official = load_config_dict("official")["loss"]
        for term in "bscw":
            key = f"lambda_{term}"
            if loss.get(key, 0) > 0:
                loss[key] = official[key]
        data = {**data, "loss": loss}
    data = apply_overrides(data, overrides, values)
    try:
        return experiment_from_dict(data, name)
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc}") from None
