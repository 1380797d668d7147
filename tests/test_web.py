"""Web API (`memderain serve`): upload -> de-rained PNG; non-images and oversize uploads -> 4xx."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="web extras not installed (pip install memderain[web])")
pytest.importorskip("httpx", reason="fastapi.testclient needs httpx (dev extra)")
from fastapi.testclient import TestClient

from memderain.cli import main
from web_helpers import build_app, make_image, png_bytes, reference_derain, tiny_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("web") / "tiny.pt")


@pytest.fixture(scope="module")
def client(ckpt):
    return TestClient(build_app(ckpt[0]))


def test_page_and_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'id="file"' in page.text and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert "text/css" in client.get("/static/style.css").headers["content-type"]
    assert client.get("/static/server.py").status_code == 404  # only the page's own files
    info = client.get("/api/info").json()
    assert info["max_bytes"] == 10 * 2**20 and info["max_pixels"] == 4_000_000
    assert info["weights"] == "tiny.pt"


def test_derain_upload_returns_the_models_result(client, ckpt):
    image = make_image(41, 29)  # not multiples of 8
    r = client.post("/api/derain", files={"file": ("street.png", png_bytes(image), "image/png")})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert 'filename="street_derained.png"' in r.headers["content-disposition"]
    assert float(r.headers["x-memderain-seconds"]) >= 0
    out = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))
    expected = reference_derain(ckpt[1], image)
    assert out.shape == expected.shape == (29, 41, 3)
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1
    assert np.abs(out.astype(int) - np.asarray(image, int)).mean() > 10  # it did something


def test_jpeg_with_exif_rotation_is_upright(client):
    image = make_image(40, 24)
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    image.save(buf, format="JPEG", exif=exif)
    r = client.post("/api/derain", files={"file": ("phone.jpg", buf.getvalue(), "image/jpeg")})
    assert r.status_code == 200
    assert Image.open(io.BytesIO(r.content)).size == (24, 40)  # as the browser shows it


@pytest.mark.parametrize(
    "name, data, status, words",
    [
        ("notes.txt", b"this is not an image at all", 400, "not an image"),
        ("fake.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, 400, "not an image"),
        ("empty.png", b"", 400, "empty"),
    ],
)
def test_rejects_non_images(client, name, data, status, words):
    r = client.post("/api/derain", files={"file": (name, data, "image/png")})
    assert r.status_code == status
    assert words in r.json()["detail"]


def test_rejects_oversized_uploads(ckpt):
    small = TestClient(build_app(ckpt[0], max_mb=0.01, max_megapixels=0.001))  # 10 KiB, 1000 px
    r = small.post("/api/derain", files={"file": ("big.png", png_bytes(make_image(40, 30)))})
    assert r.status_code == 413
    assert r.json()["detail"] == "image too large: 40x30 = 1200 pixels; the limit is 1000 pixels"
    noisy = Image.fromarray(np.random.default_rng(1).integers(0, 255, (80, 80, 3), np.uint8))
    data = png_bytes(noisy)
    assert 10 * 1024 < len(data) < 10 * 1024 + 64 * 1024  # passes the header check, not the read
    r = small.post("/api/derain", files={"file": ("noise.png", data)})
    assert r.status_code == 413 and "upload too large" in r.json()["detail"]
    r = small.post("/api/derain", files={"file": ("huge.bin", b"\0" * 200_000)})  # header check
    assert r.status_code == 413 and "upload too large" in r.json()["detail"]


def test_serve_without_weights_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setattr("memderain.weights.default_weights_path", lambda: None)
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("server started"))
    assert main(["serve", "--port", "0"]) == 1
    assert "--weights" in capsys.readouterr().err


def test_decompression_bomb_and_missing_field_get_one_clear_line(client):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)  # claims 10^10 pixels
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    r = client.post("/api/derain", files={"file": ("bomb.png", bomb, "image/png")})
    assert r.status_code == 413
    assert r.json()["detail"] == ("bomb.png: image too large (10000.0 megapixels); the limit "
                                  "is 4.0 megapixels")
    r = client.post("/api/derain", files={"image": ("x.png", png_bytes(make_image(8, 8)))})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "'file'" in detail and "\n" not in detail
