"""Does the clip score agree with the truth? Rendered-truth clips, scored both ways.

For each real static clip of ``../shared/data/real_video`` a truth clip is made
(:mod:`memderain.evaluation.clip_truth`): the clip's temporal median as the rain-free scene
(read at ``--side`` px), moving content drawn into it (swaying leaves, a flickering lamp, a
sign changing colour), the clip's own camera shake and sensor noise (measured at 960 px, on its
static pixels), and rain: real layers lifted from yard.mp4 / night_street.mp4 (a bank built
in a temporary folder unless ``--bank``) or streaks rendered by engine v1. A fifth clip is a
clean test photo (``backgrounds/test``) under dense rendered rain; a sixth is the yard clip with
its rainy frames stored as JPEG quality 80 (the codec's error then belongs to the input).

Every method (the rainy input, the 3x3 filters, the shipped model, the shipped model blurred
5x5 and darkened by 3 grey levels, and an ideal de-rainer: the clean frames with their noise)
is scored against the clip's median with each reference (``motion``: the plain median on the
training masks of ``memderain.data.static_clip``; ``strict``: the rain-free median on the
strict mask of ``memderain.evaluation.clip_mask``; ``auto``, the default of ``eval --clip``:
strict for the five clips stored as PNG, motion for the JPEG one) and against the clean frames
on every pixel whose content does not move.
Prints Markdown tables: per clip and method the median score, the truth score, their
difference, and whether the methods rank the same.

    python benchmarks/clip_truth.py                  # about 150 frames through the model on CPU
    python benchmarks/clip_truth.py --bank /tmp/bank --cache /tmp/clip_truth_cache
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy import ndimage

from memderain.data.static_clip import load_static_clip, noise_level
from memderain.evaluation.clip_truth import (
    ColourSign,
    Flicker,
    Leaves,
    agreement_table,
    bank_rain,
    compact_table,
    compare,
    load_truth,
    make_truth_clip,
    ranking,
    rendered_rain,
    run_methods,
)
from memderain.evaluation.trivial import TRIVIAL_FILTERS

ROOT = Path(__file__).resolve().parents[1]
SEEDS = {"yard.mp4": 0, "night_street.mp4": 1, "news_test1.mp4": 2, "street_r2": 3,
         "bsd100_012.png": 4}  # the JPEG yard clip is the yard clip, seed and all
SHARED = ROOT.parent / "shared" / "data"

# name, source in real_video, rain (kind, what, gain), moving content
SPECS = [
    ("yard: real rain x2, leaves, lamp", "yard.mp4", ("bank", "yard", 2.0),
     ("leaves", "flicker")),
    ("night_street: real rain x2, lamp, sign", "night_street.mp4",
     ("bank", "night_street", 2.0), ("flicker", "colour")),
    ("news_test1: dense rendered rain, sign, leaves", "news_test1.mp4",
     ("rendered", "mixed-streaks", 1.0), ("colour", "leaves")),
    ("street_r2: light rendered rain, leaves", "street_r2", ("rendered", "light", 1.0),
     ("leaves",)),
]
PHOTO = ("photo bsd100_012: dense rendered rain, leaves, lamp, sign", "bsd100_012.png",
         ("rendered", "mixed-streaks", 1.0), ("leaves", "flicker", "colour"))
# the yard clip once more, its rainy frames stored as JPEG quality 80 (real footage is
# compressed: the codec's error is heavier on texture and beside bright streaks)
JPEG = ("yard as JPEG q80: real rain x2, leaves, lamp", "yard.mp4", ("bank", "yard", 2.0),
        ("leaves", "flicker"), 80)


def movers(kinds, canvas_hw, seed):
    rng = np.random.default_rng(seed)
    made = []
    for k in kinds:
        if k == "leaves":
            made.append(Leaves(canvas_hw, rng, box=(0.08, 0.06, 0.32, 0.38), amplitude=2.5))
        elif k == "flicker":
            made.append(Flicker(canvas_hw, rng, centre=(0.35, 0.72), radius=0.06 * max(canvas_hw)))
        elif k == "colour":
            made.append(ColourSign(canvas_hw, rng, box=(0.72, 0.55, 0.12, 0.3)))
    return made


def measured(source: Path):
    """(noise sigma on static pixels, shifts (T, 2)) of a real clip at 960 px."""
    clip = load_static_clip(source, max_side=960, upright=True)
    m = clip.static
    return noise_level(clip.frames[:, m], clip.median[m]), clip.shifts - clip.shifts[0]


def build(spec, args, bank, seed):
    name, src, (kind, what, gain), moving = spec[:4]
    jpeg = spec[4] if len(spec) > 4 else None
    if src.endswith(".png"):
        from PIL import Image

        photo = Image.open(SHARED / "backgrounds" / "test" / src).convert("RGB")
        photo.thumbnail((args.side, args.side), Image.BICUBIC)
        scene = np.asarray(photo)
        rng = np.random.default_rng(seed)
        frames = 20
        shifts = np.concatenate([[[0, 0]], rng.integers(-2, 3, (frames - 1, 2))])
        noise = 2.5
    else:
        path = SHARED / "real_video" / src
        noise, shifts = measured(path)
        scene = load_static_clip(path, max_side=args.side, upright=True).median
        frames = len(shifts)
    m = int(np.abs(shifts).max())
    shifts = shifts[:frames]
    h, w = scene.shape[0] - 2 * m, scene.shape[1] - 2 * m
    if kind == "bank":
        rain = bank_rain(bank, what, frames, (h, w), seed=seed, gain=gain)
    else:
        rain = rendered_rain(what, frames, (h, w), seed=seed) * gain
    truth = make_truth_clip(scene, rain, noise, shifts, movers(moving, scene.shape[:2], seed),
                            seed=seed, name=name)
    return load_truth(truth, jpeg=jpeg)


def bank_for(specs, bank: Path | None, tmp: str | Path) -> Path | None:
    """``bank``, or, when some spec draws real rain layers and none was given, a bank of
    yard.mp4 and night_street.mp4 built into ``tmp`` (``memderain rain-layers``)."""
    if bank is None and any(s[2][0] == "bank" for s in specs):
        from memderain.cli import main as cli

        bank = Path(tmp) / "bank"
        cli(["rain-layers", str(SHARED / "real_video" / "yard.mp4"),
             str(SHARED / "real_video" / "night_street.mp4"), "-o", str(bank)])
    return bank


def shipped_outputs(loaded, derain, cache: Path | None):
    key = hashlib.sha1(loaded.clip.frames.tobytes()).hexdigest()[:16]
    path = cache / f"{key}.npy" if cache else None
    if path is not None and path.is_file():
        return np.load(path)
    out = run_methods(loaded.clip, {"shipped": derain})["shipped"]
    if path is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.save(path, out)
    return out


def outputs_of(loaded, derain, cache):
    out = run_methods(loaded.clip, dict(TRIVIAL_FILTERS))
    shipped = shipped_outputs(loaded, derain, cache)
    out["shipped"] = shipped
    out["shipped, 5x5 blur"] = ndimage.uniform_filter(shipped, (1, 5, 5, 1), mode="nearest")
    out["shipped - 3"] = np.clip(shipped.astype(np.int16) - 3, 0, 255).astype(np.uint8)
    out["ideal de-rainer"] = loaded.derained
    return out


def mask_table(loaded_all, kinds):
    """Per clip and reference: the share of pixels scored, of clearly moving pixels (the
    clean scene changes by more than 10 grey levels) scored, and of rain pixels (> 10 grey
    levels, 4 px or more from anything that moves, inside the border) scored."""
    from memderain.evaluation.clip_score import ClipReference

    lines = [("| clip | frames | noise sigma | reference | pixels scored | moving pixels scored "
              "| rain pixels scored |"), "|---|---:|---:|---|---:|---:|---:|"]
    for ld in loaded_all:
        moving = ld.moving(10.0)
        near = ndimage.binary_dilation(ld.change > 1.0, np.ones((9, 9), bool))
        for kind in kinds:
            ref = ClipReference(ld.clip, kind)
            m = np.stack([ref.mask(t) for t in range(len(ld))])
            rain = (ld.rain > 10) & ~near[None] & ref.inner[None]
            mv = (m & moving[None]).sum() / max(1, moving.sum() * len(ld))
            label = kind if kind == ref.kind else f"{kind} ({ref.kind})"
            lines.append(f"| {ld.name} | {len(ld)} | {ld.noise:.2f} | {label} | "
                         f"{ref.scored_fraction:.0%} | {mv:.1%} | "
                         f"{(m & rain).sum() / max(1, rain.sum()):.1%} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bank", type=Path, help="rain-layer bank with clips yard and night_street "
                                              "(default: built from ../shared into a temporary folder)")
    ap.add_argument("--side", type=int, default=256, help="longer side of the scenes (px)")
    ap.add_argument("--cache", type=Path, help="keep the shipped model's outputs here")
    ap.add_argument("--kinds", default="motion,strict,auto",
                    help="references to compare (memderain.evaluation.clip_mask.KINDS)")
    ap.add_argument("--clips", help="comma-separated subset of clip names")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--long", action="store_true",
                    help="one row per clip and method, with the truth on the mask's pixels")
    args = ap.parse_args(argv)
    if not (SHARED / "real_video").is_dir():
        print(f"{SHARED / 'real_video'} is missing: no real clips to build truth clips from")
        return 1
    import memderain
    from memderain.weights import default_weights_path

    model = memderain.load_model(default_weights_path(), device="cpu", backend="torch",
                                 precision="f32")
    specs = [s for s in [*SPECS, PHOTO, JPEG]
             if not args.clips or s[0].split(":")[0] in args.clips.split(",")]
    with tempfile.TemporaryDirectory(prefix="clip_truth_bank_") as tmp:
        bank = bank_for(specs, args.bank, tmp)
        loaded_all, outputs = [], {}
        for spec in specs:
            ld = build(spec, args, bank, args.seed + SEEDS[spec[1]])
            print(f"{ld.name}: {len(ld)} frames of {ld.clip.frames.shape[2]}x"
                  f"{ld.clip.frames.shape[1]}, noise {ld.noise:.2f}", file=sys.stderr)
            loaded_all.append(ld)
            outputs[ld.name] = outputs_of(ld, model.derain, args.cache)
    kinds = args.kinds.split(",")
    print(mask_table(loaded_all, kinds))
    for kind in kinds:
        results = {ld.name: compare(ld, outputs[ld.name], kind) for ld in loaded_all}
        diffs = [abs(a.difference) for r in results.values() for a in r.values()]
        same = sum(ranking({k: v.median.psnr_y for k, v in r.items()})
                   == ranking({k: v.truth.psnr_y for k, v in r.items()}) for r in results.values())
        print(f"\n### reference `{kind}`: largest |difference| {max(diffs):.2f} dB, "
              f"same ranking on {same} of {len(results)} clips\n")
        print(agreement_table(results) if args.long else compact_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
