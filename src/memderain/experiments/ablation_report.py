"""Report files of the ablation experiment: ``ablations.md`` (laid out like the paper's Tables IV
and V, our numbers beside the paper's), ``ablations.csv`` (one row per variant x seed) and
``summary.json`` (everything, machine-readable). All our numbers come from the measured
results passed in; the only constants are the paper's reference values
(:mod:`memderain.experiments.variants`).

Spread over seeds: **half the range**, (max - min) / 2, so "mean ± spread" spans exactly the
per-seed values (with 2 seeds it equals their population standard deviation).
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from pathlib import Path

from memderain.atomicfile import atomic_output
from memderain.experiments.variants import VARIANTS
from memderain.version import __version__

SUMMARY_KIND = "memderain.ablations"
METRICS = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")
SPREAD = "half the range over seeds, (max - min) / 2"
DASH = "–"


def _stats(values: list[float]) -> tuple[float, float] | None:
    if not values:
        return None
    return sum(values) / len(values), (max(values) - min(values)) / 2


def _rows(results: list, context: dict) -> list[dict]:
    """One dict per selected variant: per-seed metrics, mean, spread, paper values."""
    by_group: dict[str, list] = {}
    for r in results:
        by_group.setdefault(r.group, []).append(r)
    group_of = {v: g for g, vs in context["groups"].items() for v in vs}
    rows = []
    for v in VARIANTS:
        if v.name not in context["selected"]:
            continue
        runs = sorted(by_group.get(group_of[v.name], []), key=lambda r: r.seed)
        per_seed = {str(r.seed): {m: r.mean[m] for m in METRICS} for r in runs}
        stats = {m: _stats([r.mean[m] for r in runs]) for m in METRICS}
        rows.append({
            "variant": v.name, "table": v.table, "label": v.label,
            "description": v.description, "run": group_of[v.name],
            "runs": [r.run for r in runs], "per_seed": per_seed,
            "mean": {m: s[0] for m, s in stats.items() if s},
            "spread": {m: s[1] for m, s in stats.items() if s},
            "paper": {"psnr_y": v.paper_psnr, "ssim_y": v.paper_ssim,
                      "dataset": "RealDataset (SPANet)"},
        })
    return rows


# ----------------------------------------------------------------------------- Markdown
def _fmt(x: float | None, metric: str) -> str:
    if x is None:
        return DASH
    return f"{x:.2f}" if metric.startswith("psnr") else f"{x:.4f}"


def _pm(row: dict, metric: str) -> str:
    if metric not in row["mean"]:
        return DASH
    return f"{_fmt(row['mean'][metric], metric)} ± {_fmt(row['spread'][metric], metric)}"


def _seeds(row: dict, metric: str, seeds: list[int]) -> str:
    return " / ".join(_fmt(row["per_seed"].get(str(s), {}).get(metric), metric) for s in seeds)


def _check(flag: bool) -> str:
    return "✓" if flag else ""


def _table(rows: list[dict], context: dict, table: str) -> list[str]:
    seeds = context["seeds"]
    seed_hdr = ", ".join(str(s) for s in seeds)
    cfgs = context["configs"]
    if table == "IV":
        head = ["Variant", "Encoder-Decoder", "Siamese", "Memory"]
    else:
        head = ["L_s", "L_b", "L_c", "L_w", "Variant"]
    head += ["PSNR (Y)", "SSIM (Y)", f"PSNR per seed ({seed_hdr})",
             f"SSIM per seed ({seed_hdr})", "Paper PSNR", "Paper SSIM"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(
        ":-:" if h in ("Encoder-Decoder", "Siamese", "Memory", "L_s", "L_b", "L_c", "L_w")
        else ("---" if h == "Variant" else "--:") for h in head) + "|"]
    for row in (r for r in rows if r["table"] == table):
        c = cfgs[row["variant"]]
        loss, siamese = c["loss"], c["loss"]["kind"] == "siamese"
        if table == "IV":
            cells = [f"{row['label']} (`{row['variant']}`)", _check(not siamese),
                     _check(siamese), _check(c["model"]["use_memory"])]
        else:
            cells = [_check(siamese and loss[f"lambda_{t}"] > 0) for t in "sbcw"]
            cells.append(f"`{row['variant']}`")
        cells += [_pm(row, "psnr_y"), _pm(row, "ssim_y"), _seeds(row, "psnr_y", seeds),
                  _seeds(row, "ssim_y", seeds), f"{row['paper']['psnr_y']:.2f}",
                  f"{row['paper']['ssim_y']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    ident = context["identity"]["mean"]
    blank = [""] * (3 if table == "IV" else 4)
    lines.append("| " + " | ".join(
        (["rainy input (identity)", *blank] if table == "IV"
         else [*blank, "rainy input (identity)"])
        + [_fmt(ident["psnr_y"], "psnr_y"), _fmt(ident["ssim_y"], "ssim_y"), "", "", DASH, DASH])
        + " |")
    return lines


def _weights(context: dict) -> str:
    """Weights of Eq. 14 in use (non-zero values over the selected Siamese variants)."""
    parts = []
    for term in "bscw":
        vals = sorted({c["loss"][f"lambda_{term}"] for c in context["configs"].values()
                       if c["loss"]["kind"] == "siamese" and c["loss"][f"lambda_{term}"] > 0})
        if vals:
            parts.append(f"lambda_{term} = {' / '.join(f'{v:g}' for v in vals)}")
    return ", ".join(parts) or "no Siamese variant selected"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _data_line(spec: dict) -> str:
    text = f"`{spec['path']}`, {spec.get('scenes', '?')} scenes"
    if "built_from" in spec:
        text += (f", built by `memderain synth` from `{spec.get('photos', '?')}` "
                 f"({spec['built_from']}): "
                 f"{spec['frames']} frame(s) per scene, rain `{spec['rain']}`, seed "
                 f"{spec['seed']}, max side {spec['max_side']}"
                 + (f", first {spec['limit']} photos" if spec["limit"] else ""))
    else:
        text += " (given)"
    return text


def markdown(summary: dict, rows: list[dict], context: dict) -> str:
    s = summary["scale"]
    wall = summary["wall"]
    ident = context["identity"]
    model = next(iter(context["configs"].values()))["model"]
    intro = (f"Generated by `memderain experiment ablations` (memderain {__version__}) on "
             f"{summary['created']}. Our numbers: Y-channel PSNR / SSIM (MATLAB `rgb2ycbcr`, "
             f"as `memderain eval`) on synthetic test scenes, **mean ± {SPREAD}**; RGB values "
             "are in `ablations.csv`. The paper's numbers are on RealDataset after ~1 day of GPU "
             "training per model: compare our rows with each other, not with the paper's "
             "absolute values.")
    settings = [
        ("scale", (f"`{s['name']}`: C={model['channels']}, M={model['num_items']}, crop "
                  f"{s['crop_size']}, batch {s['batch_size']} pairs, {s['steps']} steps per run")),
        ("loss-term weights", (f"`{s['term_weights']}`: {_weights(context)} (terms a variant "
                              "switches off stay 0)")),
        ("extra overrides", ", ".join(f"`{o}`" for o in context["overrides"]) or "none"),
        ("seeds", ", ".join(str(x) for x in context["seeds"])),
        ("training data", _data_line(context["train"])),
        ("test data", (f"{_data_line(context['test'])}; {s['test_frames']} frame(s) per scene "
                      f"evaluated = {ident['count']} images")),
        ("trained on", ", ".join(f"{hw} ({n} run{'s' * (n > 1)})"
                                 for hw, n in summary["hardware"].items()) or "?"),
        ("this invocation", f"{context['device']}, {context['threads'] or 'default'} thread(s)"),
        ("wall time", (f"{_duration(wall['compute_s'])} of training + evaluation over all runs "
                      f"(training {_duration(wall['train_s'])}, evaluation "
                      f"{_duration(wall['eval_s'])}); this invocation "
                      f"{_duration(wall['invocation_s'])}")),
        ("rainy input (identity)", (f"PSNR (Y) {ident['mean']['psnr_y']:.2f} dB, SSIM (Y) "
                                   f"{ident['mean']['ssim_y']:.4f}")),
    ]
    lines = [f"# Ablation study (paper Tables IV and V), `{s['name']}` scale", "", intro, "",
             "| setting | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in settings), ""]
    titles = {"IV": ("Table IV: network (Encoder-Decoder = L1 to the temporal median pseudo "
                     "ground truth; Siamese = L_s + L_b + L_c)"),
              "V": "Table V: loss terms (all with memory)"}
    for table, title in titles.items():
        if any(r["table"] == table for r in rows):
            lines += [f"## {title}", "", *_table(rows, context, table), ""]
    shared = {g: vs for g, vs in context["groups"].items() if len(vs) > 1}
    for g, vs in shared.items():
        lines.append(f"Rows {', '.join(f'`{v}`' for v in vs)} have identical resolved "
                     f"configs: trained once (`runs/{g}-s*`) and reported in each row.")
    if shared:
        lines.append("")
    real = context.get("real")
    if real:
        lines += _real_section(real, context)
    return "\n".join(lines).rstrip() + "\n"


def _real_section(real: dict, context: dict) -> list[str]:
    seeds = context["seeds"]
    inp = real["input"]
    about = (f"{inp['count']} photos from `{inp['data']}`, downsized to max side "
             f"{inp['max_side']}; memderain NIQE (pristine model fitted to the project's clean "
             f"training photos, not MATLAB's). Mean over photos; ± {SPREAD}.")
    lines = ["## Real rain photos: NIQE (lower is better)", "", about, "",
             f"| Model | NIQE | per seed ({', '.join(str(s) for s in seeds)}) |",
             "|---|--:|--:|",
             f"| rainy input | {inp['mean']['niqe_input']:.3f} | |"]
    for variant, group in context.get("real_groups", {}).items():
        if group is None:
            continue
        vals = {s: real[f"{group}-s{s}"]["mean"]["niqe_output"] for s in seeds
                if f"{group}-s{s}" in real}
        st = _stats(list(vals.values()))
        name = "B_c (no memory)" if variant == "Bc" else "full model (L_s+L_b+L_c+L_w)"
        lines.append(f"| {name} (`{group}`) | {st[0]:.3f} ± {st[1]:.3f} | "
                     + " / ".join(f"{vals[s]:.3f}" if s in vals else DASH for s in seeds) + " |")
    if context.get("real_figure"):
        caption = f"rainy input, B_c and full model on real photos (seed {seeds[0]})"
        lines += ["", f"![{caption}]({context['real_figure']})"]
    return lines + [""]


# ----------------------------------------------------------------------------- files
def _csv_rows(rows: list[dict], results: list) -> list[dict]:
    by_run = {r.run: r for r in results}
    out = []
    for row in rows:
        for run in row["runs"]:
            r = by_run[run]
            rec = {"table": row["table"], "variant": row["variant"], "label": row["label"],
                   "run": run, "seed": r.seed, "steps": r.steps}
            rec.update({m: r.mean[m] for m in METRICS})
            rec.update({f"input_{m}": r.input_mean[m] for m in METRICS})
            rec.update({"train_wall_s": r.train_wall_s, "eval_wall_s": r.eval_wall_s,
                        "paper_psnr_y": row["paper"]["psnr_y"],
                        "paper_ssim_y": row["paper"]["ssim_y"]})
            out.append(rec)
    return out


def write_report(opts, results: list, context: dict) -> dict:
    """Write ablations.md, ablations.csv and summary.json into ``opts.out`` (atomically,
    replacing earlier versions); returns the summary."""
    rows = _rows(results, context)
    train_s = sum(r.train_wall_s for r in results)
    eval_s = sum(r.eval_wall_s for r in results) + context["identity"]["wall_time_s"] + sum(
        v["wall_time_s"] for v in (context.get("real") or {}).values())
    unique_runs = {r.run: r for r in results}.values()
    summary = {
        "kind": SUMMARY_KIND, "format_version": 1, "memderain_version": __version__,
        "created": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "scale": opts.scale.to_dict(), "overrides": context["overrides"],
        "seeds": context["seeds"], "device": context["device"], "threads": context["threads"],
        "hardware": dict(Counter(r.hardware for r in unique_runs)),
        "data": {"train": context["train"], "test": context["test"]},
        "metrics": "Y (MATLAB rgb2ycbcr, rounded) and RGB PSNR/SSIM, mean over test images",
        "spread": SPREAD, "groups": context["groups"],
        "identity": context["identity"]["mean"], "test_images": context["identity"]["count"],
        "runs": [{"run": r.run, "group": r.group, "variants": list(r.variants), "seed": r.seed,
                  "steps": r.steps, "train_wall_s": r.train_wall_s,
                  "eval_wall_s": r.eval_wall_s, "mean": r.mean, "input_mean": r.input_mean}
                 for r in unique_runs],
        "rows": rows,
        "real": ({k: {"mean": v["mean"], "count": v["count"]}
                  for k, v in context["real"].items()} if context.get("real") else None),
        "real_figure": context.get("real_figure"),
        "wall": {"train_s": round(train_s, 1), "eval_s": round(eval_s, 1),
                 "compute_s": round(train_s + eval_s, 1),
                 "invocation_s": round(time.time() - context["t_start"], 1)},
    }
    out = Path(opts.out)
    with atomic_output(out / "ablations.md", overwrite=True) as tmp:
        tmp.write_text(markdown(summary, rows, context))
    fields = ["table", "variant", "label", "run", "seed", "steps", *METRICS,
              *(f"input_{m}" for m in METRICS), "train_wall_s", "eval_wall_s",
              "paper_psnr_y", "paper_ssim_y"]
    with atomic_output(out / "ablations.csv", overwrite=True) as tmp, \
            open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(_csv_rows(rows, results))
    with atomic_output(out / "summary.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(summary, indent=1) + "\n")
    return summary
