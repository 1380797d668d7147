"""The shipped default model (package data, MODEL_CARD.md): present, loadable with
weights_only, described by `memderain info`, and it actually removes rain from the README's
example image."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from memderain import load_model
from memderain.cli import main
from memderain.evaluation.metrics import psnr
from memderain.model import count_parameters
from memderain.weights import DEFAULT_RECIPE_NAME, default_weights_path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_the_default_model_ships_with_its_recipe():
    path = default_weights_path()
    assert path is not None and path.stat().st_size < 5e6  # fp32 weights only, ~3.3 MB
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert "train_state" not in ckpt  # no optimiser state in the package
    assert ckpt["meta"]["name"] == "memderain_default"
    assert (path.parent / DEFAULT_RECIPE_NAME).is_file()
    model = load_model().model
    assert count_parameters(model) == 815_683 and model.config.use_memory


def test_info_names_the_shipped_weights(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert str(default_weights_path()) in out and "memderain_default" in out
    assert DEFAULT_RECIPE_NAME in out


def test_the_example_image_gets_clearer(tmp_path):
    rainy, clean = _rgb(EXAMPLES / "rainy_monarch.png"), _rgb(EXAMPLES / "clean_monarch.png")
    old = os.umask(0o027)  # a fixed umask: the result must not depend on the caller's
    try:
        assert main(["derain", str(EXAMPLES / "rainy_monarch.png"), "-o", str(tmp_path)]) == 0
    finally:
        os.umask(old)
    written = tmp_path / "rainy_monarch.png"
    assert written.stat().st_mode & 0o777 == 0o640  # 0666 & ~umask, not mkstemp's 0600
    out = _rgb(written)
    assert out.shape == rainy.shape
    # the CLI writes what the Python API computes (same backend choice: auto)
    assert np.abs(out.astype(int) - load_model().derain(rainy).astype(int)).max() <= 1
    # a sanity check only; the quality bar is test_beats_the_input_and_every_trivial_filter
    # (a 3x3 opening reaches 28.44 dB on this smooth photo, see MODEL_CARD.md)
    assert psnr(out, clean) > psnr(rainy, clean) + 0.5  # measured: 23.60 -> 28.62 dB (stage 5)


QUALITY = Path(__file__).resolve().parent / "data" / "quality"


def _quality_pairs():
    return [(_rgb(p), _rgb(p.with_name(p.name.replace("_rainy", "_clean"))))
            for p in sorted(QUALITY.glob("*_rainy.png"))]


def test_beats_the_input_and_every_trivial_filter():
    """On nine fixed test crops (tests/data/quality: light, heavy and held-out rain on test
    photos), the shipped model's mean Y-PSNR beats the rainy input and the best 3x3 filter
    (median, min, opening) by a stated margin. Measured: input 28.23, median 25.16, min 21.09,
    opening 24.83; model 30.66 dB (stage 5; stage 4: 31.03, stage 3: 30.45)."""
    from memderain.evaluation.trivial import TRIVIAL_FILTERS

    pairs = _quality_pairs()
    assert len(pairs) == 9
    model = load_model(backend="torch")
    mean = lambda f: float(np.mean([psnr(f(r), c) for r, c in pairs]))
    best_trivial = max([mean(lambda r: r)] + [mean(f) for f in TRIVIAL_FILTERS.values()])
    ours = mean(model.derain)
    assert ours > best_trivial + 1.5, (ours, best_trivial)


def test_rain_free_photos_stay_nearly_unchanged():
    """The clean versions of the nine crops go through almost untouched: the model must not
    darken or blur what has no rain. Measured: PSNR(output, clean) 44.34 dB, mean
    darkening 0.40 grey levels (stage 5; stage 4: 37.18 dB, 1.44; stage 3: 39.7 dB, 0.7).
    The bars are issue 35's for the shipped model: > 40 dB and < 0.5 grey levels."""
    model = load_model(backend="torch")
    cleans = [c for _, c in _quality_pairs()]
    outs = [model.derain(c) for c in cleans]
    fidelity = float(np.mean([psnr(o, c) for o, c in zip(outs, cleans)]))
    darkening = float(np.mean([(c.astype(float) - o).mean() for o, c in zip(outs, cleans)]))
    assert fidelity > 40.0, fidelity
    assert abs(darkening) < 0.5, darkening
