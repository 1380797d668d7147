"""Derainer / load_model: every input kind comes back as the same kind, with values equal to an
independent computation from the bare network (B = clamp(I - R), Eq. 1, in [-1, 1])."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import memderain
from memderain.checkpoint import save_checkpoint
from memderain.config import ModelConfig
from memderain.errors import MemderainError
from memderain.inference import predictor
from memderain.inference.predictor import (
    AUTO_WHOLE_IMAGE_PIXELS,
    VIDEO_TILE_PIXELS,
    Derainer,
    load_model,
)
from memderain.inference.tiling import DEFAULT_TILE_PIXELS, tiled_forward
from memderain.model import MemDerain


@pytest.fixture
def ckpt(tmp_path):
    model = MemDerain(ModelConfig(channels=8, num_items=4))
    return save_checkpoint(tmp_path / "tiny.pt", model, meta={"name": "tiny-test"})


@pytest.fixture
def derainer(ckpt):
    return Derainer(ckpt)


def _reference01(model, x01: torch.Tensor) -> torch.Tensor:
    """Background in [0, 1] computed directly from the network (N, 3, H, W) float."""
    with torch.no_grad():
        x = x01.float() * 2 - 1
        rain = model(x).rain
    return ((x - rain).clamp(-1, 1) + 1) / 2


def _ref_rgb(derainer, rgb01: np.ndarray) -> np.ndarray:
    t = torch.from_numpy(rgb01.astype(np.float32)).permute(2, 0, 1)[None]
    return _reference01(derainer.model, t)[0].permute(1, 2, 0).numpy()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_loads_checkpoint_once_with_attributes(derainer, ckpt):
    assert derainer.checkpoint_path == ckpt
    assert derainer.device == torch.device("cpu")
    assert derainer.checkpoint_meta["name"] == "tiny-test"
    assert isinstance(derainer.model, MemDerain) and not derainer.model.training
    saved = torch.load(ckpt, weights_only=True)["state_dict"]
    for key, value in derainer.model.state_dict().items():
        torch.testing.assert_close(value, saved[key], rtol=0, atol=0)


def test_derain_tensor_matches_network_and_rain_units(derainer):
    x01 = torch.rand(2, 3, 20, 27)
    background, rain = derainer.derain_tensor(x01)
    torch.testing.assert_close(background, _reference01(derainer.model, x01), atol=1e-6, rtol=0)
    torch.testing.assert_close(background, (x01 - rain).clamp(0, 1), atol=1e-6, rtol=0)
    assert not background.requires_grad and background.dtype == torch.float32


def test_derain_does_not_change_memory_items(derainer):
    before = derainer.model.memory.items.clone()
    derainer.derain(torch.rand(3, 16, 16))
    assert torch.equal(derainer.model.memory.items, before)


def test_uint8_rgb_array(derainer, rng):
    arr = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    out = derainer.derain(arr)
    assert out.dtype == np.uint8 and out.shape == arr.shape
    expected = np.rint(_ref_rgb(derainer, arr / 255.0) * 255)
    assert np.abs(out.astype(int) - expected).max() <= 1  # rounding at .5 boundaries


def test_grey_alpha_and_16bit_arrays(derainer, rng):
    grey = rng.integers(0, 256, (15, 18), dtype=np.uint8)
    out = derainer.derain(grey)
    assert out.shape == grey.shape and out.dtype == np.uint8
    rgb = np.repeat(grey[..., None] / 255.0, 3, axis=2)
    assert np.abs(out.astype(int) - np.rint(_ref_rgb(derainer, rgb).mean(2) * 255)).max() <= 1

    rgba = rng.integers(0, 256, (15, 18, 4), dtype=np.uint8)
    out4 = derainer.derain(rgba)
    assert out4.shape == rgba.shape and out4.dtype == np.uint8
    np.testing.assert_array_equal(out4[..., 3], rgba[..., 3])  # alpha untouched
    np.testing.assert_array_equal(
        out4[..., :3], derainer.derain(np.ascontiguousarray(rgba[..., :3]))
    )

    deep = rng.integers(0, 65536, (15, 18, 3), dtype=np.uint16)
    out16 = derainer.derain(deep)
    assert out16.dtype == np.uint16 and out16.shape == deep.shape
    expected = np.rint(_ref_rgb(derainer, deep / 65535.0) * 65535)
    assert np.abs(out16.astype(np.int64) - expected).max() <= 2

    flt = rng.random((15, 18, 3)).astype(np.float32)
    outf = derainer.derain(flt)
    assert outf.dtype == np.float32
    np.testing.assert_allclose(outf, _ref_rgb(derainer, flt), atol=1e-6)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA", "I;16", "P"])
def test_pil_images_keep_their_kind(derainer, rng, mode):
    base = Image.fromarray(rng.integers(0, 256, (14, 19, 4), dtype=np.uint8))
    if mode == "I;16":
        im = Image.fromarray(rng.integers(0, 65536, (14, 19), dtype=np.uint16))
    elif mode == "P":
        im = base.convert("RGB").quantize(8)
    else:
        im = base.convert(mode)
    out = derainer.derain(im)
    assert isinstance(out, Image.Image) and out.size == im.size
    assert out.mode == {"P": "RGB", "I;16": "I;16"}.get(mode, mode)
    if "A" in mode:
        np.testing.assert_array_equal(np.asarray(out)[..., -1], np.asarray(im)[..., -1])
    if mode == "RGB":
        np.testing.assert_array_equal(np.asarray(out), derainer.derain(np.asarray(im)))


def test_tensors_keep_shape_dtype_and_batch_equals_single(derainer):
    x = torch.rand(2, 3, 16, 21, dtype=torch.float64)
    out = derainer.derain(x)
    assert out.shape == x.shape and out.dtype == torch.float64
    single = derainer.derain(x[1].float())
    assert single.shape == (3, 16, 21) and single.dtype == torch.float32
    torch.testing.assert_close(out[1].float(), single, atol=1e-6, rtol=0)


def test_tiled_path_is_tiled_forward_of_the_rain(ckpt):
    derainer = Derainer(ckpt, overlap=16)
    x01 = torch.rand(1, 3, 70, 85)
    background, _ = derainer.derain_tensor(x01, tile=48)
    x = x01 * 2 - 1
    plan = derainer.tile_plan(70, 85, 48)
    assert plan.n_tiles > 1 and max(plan.tile_shape) <= 48 and plan.overlap == 16
    with torch.no_grad():
        rain = tiled_forward(lambda t: derainer.model(t).rain, x, plan)
    torch.testing.assert_close(background, ((x - rain).clamp(-1, 1) + 1) / 2, atol=1e-6, rtol=0)
    whole, _ = derainer.derain_tensor(x01, tile=0)
    torch.testing.assert_close(whole, _reference01(derainer.model, x01), atol=1e-6, rtol=0)


def test_tile_plan_choice(derainer):
    assert derainer.tile_plan(1000, 1000).whole  # whole image up to AUTO_WHOLE_IMAGE_PIXELS
    big = derainer.tile_plan(AUTO_WHOLE_IMAGE_PIXELS + 8, 1)
    assert not big.whole and big.tile_shape[0] * big.tile_shape[1] <= DEFAULT_TILE_PIXELS
    photo = derainer.tile_plan(3000, 4000)
    assert photo.overlap == 64 and photo.tile_shape[0] * photo.tile_shape[1] <= DEFAULT_TILE_PIXELS
    assert derainer.tile_plan(4000, 3000, tile=0).whole
    assert derainer.tile_plan(10, 10, tile=30).whole  # 30 -> 32 (a multiple of 8) >= 10
    small = derainer.tile_plan(100, 100, tile=30)
    assert max(small.tile_shape) <= 32 and small.overlap == 24  # overlap cut to tile - 8
    with pytest.raises(MemderainError, match=">= 0"):
        derainer.tile_plan(10, 10, tile=-1)


def test_video_frames_take_larger_tiles(derainer):
    """A 1080p frame: tiles within the video budget, fewer of them and fewer pixels computed
    than a photo of that size (the tiles' overlap is computed twice)."""
    photo = derainer.tile_plan(1080, 1920)
    video = derainer.tile_plan(1080, 1920, tile_pixels=VIDEO_TILE_PIXELS)
    assert DEFAULT_TILE_PIXELS < video.tile_shape[0] * video.tile_shape[1] <= VIDEO_TILE_PIXELS
    assert len(list(video.tiles())) < len(list(photo.tiles()))
    assert video.computed_pixels < photo.computed_pixels
    assert derainer.tile_plan(1000, 1000, tile_pixels=VIDEO_TILE_PIXELS).whole
    assert derainer.tile_plan(1080, 1920, tile=0, tile_pixels=VIDEO_TILE_PIXELS).whole


def test_uint8_path_equals_float_path_rounded(ckpt, rng):
    """derain_uint8 (tile by tile, never the image in float) gives the float path's values
    rounded to 8 bits, whole and tiled, colour and grey."""
    derainer = Derainer(ckpt, overlap=16)
    rgb = rng.integers(0, 256, (61, 83, 3), dtype=np.uint8)
    for tile in (0, 32):
        x01 = torch.from_numpy(rgb.astype(np.float32) / np.float32(255)).permute(2, 0, 1)[None]
        b01 = derainer.derain_tensor(x01, tile)[0][0].permute(1, 2, 0).numpy()
        expected = np.rint(b01 * 255).clip(0, 255).astype(np.uint8)
        np.testing.assert_array_equal(derainer.derain_uint8(rgb, tile), expected)
        grey = derainer.derain_uint8(rgb, tile, grey=True)
        np.testing.assert_array_equal(grey[..., 0], grey[..., 2])
        assert np.abs(grey[..., 0].astype(int) - np.rint(b01.mean(axis=2) * 255)).max() <= 1
    with pytest.raises(MemderainError, match="uint8"):
        derainer.derain_uint8(rgb.astype(np.float32))


def test_uint8_path_runs_tiles_within_the_budget(ckpt, monkeypatch):
    """The memory bound: above AUTO_WHOLE_IMAGE_PIXELS the network only ever sees tiles of at
    most DEFAULT_TILE_PIXELS, all of one shape, and no full-size float image is made."""
    derainer = Derainer(ckpt)
    seen = []
    monkeypatch.setattr(derainer, "_rain", lambda x: seen.append(tuple(x.shape)) or x * 0)
    rgb = np.full((1100, 1000, 3), 128, np.uint8)
    out = derainer.derain_uint8(rgb)
    assert out.shape == rgb.shape and (out == 128).all()
    assert len(seen) > 1 and set(seen) == {seen[0]}
    assert seen[0][2] * seen[0][3] <= DEFAULT_TILE_PIXELS


def test_unclamped_model_output_still_in_range(tmp_path):
    model = MemDerain(ModelConfig(channels=8, num_items=4, clamp_background=False))
    with torch.no_grad():
        model.decoder.output.bias.fill_(-3.0)  # rain of -3 pushes I - R far above 1
    d = Derainer(save_checkpoint(tmp_path / "u.pt", model))
    background, rain = d.derain_tensor(torch.rand(1, 3, 8, 8))
    assert background.min() >= 0 and background.max() <= 1 and rain.max() < -1


def test_bad_inputs_give_memderain_errors(derainer):
    for bad in (
        [1, 2, 3],
        torch.rand(4, 8, 8),
        torch.zeros(3, 8, 8, dtype=torch.uint8),
        np.zeros((4, 4, 5)),
    ):
        with pytest.raises(MemderainError):
            derainer.derain(bad)


def test_load_model_without_default_weights_refuses(monkeypatch):
    monkeypatch.setattr(predictor, "default_weights_path", lambda: None)
    with pytest.raises(MemderainError, match="no default model"):
        memderain.load_model()


def test_load_model_uses_default_path_and_explicit_path(monkeypatch, ckpt):
    monkeypatch.setattr(predictor, "default_weights_path", lambda: ckpt)
    assert memderain.load_model().checkpoint_path == ckpt
    d = load_model(ckpt, device="auto", tile=64)
    assert d.tile == 64 and d.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_bad_checkpoint_and_device(tmp_path, ckpt):
    with pytest.raises(MemderainError, match="not found"):
        load_model(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_text("junk")
    with pytest.raises(MemderainError):
        load_model(tmp_path / "junk.pt")
    with pytest.raises(MemderainError, match="device"):
        load_model(ckpt, device="toaster")
    if not torch.cuda.is_available():
        with pytest.raises(MemderainError, match="CUDA"):
            load_model(ckpt, device="cuda")


@pytest.mark.cuda
def test_cuda_matches_cpu(ckpt):
    x = torch.rand(1, 3, 40, 44)
    cpu = Derainer(ckpt).derain(x)
    gpu = Derainer(ckpt, device="cuda").derain(x.cuda())
    assert gpu.is_cuda
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=0)


def test_load_model_default_device_is_auto_like_the_cli(ckpt):
    import argparse
    import inspect

    from memderain.cli.options import add_device_option

    default = inspect.signature(load_model).parameters["device"].default
    p = argparse.ArgumentParser()
    add_device_option(p)
    assert default == p.parse_args([]).device == "auto"
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert load_model(ckpt, backend="torch").device.type == want
