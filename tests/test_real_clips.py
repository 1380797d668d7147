"""Real static-camera clips: alignment, motion masks, the clip score and `memderain adapt`.

Every clip here is made by the test itself: a textured background, bright streaks at new
places in every frame (rain adds light), optional sensor noise, a moving square, a changing
text overlay or a panning camera.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from memderain.checkpoint import load_checkpoint, save_checkpoint
from memderain.cli import main
from memderain.data.clip_pairs import ClipPairs, holdout_split
from memderain.data.static_clip import ClipError, align_frames, load_static_clip, motion_masks
from memderain.errors import MemderainError
from memderain.evaluation.clip_score import score_methods
from memderain.evaluation.metrics import psnr
from memderain.losses import siamese_loss
from memderain.losses.real_rain import median_brightness_loss, median_edge_loss
from memderain.model import build_model, split_pair
from memderain.training.adapt import AdaptConfig, adapt, resume_path
from memderain.training.config import LossConfig
from memderain.weights import default_weights_path
from video_helpers import encode_video


def background(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 190, (h // 6 + 2, w // 6 + 2, 3), dtype=np.uint8)
    img = Image.fromarray(coarse).resize((w + 12, h + 12), Image.BICUBIC)
    return np.asarray(img)[6:6 + h, 6:6 + w].astype(np.float32)


def rainy(clean: np.ndarray, n: int, seed: int = 1, noise: float = 1.0) -> list[np.ndarray]:
    """n frames of ``clean`` plus thin bright streaks (1-2 px wide, 6-12 long) and noise."""
    rng = np.random.default_rng(seed)
    h, w = clean.shape[:2]
    out = []
    for _ in range(n):
        f = clean.copy()
        for _ in range(h * w // 300):
            y, x = rng.integers(0, h - 12), rng.integers(0, w - 2)
            f[y:y + rng.integers(6, 12), x:x + rng.integers(1, 3)] += rng.uniform(40, 90)
        f += rng.normal(0, noise, f.shape)
        out.append(np.clip(f, 0, 255).round().astype(np.uint8))
    return out


def write_folder(folder: Path, frames: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"f{i:03d}.png")
    return folder


# ----------------------------------------------------------------------------- clip loading
def test_alignment_undoes_a_small_shake_and_refuses_a_pan(tmp_path):
    big = background(90, 150)
    shake = [(0, 0), (2, -1), (-1, 3), (1, 1), (0, -2)]
    frames = [big[5 + dy:75 + dy, 5 + dx:125 + dx].astype(np.uint8) for dy, dx in shake]
    aligned, shifts = align_frames(frames, max_shift=8)
    assert aligned.shape == (5, 67, 115, 3)
    diffs = [np.abs(a.astype(int) - aligned[0]).max() for a in aligned]
    assert max(diffs) == 0  # integer shifts undone exactly
    # frame t shows the scene moved by (-dy, -dx): its content sits that far from frame 0's
    assert (shifts - shifts[0]).tolist() == [[-dy, -dx] for dy, dx in shake]

    pan = [big[5:75, 3 * i:3 * i + 120].astype(np.uint8) for i in range(8)]  # 21 px pan
    folder = write_folder(tmp_path / "pan", pan)
    with pytest.raises(ClipError, match=r"the camera moves: f00\d.png is shifted 1\d.\d px"):
        load_static_clip(folder, stabilise="off")  # (by default it is stabilised: issue 32)
    assert len(load_static_clip(folder, max_shift=15)) == 8  # a bound the pan stays within
    assert main(["eval", "--clip", str(folder), "--baseline", "identity", "--stabilise", "off",
                 "--out", str(tmp_path / "e")]) == 1


def test_panning_clip_is_one_line_error_in_the_cli(tmp_path, capsys):
    big = background(80, 170)
    folder = write_folder(tmp_path / "pan", [big[:, 4 * i:4 * i + 120].astype(np.uint8)
                                              for i in range(10)])
    assert main(["adapt", str(folder), "-o", str(tmp_path / "a.pt"), "--steps", "1",
                 "--stabilise", "off"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the camera moves" in err and "px" in err
    assert not (tmp_path / "a.pt").exists()


def test_fewer_than_three_frames_are_refused(tmp_path, capsys):
    folder = write_folder(tmp_path / "two", rainy(background(40, 48), 2))
    with pytest.raises(ClipError, match="needs at least 3"):
        load_static_clip(folder)
    assert main(["adapt", str(folder), "-o", str(tmp_path / "a.pt")]) == 1
    assert "at least 3" in capsys.readouterr().err
    assert main(["adapt", str(tmp_path / "missing"), "-o", str(tmp_path / "a.pt")]) == 1
    assert "not found" in capsys.readouterr().err


def test_clips_know_whether_their_frames_were_stored_without_loss(tmp_path):
    from memderain.data.clip_frames import lossless_frames

    frames = rainy(background(48, 64), 5)
    png = write_folder(tmp_path / "png", frames)
    assert lossless_frames(png) and load_static_clip(png).lossless
    jpg = tmp_path / "jpg"
    jpg.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(jpg / f"f{i:03d}.jpg", quality=95)
    assert not lossless_frames(jpg) and not load_static_clip(jpg).lossless
    Image.fromarray(frames[0]).save(png / "f999.jpg")  # one JPEG frame among PNGs: compressed
    assert not lossless_frames(png)
    assert lossless_frames(encode_video(tmp_path / "rgb.mkv", frames, "ffv1", "bgr0"))
    assert load_static_clip(tmp_path / "rgb.mkv").lossless
    # a lossless codec on subsampled colour, and H.264, are compressed
    assert not lossless_frames(encode_video(tmp_path / "yuv.mkv", frames, "ffv1", "yuv420p"))
    assert not lossless_frames(encode_video(tmp_path / "h264.mp4", frames, "libx264", "yuv420p"))
    assert not lossless_frames(tmp_path / "missing.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    assert not lossless_frames(bad)


def test_png_frames_decoded_from_a_video_are_not_lossless(tmp_path):
    """PNG frames keep what a codec lost before them: frames decoded from H.264 (colour at
    half resolution) and scenes `memderain extract-frames` cut from a video count as
    compressed; extracted from PNG frames, a scene stays lossless."""
    from memderain.data.clip_frames import colour_subsampled, iter_frames, lossless_frames

    frames = rainy(background(48, 64), 6, noise=2.0)
    assert not colour_subsampled(frames)
    video = encode_video(tmp_path / "h264.mp4", frames, "libx264", "yuv420p")
    decoded = [rgb for _, rgb in iter_frames(video)]
    assert colour_subsampled(decoded)
    assert not lossless_frames(write_folder(tmp_path / "decoded", decoded))
    # re-encoded without loss, they still carry the first codec's half-resolution colour
    assert not lossless_frames(encode_video(tmp_path / "again.mkv", decoded, "ffv1", "bgr0"))
    assert main(["extract-frames", str(video), str(tmp_path / "x"), "--scene", "v"]) == 0
    assert not lossless_frames(tmp_path / "x" / "v")
    png = write_folder(tmp_path / "png", frames)
    assert main(["extract-frames", str(png), str(tmp_path / "x"), "--scene", "p"]) == 0
    assert lossless_frames(tmp_path / "x" / "p") and load_static_clip(tmp_path / "x" / "p").lossless


def test_png_frames_decoded_from_jpeg_are_not_lossless(tmp_path):
    """JPEG's quantised 8x8 DCT survives decoding and saving as PNG (or FFV1): such frames
    count as compressed, whatever their colour; frames never JPEG-compressed, and decoded
    JPEGs resized afterwards (the grid gone), read as never quantised."""
    import io

    from memderain.data.clip_frames import DCT_QUANTISED_SCORE, dct_quantisation, lossless_frames

    frames = rainy(background(128, 160), 4, noise=2.0)

    def via_jpeg(f: np.ndarray, quality: int, subsampling: int) -> np.ndarray:
        buf = io.BytesIO()
        Image.fromarray(f).save(buf, "JPEG", quality=quality, subsampling=subsampling)
        return np.asarray(Image.open(buf).convert("RGB"))

    assert dct_quantisation(frames) < DCT_QUANTISED_SCORE / 2
    assert dct_quantisation(frames[0][:40, :40]) == 0.0  # too few blocks to tell
    for quality, subsampling in ((80, 0), (95, 2)):
        decoded = [via_jpeg(f, quality, subsampling) for f in frames]
        assert all(dct_quantisation(f) > DCT_QUANTISED_SCORE for f in decoded)
        folder = write_folder(tmp_path / f"q{quality}", decoded)
        assert not lossless_frames(folder) and not load_static_clip(folder).lossless
    assert not lossless_frames(encode_video(tmp_path / "again.mkv", decoded, "ffv1", "bgr0"))
    resized = [np.asarray(Image.fromarray(f).resize((123, 98), Image.BICUBIC)) for f in decoded]
    assert dct_quantisation(resized) < DCT_QUANTISED_SCORE
    assert lossless_frames(write_folder(tmp_path / "png", frames))


def test_temporal_median_of_an_even_count_is_the_mean_of_the_middle_pair():
    from memderain.data.static_clip import temporal_median

    four = np.array([1, 2, 3, 4], np.uint8)[:, None, None, None].repeat(3, axis=-1)
    assert (temporal_median(four) == 3).all()  # 2.5, rounded half up; not the lower 2
    assert (temporal_median(four[:3]) == 2).all()
    rng = np.random.default_rng(0)  # noisy frames: no dark bias
    noisy = np.clip(rng.normal(128, 15, (10, 64, 64, 3)), 0, 255).round().astype(np.uint8)
    assert abs(float(temporal_median(noisy).mean()) - 128) < 0.6
    assert float(np.median(noisy, axis=0).mean()) == pytest.approx(
        float(temporal_median(noisy).mean()), abs=0.3)


def test_motion_mask_catches_a_moving_square_and_changing_text():
    clean = background(96, 128)
    frames = rainy(clean, 12, noise=1.5)
    words = ["RAIN AT 5", "WET ROADS", "STORM 7PM", "FLOOD RISK"]
    glyphs = []
    for t, f in enumerate(frames):  # a blue square crossing the left half
        x = 4 + 4 * t
        f[60:84, x:x + 20] = (30, 60, 200)
        img = Image.fromarray(f)  # a subtitle that changes every 3 frames (white, dark edge)
        ImageDraw.Draw(img).text((64, 6), words[t // 3], fill=(255, 255, 255),
                                 stroke_width=1, stroke_fill=(0, 0, 0))
        frames[t] = np.asarray(img)
        alone = Image.new("L", (128, 96))
        ImageDraw.Draw(alone).text((64, 6), words[t // 3], fill=255, stroke_width=1)
        glyphs.append(np.asarray(alone) > 0)
    stack = np.stack(frames)
    static, events = motion_masks(stack, np.median(stack, axis=0).astype(np.uint8))
    square_path = np.zeros((96, 128), bool)
    square_path[60:84, 4:4 + 44 + 20] = True
    glyphs = np.stack(glyphs)
    text = glyphs.any(0) & ~glyphs.all(0)  # pixels the changing subtitle covers only at times
    for t in range(12):  # the square is an event in the frames that show it
        assert events[t, 64:80, 4 + 4 * t + 4:4 + 4 * t + 16].mean() > 0.95
    assert static[text].mean() < 0.3  # the changing text: not static
    assert static[square_path].mean() < 0.9  # the square's path: mostly not static
    sky = np.zeros((96, 128), bool)
    sky[25:55, 10:120] = True  # rain and noise only
    assert static[sky].mean() > 0.97
    assert events[:, 25:55, 10:120].mean() < 0.02


def test_odd_frame_sizes_load_pair_and_score(tmp_path):
    clean = background(53, 77)
    folder = write_folder(tmp_path / "odd", rainy(clean, 5))
    clip = load_static_clip(folder)
    assert clip.frames.shape == (5, 53, 77, 3) and clip.static.shape == (53, 77)
    pairs = ClipPairs([clip], crop_size=48, items_per_epoch=4)
    item = pairs[0]
    assert item["w"].shape == (3, 48, 48) and item["mask"].shape == (1, 48, 48)
    assert not torch.equal(item["w"], item["v"])
    scores = score_methods(clip, {"median3": lambda x: x})
    assert scores["input"].psnr_y == pytest.approx(scores["median3"].psnr_y)
    assert scores["input"].brightness > 0  # rain adds light


# ----------------------------------------------------------------------------- losses
def test_masked_pixels_do_not_reach_any_loss_term():
    torch.manual_seed(0)
    model = build_model(None).train()
    w, v = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    mask = torch.ones(2, 1, 32, 32)
    mask[:, :, :, 16:] = 0
    cfg = LossConfig(lambda_b=1, lambda_s=1, lambda_c=1, lambda_w=0.01, lambda_agree=1,
                     lambda_floor=1, lambda_median=1, lambda_edge=1, lambda_brightness=1)
    with torch.no_grad():
        out = model.eval()(torch.cat([w, v]))  # eval: no memory update
    ow, ov = split_pair(out, 2)
    median = torch.zeros_like(w)
    loss, terms = siamese_loss(cfg, w, v, ow, ov, mask=mask, median=median,
                               has_median=torch.ones(2))
    assert set(terms) >= {"b", "s", "c", "w", "agree", "floor", "median", "edge", "brightness"}
    # changing the masked half of the *targets* (median) changes nothing
    median2 = median.clone()
    median2[..., 16:] = 0.9
    loss2, _ = siamese_loss(cfg, w, v, ow, ov, mask=mask, median=median2,
                            has_median=torch.ones(2))
    assert float(loss2) == pytest.approx(float(loss), abs=1e-6)
    # without the mask the same change does count
    loss3, _ = siamese_loss(cfg, w, v, ow, ov, median=median2, has_median=torch.ones(2))
    loss4, _ = siamese_loss(cfg, w, v, ow, ov, median=median, has_median=torch.ones(2))
    assert abs(float(loss3) - float(loss4)) > 1e-3


def test_edge_term_sees_a_blur_and_brightness_term_sees_a_darkening_the_l1_spreads_thin():
    torch.manual_seed(0)
    median = torch.rand(2, 3, 32, 32) * 2 - 1
    blurred = torch.nn.functional.avg_pool2d(median, 3, stride=1, padding=1,
                                             count_include_pad=False)
    darker = median - 0.02
    assert median_edge_loss(median, median) == 0 and median_brightness_loss(median, median) == 0
    # a darkening is a pure offset: no edge changes, and the brightness term is the offset
    assert float(median_edge_loss(darker, median)) < 1e-6
    assert float(median_brightness_loss(darker, median)) == pytest.approx(0.02, abs=1e-6)
    # a blur keeps the mean (brightness ~ 0) but loses the edges
    assert float(median_brightness_loss(blurred, median)) < 2e-3
    assert float(median_edge_loss(blurred, median)) > 0.2
    # pairs with a masked pixel are left out; an empty mask costs nothing
    mask = torch.ones(2, 1, 32, 32)
    mask[..., :, 16:] = 0
    changed = median.clone()
    changed[..., :, 17:] += torch.rand(2, 3, 32, 15)
    assert float(median_edge_loss(changed, median, mask)) == 0
    assert float(median_brightness_loss(changed, median, mask)) == 0
    assert float(median_edge_loss(changed, median)) > 0
    assert float(median_brightness_loss(darker, median, torch.zeros(2, 1, 32, 32))) == 0
    # the brightness term pulls a darkened background up
    b = darker.clone().requires_grad_(True)
    median_brightness_loss(b, median).backward()
    assert float(b.grad.sum()) < 0  # gradient descent raises b


# ----------------------------------------------------------------------------- adaptation
def _clip_with_truth(tmp_path: Path, n: int = 8):
    clean = background(72, 96, seed=3)
    frames = rainy(clean, n, seed=4)
    return write_folder(tmp_path / "clip", frames), frames, clean.round().astype(np.uint8)


def _psnr_to_clean(weights: Path, frames, clean) -> float:
    import memderain

    d = memderain.load_model(weights, backend="torch", precision="f32")
    return float(np.mean([psnr(d.derain(f), clean) for f in frames]))


def test_adaptation_moves_the_model_toward_the_clean_frames(tmp_path):
    folder, frames, clean = _clip_with_truth(tmp_path)
    base = default_weights_path()
    before = _psnr_to_clean(base, frames, clean)
    cfg = AdaptConfig(steps=30, minutes=0, crop_size=48, batch_size=2, lr=5e-4, warmup_steps=3)
    res = adapt(folder, tmp_path / "adapted.pt", cfg=cfg)
    assert res.steps == 30 and res.path.is_file() and not resume_path(res.path).exists()
    after = _psnr_to_clean(res.path, frames, clean)
    assert after > before + 0.5, (before, after)
    meta = load_checkpoint(res.path)["meta"]
    # every 5th frame is held out by default and scores the result
    assert meta["adapt"]["frames_used"] == [0, 1, 2, 3, 5, 6, 7] and meta["steps"] == 30
    assert meta["adapt"]["frames_held_out"] == [4] and res.verdict == "adapted"
    heldout = meta["adapt"]["heldout"]
    assert heldout["adapted"]["psnr_y"] > max(heldout["start"]["psnr_y"],
                                              heldout["input"]["psnr_y"])
    torch.load(res.path, weights_only=True)  # plain, safe content


def test_interrupted_adapt_keeps_previous_weights_and_resumes(tmp_path):
    folder, _, _ = _clip_with_truth(tmp_path, n=5)
    out = tmp_path / "adapted.pt"
    save_checkpoint(out, build_model(None), meta={"name": "previous"})
    before = out.read_bytes()
    cfg = AdaptConfig(steps=6, minutes=0, crop_size=32, batch_size=1)

    def stop(step, model):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        adapt(folder, out, cfg=cfg, overwrite=True, callback=stop)
    assert out.read_bytes() == before  # untouched
    state = resume_path(out)
    assert load_checkpoint(state)["train_state"]["step"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapted.pt", "adapted.pt.resume",
                                                         "clip"]
    with pytest.raises(Exception, match="other settings"):
        adapt(folder, out, cfg=AdaptConfig(steps=7, minutes=0, crop_size=32, batch_size=1),
              overwrite=True, resume=True)
    res = adapt(folder, out, cfg=cfg, overwrite=True, resume=True)
    assert res.steps == 6 and not state.exists()
    assert load_checkpoint(out)["meta"]["steps"] == 6
    # the resumed run equals a straight one
    straight = adapt(folder, tmp_path / "straight.pt", cfg=cfg)
    a = load_checkpoint(out)["state_dict"]
    b = load_checkpoint(straight.path)["state_dict"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_adapt_refuses_to_overwrite_and_cli_end_to_end(tmp_path, capsys):
    folder, _, _ = _clip_with_truth(tmp_path, n=6)
    out = tmp_path / "a.pt"
    out.write_bytes(b"keep me")
    assert main(["adapt", str(folder), "-o", str(out), "--steps", "2"]) == 1
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"keep me"
    out.unlink()
    assert main(["adapt", str(folder), "-o", str(out), "--steps", "3", "--crop", "32",
                 "--batch", "1", "--holdout-every", "3"]) == 0
    text = capsys.readouterr().out
    assert "adapted on 4 frames" in text and "2 held out" in text
    # PNG frames are stored without loss: the check scores with the strict reference
    assert "held-out frames (2; strict reference): input " in text
    assert "start " in text and "adapted " in text
    assert main(["eval", "--clip", str(folder), "--weights", str(out), "--backend", "torch",
                 "--out", str(tmp_path / "ev"), "--quiet"]) == 0
    text = capsys.readouterr().out
    for row in ("| input |", "| median3 |", "| min3 |", "| opening3 |", "| a |"):
        assert row in text
    assert "held out of adaptation frames (2 of 6)" in text
    assert (tmp_path / "ev" / "summary.json").is_file()
    # adapted on every frame: one table, not a second copy of "all" named "adapted on"
    whole = tmp_path / "whole.pt"
    assert main(["adapt", str(folder), "-o", str(whole), "--steps", "1", "--crop", "32",
                 "--batch", "1", "--holdout-every", "0"]) == 0
    assert "not checked" in capsys.readouterr().out
    capsys.readouterr()
    assert main(["eval", "--clip", str(folder), "--weights", str(whole), "--backend", "torch",
                 "--out", str(tmp_path / "ev2"), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert text.count("| input |") == 1 and "adapted on" not in text


def test_derain_adapt_adapts_then_derains_the_frames(tmp_path, capsys):
    folder, _, _ = _clip_with_truth(tmp_path, n=4)
    out = tmp_path / "out"
    assert main(["derain", str(folder), "-o", str(out), "--adapt", "--steps", "2", "--crop",
                 "32", "--batch", "1", "--backend", "torch"]) == 0
    assert (out / "clip-adapted.pt").is_file()
    written = sorted(p.name for p in out.iterdir() if p.suffix == ".png")
    assert written == [f"f{i:03d}.png" for i in range(4)]
    assert main(["derain", str(folder / "f000.png"), "-o", str(out), "--adapt"]) == 1
    assert "f000.png: a photo is not a clip; --adapt needs" in capsys.readouterr().err


def test_adapt_option_constants_match_the_config():
    """The CLI reads adaptation defaults from plain constants; they are the config's."""
    from memderain.training import adapt_defaults as d
    from memderain.training.adapt import OBJECTIVES

    cfg = AdaptConfig()
    assert d.OBJECTIVE_NAMES == tuple(OBJECTIVES) and cfg.objective in OBJECTIVES
    assert (cfg.minutes, cfg.crop_size, cfg.batch_size, cfg.focus, cfg.lr) == (
        d.MINUTES, d.CROP_SIZE, d.BATCH_SIZE, d.FOCUS, d.LR)


