"""Real rain layers lifted off static-camera clips, stored as a bank (``memderain rain-layers``).

A static clip shows one background under changing rain. Rain only adds light (Eq. 1 with
R >= 0), so on the pixels where the scene itself does not change (:mod:`memderain.data.
static_clip`: aligned frames, temporal median, motion masks), frame minus median is the rain
of that frame plus the sensor noise and compression error around it. :func:`lift_layers`
keeps the rain and drops the rest:

1. **Noise floor from the negative residuals.** Rain never makes a pixel darker than the
   median, so residuals below zero are noise and codec error only; their robust spread
   (root mean square, per cell of background luminance x edge strength: noise grows with
   signal, the residue of sub-pixel motion with the gradient) is the clip's noise sigma. Nothing else is assumed about the noise.
2. **Hysteresis on structure, not per pixel.** A rain component is a connected set of pixels
   above ``low_sigma`` that somewhere reaches ``high_sigma`` (and an absolute ``min_level``
   in grey levels, so clean codec residue below it never seeds). Components smaller than
   ``min_area`` pixels are noise or block residue. Inside a kept component the residual is
   kept **whole** (not minus the floor): the streak keeps its contrast and profile, which is
   what a network can learn to predict from one frame. Outside, the layer is exactly zero,
   so the floor is not added twice when the layer goes onto a photo that has noise of its own.
3. **Wide structure removed** (``blob``): the part of the layer that survives a
   ``blob`` x ``blob`` grey opening is wider than any streak (a flicker, a reflection, a
   light switched on) and is subtracted.
4. **Per-frame events and moving pixels zeroed** (:meth:`StaticClip.valid`).

The layer is stored in the **blend domain** (:data:`BLENDS`): the intrinsic rain value ``L``
with ``frame = blend(median, L)``, so compositing it onto another background applies the
same physics. Which blend is right is measured, not chosen by taste:
:func:`blend_dependence` reports, per blend, how much the lifted rain's mean intensity
depends on the luminance of the background behind it (rain falls regardless of what is
behind it, so the right blend makes it independent); ``benchmarks/rain_bank.py`` prints the
table and docs/real-rain.md has it.

Layout of a bank folder::

    BANK/<clip>/<frame>.png   16-bit grey PNG, L x 65535 (lossless)
    BANK/bank.json            blend, options, per clip: source, noise sigma, size; per layer:
                              file, source frame, rain density, mean (grey levels), the
                              median's luminance under the rain
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from memderain.atomicfile import atomic_output
from memderain.data.static_clip import StaticClip, luminance
from memderain.errors import MemderainError
from memderain.version import __version__

BANK_FORMAT = 1
BANK_MANIFEST = "bank.json"
LEVELS = 65535.0  # 16-bit storage of L in [0, 1]

# ----------------------------------------------------------------------------- blends
BLENDS = ("add", "screen", "linear")
"""How a rain layer L in [0, 1] combines with a background B in [0, 1] (per channel):

