"""memderain.inference.io: every image kind reads to float [0, 1] RGB (+alpha) and writes back
as the same kind (grey/colour, alpha, 16 bits), atomically and without clobbering."""

from __future__ import annotations

import os

import av
import numpy as np
import pytest
import torch
from PIL import Image, ImageCms, ImageOps

from memderain.errors import MemderainError
from memderain.inference import io, png16


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _listing(folder):
    return sorted(os.listdir(folder))


def test_rgb8_png_round_trip_is_exact(tmp_path, rng):
    arr = rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    data = io.read_image(tmp_path / "a.png")
    assert data.rgb.dtype == np.float32 and data.rgb.shape == (13, 17, 3)
    assert (
        data.mode == "RGB" and data.bit_depth == 8 and data.format == "PNG" and data.alpha is None
    )
    np.testing.assert_array_equal(np.rint(data.rgb * 255).astype(np.uint8), arr)
    io.write_image(tmp_path / "b.png", data)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "b.png")), arr)


def test_grey_L_stays_grey(tmp_path, rng):
    arr = rng.integers(0, 256, (9, 11), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "g.png")
    data = io.read_image(tmp_path / "g.png")
    assert data.mode == "L" and data.is_grey
    for c in range(3):
        np.testing.assert_array_equal(np.rint(data.rgb[..., c] * 255), arr)
    io.write_image(tmp_path / "g2.png", data)
    out = Image.open(tmp_path / "g2.png")
    assert out.mode == "L"
    np.testing.assert_array_equal(np.asarray(out), arr)


def test_grey_alpha_LA_keeps_alpha(tmp_path, rng):
    arr = rng.integers(0, 256, (8, 10, 2), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "la.png")
    data = io.read_image(tmp_path / "la.png")
    np.testing.assert_array_equal(np.rint(data.alpha * 255), arr[..., 1])
    io.write_image(tmp_path / "la2.png", data)
    out = Image.open(tmp_path / "la2.png")
    assert out.mode == "LA"
    np.testing.assert_array_equal(np.asarray(out), arr)


def test_grey_16bit_I16_is_lossless_and_stays_16bit(tmp_path, rng):
    arr = rng.integers(0, 65536, (7, 12), dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "g16.png")
    data = io.read_image(tmp_path / "g16.png")
    assert data.bit_depth == 16 and data.is_grey
    np.testing.assert_array_equal(io.from_float01(data.rgb[..., 0], 16), arr)
    io.write_image(tmp_path / "g16b.png", data)
    out = Image.open(tmp_path / "g16b.png")
    assert out.mode.startswith("I")
    np.testing.assert_array_equal(np.asarray(out).astype(np.uint16), arr)


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_colour_16bit_png_is_lossless_and_stays_16bit(tmp_path, rng, channels):
    arr = rng.integers(0, 65536, (10, 14, channels), dtype=np.uint16)
    (tmp_path / "c16.png").write_bytes(png16.encode_png16(arr))
    data = io.read_image(tmp_path / "c16.png")
    assert data.bit_depth == 16 and data.mode == {2: "LA", 3: "RGB", 4: "RGBA"}[channels]
    samples = io.imagedata_to_samples(data)
    np.testing.assert_array_equal(samples.reshape(arr.shape), arr)
    io.write_image(tmp_path / "c16b.png", data)
    again = io.imagedata_to_samples(io.read_image(tmp_path / "c16b.png"))
    np.testing.assert_array_equal(again.reshape(arr.shape), arr)


def test_png16_encoder_agrees_with_independent_decoders(tmp_path, rng):
    """FFmpeg (PyAV) decodes our 16-bit file to the same samples; Pillow sees the high bytes."""
    arr = rng.integers(0, 65536, (21, 33, 3), dtype=np.uint16)
    arr[5:9] = arr[4]  # flat runs exercise every Paeth predictor choice
    path = tmp_path / "x.png"
    path.write_bytes(png16.encode_png16(arr))
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        np.testing.assert_array_equal(frame.to_ndarray(format="rgb48le"), arr)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), (arr >> 8).astype(np.uint8))