def test_holdout_split():
    assert holdout_split(6, 3) == ([0, 1, 3, 4], [2, 5])
    assert holdout_split(4, 0) == ([0, 1, 2, 3], [])


# ----------------------------------------------------------------------------- training mix
def test_check_frames_spread_within_the_pixel_budget():
    """The never-worse check scores held-out frames evenly spread, within a pixel budget
    shared by the clips, at least one of each clip; all of them with no budget."""
    from types import SimpleNamespace

    from memderain.training.adapt import check_frames

    hd = SimpleNamespace(frames=np.zeros((1, 1080, 1920, 3), np.uint8))
    small = SimpleNamespace(frames=np.zeros((1, 100, 100, 3), np.uint8))
    held = [[4, 9, 14, 19, 24, 29, 34, 39, 44]]
    assert check_frames([hd], held, 3 * 1920 * 1080) == [[4, 24, 44]]
    assert check_frames([hd], held, 0) == held
    assert check_frames([hd], held, 1) == [[24]]  # never none
    assert check_frames([small], held, 3 * 1920 * 1080) == held  # small frames: all
    # two clips share the budget: 1.5 HD frames each -> one each
    assert check_frames([hd, hd], [[4, 9], [3, 8, 13]], 3 * 1920 * 1080) == [[9], [8]]
    assert check_frames([hd, small], [[4, 9], []], 3 * 1920 * 1080) == [[4, 9], []]
    from memderain.data.clip_pairs import evenly_spaced  # the benchmarks' picker too

    assert evenly_spaced([1, 2, 3, 4, 5], 2) == [1, 5]
    assert evenly_spaced([1, 2, 3, 4, 5], 3) == [1, 3, 5] and evenly_spaced([1, 2], 5) == [1, 2]


