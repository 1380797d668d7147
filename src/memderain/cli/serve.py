"""`memderain serve`: a local web page to try the model (upload, before/after, download)."""

from __future__ import annotations

import argparse

from memderain.cli.options import add_backend_options, add_device_option
from memderain.errors import MemderainError
from memderain.web.server import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="start the web page to try the model (needs extras 'web')")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to listen on (default 127.0.0.1: this computer only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--weights", help="checkpoint (default: the shipped model)")
    add_device_option(p)
    add_backend_options(p)
    p.add_argument("--max-mb", type=float, default=DEFAULT_MAX_BYTES / 2**20,
                   help="largest accepted upload in MiB (default %(default).0f)")
    p.add_argument("--max-megapixels", type=float, default=DEFAULT_MAX_PIXELS / 1e6,
                   help="largest accepted image in megapixels (default %(default).1f)")
    p.add_argument("--tile", type=int, default=None,
                   help="largest tile side in pixels (default: automatic for large images; "
                        "0: never tile)")
    p.set_defaults(func=run)


def build(args: argparse.Namespace):
    """The FastAPI app for these options (separate from ``run`` for tests)."""
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401  (uploads; package python-multipart)
    except ImportError:
        raise MemderainError('serve needs the web extras: pip install "memderain[web]"') from None
    import memderain
    from memderain import weights
    from memderain.web.server import create_app

    path = args.weights or weights.default_weights_path()
    if path is None:
        raise MemderainError("no default weights ship with this install; pass --weights CKPT")
    derainer = memderain.load_model(path, device=args.device, backend=args.backend,
                                     precision=args.precision)
    return create_app(
        derainer,
        max_bytes=int(args.max_mb * 2**20),
        max_pixels=int(args.max_megapixels * 1e6),
        tile=args.tile,
        weights_label=str(derainer.checkpoint_path.name if derainer.checkpoint_path else ""),
    )


def run(args: argparse.Namespace) -> int:
    app = build(args)
    try:
        import uvicorn
    except ImportError:
        raise MemderainError('serve needs uvicorn: pip install "memderain[web]"') from None
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"memderain: serving on http://{host}:{args.port}/  (Ctrl+C to stop)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