def test_rgba_alpha_kept_in_png_and_dropped_for_jpeg(tmp_path, rng):
    arr = rng.integers(0, 256, (12, 12, 4), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    data = io.read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(np.rint(data.alpha * 255), arr[..., 3])
    io.write_image(tmp_path / "b.png", data)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "b.png")), arr)
    io.write_image(tmp_path / "b.jpg", data)
    assert Image.open(tmp_path / "b.jpg").mode == "RGB"


def test_jpeg_written_close_to_source(tmp_path):
    y, x = np.mgrid[0:32, 0:32]
    arr = np.stack([x * 8, y * 8, (x + y) * 4], -1).astype(np.uint8)  # smooth: JPEG-friendly
    io.write_image(tmp_path / "s.jpg", arr)
    back = np.asarray(Image.open(tmp_path / "s.jpg")).astype(int)
    assert np.abs(back - arr).mean() < 2.0


@pytest.mark.parametrize("transparent", [False, True])
def test_palette_images(tmp_path, rng, transparent):
    rgb = Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8))
    pal = rgb.quantize(16)
    if transparent:
        pal.info["transparency"] = 0
    pal.save(tmp_path / "p.png", **({"transparency": 0} if transparent else {}))
    data = io.read_image(tmp_path / "p.png")
    expected = Image.open(tmp_path / "p.png").convert("RGBA")
    np.testing.assert_array_equal(np.rint(data.rgb * 255), np.asarray(expected)[..., :3])
    if transparent:
        np.testing.assert_array_equal(np.rint(data.alpha * 255), np.asarray(expected)[..., 3])
    else:
        assert data.alpha is None


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow_exif_transpose(tmp_path, rng, orientation):
    arr = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(arr).save(tmp_path / "o.png", exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.png")))
    data = io.read_image(tmp_path / "o.png")
    np.testing.assert_array_equal(np.rint(data.rgb * 255).astype(np.uint8), expected)


def test_icc_profile_is_kept_8_and_16_bit(tmp_path, rng):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)).save(
        tmp_path / "a.png", icc_profile=icc
    )
    data = io.read_image(tmp_path / "a.png")
    assert data.icc_profile == icc
    io.write_image(tmp_path / "b.png", data)
    io.write_image(tmp_path / "c.png", data.replace(bit_depth=16))
    assert Image.open(tmp_path / "b.png").info["icc_profile"] == icc
    assert Image.open(tmp_path / "c.png").info["icc_profile"] == icc