def test_trainer_mixes_real_clips_with_masks_and_median(tmp_path, restore_torch_globals):
    from memderain.training.config import load_experiment
    from memderain.training.trainer import Trainer
    from training_helpers import make_scenes

    synthetic = make_scenes(tmp_path / "synth", scenes=2, frames=3, size=48)
    real = tmp_path / "real"
    write_folder(real / "street", rainy(background(56, 64), 5))
    tiny = ["model.channels=8", "model.num_items=4", "data.crop_size=32", "data.num_workers=0",
            "train.batch_size=4", "train.threads=1", "train.progress=false", "train.log_every=1",
            "train.image_every=0", "train.ckpt_minutes=0", "train.steps=3",
            "data.real_ratio=0.5", "loss.lambda_median=1", "loss.lambda_agree=1"]
    cfg = load_experiment("paper", tiny, {"data.root": str(synthetic / "frames"),
                                          "data.real_root": str(real)})
    seen = []
    trainer = Trainer(cfg, tmp_path / "run", argv=["test"],
                      callbacks=(lambda tr, step, values: seen.append(values),))
    try:
        kinds = [trainer.dataset[i]["has_median"].item() for i in range(len(trainer.dataset))]
        assert 0 < sum(kinds) < len(kinds)  # both kinds in the stream
        item = next(trainer.dataset[i] for i in range(len(kinds)) if kinds[i])
        assert item["mask"].shape == (1, 32, 32) and item["median"].shape == (3, 32, 32)
        trainer.fit()
    finally:
        trainer.close()
    assert len(seen) == 3 and all("loss/agree" in v for v in seen)
    assert any(v.get("loss/median", 0) > 0 for v in seen)


