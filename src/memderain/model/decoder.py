"""Decoder of Table I: memory read-out + query -> rain layer R, with x2 transposed convs and skips."""

from __future__ import annotations

import torch
from torch import nn

from memderain.model.blocks import conv_relu, upconv_relu


class Decoder(nn.Module):
    """``(skips, bottleneck) -> R`` where bottleneck is {conv_E4b, p_hat} (2C channels) or q (C).

    The output layer is a plain 3x3 conv (no ReLU) so the rain layer can take either sign.
    """

    def __init__(self, channels: int = 64, bottleneck_channels: int = 128, out_channels: int = 3):
        super().__init__()
        c = channels
        self.conv_D4 = nn.Sequential(conv_relu(bottleneck_channels, c), conv_relu(c, c))
        self.upconv_D3 = upconv_relu(c, c)
        self.conv_D3 = nn.Sequential(conv_relu(2 * c, c), conv_relu(c, c))
        self.upconv_D2 = upconv_relu(c, c)
        self.conv_D2 = nn.Sequential(conv_relu(2 * c, c), conv_relu(c, c))
        self.upconv_D1 = upconv_relu(c, c)
        self.conv_D1 = nn.Sequential(conv_relu(2 * c, c), conv_relu(c, c))
        self.output = nn.Conv2d(c, out_channels, 3, padding=1)

    def forward(self, skips: list[torch.Tensor], bottleneck: torch.Tensor) -> torch.Tensor:
        e1, e2, e3 = skips
        d4 = self.conv_D4(bottleneck)  # H/8
        d3 = self.conv_D3(torch.cat([self.upconv_D3(d4), e3], dim=1))  # H/4
        d2 = self.conv_D2(torch.cat([self.upconv_D2(d3), e2], dim=1))  # H/2
        d1 = self.conv_D1(torch.cat([self.upconv_D1(d2), e1], dim=1))  # H
        return self.output(d1)