def _corrupt_png(tmp_path):
    Image.fromarray(np.zeros((40, 40, 3), np.uint8) + 7).save(tmp_path / "good.png")
    raw = (tmp_path / "good.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(raw[: len(raw) // 2])
    return tmp_path / "truncated.png"


@pytest.mark.parametrize("kind", ["truncated", "text_as_jpg", "empty", "missing", "folder"])
def test_bad_files_raise_one_line_memderain_error_naming_the_file(tmp_path, kind):
    if kind == "truncated":
        path = _corrupt_png(tmp_path)
    elif kind == "text_as_jpg":
        path = tmp_path / "notes.jpg"
        path.write_text("this is not a picture\n")
    elif kind == "empty":
        path = tmp_path / "empty.png"
        path.write_bytes(b"")
    elif kind == "missing":
        path = tmp_path / "nothere.png"
    else:
        path = tmp_path / "dir.png"
        path.mkdir()
    with pytest.raises(MemderainError) as info:
        io.read_image(path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg


def test_write_never_overwrites_without_flag_and_leaves_no_temp_files(tmp_path, rng):
    arr = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    dst = tmp_path / "out.png"
    dst.write_bytes(b"precious")
    with pytest.raises(io.ImageWriteError, match="already exists"):
        io.write_image(dst, arr)
    assert dst.read_bytes() == b"precious"
    assert _listing(tmp_path) == ["out.png"]
    io.write_image(dst, arr, overwrite=True)
    np.testing.assert_array_equal(np.asarray(Image.open(dst)), arr)
    assert _listing(tmp_path) == ["out.png"]


def test_failed_encode_leaves_neither_output_nor_temp(tmp_path, monkeypatch, rng):
    def boom(self, fp, *args, **kwargs):
        fp.write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(io.ImageWriteError, match="No space left") as info:
        io.write_image(tmp_path / "x.png", rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
    assert "x.png" in str(info.value)
    assert _listing(tmp_path) == []


def test_unknown_extension_is_a_clear_error(tmp_path):
    with pytest.raises(MemderainError, match="extension"):
        io.write_image(tmp_path / "x.xyz", np.zeros((4, 4, 3), np.uint8))


def test_write_creates_parent_folders(tmp_path):
    io.write_image(tmp_path / "a" / "b" / "c.png", np.zeros((4, 4, 3), np.uint8))
    assert (tmp_path / "a" / "b" / "c.png").is_file()


def test_tensor_and_range_conversions(rng):
    rgb = rng.random((5, 7, 3), dtype=np.float32)
    t = io.rgb_to_tensor01(rgb)
    assert t.shape == (1, 3, 5, 7) and t.dtype == torch.float32
    np.testing.assert_array_equal(t[0, 1].numpy(), rgb[..., 1])
    np.testing.assert_array_equal(io.tensor01_to_rgb(t), rgb)
    x = torch.tensor([0.0, 0.25, 1.0])
    assert torch.equal(io.to_network(x), torch.tensor([-1.0, -0.5, 1.0]))
    assert torch.allclose(io.from_network(io.to_network(x)), x)
    y = io.to_network(x)
    assert io.from_network(y, inplace=True) is y and torch.allclose(y, x)
    assert torch.equal(io.rain_from_network(torch.tensor([0.5, -2.0])), torch.tensor([0.25, -1.0]))


@pytest.mark.parametrize(
    "shape,dtype",
    [((6, 5), np.uint8), ((6, 5, 3), np.uint8), ((6, 5, 4), np.uint8), ((6, 5, 3), np.uint16)],
)
def test_array_to_imagedata(rng, shape, dtype):
    top = np.iinfo(dtype).max
    arr = rng.integers(0, top + 1, shape).astype(dtype)
    data = io.array_to_imagedata(arr)
    colour = arr if arr.ndim == 3 else arr[..., None]
    np.testing.assert_allclose(
        data.rgb, np.broadcast_to(colour[..., :3] / top, data.rgb.shape), atol=1e-7
    )
    assert (data.alpha is not None) == (arr.ndim == 3 and arr.shape[2] == 4)
    assert data.bit_depth == (16 if dtype == np.uint16 else 8)
    back = io.imagedata_to_samples(data, grey=arr.ndim == 2)
    np.testing.assert_array_equal(back, arr)


def test_cmyk_is_read_as_rgb_and_its_icc_profile_dropped(tmp_path, rng):
    cmyk = Image.frombytes("CMYK", (8, 8), rng.integers(0, 256, 256, dtype=np.uint8).tobytes())
    cmyk.save(tmp_path / "c.jpg", icc_profile=b"not an RGB profile" * 10)
    assert Image.open(tmp_path / "c.jpg").info.get("icc_profile")
    data = io.read_image(tmp_path / "c.jpg")
    assert data.icc_profile is None and data.alpha is None
    expected = np.asarray(Image.open(tmp_path / "c.jpg").convert("RGB"))
    np.testing.assert_array_equal(np.rint(data.rgb * 255).astype(np.uint8), expected)


def test_png16_falls_back_to_8_bit_if_pillow_internals_change(tmp_path, rng, monkeypatch):
    arr = rng.integers(0, 65536, (6, 7, 3), dtype=np.uint16)
    (tmp_path / "d.png").write_bytes(png16.encode_png16(arr))

    def broken(path, im):
        raise AttributeError("_Tile has no attribute 'args'")

    monkeypatch.setattr(png16, "decode_png16", broken)
    data = io.read_image(tmp_path / "d.png")
    assert data.bit_depth == 8
    np.testing.assert_array_equal(np.rint(data.rgb * 255).astype(np.uint8), arr >> 8)
