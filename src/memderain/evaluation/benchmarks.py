"""Paired rainy / clean test sets on disk, with the layouts the de-raining benchmarks ship in.

``open_benchmark(root)`` detects the layout (or takes ``layout=``) and returns a
:class:`Benchmark`: a list of :class:`Pair` (name, rainy file, clean file) plus ``load(pair)``
-> ``(rainy, clean)`` uint8 HxWx3 arrays. Supported layouts (``LAYOUTS``):

========  ==========================================================================
synth     ``memderain synth`` output: ``frames/<scene>/tNNN.png`` + ``clean/<scene>.png``
ddn       Rain1400 / Rain14000 (DDN): ``rainy image/N_k.jpg`` + ``ground truth/N.jpg``
rain100   Rain100L / Rain100H (JORDER): ``rain-NNN.png`` + ``norain-NNN.png`` side by side,
          or in ``rain/`` + ``norain/`` sub-folders
spa       SPA-Data / RealDataset: ``rain/`` + ``gt/`` sub-folders, or ``*_rain.png`` +
          ``*_gt.png`` files
paired    sub-folders ``input/`` + ``target/`` (also ``inp/tar``, ``rainy/clean``, ``lq/gt``,
          ``input/gt``, ``rain/clean``), files matched by name
didmdn    Rain1200 / Rain12000 (DID-MDN): one image per pair, the two halves side by side;
          the *left* half is rainy (DID-MDN ``datasets/pix2pix_val.py`` crops
          ``imgA = left``, ``imgB = right`` and ``test.py`` feeds ``imgA`` to the network)
========  ==========================================================================

Files are matched by their name with the rain / clean token removed (``rain-001`` and
``norain-001``, ``7_rain`` and ``7_gt``, ``input/3.png`` and ``target/3.jpg``). A rainy image
without ground truth, a ground truth nobody uses (except DDN's, shared by 14 images) and two
files with the same key are errors that name the files (``skip_unpaired=True`` drops them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from memderain.data.scenes import list_images
from memderain.data.transforms import IMAGE_READ_ERRORS, read_rgb
from memderain.errors import MemderainError

PAIRED_FOLDERS = (("input", "target"), ("inp", "tar"), ("rainy", "clean"), ("lq", "gt"),
                  ("input", "gt"), ("rain", "clean"))
_TOKENS = r"(?:norain|rainy|rain|clean|gt|target|tar|input|inp|lq)"
_LEAD = re.compile(rf"^{_TOKENS}[-_]")
_TRAIL = re.compile(rf"[-_]{_TOKENS}$")
_MAX_NAMES = 8


@dataclass(frozen=True)
class Pair:
    """One test image: ``name`` (unique id, used in CSVs and output file names), the rainy
    and clean files, and for side-by-side files which half is rainy ("left"/"right")."""

    name: str
    rainy: Path
    clean: Path
    rain_side: str | None = None


@dataclass(frozen=True)
class Benchmark:
    root: Path
    layout: str
    pairs: tuple[Pair, ...]

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[Pair]:
        return iter(self.pairs)

    def load(self, pair: Pair) -> tuple[np.ndarray, np.ndarray]:
        """(rainy, clean) as uint8 HxWx3 RGB; raises MemderainError if the sizes differ."""
        if pair.rain_side is not None:
            both = read_rgb(pair.rainy)
            w = both.shape[1]
            if w % 2:
                raise MemderainError(f"side-by-side pair {pair.rainy} has an odd width ({w})")
            left, right = both[:, : w // 2], both[:, w // 2:]
            return (left, right) if pair.rain_side == "left" else (right, left)
        rainy, clean = read_rgb(pair.rainy), read_rgb(pair.clean)
        if rainy.shape != clean.shape:
            raise MemderainError(
                f"size mismatch: {pair.rainy} is {rainy.shape[1]}x{rainy.shape[0]} but its ground"
                f" truth {pair.clean} is {clean.shape[1]}x{clean.shape[0]} (WxH)")
        return rainy, clean


# ----------------------------------------------------------------------------- helpers
def pair_key(stem: str) -> str:
    """File stem without the rain / clean token: ``norain-001`` -> ``001``, ``7_gt`` -> ``7``."""
    key = stem.lower()
    key = _LEAD.sub("", key)
    return _TRAIL.sub("", key)


def _names(paths, limit: int = _MAX_NAMES) -> str:
    names = [p.name if isinstance(p, Path) else str(p) for p in paths]
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _subdir(root: Path, *candidates: str) -> Path | None:
    """The sub-folder of ``root`` whose name matches a candidate (case, '_' vs ' ' ignored)."""
    wanted = {c.lower().replace("_", " ") for c in candidates}
    for child in sorted(root.iterdir()):
        if child.is_dir() and child.name.lower().replace("_", " ") in wanted:
            return child
    return None


def _keyed(files: list[Path], key: Callable[[str], str] = pair_key) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for f in files:
        k = key(f.stem)
        if k in out:
            raise MemderainError(f"two files in {f.parent} have the same name key {k!r}: "
                                 f"{out[k].name} and {f.name}")
        out[k] = f
    return out


def _match(rainy: list[Path], clean: list[Path], where: Path, skip_unpaired: bool,
           name: Callable[[Path], str] = lambda p: p.stem) -> list[Pair]:
    """Pairs of files with equal :func:`pair_key`; unpaired files raise (or are dropped)."""
    r, c = _keyed(rainy), _keyed(clean)
    no_gt = [r[k] for k in sorted(r) if k not in c]
    unused = [c[k] for k in sorted(c) if k not in r]
    if (no_gt or unused) and not skip_unpaired:
        parts = []
        if no_gt:
            parts.append(f"no ground truth for {len(no_gt)} rainy image(s): {_names(no_gt)}")
        if unused:
            parts.append(f"no rainy image for {len(unused)} ground truth(s): {_names(unused)}")
        raise MemderainError(f"unpaired files in {where}: " + "; ".join(parts)
                             + " (use --skip-unpaired to evaluate the complete pairs only)")
    return [Pair(name(r[k]), r[k], c[k]) for k in sorted(r, key=_natural) if k in c]


def _natural(s: str):
    """Sort key treating digit runs as numbers (``2`` before ``10``)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


