"""Data: time-lapse datasets, pseudo ground truth, synthetic rain and frame extraction.

Modules (nothing heavy is imported here; the classes below load their module on first use)::

    from memderain.data import TimeLapseDataset, PseudoGTDataset

* ``transforms``      uint8 / PIL <-> float tensors, [0, 1] <-> [-1, 1], paired crop / flip
* ``scenes``          finding scene folders of frames on disk
* ``timelapse``       :class:`TimeLapseDataset` (pairs of frames of one static scene)
* ``pseudo_gt``       :class:`PseudoGTDataset` (frame + temporal median/mean, ablations B_a/B_b)
* ``synthetic_rain``  vectorised rain-streak renderer and ``RainConfig`` presets
* ``synth``           renders synthetic time-lapse scenes from clean photos (``memderain synth``)
* ``clip_frames``     reading a clip's frames: frame folders (natural order), videos (PyAV)
* ``video_frames``    samples frames of a rain video (``memderain extract-frames``)
* ``static_clip``     real footage made static: alignment, temporal median, motion masks
* ``stabilise``       hand-held footage: homographies onto one reference view (OpenCV)
* ``clip_pairs``      Siamese pairs of real clips (masks, median) and the real/synthetic mix
"""

from __future__ import annotations

import importlib

# public name -> module that defines it (PEP 562: imported on first use)
_LAZY = {
    "TimeLapseDataset": "memderain.data.timelapse",
    "PseudoGTDataset": "memderain.data.pseudo_gt",
    "StaticClip": "memderain.data.static_clip",
    "load_static_clip": "memderain.data.static_clip",
    "ClipPairs": "memderain.data.clip_pairs",
    "MixedPairs": "memderain.data.clip_pairs",
    "RainConfig": "memderain.data.synthetic_rain",
    "extract_frames": "memderain.data.video_frames",
}

__all__ = ["ClipPairs", "MixedPairs", "PseudoGTDataset", "RainConfig", "StaticClip",
           "TimeLapseDataset", "extract_frames", "load_static_clip"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'memderain.data' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
