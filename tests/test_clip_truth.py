"""The clip score against the truth: rendered clips whose clean frames are known.

Every clip here is drawn by the test: a textured scene with swaying leaves, a flickering lamp
and a sign that changes colour, dense rendered rain and sensor noise (:mod:`memderain.evaluation.clip_truth`). The strict clip score (the frame against the
clip's rain-free median on the strict scoring mask, ``ClipReference(clip, "strict")``) must
agree with the score against the clean frames; the training masks (``eval --clip``'s default)
let the moving content in.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from memderain.cli import main
from memderain.evaluation.clip_mask import rain_free_median
from memderain.evaluation.clip_score import DEFAULT_KIND, ClipReference, score_methods
from memderain.evaluation.clip_truth import (
    ColourSign,
    Flicker,
    Leaves,
    compare,
    load_truth,
    make_truth_clip,
    ranking,
    rendered_rain,
    streak_rain,
)
from memderain.evaluation.trivial import min3

H, W, FRAMES, NOISE = 72, 104, 12, 2.0


def scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A textured rain-free scene: colour regions with edges and a fine texture (the camera
    shake is measured on it)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 200, (h // 8 + 2, w // 8 + 2, 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(coarse).resize((w + 16, h + 16), Image.BICUBIC))
    fine = ndimage.gaussian_filter(rng.normal(0, 25, (h, w)), 1.0)[..., None]
    return np.clip(img[8:8 + h, 8:8 + w] + fine, 0, 255).round().astype(np.uint8)


def truth_clip(seed: int = 0):
    """A tripod clip (no shake: undoing shake is load_static_clip's, tested there)."""
    rng = np.random.default_rng(seed)
    canvas = scene(H, W, seed)
    hw = canvas.shape[:2]
    movers = [Leaves(hw, rng, box=(0.06, 0.05, 0.4, 0.35), amplitude=2.5),
              Flicker(hw, rng, centre=(0.3, 0.75), radius=6.0),
              ColourSign(hw, rng, box=(0.72, 0.5, 0.16, 0.3))]
    rain = streak_rain(FRAMES, (H, W), cover=0.2, seed=seed)  # dense: 1 pixel in 5 a frame
    return make_truth_clip(canvas, rain, NOISE, None, movers, seed=seed)


@lru_cache(maxsize=1)
def loaded():
    return load_truth(truth_clip())


def model_like(loaded_truth) -> np.ndarray:
    """What a decent de-rainer does: most of the rain gone, a little smoothing."""
    frames = loaded_truth.clip.frames.astype(np.float32)
    out = frames - 0.8 * loaded_truth.rain[..., None]
    out = 0.6 * out + 0.4 * ndimage.uniform_filter(out, (1, 3, 3, 1), mode="nearest")
    return np.clip(out, 0, 255).round().astype(np.uint8)


def outputs(ld) -> dict[str, np.ndarray]:
    model = model_like(ld)
    return {"input": ld.clip.frames, "model-like": model,
            "model-like - 3": np.clip(model.astype(int) - 3, 0, 255).astype(np.uint8),
            "min3": np.stack([min3(f) for f in ld.clip.frames]), "ideal": ld.derained}


def test_the_truth_clip_is_what_it_claims():
    truth = truth_clip()
    assert truth.frames.shape == (FRAMES, H, W, 3) and truth.clean.shape == truth.frames.shape
    # once aligned, the clean frames differ only where content moves; the rain is dense
    ld = loaded()
    assert ld.clip.frames.shape == truth.frames.shape and (ld.clip.shifts == 0).all()
    assert 0.05 < (ld.change > 10).mean() < 0.4
    assert (ld.change == 0).mean() > 0.5
    assert (truth.rain > 10).mean() > 0.15
    # the rainy frames are the clean ones plus rain plus noise of the stated sigma
    rain_free = truth.rain < 0.5
    d = truth.frames.astype(float) - truth.derained
    assert np.abs(d[rain_free]).max() <= 1
    noise = (truth.derained.astype(float) - truth.clean) @ [0.299, 0.587, 0.114]
    assert noise.std() == pytest.approx(NOISE, rel=0.15)


def test_median_score_agrees_with_the_truth_and_ranks_alike():
    ld = loaded()
    res = compare(ld, outputs(ld), "strict")
    for name in ("input", "model-like", "model-like - 3"):
        assert abs(res[name].difference) <= 0.3, (name, res[name])
    assert ranking({k: v.median.psnr_y for k, v in res.items()}) == \
        ranking({k: v.truth.psnr_y for k, v in res.items()})
    # the model-like method beats the input by the truth, and the score says so
    assert res["model-like"].truth.psnr_y > res["input"].truth.psnr_y + 1
    # brightness vs the rain-free median tracks brightness vs the truth
    for a in res.values():
        assert a.median.brightness == pytest.approx(a.truth.brightness, abs=0.6)


def test_compare_scores_only_the_frames_asked_for():
    """compare(..., frames=...) scores those frames only (adapt's held-out frames): a method
    that is the ideal de-rainer on frames 0 and 2 and the rainy input elsewhere scores as the
    ideal there and as the input on the other frames."""
    ld = loaded()
    mixed = ld.clip.frames.copy()
    mixed[[0, 2]] = ld.derained[[0, 2]]
    res = compare(ld, {"mixed": mixed, "input": ld.clip.frames, "ideal": ld.derained},
                  "strict", frames=[0, 2])
    assert res["mixed"].truth.psnr_y == pytest.approx(res["ideal"].truth.psnr_y, abs=1e-9)
    assert res["mixed"].truth.psnr_y > res["input"].truth.psnr_y + 3
    rest = [t for t in range(len(ld)) if t not in (0, 2)]
    res = compare(ld, {"mixed": mixed, "input": ld.clip.frames}, "strict", frames=rest)
    assert res["mixed"].truth.psnr_y == pytest.approx(res["input"].truth.psnr_y, abs=1e-9)
    assert res["mixed"].median.psnr_y == pytest.approx(res["input"].median.psnr_y, abs=1e-9)


def test_moving_content_is_outside_and_dense_rain_inside_the_mask():
    ld = loaded()
    ref = ClipReference(ld.clip, "strict")
    masks = np.stack([ref.mask(t) for t in range(len(ld))])
    moving = ld.moving(10.0)  # the leaves, the lamp's core, the sign
    assert moving.mean() > 0.05
    assert (masks & moving[None]).sum() <= 0.01 * moving.sum() * len(ld)
    # rain pixels away from moving content (and the border) are scored
    near = ndimage.binary_dilation(ld.change > 1.0, np.ones((9, 9), bool))
    rain = (ld.rain > 10) & ~near[None] & ref.inner[None]
    assert rain.sum() > 500
    assert (masks & rain).sum() >= 0.97 * rain.sum()
    # the training masks (the score before) let the moving content in
    old = ClipReference(ld.clip, "motion")
    old_masks = np.stack([old.mask(t) for t in range(len(ld))])
    assert (old_masks & moving[None]).sum() > 0.1 * moving.sum() * len(ld)


def _eval_summary(folder, out, *extra) -> dict:
    assert main(["eval", "--clip", str(folder), "--baseline", "identity", "--out", str(out),
                 "--quiet", *extra]) == 0
    return json.loads((out / "summary.json").read_text())


def test_eval_clip_scores_lossless_clips_strict_and_compressed_ones_motion(tmp_path):
    assert DEFAULT_KIND == "auto"
    ld = load_truth(truth_clip(), folder=tmp_path / "clip")  # PNG frames: stored without loss
    assert ld.clip.lossless
    strict = compare(ld, {"input": ld.clip.frames}, "strict")["input"].median
    motion = compare(ld, {"input": ld.clip.frames}, "motion")["input"].median
    assert strict.brightness != pytest.approx(motion.brightness, abs=0.3)  # they differ here
    summary = _eval_summary(tmp_path / "clip", tmp_path / "e")
    assert summary["reference"] == "strict" and summary["reference_asked"] == "auto"
    assert summary["scores"]["all"]["input"]["psnr_y"] == pytest.approx(strict.psnr_y, abs=1e-6)
    assert summary["scores"]["all"]["input"]["brightness"] == pytest.approx(strict.brightness,
                                                                           abs=1e-6)
    assert summary["scored_fraction"] == pytest.approx(
        ClipReference(ld.clip, "strict").scored_fraction, abs=1e-4)
    assert "scored (strict reference)" in summary["tables"]
    assert score_methods(ld.clip, {})["input"].psnr_y == pytest.approx(strict.psnr_y, abs=1e-9)
    # --reference motion scores against the training masks' median, and says so
    summary = _eval_summary(tmp_path / "clip", tmp_path / "m", "--reference", "motion")
    assert summary["reference"] == "motion"
    assert summary["scores"]["all"]["input"]["psnr_y"] == pytest.approx(motion.psnr_y, abs=1e-6)
    assert summary["scores"]["all"]["input"]["brightness"] == pytest.approx(motion.brightness,
                                                                           abs=1e-6)
    assert "scored (motion reference)" in summary["tables"]
    # the same clip stored as JPEG is compressed: auto keeps the motion reference
    ldj = load_truth(truth_clip(), folder=tmp_path / "jpeg", jpeg=90)
    assert not ldj.clip.lossless
    summary = _eval_summary(tmp_path / "jpeg", tmp_path / "j")
    assert summary["reference"] == "motion"
    assert summary["scores"]["all"]["input"]["psnr_y"] == pytest.approx(
        compare(ldj, {"input": ldj.clip.frames}, "motion")["input"].median.psnr_y, abs=1e-6)


def test_rendered_rain_is_streaks_in_grey_levels():
    rain = rendered_rain("mixed-streaks", 3, (40, 60), seed=1)
    assert rain.shape == (3, 40, 60) and rain.dtype == np.float32
    assert rain.min() == 0 and 20 < rain.max() <= 255
    assert not np.array_equal(rain[0], rain[1])  # new streaks every frame
    np.testing.assert_array_equal(rain, rendered_rain("mixed-streaks", 3, (40, 60), seed=1))


def test_rain_free_median_is_not_lifted_by_rain_and_averages_the_middle_pair():
    rng = np.random.default_rng(0)
    t_n = 10
    frames = np.clip(100 + rng.normal(0, 1.0, (t_n, 8, 8, 3)), 0, 255).round().astype(np.uint8)
    flags = np.zeros((t_n, 8, 8), bool)
    flags[:4] = True  # rain in 4 of 10 frames at every pixel
    frames[:4] = 180
    plain = np.median(frames, axis=0)
    assert plain.mean() > 100.5  # the plain median is lifted by the rain
    clean = rain_free_median(frames, flags)
    assert abs(clean.mean() - 100) < 0.3
    four = np.array([1, 2, 3, 4], np.uint8)[:, None, None, None].repeat(3, -1)
    assert rain_free_median(four, np.zeros((4, 1, 1), bool))[0, 0, 0] == 2.5
    # a pixel flagged in every frame falls back to all its samples
    assert rain_free_median(four, np.ones((4, 1, 1), bool))[0, 0, 0] == 2.5


def test_leave_one_out_y_is_the_rain_free_median_of_the_other_frames():
    rng = np.random.default_rng(3)
    for t_n, top in ((7, 256), (8, 4), (9, 3)):  # few values: ties at every order statistic
        frames = rng.integers(0, top, (t_n, 5, 6, 3)).astype(np.uint8)
        frames[:, 0, 0] = 255  # ties with the flagged samples' sort value
        flags = rng.random((t_n, 5, 6)) < 0.4
        flags[:, 1, 1] = True  # flagged everywhere: all samples count
        flags[:, 2, 2] = True
        flags[3, 2, 2] = False  # one unflagged sample: left out, nothing unflagged remains
        _check_leave_one_out(frames, flags)


def _check_leave_one_out(frames, flags):
    from memderain.evaluation.clip_mask import leave_one_out_y
    from memderain.evaluation.clip_score import y_of

    t_n = len(frames)
    got = leave_one_out_y(frames, flags)
    for t in range(t_n):
        rest = [i for i in range(t_n) if i != t]
        want = y_of(rain_free_median(frames[rest], flags[rest]))
        # where the others are all flagged but this frame is not (frame 3 at (2, 2)), its own
        # sample is the background: nothing else is rain-free there
        alone = ~flags[t] & flags[rest].all(axis=0)
        want[alone] = y_of(rain_free_median(frames, flags))[alone]
        np.testing.assert_array_equal(got[t], want, err_msg=f"frame {t}")
    # not the median of every frame: leaving a sample out moves it
    assert (got != y_of(rain_free_median(frames, flags))[None]).mean() > 0.05


def test_a_few_noisy_frames_score_like_the_truth():
    """10 frames at sigma 12 (street_r2 in docs/real-rain.md): the median is itself noisy.
    Scored against the median of the other frames with its own noise taken out, the input, a
    smoothing filter and a model-like output land within 0.3 dB of the truth; against the
    plain median with the frame in it, smoothing is understated by about 1 dB."""
    canvas = scene(64, 96, seed=7)
    rain = streak_rain(10, (64, 96), cover=0.05, seed=7)
    ld = load_truth(make_truth_clip(canvas, rain, 12.0, None, [], seed=7))
    assert ld.clip.lossless
    outs = {"input": ld.clip.frames,
            "box3": ndimage.uniform_filter(ld.clip.frames, (1, 3, 3, 1), mode="nearest"),
            "model-like": model_like(ld)}
    res = compare(ld, outs, "strict")
    for name, a in res.items():
        assert abs(a.difference) <= 0.3, (name, a)
    ref = ClipReference(ld.clip, "strict")
    assert ref.reference.reference_var > 10  # about pi/2 x 144 / 9
    # what the plain median with the frame in it says about the smoothing filter
    plain = ref.reference.background @ [0.299, 0.587, 0.114]
    y = np.stack([ndimage.uniform_filter(f, (3, 3, 1)) for f in ld.clip.frames]) @ [
        0.299, 0.587, 0.114]
    m = np.stack([ref.mask(t) for t in range(len(ld))])
    naive = 10 * np.log10(255 ** 2 / np.mean((y - plain[None])[m] ** 2))
    assert naive < res["box3"].truth.psnr_y - 0.6
