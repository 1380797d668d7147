"""Shared by the web tests: a tiny checkpoint, test images, and the app for given limits."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from memderain.checkpoint import save_checkpoint
from memderain.config import ModelConfig
from memderain.model import build_model


def tiny_checkpoint(path):
    """A random-weight C=8 model with a visible effect (rain bias) saved to ``path``."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(channels=8, num_items=4))
    with torch.no_grad():
        model.decoder.output.bias.fill_(0.2)  # background = image - 0.2: clearly different
    save_checkpoint(path, model)
    return path, model.eval()


def make_image(width=40, height=30, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // width, yy * 255 // height, np.full_like(xx, 128)], -1)
    noisy = np.clip(base + rng.integers(-30, 30, base.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(noisy)


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def reference_derain(model, image: Image.Image) -> np.ndarray:
    """uint8 result computed with the network directly (not through the web code)."""
    x = torch.from_numpy(np.asarray(image, np.float32) / 255.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        y = (model(x * 2 - 1).background + 1) / 2
    return (y[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)


def build_app(ckpt, **limits):
    from memderain.cli import build_parser
    from memderain.cli.serve import build

    # the real parser, so every option `serve` has gets its default
    args = build_parser().parse_args([
        "serve", "--weights", str(ckpt), "--device", "cpu",
        "--max-mb", str(limits.get("max_mb", 10)),
        "--max-megapixels", str(limits.get("max_megapixels", 4.0))])
    return build(args)