# ----------------------------------------------------------------------------- layouts
def _synth(root: Path, skip_unpaired: bool, frames_per_scene: int | None = None, **_):
    frames_dir, clean_dir = root / "frames", root / "clean"
    if not (frames_dir.is_dir() and clean_dir.is_dir()):
        return None
    scenes = sorted((d for d in frames_dir.iterdir() if d.is_dir() and not d.name.startswith(".")),
                    key=lambda d: _natural(d.name))  # hidden: a scene `synth` is still writing
    cleans = {p.stem: p for p in list_images(clean_dir)}
    missing = [d.name for d in scenes if d.name not in cleans]
    unused = sorted(set(cleans) - {d.name for d in scenes})
    if (missing or unused) and not skip_unpaired:
        parts = []
        if missing:
            parts.append(f"no clean/<scene>.png for scene(s): {_names(missing)}")
        if unused:
            parts.append(f"no frames/<scene>/ for clean image(s): {_names(unused)}")
        raise MemderainError(f"unpaired scenes in {root}: " + "; ".join(parts))
    pairs = []
    for d in scenes:
        if d.name not in cleans:
            continue
        frames = list_images(d)
        if frames_per_scene and len(frames) > frames_per_scene:
            idx = np.unique(np.linspace(0, len(frames) - 1, frames_per_scene).round().astype(int))
            frames = [frames[i] for i in idx]
        pairs += [Pair(f"{d.name}/{f.stem}", f, cleans[d.name]) for f in frames]
    return pairs


def _ddn(root: Path, skip_unpaired: bool, **_):
    rainy_dir = _subdir(root, "rainy image", "rainy images", "rainy_image")
    gt_dir = _subdir(root, "ground truth", "groundtruth", "ground_truth")
    if rainy_dir is None or gt_dir is None:
        return None
    gts = _keyed(list_images(gt_dir), key=str)
    pairs, bad, no_gt = [], [], []
    for f in list_images(rainy_dir):
        m = re.fullmatch(r"(.+)_(\d+)", f.stem)
        if m is None:
            bad.append(f)
        elif m.group(1) not in gts:
            no_gt.append(f)
        else:
            pairs.append(Pair(f.stem, f, gts[m.group(1)]))
    if bad and not skip_unpaired:
        raise MemderainError(f"rainy images in {rainy_dir} not named N_k: {_names(bad)}")
    if no_gt and not skip_unpaired:
        raise MemderainError(f"no ground truth in {gt_dir} for {len(no_gt)} rainy image(s): "
                             f"{_names(no_gt)} (use --skip-unpaired to evaluate the rest)")
    return sorted(pairs, key=lambda p: _natural(p.name))


def _rain100(root: Path, skip_unpaired: bool, **_):
    rain_dir, norain_dir = _subdir(root, "rain"), _subdir(root, "norain")
    if rain_dir is not None and norain_dir is not None:
        return _match(list_images(rain_dir), list_images(norain_dir), root, skip_unpaired)
    files = list_images(root)
    rainy = [f for f in files if f.name.lower().startswith("rain-")]
    clean = [f for f in files if f.name.lower().startswith("norain-")]
    if not rainy or not clean:
        return None
    return _match(rainy, clean, root, skip_unpaired)


def _spa(root: Path, skip_unpaired: bool, **_):
    rain_dir, gt_dir = _subdir(root, "rain"), _subdir(root, "gt")
    if rain_dir is not None and gt_dir is not None:
        return _match(list_images(rain_dir), list_images(gt_dir), root, skip_unpaired)
    files = list_images(root)
    rainy = [f for f in files if re.search(r"[-_]rain$", f.stem.lower())]
    clean = [f for f in files if re.search(r"[-_]gt$", f.stem.lower())]
    if not rainy or not clean:
        return None
    return _match(rainy, clean, root, skip_unpaired, name=lambda p: pair_key(p.stem))