def test_focused_crops_land_where_the_rain_is(tmp_path):
    clean = background(64, 160)
    frames = rainy(clean, 6, noise=0.5)
    for f in frames:  # rain on the left half only
        f[:, 80:] = np.clip(clean[:, 80:], 0, 255).round().astype(np.uint8)
    clip = load_static_clip(write_folder(tmp_path / "half", frames))
    share = {}
    for focus in (0.0, 1.0):
        pairs = ClipPairs([clip], crop_size=32, items_per_epoch=300, focus=focus)
        share[focus] = np.mean([pairs.draw(i)[4] + 16 < 80 for i in range(300)])
    assert share[1.0] > 0.9 and share[1.0] > share[0.0] + 0.2, share


def test_adapt_in_bf16_writes_fp32_weights_and_bad_precision_is_refused(tmp_path):
    """--precision bf16 (what auto picks on AMX / AVX512-BF16 CPUs) trains under autocast and
    still writes float32 weights that moved; an unknown precision is one clear error."""
    folder, _, _ = _clip_with_truth(tmp_path, n=5)
    cfg = AdaptConfig(steps=3, crop_size=32, batch_size=1, precision="bf16")
    res = adapt(folder, tmp_path / "b.pt", cfg=cfg)
    assert res.steps == 3 and all(math.isfinite(v) for v in res.losses.values())
    sd = load_checkpoint(res.path)["state_dict"]
    assert all(t.dtype == torch.float32 for t in sd.values() if t.is_floating_point())
    base = load_checkpoint(default_weights_path())["state_dict"]
    assert any(not torch.equal(sd[k], base[k]) for k in sd if k in base)
    with pytest.raises(MemderainError, match="precision"):
        AdaptConfig(precision="fp8")


