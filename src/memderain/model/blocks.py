"""Layers shared by the encoder and decoder (Table I: 3x3 convolutions followed by ReLU)."""

from __future__ import annotations

from torch import nn


def conv_relu(c_in: int, c_out: int) -> nn.Sequential:
    """3x3 convolution (stride 1, 'same' padding) followed by ReLU."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True))


def upconv_relu(c_in: int, c_out: int) -> nn.Sequential:
    """3x3 transposed convolution with stride 2 (exact x2 upscaling) followed by ReLU."""
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1),
        nn.ReLU(inplace=True),
    )