def _paired(root: Path, skip_unpaired: bool, **_):
    for rainy_name, clean_name in PAIRED_FOLDERS:
        rainy_dir, clean_dir = _subdir(root, rainy_name), _subdir(root, clean_name)
        if rainy_dir is not None and clean_dir is not None:
            return _match(list_images(rainy_dir), list_images(clean_dir), root, skip_unpaired)
    return None


def _didmdn(root: Path, skip_unpaired: bool, rain_side: str = "left", forced: bool = False,
            **_):
    files = list_images(root)
    if not files:
        return None
    pairs, odd = [], []
    for f in sorted(files, key=lambda p: _natural(p.stem)):
        try:
            with Image.open(f) as im:  # header only
                w, h = im.size
        except IMAGE_READ_ERRORS as exc:
            raise MemderainError(f"cannot read image {f}: {exc}") from None
        if w % 2 == 0 and (forced or w == 2 * h):
            pairs.append(Pair(f.stem, f, f, rain_side))
        else:
            odd.append(f)
    if not forced and odd:
        return None  # not every image is a 2:1 side-by-side pair: some other layout
    if odd and not skip_unpaired:
        raise MemderainError(f"images with an odd width cannot be split in halves: {_names(odd)}")
    return pairs


LAYOUTS: dict[str, tuple[str, Callable]] = {
    "synth": ("memderain synth output: frames/<scene>/tNNN.png + clean/<scene>.png", _synth),
    "ddn": ("Rain1400/Rain14000: 'rainy image'/N_k.jpg + 'ground truth'/N.jpg", _ddn),
    "rain100": ("Rain100L/H: rain-NNN.png + norain-NNN.png (or rain/ + norain/)", _rain100),
    "spa": ("SPA-Data/RealDataset: rain/ + gt/ folders, or *_rain.png + *_gt.png", _spa),
    "paired": ("input/ + target/ (or inp/tar, rainy/clean, lq/gt, input/gt, rain/clean)",
               _paired),
    "didmdn": ("Rain1200/Rain12000: side-by-side WxH = 2HxH images, left half rainy", _didmdn),
}


def open_benchmark(root, layout: str = "auto", *, rain_side: str = "left",
                   frames_per_scene: int | None = None, skip_unpaired: bool = False
                   ) -> Benchmark:
    """Find the rainy / clean pairs under ``root`` (see the module docstring for layouts).

    ``rain_side``: which half of a DID-MDN side-by-side image is rainy. ``frames_per_scene``:
    for ``synth``, evaluate only this many evenly spaced frames of each scene.
    """
    root = Path(root)
    if not root.is_dir():
        raise MemderainError(f"benchmark folder not found: {root}")
    if rain_side not in ("left", "right"):
        raise MemderainError(f"rain_side must be 'left' or 'right', got {rain_side!r}")
    opts = {"skip_unpaired": skip_unpaired, "rain_side": rain_side,
            "frames_per_scene": frames_per_scene}
    if layout != "auto":
        if layout not in LAYOUTS:
            raise MemderainError(f"unknown layout {layout!r}; choose from auto, "
                                 + ", ".join(LAYOUTS))
        pairs = LAYOUTS[layout][1](root, forced=True, **opts)
        if pairs is None:
            raise MemderainError(f"{root} is not in the {layout} layout ({LAYOUTS[layout][0]})")
        return _checked(root, layout, pairs)
    for name, (_, detect) in LAYOUTS.items():
        pairs = detect(root, **opts)
        if pairs is not None:
            return _checked(root, name, pairs)
    raise MemderainError(_no_layout_message(root))


def _checked(root: Path, layout: str, pairs: list[Pair]) -> Benchmark:
    if not pairs:
        raise MemderainError(f"no image pairs found in {root} (layout {layout})")
    return Benchmark(root, layout, tuple(pairs))


def _no_layout_message(root: Path) -> str:
    hint = ""
    for child in sorted(d for d in root.iterdir() if d.is_dir()):
        for name, (_, detect) in LAYOUTS.items():
            try:
                if detect(child, skip_unpaired=True):
                    hint = f" (but {child} looks like '{name}': pass that folder)"
                    break
            except (MemderainError, OSError):
                continue
        if hint:
            break
    if not hint and root.is_dir():
        from memderain.data.scenes import list_images

        if list_images(root):  # images but no ground truth: real rainy photos?
            hint = (f" ({root} holds images without clean counterparts; for real rain "
                    f"without ground truth use --real {root})")
    layouts = "; ".join(f"{n} = {d}" for n, (d, _) in LAYOUTS.items())
    return f"no supported benchmark layout in {root}{hint}. Supported layouts: {layouts}"
