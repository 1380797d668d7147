"""Training and test data of an experiment: given folders, or synthetic scenes built once with
``memderain synth`` inside the experiment folder (and reused when their settings match).

Training scenes use the ``mixed`` rain preset, test scenes ``heldout`` (steeper, longer streaks
than any training frame: a rain setting never seen in training), with the seeds, frame counts
and sizes of the :class:`~memderain.experiments.scale.ExperimentScale`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from memderain.atomicfile import atomic_output
from memderain.data.synth import SynthOptions, synthesize_folder
from memderain.errors import MemderainError


@dataclass(frozen=True)
class DataSet:
    root: Path  # train: scene folders of frames; test: synth layout (frames/ + clean/)
    spec: dict  # how it was made (for experiment.json and the report header)


def synth_spec(backgrounds: Path, scale, split: str) -> dict:
    """How the ``split`` ("train" / "test") scenes are rendered from ``backgrounds`` at
    ``scale`` (its ``<split>_frames``, ``_max_side``, ``_limit``, ``_rain``, ``_seed``). The
    photos are identified by content (names and sizes), not by their absolute path, so an
    experiment folder stays valid when moved to another machine."""
    return {"built_from": photo_fingerprint(backgrounds),
            **{key: getattr(scale, f"{split}_{key}")
               for key in ("frames", "max_side", "limit", "rain", "seed")}}


def photo_fingerprint(folder: Path) -> str:
    """``<count> photos, sha1 <12 hex>`` over the sorted (name, size) of the files in ``folder``."""
    import hashlib

    files = sorted((p.name, p.stat().st_size) for p in folder.iterdir()
                   if p.is_file() and not p.name.startswith("."))
    digest = hashlib.sha1(repr(files).encode()).hexdigest()[:12]
    return f"{len(files)} photos, sha1 {digest}"


def _scene_count(frames_root: Path) -> int:
    return sum(1 for p in frames_root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _build(backgrounds: Path, out: Path, spec: dict, progress=None) -> None:
    """Run ``memderain synth`` into ``out`` unless ``out/synth.json`` records the same spec."""
    manifest = out / "synth.json"
    if manifest.is_file():
        old = json.loads(manifest.read_text())
        same = (old.get("built_from") == spec["built_from"] and old.get("seed") == spec["seed"]
                and old.get("frames") == spec["frames"] and old.get("max_side") == spec["max_side"]
                and old.get("rain") == spec["rain"]
                and (spec["limit"] is None or len(old.get("scenes", {})) == spec["limit"]))
        if same:
            return
    opts = SynthOptions(frames=spec["frames"], rain=spec["rain"], seed=spec["seed"],
                        max_side=spec["max_side"], limit=spec["limit"], overwrite=True)
    synthesize_folder(backgrounds, out, opts, progress=progress)
    record = json.loads(manifest.read_text())  # remember which photos, for the check above
    record["built_from"] = spec["built_from"]
    with atomic_output(manifest, overwrite=True) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")


def training_set(out: Path, train: Path | None, backgrounds: Path | None, scale,
                 progress=None) -> DataSet:
    """``--train DIR`` as given, or scenes rendered from ``--backgrounds-train`` into
    ``out/data/train`` (root = its ``frames/``)."""
    if train is not None:
        if not train.is_dir():
            raise MemderainError(f"--train {train}: not a folder")
        return DataSet(train, {"path": str(train.resolve()), "scenes": _scene_count(train)})
    return _rendered(out, backgrounds, scale, "train", progress,
                     "no training data: pass --train DIR (scene folders of frames) or "
                     "--backgrounds-train DIR (clean photos to render rain on)")


def test_set(out: Path, test: Path | None, backgrounds: Path | None, scale,
             progress=None) -> DataSet:
    """``--test DIR`` (synth layout) as given, or scenes rendered from ``--backgrounds-test``
    into ``out/data/test``."""
    if test is not None:
        if not (test / "frames").is_dir() or not (test / "clean").is_dir():
            raise MemderainError(f"--test {test}: expected the `memderain synth` layout "
                                 "(frames/<scene>/ and clean/<scene>.png)")
        return DataSet(test, {"path": str(test.resolve()), "scenes": _scene_count(test / "frames")})
    return _rendered(out, backgrounds, scale, "test", progress,
                     "no test data: pass --test DIR (synth layout) or "
                     "--backgrounds-test DIR (clean photos to render rain on)")


def _rendered(out: Path, backgrounds: Path | None, scale, split: str, progress,
              missing: str) -> DataSet:
    """Scenes rendered from ``--backgrounds-<split>`` into ``out/data/<split>`` (built once).
    The training root is its ``frames/`` folder, the test root the synth layout itself."""
    if backgrounds is None:
        raise MemderainError(missing)
    if not backgrounds.is_dir():
        raise MemderainError(f"--backgrounds-{split} {backgrounds}: not a folder")
    spec = synth_spec(backgrounds, scale, split)
    dest = out / "data" / split
    _build(backgrounds, dest, spec, progress)
    root = dest / "frames" if split == "train" else dest
    return DataSet(root, spec | {"path": str(root), "photos": str(backgrounds),
                                 "scenes": _scene_count(dest / "frames")})