def test_a_step_count_is_trained_in_full_whatever_the_minutes(tmp_path):
    """--steps N trains N steps (reproducible) even where --minutes has long run out: a
    budget of 60 microseconds is spent before the first step, and the 4 steps are still made."""
    folder, _, _ = _clip_with_truth(tmp_path, n=5)
    cfg = AdaptConfig(steps=4, minutes=1e-6, crop_size=32, batch_size=1)
    assert adapt(folder, tmp_path / "s.pt", cfg=cfg).steps == 4
    # without a step count the same budget ends the training before its first step
    cfg = AdaptConfig(minutes=1e-6, crop_size=32, batch_size=1)
    assert adapt(folder, tmp_path / "m.pt", cfg=cfg).steps == 0


SMALL = ["--steps", "4", "--crop", "32", "--batch", "1"]


def test_adapt_refuses_to_discard_an_interrupted_run(tmp_path, capsys):
    folder, _, _ = _clip_with_truth(tmp_path, n=4)
    out = tmp_path / "a.pt"

    def stop(step, model):
        if step == 2:
            raise KeyboardInterrupt

    cfg = AdaptConfig(steps=4, minutes=0, crop_size=32, batch_size=1)
    with pytest.raises(KeyboardInterrupt):
        adapt(folder, out, cfg=cfg, callback=stop)
    state = resume_path(out)
    kept = state.read_bytes()
    assert main(["adapt", str(folder), "-o", str(out), *SMALL]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--resume" in err and "--overwrite" in err, err
    assert str(state) in err and state.read_bytes() == kept and not out.exists()
    assert main(["adapt", str(folder), "-o", str(out), *SMALL, "--resume"]) == 0
    assert load_checkpoint(out)["meta"]["steps"] == 4 and not state.exists()


def test_derain_adapt_resumes_an_interrupted_run_and_reuses_a_finished_one(tmp_path, capsys,
                                                                          monkeypatch):
    from memderain.cli.adapt import ProgressBars

    folder, _, _ = _clip_with_truth(tmp_path, n=4)
    out = tmp_path / "out"
    command = ["derain", str(folder), "-o", str(out), "--adapt", *SMALL, "--backend", "torch"]
    steps = ProgressBars.steps

    def interrupt_at_2(self, step, total, values):
        steps(self, step, total, values)
        if step == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(ProgressBars, "steps", interrupt_at_2)
    assert main(command) == 130
    weights = out / "clip-adapted.pt"
    assert resume_path(weights).is_file() and not weights.exists()
    assert "the same command continues" in capsys.readouterr().err
    monkeypatch.setattr(ProgressBars, "steps", steps)
    assert main(command) == 0
    err = capsys.readouterr().err
    assert f"resuming the interrupted adaptation in {resume_path(weights)}" in err
    assert load_checkpoint(weights)["meta"]["steps"] == 4 and not resume_path(weights).exists()
    outputs = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    assert len([p for p in outputs if p.suffix == ".png"]) == 4
    # a re-run of the finished command: reuses the weights, skips the outputs, exit 0
    assert main(command) == 0
    err = capsys.readouterr().err
    assert f"reusing {weights}, adapted on clip by an earlier run" in err
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == outputs
    # weights of another clip with the same name are not taken for this one
    other = write_folder(tmp_path / "elsewhere" / "clip", rainy(background(72, 96, 5), 4))
    assert main(["derain", str(other), "-o", str(out), "--adapt", *SMALL]) == 1
    assert "--overwrite" in capsys.readouterr().err


def test_adapt_shows_reading_before_the_first_step(tmp_path):
    folder, _, _ = _clip_with_truth(tmp_path, n=4)
    events = []

    def reading(frames, total):
        events.append(("read", total))
        yield from frames

    adapt(folder, tmp_path / "a.pt", cfg=AdaptConfig(steps=2, minutes=0, crop_size=32,
                                                       batch_size=1),
          read_progress=reading, progress=lambda step, total, v: events.append(("step", step)))
    assert events == [("read", 4), ("step", 1), ("step", 2)]


def test_eval_clip_rerun_reuses_its_result_and_a_readapted_model_gets_a_new_folder(
        tmp_path, capsys, monkeypatch):
    import json

    folder, _, _ = _clip_with_truth(tmp_path, n=4)
    monkeypatch.chdir(tmp_path)
    weights = tmp_path / "a.pt"
    assert main(["adapt", str(folder), "-o", str(weights), "--steps", "1", "--crop", "32",
                 "--batch", "1"]) == 0
    score = ["eval", "--clip", str(folder), "--weights", str(weights), "--backend", "torch",
             "--quiet"]
    capsys.readouterr()
    assert main(score) == 0
    first = tmp_path / "runs" / "eval" / "clip-a" / "summary.json"
    tables = capsys.readouterr().out
    stamp = first.stat().st_mtime_ns
    assert main(score) == 0  # the same scoring again: shown, not recomputed
    again = capsys.readouterr().out
    assert "shown again, not recomputed" in again and "| a |" in again
    assert tables.split("wrote")[0].strip() in again and first.stat().st_mtime_ns == stamp
    assert main(["adapt", str(folder), "-o", str(weights), "--steps", "2", "--crop", "32",
                 "--batch", "1", "--overwrite"]) == 0
    assert main(score) == 0  # a re-adapted model: a new numbered folder, the first one kept
    second = tmp_path / "runs" / "eval" / "clip-a-2" / "summary.json"
    assert second.is_file() and first.stat().st_mtime_ns == stamp
    assert json.loads(second.read_text())["inputs"] != json.loads(first.read_text())["inputs"]
    # an explicit --out holding another scoring is still refused without --overwrite
    assert main([*score, "--out", str(first.parent)]) == 1
    assert "--overwrite" in capsys.readouterr().err


def test_adapt_never_hands_back_a_model_worse_than_the_input(tmp_path, capsys):
    """A rain-free, noise-free static clip: no model can beat the rainy input (the frames are
    their own median), so adapt writes an identity, says so with the numbers, and writes
    nothing with --strict."""
    clean = background(64, 80, seed=3).round().astype(np.uint8)
    folder = write_folder(tmp_path / "dry", [clean] * 6)
    out = tmp_path / "dry.pt"
    args = ["adapt", str(folder), "-o", str(out), "--steps", "3", "--crop", "32", "--batch", "1"]
    assert main([*args, "--strict"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing written" in err[0] and "held-out frames (1; " in err[0]
    assert not out.exists() and not resume_path(out).exists()
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "no model beats the rainy input on the held-out frames" in text
    meta = load_checkpoint(out)["meta"]["adapt"]
    assert meta["verdict"] == "identity" and meta["frames_held_out"] == [4]
    assert meta["heldout"]["input"]["psnr_y"] > meta["heldout"]["start"]["psnr_y"]
    import memderain

    d = memderain.load_model(out, backend="torch", precision="f32")
    assert d.model.config.rain_gain == 0.0
    assert np.array_equal(d.derain(clean), clean)  # the clip is left as it is


def test_several_clips_of_one_camera_adapt_one_model(tmp_path, capsys):
    a, _, _ = _clip_with_truth(tmp_path / "a", n=6)
    b, _, _ = _clip_with_truth(tmp_path / "b", n=5)
    out = tmp_path / "cam.pt"
    assert main(["adapt", str(a), str(b), "-o", str(out), "--steps", "2", "--crop", "32",
                 "--batch", "1"]) == 0
    text = capsys.readouterr().out
    assert "adapted on 9 frames" in text and "2 held out" in text  # 5 + 4 used, 1 + 1 held
    clips = load_checkpoint(out)["meta"]["adapt"]["clips"]
    assert [c["clip"] for c in clips] == [str(a.resolve()), str(b.resolve())]
    assert main(["eval", "--clip", str(b), "--weights", str(out), "--backend", "torch",
                 "--out", str(tmp_path / "ev"), "--quiet"]) == 0
    assert "held out of adaptation frames (1 of 5)" in capsys.readouterr().out
