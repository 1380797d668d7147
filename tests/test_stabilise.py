"""Hand-held clips (issue 32): homographies onto one view, with known truth.

Every clip is made here: a procedurally textured scene, seen through phone-like homographies
(rotation <= 3 deg, shift <= 40 px at 640 px scaled to the frame, a little perspective), with
heavy rendered rain (:mod:`memderain.data.synthetic_rain`, ``heavy-streaks``) on every frame.
The true homographies are known, so the estimated ones are checked point by point.
"""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from memderain.cli import main
from memderain.data.stabilise import MIN_COMMON_SHARE, apply_h, largest_rectangle
from memderain.data.static_clip import (
    ClipError,
    align_frames,
    load_static_clip,
    temporal_median,
)
from memderain.data.synthetic_rain import synthesize

H, W, T = 192, 256, 9
OVERLAY = (10, 8, 100, 24)  # x0, y0, x1, y1 of a timestamp box fixed in every frame


def scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """float32 (h, w, 3): multi-scale texture plus sharp-edged shapes, slightly band-limited
    (what a camera records)."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 120, np.float32)
    for k, amp in ((4, 60), (12, 40), (40, 25), (100, 12)):
        grey = rng.uniform(-1, 1, (k * h // w + 2, k + 2, 1)) * [1.0, 0.9, 0.8]
        tint = 0.3 * rng.uniform(-1, 1, (k * h // w + 2, k + 2, 3))
        img += amp * cv2.resize((grey + tint).astype(np.float32), (w, h),
                                interpolation=cv2.INTER_CUBIC)
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for _ in range(h * w // 4000):
        x, y, s = rng.integers(0, w), rng.integers(0, h), rng.integers(4, max(6, w // 12))
        box = [x, y, x + s, y + rng.integers(4, s + 1)]
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        (draw.rectangle if rng.random() < 0.5 else draw.ellipse)(box, fill=colour)
    return cv2.GaussianBlur(np.asarray(pil).astype(np.float32), (0, 0), 0.8)


def phone_homography(rng, w: int, h: int, shift: float) -> np.ndarray:
    """Frame pixel -> scene pixel: rotation <= 3 deg about the centre, shift <= ``shift`` px,
    perspective that moves a corner by about a pixel."""
    a = math.radians(rng.uniform(-3, 3))
    rot = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    centre = np.array([[1, 0, w / 2], [0, 1, h / 2], [0, 0, 1]])
    persp = np.eye(3)
    persp[2, 0] = rng.uniform(-1, 1) * 4 / w**2
    persp[2, 1] = rng.uniform(-1, 1) * 4 / h**2
    move = np.array([[1, 0, rng.uniform(-1, 1) * shift], [0, 1, rng.uniform(-1, 1) * shift],
                     [0, 0, 1]])
    return move @ centre @ persp @ rot @ np.linalg.inv(centre)


def handheld_clip(seed: int = 0, overlay: bool = False, n: int = T, h: int = H, w: int = W):
    """(frames uint8, scene-from-frame homographies, the scene canvas, rain layers)."""
    rng = np.random.default_rng(seed)
    shift = 40 * max(h, w) / 640
    margin = int(shift + max(h, w) * math.sin(math.radians(3)) + 8)
    canvas = scene(h + 2 * margin, w + 2 * margin, seed)
    offset = np.array([[1, 0, margin], [0, 1, margin], [0, 0, 1]], float)
    truth = np.array([offset @ phone_homography(rng, w, h, shift) for _ in range(n)])
    gen = torch.Generator().manual_seed(seed + 1)
    rain = synthesize(torch.full((3, h, w), 0.5), n, "heavy-streaks", gen).rain[:, 0].numpy()
    frames = []
    for g, r in zip(truth, rain, strict=True):
        clean = cv2.warpPerspective(canvas, g, (w, h),
                                    flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP) / 255
        f = np.clip((clean + r[..., None] * (1 - clean)) * 255 + 0.5, 0, 255).astype(np.uint8)
        if overlay:
            pil = Image.fromarray(f)
            draw = ImageDraw.Draw(pil)
            draw.rectangle(OVERLAY, fill=(20, 20, 20))
            draw.text((OVERLAY[0] + 3, OVERLAY[1] + 2), "CAM 07 12:34", fill=(255, 255, 255))
            f = np.asarray(pil)
        frames.append(f)
    return frames, truth, canvas, rain


def write_folder(folder, frames):
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"f{i:03d}.png")
    return folder


def grid(clip, step: int = 6) -> np.ndarray:
    """(N, 2) output points (x, y) on the clip's static pixels."""
    ys, xs = np.mgrid[0:clip.static.shape[0]:step, 0:clip.static.shape[1]:step]
    keep = clip.static[ys, xs]
    return np.c_[xs[keep], ys[keep]].astype(float)