* ``add``: I = B + L (sRGB values; what frame - median is)
* ``screen``: I = 1 - (1 - B)(1 - L) (rain adds less light on a bright background)
* ``linear``: I = srgb(lin(B) + L) (light adds in linear light, then the camera's curve)
"""


def _to_linear(v: np.ndarray) -> np.ndarray:
    v = np.clip(v, 0.0, 1.0)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _to_srgb(v: np.ndarray) -> np.ndarray:
    v = np.clip(v, 0.0, 1.0)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.power(v, 1 / 2.4) - 0.055)


def apply_blend(background: np.ndarray, layer: np.ndarray, blend: str) -> np.ndarray:
    """I = blend(B, L), float arrays in [0, 1] (``layer`` broadcasts over channels)."""
    if blend == "add":
        out = background + layer
    elif blend == "screen":
        out = 1.0 - (1.0 - background) * (1.0 - layer)
    elif blend == "linear":
        out = _to_srgb(_to_linear(background) + layer)
    else:
        raise MemderainError(f"unknown blend {blend!r}; choose from {', '.join(BLENDS)}")
    return np.clip(out, 0.0, 1.0)


def invert_blend(background: np.ndarray, image: np.ndarray, blend: str) -> np.ndarray:
    """The L >= 0 with blend(B, L) = I (I >= B where rain is), float arrays in [0, 1]."""
    background = np.clip(background, 0.0, 1.0)
    image = np.maximum(np.clip(image, 0.0, 1.0), background)
    if blend == "add":
        out = image - background
    elif blend == "screen":
        out = (image - background) / np.maximum(1.0 - background, 1.0 / 255)
    elif blend == "linear":
        out = _to_linear(image) - _to_linear(background)
    else:
        raise MemderainError(f"unknown blend {blend!r}; choose from {', '.join(BLENDS)}")
    return np.clip(out, 0.0, 1.0)


# ----------------------------------------------------------------------------- lifting
@dataclass(frozen=True)
class LayerOptions:
    """How rain is told from noise and scene change (see the module docstring)."""

    high_sigma: float = 4.0  # a rain component reaches this many noise sigmas somewhere
    low_sigma: float = 1.5  # ... and spans the connected pixels above this many
    min_level: float = 3.0  # grey levels a seed must reach whatever the noise (codec residue)
    min_area: int = 4  # pixels; smaller components are noise or block residue
    blob: int = 9  # grey opening width: structure wider than this is not a streak (0: off)
    direction_tol: float = 25.0  # degrees: streaks within this of the clip's rain direction
    min_elongation: float = 2.0  # length / width a component needs to count as a streak
    blend: str = "add"  # the domain layers are stored in (measured: benchmarks/rain_bank.py)
    bands: int = 4  # noise sigma per cell of bands x bands (luminance x edge strength)

    def __post_init__(self) -> None:
        if not 0 < self.low_sigma <= self.high_sigma:
            raise MemderainError("need 0 < low_sigma <= high_sigma")
        if self.min_area < 1 or self.blob < 0 or self.min_level < 0 or self.direction_tol < 0:
            raise MemderainError("need min_area >= 1, blob >= 0, min_level >= 0, "
                                 "direction_tol >= 0")
        if self.blend not in BLENDS:
            raise MemderainError(f"unknown blend {self.blend!r}; choose from {', '.join(BLENDS)}")


@dataclass
class RainLayer:
    """One frame's rain, lifted: ``layer`` (H, W) float32 in [0, 1], in the blend domain."""

    layer: np.ndarray
    clip: str
    frame: str
    density: float  # share of valid pixels with rain
    mean: float  # mean sRGB residual kept, grey levels, over valid pixels
    luminance: float  # mean median luminance (grey levels) under the rain


def edge_strength(median_y: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of the median's luminance, max over 3x3: where a sub-pixel
    shake or sway of the scene leaves residue that is neither rain nor sensor noise."""
    from scipy import ndimage

    g = np.hypot(ndimage.sobel(median_y, 0), ndimage.sobel(median_y, 1)) / 8
    return ndimage.maximum_filter(g, 3)


def noise_sigma(residual: np.ndarray, median_y: np.ndarray, valid: np.ndarray,
                bands: int = 4) -> np.ndarray:
    """Per-pixel noise sigma (grey levels) from the negative residuals (frame - median).

    Rain never darkens, so residuals below 0 on valid pixels are noise, codec error and the
    residue of sub-pixel motion at edges: sigma = sqrt(E[d^2 | d < 0]).
    Estimated per cell of ``bands`` x ``bands`` equal-count bands of median luminance (noise
    grows with signal) and of edge strength (:func:`edge_strength`: motion residue grows with
    the gradient), a cell with too few samples taking the clip-wide value, and looked up per
    pixel. ``residual`` (T, H, W), ``valid`` (T, H, W) bool, ``median_y`` (H, W).
    """
    neg, zero = valid & (residual < 0), valid & (residual == 0)
    if neg.sum() < 100:
        return np.full(median_y.shape, 1.0, np.float32)
    keys = (median_y, edge_strength(median_y))
    idx = []
    for key in keys:
        edges = np.quantile(np.broadcast_to(key, residual.shape)[valid], np.linspace(0, 1, bands + 1))
        edges[0], edges[-1] = -np.inf, np.inf
        idx.append(np.clip(np.searchsorted(edges, key, side="right") - 1, 0, bands - 1))
    cell = idx[0] * bands + idx[1]  # (H, W)
    cells = np.broadcast_to(cell, residual.shape)
    # E[d^2 | d < 0] = sigma^2 for noise symmetric about 0; residuals are whole grey levels,
    # so half of the exact zeros belong to the negative side
    sq = np.bincount(cells[neg], residual[neg].astype(np.float64) ** 2, bands * bands)
    num = (np.bincount(cells[neg], minlength=bands * bands)
           + np.bincount(cells[zero], minlength=bands * bands) / 2)
    overall = max(float(np.sqrt(sq.sum() / num.sum())), 0.25)
    sig = np.where(num >= 100, np.sqrt(sq / np.maximum(num, 1)), overall)
    sig = np.maximum(sig, 0.25).astype(np.float32)
    return sig[cell]


def _components(d: np.ndarray, sigma: np.ndarray, valid: np.ndarray, opts: LayerOptions
                ) -> tuple[np.ndarray, np.ndarray]:
    """Hysteresis components of one frame's residual: (labels (H, W), kept (n+1,) bool)."""
    from scipy import ndimage

    seeds = valid & (d > np.maximum(opts.high_sigma * sigma, opts.min_level))
    cand = valid & (d > np.maximum(opts.low_sigma * sigma, opts.min_level / 2))
    labels, n = ndimage.label(cand, np.ones((3, 3), bool))
    keep = np.zeros(n + 1, bool)
    if n:
        keep[np.unique(labels[seeds])] = True
        keep &= np.bincount(labels.ravel(), minlength=n + 1) >= opts.min_area
    keep[0] = False
    return labels, keep


def component_shapes(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(orientation in degrees [0, 180) from the x axis, elongation = length / width) of
    components 1..n of ``labels`` (index 0 unused), from their second moments."""
    ys, xs = np.nonzero(labels)
    lab = labels[ys, xs]
    cnt = np.maximum(np.bincount(lab, minlength=n + 1), 1).astype(np.float64)
    mx, my = np.bincount(lab, xs, n + 1) / cnt, np.bincount(lab, ys, n + 1) / cnt
    dx, dy = xs - mx[lab], ys - my[lab]
    cxx = np.bincount(lab, dx * dx, n + 1) / cnt + 1 / 12  # + a pixel's own extent
    cyy = np.bincount(lab, dy * dy, n + 1) / cnt + 1 / 12
    cxy = np.bincount(lab, dx * dy, n + 1) / cnt
    angle = np.degrees(0.5 * np.arctan2(2 * cxy, cxx - cyy)) % 180
    root = np.sqrt(((cxx - cyy) / 2) ** 2 + cxy ** 2)
    big, small = (cxx + cyy) / 2 + root, np.maximum((cxx + cyy) / 2 - root, 1e-6)
    return angle, np.sqrt(big / small)


def rain_direction(shapes: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                   min_elongation: float) -> float | None:
    """The clip's rain direction (degrees from the x axis, 90 = falling straight down): the
    area-weighted mode of the orientations of elongated components over all frames, or None
    when too few are elongated. ``shapes``: (angle, elongation, area) per frame."""
    angle = np.concatenate([a[1:] for a, _, _ in shapes])
    elong = np.concatenate([e[1:] for _, e, _ in shapes])
    area = np.concatenate([w[1:] for _, _, w in shapes]).astype(np.float64)
    sel = elong >= min_elongation
    if sel.sum() < 20:
        return None
    hist = np.bincount((angle[sel] // 5).astype(int) % 36, area[sel], 36)
    smooth = hist + np.roll(hist, 1) + np.roll(hist, -1)  # 15-degree window, circular
    return float(int(np.argmax(smooth)) * 5 + 2.5)


def lift_layers(clip: StaticClip, opts: LayerOptions = LayerOptions(), name: str | None = None,
                progress: Callable | None = None) -> tuple[list[RainLayer], dict]:
    """The rain layer of every frame of ``clip`` and the clip's record for the manifest."""
    from scipy import ndimage

    name = name or Path(clip.source).stem or "clip"
    ys = luminance(clip.frames)  # (T, H, W) grey levels
    # the exact median (mean of the two middle values for even T): the clip's uint8 median
    # takes the lower one, which biases residuals positive by up to a noise sigma
    med_y = np.median(ys, axis=0)
    residual = ys - med_y[None]
    valid = np.stack([clip.valid(t) for t in range(len(clip))])
    sigma = noise_sigma(residual, med_y, valid, opts.bands)
    comps = []
    for t in range(len(clip)):
        labels, keep = _components(residual[t], sigma, valid[t], opts)
        n = len(keep) - 1
        angle, elong = component_shapes(labels, n) if n else (np.zeros(1), np.zeros(1))
        comps.append((labels, keep, angle, elong))
    direction = None
    if opts.direction_tol > 0:
        direction = rain_direction(
            [(a, e, np.bincount(lb.ravel(), minlength=len(k)) * k) for lb, k, a, e in comps],
            opts.min_elongation)
    layers = []
    frames = range(len(clip))
    for t in (progress(frames, len(clip)) if progress is not None else frames):
        labels, keep, angle, elong = comps[t]
        if direction is not None:  # streaks: elongated along the clip's rain direction
            off = np.abs((angle - direction + 90) % 180 - 90)
            keep = keep & (elong >= opts.min_elongation) & (off <= opts.direction_tol)
        d = residual[t]
        kept = np.where(keep[labels], np.maximum(d, 0.0), 0.0).astype(np.float32)
        if opts.blob > 1 and kept.any():
            wide = ndimage.grey_opening(kept, size=(opts.blob, opts.blob))
            kept = np.maximum(kept - wide, 0.0)
            kept[kept < opts.min_level / 2] = 0.0
        layer = invert_blend(med_y / 255.0, (med_y + kept) / 255.0, opts.blend)
        on = kept > 0
        nvalid = max(int(valid[t].sum()), 1)
        layers.append(RainLayer(
            layer=layer.astype(np.float32), clip=name, frame=clip.names[t],
            density=round(float(on.sum()) / nvalid, 5),
            mean=round(float(kept[valid[t]].mean()) if valid[t].any() else 0.0, 4),
            luminance=round(float(med_y[on].mean()) if on.any() else 0.0, 2)))
    record = {"source": clip.source, "size": list(clip.median.shape[:2]),
              "rain_direction_deg": direction,
              "noise_sigma": round(float(np.median(sigma)), 3),
              "static_fraction": round(clip.static_fraction, 4)}
    return layers, record


def blend_dependence(clip: StaticClip, layers: Sequence[RainLayer], blend_from: str,
                     bands: int = 6) -> dict[str, float]:
    """For every blend: how strongly the mean rain value depends on background luminance.

    Re-expresses each lifted layer (stored in ``blend_from``) in every blend, takes the mean
    rain value on rain pixels per band of median luminance (equal-count bands) and returns
    the ratio of the largest to the smallest band mean (1 = independent of the background:
    the physically right blend). The same pixels enter every blend, so detection limits do
    not favour one.
    """
    med = luminance(clip.median) / 255.0
    on = np.stack([ly.layer > 0 for ly in layers])
    if on.sum() < 50 * bands:
        return {b: float("nan") for b in BLENDS}
    lum = np.broadcast_to(med, on.shape)[on]
    image = np.stack([apply_blend(med, ly.layer, blend_from) for ly in layers])[on]
    edges = np.quantile(lum, np.linspace(0, 1, bands + 1))
    band = np.clip(np.searchsorted(edges, lum, side="right") - 1, 0, bands - 1)
    out = {}
    for b in BLENDS:
        value = invert_blend(lum, image, b)
        means = [value[band == k].mean() for k in range(bands) if (band == k).sum() >= 50]
        out[b] = float(max(means) / max(min(means), 1e-6))
    return out


# ----------------------------------------------------------------------------- the bank
def check_bank_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise MemderainError(f"BANK exists and is not a folder: {out}")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise MemderainError(f"BANK {out} is not empty; pass --overwrite to replace a "
                                 "previous rain-layer bank there")
        if not (out / BANK_MANIFEST).is_file():
            raise MemderainError(f"BANK {out} holds files that `memderain rain-layers` did not "
                                 "write; refusing to overwrite, use another folder")


def write_bank(out: str | Path, clips: dict[str, tuple[list[RainLayer], dict]],
               opts: LayerOptions, overwrite: bool = False) -> dict:
    """Write a bank (layout in the module docstring): each clip into a hidden folder moved
    into place when complete, ``bank.json`` last. Returns the manifest."""
    out = Path(out)
    check_bank_out(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    (out / BANK_MANIFEST).unlink(missing_ok=True)  # an interrupted rewrite is no bank
    manifest: dict = {"format": BANK_FORMAT, "memderain_version": __version__,
                      "blend": opts.blend, "options": asdict(opts), "clips": {}}
    for name, (layers, record) in clips.items():
        tmp, final = out / f".{name}.tmp", out / name
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        entries = []
        for i, ly in enumerate(layers):
            file = f"{i:04d}.png"
            q = np.round(np.clip(ly.layer, 0, 1) * LEVELS).astype(np.uint16)
            Image.fromarray(q).save(tmp / file, compress_level=6)
            entries.append({"file": file, "frame": ly.frame, "density": ly.density,
                            "mean": ly.mean, "luminance": ly.luminance})
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        manifest["clips"][name] = {**record, "layers": entries}
    for stale in out.iterdir():  # clips of an overwritten bank that this one does not have
        if stale.is_dir() and stale.name not in manifest["clips"]:
            shutil.rmtree(stale)
    with atomic_output(out / BANK_MANIFEST, overwrite=True) as p:
        p.write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


@dataclass
class RainBank:
    """A bank on disk: ``clips[name]`` lists its layer files in frame order."""

    root: Path
    blend: str
    clips: dict[str, list[Path]] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)

    @classmethod
    def open(cls, root: str | Path) -> RainBank:
        root = Path(root)
        path = root / BANK_MANIFEST
        if not path.is_file():
            raise MemderainError(f"not a rain-layer bank (no {BANK_MANIFEST}): {root}; build "
                                 "one with `memderain rain-layers CLIP... -o BANK`")
        try:
            manifest = json.loads(path.read_text())
            clips = {name: [root / name / e["file"] for e in c["layers"]]
                     for name, c in manifest["clips"].items() if c["layers"]}
            blend = manifest["blend"]
        except (ValueError, KeyError, TypeError) as exc:
            raise MemderainError(f"{path}: not a readable bank manifest ({exc})") from exc
        if not clips:
            raise MemderainError(f"{root}: the bank holds no layers")
        return cls(root, blend, clips, manifest)

    def layer(self, clip: str, index: int) -> np.ndarray:
        """Layer ``index`` (wrapping) of ``clip``: (H, W) float32 in [0, 1]."""
        files = self.clips[clip]
        with Image.open(files[index % len(files)]) as im:
            return np.asarray(im, dtype=np.float32) / LEVELS

    def __len__(self) -> int:
        return sum(len(v) for v in self.clips.values())
