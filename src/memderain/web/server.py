"""FastAPI app of ``memderain serve``: one page, one upload endpoint.

Routes:
  ``GET /``                  the page (index.html), ``GET /static/<file>`` its JS/CSS
  ``GET /api/info``          version, weights and the upload limits (the page shows them)
  ``POST /api/derain``       multipart field ``file`` -> de-rained PNG (``image/png``)

Bad uploads get HTTP 4xx with ``{"detail": "<one-line message>"}``: 400 not an image /
empty, 413 too many bytes (checked from Content-Length before the body is read, and again
while reading) or too many pixels (checked from the image header before decoding).
"""


import io
import re
import threading
import time
from pathlib import Path
from typing import Annotated, Any

from memderain.version import __version__

STATIC_DIR = Path(__file__).resolve().parent
STATIC_FILES = {  # name -> media type; nothing else under the package folder is served
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
DEFAULT_MAX_BYTES = 10 * 1024 * 1024  # 10 MiB upload
DEFAULT_MAX_PIXELS = 4_000_000  # ~ 2448 x 1632; CPU time grows with pixels
MULTIPART_OVERHEAD = 64 * 1024  # room for the multipart headers around the file


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


def _mp(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} megapixels" if pixels >= 100_000 else f"{pixels} pixels"


def create_app(
    derainer: Any,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    tile: int | None = None,
    weights_label: str = "",
):
    """Build the app around ``derainer`` (a :class:`memderain.inference.predictor.Derainer`:
    anything with ``derain(PIL.Image, tile=...) -> PIL.Image``)."""
    from fastapi import FastAPI, File, HTTPException, Request, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from PIL import Image, ImageOps, UnidentifiedImageError

    app = FastAPI(title="memderain", version=__version__, docs_url=None, redoc_url=None)
    lock = threading.Lock()  # one de-raining at a time: bounded memory and CPU

    @app.middleware("http")
    async def reject_large_bodies(request: Request, call_next):
        length = request.headers.get("content-length")
        if (request.url.path == "/api/derain" and length and length.isdigit()
                and int(length) > max_bytes + MULTIPART_OVERHEAD):
            return JSONResponse(
                {"detail": f"upload too large ({_mib(int(length))}); the limit is "
                           f"{_mib(max_bytes)}"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def one_line_validation_error(request: Request, exc: RequestValidationError):
        # FastAPI answers a missing form field with a list of dicts; say what to send instead
        missing = sorted({str(e.get("loc", ["", "?"])[-1]) for e in exc.errors()})
        return JSONResponse(
            {"detail": f"{request.url.path} needs a multipart form upload with the image in "
                       f"the field 'file' (problem with: {', '.join(missing)}), e.g. "
                       "curl -F file=@photo.jpg"}, status_code=422)

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC_DIR / "index.html", media_type=STATIC_FILES["index.html"])

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str):
        if name not in STATIC_FILES:
            raise HTTPException(404, "not found")
        return FileResponse(STATIC_DIR / name, media_type=STATIC_FILES[name])

    @app.get("/api/info")
    def info():
        return {"version": __version__, "weights": weights_label, "max_bytes": max_bytes,
                "max_pixels": max_pixels}

    @app.post("/api/derain")
    def derain(file: Annotated[UploadFile, File()]):  # sync: runs in a worker thread
        data = file.file.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise HTTPException(413, f"upload too large; the limit is {_mib(max_bytes)}")
        if not data:
            raise HTTPException(400, "empty upload; choose an image file")
        name = file.filename or "image"
        try:
            im = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            claimed = re.search(r"\((\d+) pixels\)", str(exc))
            size = _mp(int(claimed[1])) if claimed else "past Pillow's limit"
            raise HTTPException(413, f"{name}: image too large ({size}); the limit is "
                                     f"{_mp(max_pixels)}") from None
        except (UnidentifiedImageError, OSError):
            raise HTTPException(400, f"{name} is not an image Pillow can read "
                                     "(use PNG, JPEG, WebP, BMP or TIFF)") from None
        w, h = im.size
        if w * h > max_pixels:
            raise HTTPException(413, f"image too large: {w}x{h} = {_mp(w * h)}; the limit is "
                                     f"{_mp(max_pixels)}")
        try:
            im = ImageOps.exif_transpose(im).convert("RGB")  # as browsers display it
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            raise HTTPException(400, f"{name}: image data is corrupt or unsupported") from None
        start = time.perf_counter()
        with lock:
            result = derainer.derain(im, tile=tile)
        seconds = time.perf_counter() - start
        buf = io.BytesIO()
        result.save(buf, format="PNG")
        stem = Path(name).stem or "image"
        headers = {
            "Content-Disposition": f'inline; filename="{_safe(stem)}_derained.png"',
            "X-Memderain-Seconds": f"{seconds:.3f}",
        }
        return Response(buf.getvalue(), media_type="image/png", headers=headers)

    return app


def _safe(stem: str) -> str:
    """A filename stem safe inside a quoted header value."""
    keep = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem)
    return keep[:80] or "image"