def alignment_errors(clip, truth: np.ndarray) -> np.ndarray:
    """(T, N) px: where each frame's estimated mapping puts the output grid, against where the
    true homographies put the scene point the reference frame shows there."""
    ref = clip.alignment["reference"]
    pts = grid(clip)
    scene_pts = apply_h(truth[ref] @ clip.homographies[ref], pts)
    return np.stack([np.hypot(*(apply_h(clip.homographies[t], pts)
                                - apply_h(np.linalg.inv(truth[t]), scene_pts)).T)
                     for t in range(len(truth))])


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    d = a.astype(np.float64)[mask] - b.astype(np.float64)[mask]
    return float(10 * np.log10(255**2 / np.mean(d**2)))


def unwarped_truth(clip, truth, canvas, rain):
    """(clean view, median of the truly aligned rainy frames) in the clip's output view."""
    ref = clip.alignment["reference"]
    h, w = clip.frames.shape[1:3]
    view = truth[ref] @ clip.homographies[ref]  # output pixel -> scene pixel
    clean = cv2.warpPerspective(canvas, view, (w, h),
                                flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP) / 255
    frames = []
    for g, r in zip(truth, rain, strict=True):
        r_out = cv2.warpPerspective(r, np.linalg.inv(g) @ view, (w, h),
                                    flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        frames.append(np.clip((clean + r_out[..., None] * (1 - clean)) * 255 + 0.5, 0, 255))
    clean8 = np.clip(clean * 255 + 0.5, 0, 255).astype(np.uint8)
    return clean8, temporal_median(np.stack(frames).astype(np.uint8))


@pytest.fixture(scope="module")
def rainy(tmp_path_factory):
    frames, truth, canvas, rain = handheld_clip(seed=0)
    folder = write_folder(tmp_path_factory.mktemp("handheld") / "clip", frames)
    return folder, load_static_clip(folder), truth, canvas, rain


@pytest.fixture(scope="module")
def with_overlay(tmp_path_factory):
    frames, truth, canvas, rain = handheld_clip(seed=2, overlay=True)
    folder = write_folder(tmp_path_factory.mktemp("overlay") / "clip", frames)
    return folder, load_static_clip(folder), truth, canvas, rain


# ----------------------------------------------------------------------------- known truth
def test_phone_like_warps_with_heavy_rain_are_undone_within_half_a_pixel(rainy):
    _, clip, truth, canvas, rain = rainy
    a = clip.alignment
    assert a["stabilised"] and a["max_drift_px"] > 8  # the shift path would have refused it
    assert MIN_COMMON_SHARE <= a["common_share"] <= a["covered_share"] < 1
    assert clip.homographies.shape == (T, 3, 3) and clip.frames.shape[0] == T
    err = alignment_errors(clip, truth)
    assert float(np.sqrt((err**2).mean())) <= 0.5, np.sqrt((err**2).mean(axis=1))
    assert clip.static_fraction > 0.8  # no parallax, no movers: nearly everything is static
    clean, median_truth = unwarped_truth(clip, truth, canvas, rain)
    inner = np.zeros(clip.static.shape, bool)
    inner[4:-4, 4:-4] = True
    gap = psnr(clip.median, clean, inner) - psnr(median_truth, clean, inner)
    assert gap >= -0.5, gap  # the median of the warped frames is as good as the truth's


def test_a_fixed_overlay_is_found_left_out_and_not_static(with_overlay):
    _, clip, truth, canvas, rain = with_overlay
    a = clip.alignment
    assert a["stabilised"] and a["overlay_share"] > 0
    err = alignment_errors(clip, truth)
    assert float(np.sqrt((err**2).mean())) <= 0.5, np.sqrt((err**2).mean(axis=1))
    # wherever the box lands in the output view, in any frame, is not static
    h, w = clip.static.shape
    box = np.zeros((H, W), np.uint8)
    box[OVERLAY[1]:OVERLAY[3] + 1, OVERLAY[0]:OVERLAY[2] + 1] = 1
    landed = np.zeros((h, w), bool)
    for hom in clip.homographies:
        landed |= cv2.warpPerspective(box, hom, (w, h), flags=cv2.INTER_NEAREST
                                      | cv2.WARP_INVERSE_MAP).astype(bool)
    assert landed.any() and not clip.static[landed].any()
    assert clip.static_fraction > 0.6
    clean, median_truth = unwarped_truth(clip, truth, canvas, rain)
    keep = clip.static.copy()
    gap = psnr(clip.median, clean, keep) - psnr(median_truth, clean, keep)
    assert gap >= -0.5, gap


def test_a_pan_away_is_refused_with_the_measured_overlap(tmp_path, capsys):
    canvas = scene(H, 2 * W, 5)
    pan = [canvas[:, x:x + W].astype(np.uint8) for x in np.linspace(0, 0.6 * W, 6).astype(int)]
    folder = write_folder(tmp_path / "pan", pan)
    with pytest.raises(ClipError, match=r"the region every frame covers is \d\d% of the frame "
                                        r"\(\d+x\d+ of 256x192 px; 50% needed\); f00\d.png "
                                        r"drifts \d+\.\d px"):
        load_static_clip(folder)
    assert main(["eval", "--clip", str(folder), "--baseline", "identity",
                 "--out", str(tmp_path / "e")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "% of the frame" in err and "drifts" in err
    # frames of two unrelated scenes are no hand-held clip either
    other = [scene(H, W, 7).astype(np.uint8)] * 2 + pan[:2]
    with pytest.raises(ClipError, match="cannot stabilise|too far to stabilise"):
        load_static_clip(write_folder(tmp_path / "two", other), stabilise="on")


# ----------------------------------------------------------------------------- the old path
def test_a_static_clip_takes_the_shift_path_byte_for_byte(tmp_path):
    frames, *_ = handheld_clip(seed=3, n=5)
    still = [frames[0][4 + dy:H - 4 + dy, 4 + dx:W - 4 + dx] for dy, dx in
             [(0, 0), (1, -2), (-2, 1), (0, 3), (2, 0)]]  # a tripod's shake, rain moving
    clip = load_static_clip(write_folder(tmp_path / "still", still))
    assert not clip.alignment["stabilised"]
    aligned, shifts = align_frames(still)
    assert np.array_equal(clip.frames, aligned) and np.array_equal(clip.shifts, shifts)
    off = load_static_clip(tmp_path / "still", stabilise="off")
    assert np.array_equal(off.frames, clip.frames) and np.array_equal(off.static, clip.static)
    # the recorded translations map every output pixel back onto its frame
    for t in range(5):
        x0, y0 = clip.homographies[t][:2, 2].astype(int)
        h, w = clip.frames.shape[1:3]
        assert np.array_equal(still[t][y0:y0 + h, x0:x0 + w], clip.frames[t])


def test_a_pan_beyond_the_old_bound_is_stabilised_by_default(tmp_path):
    canvas = scene(H, W + 40, 9)
    pan = [canvas[:, 3 * i:3 * i + W].astype(np.uint8) for i in range(8)]  # 21 px
    folder = write_folder(tmp_path / "pan", pan)
    with pytest.raises(ClipError, match="the camera moves"):
        load_static_clip(folder, stabilise="off")
    clip = load_static_clip(folder)
    assert clip.alignment["stabilised"]
    # a pure translation: output pixel (x, y) shows canvas column x + x0 in every frame
    dx = [hom[0, 2] + 3 * t for t, hom in enumerate(clip.homographies)]
    assert np.ptp(dx) < 0.2 and np.abs(clip.homographies[:, :2, :2] - np.eye(2)).max() < 2e-3
    with pytest.raises(ClipError, match="stabilise must be one of auto, off, on"):
        load_static_clip(folder, stabilise="maybe")


def test_nanmedian_is_numpys():
    import warnings

    from memderain.data.stabilise import _nanmedian

    rng = np.random.default_rng(0)
    for t_n in (1, 2, 5, 6):
        stack = rng.normal(100, 30, (t_n, 7, 9)).astype(np.float32)
        stack[rng.random(stack.shape) < 0.3] = np.nan  # odd and even counts per pixel
        stack[:, 0, 0] = np.nan  # a pixel no frame reaches
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = np.nanmedian(stack, axis=0)
        got = _nanmedian(stack)
        assert got.dtype == stack.dtype and np.isnan(got[0, 0])
        np.testing.assert_array_equal(got, want)


def test_largest_rectangle():
    m = np.zeros((6, 8), bool)
    m[1:5, 2:7] = True
    m[0, 3] = True
    assert largest_rectangle(m) == (1, 2, 4, 5)
    assert largest_rectangle(np.zeros((3, 3), bool))[2:] == (0, 0)


def test_largest_rectangle_of_row_runs_is_the_histogram_scans():
    """The fast path (every row one run: what a stabilised clip's common region is) finds
    the same rectangle as the histogram scan, ties included; other masks take the scan."""
    import cv2

    from memderain.data.stabilise import _largest_rectangle_histogram, _largest_rectangle_rows

    rng = np.random.default_rng(0)
    for _ in range(60):
        h, w = rng.integers(5, 50, 2)
        m = np.ones((h, w), np.uint8)
        for _ in range(rng.integers(1, 4)):  # intersections of convex quadrilaterals
            pts = np.stack([rng.uniform(-0.3, 1.3, 4) * w, rng.uniform(-0.3, 1.3, 4) * h], 1)
            q = np.zeros((h, w), np.uint8)
            cv2.fillConvexPoly(q, cv2.convexHull(pts.astype(np.float32)).astype(np.int32), 1)
            m &= q
        m = m.astype(bool)
        assert _largest_rectangle_rows(m) == _largest_rectangle_histogram(m)
    holes = rng.random((30, 40)) > 0.3
    assert _largest_rectangle_rows(holes) is None
    assert largest_rectangle(holes) == _largest_rectangle_histogram(holes)


# ----------------------------------------------------------------------------- commands
def test_extract_frames_takes_a_handheld_folder(rainy, tmp_path, capsys):
    folder = rainy[0]
    assert main(["extract-frames", str(folder), str(tmp_path / "tl"), "--scene", "hh"]) == 0
    out = capsys.readouterr().out
    assert "hand-held, stabilised: drift up to" in out and "of the frame in common" in out
    info = json.loads((tmp_path / "tl" / "hh" / "_clip" / "clip.json").read_text())
    assert info["alignment"]["stabilised"] and len(info["homographies"]) == T
    assert np.allclose(info["homographies"], rainy[1].homographies, atol=1e-6)
    written = sorted(p.name for p in (tmp_path / "tl" / "hh").glob("t*.png"))
    assert len(written) == T
    assert main(["extract-frames", str(folder), str(tmp_path / "x"), "--stabilise", "off",
                 "--scene", "hh"]) == 1
    err = capsys.readouterr().err
    assert "the camera moves" in err and "--stabilise auto" in err


def test_derain_adapt_keeps_the_framing_of_a_handheld_clip(tmp_path, capsys):
    frames, *_ = handheld_clip(seed=4, n=6, h=96, w=128)
    folder = write_folder(tmp_path / "hh", frames)
    out = tmp_path / "out"
    assert main(["derain", str(folder), "-o", str(out), "--adapt", "--steps", "1",
                 "--holdout-every", "0", "--crop", "32", "--batch", "1", "--backend",
                 "torch", "--device", "cpu"]) == 0
    capsys.readouterr()
    written = sorted(out.glob("*.png"))
    assert [p.name for p in written] == [f"f{i:03d}.png" for i in range(6)]
    for p in written:  # the original, unwarped frames, de-rained: same size as filmed
        assert Image.open(p).size == (128, 96)
    from memderain.checkpoint import load_checkpoint

    meta = load_checkpoint(out / "hh-adapted.pt")["meta"]["adapt"]
    assert meta["alignment"]["stabilised"]
