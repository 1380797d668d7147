"""Encoder of Table I: four levels of two 3x3 conv+ReLU, 2x2 max-pool after levels 1-3."""

from __future__ import annotations

import torch
from torch import nn

from memderain.model.blocks import conv_relu


class Encoder(nn.Module):
    """Image (N, 3, H, W) -> skip features of levels 1-3 and the query map q (level 4).

    H and W must be multiples of 8 (three max-pools); :class:`MemDerain` pads for you.
    """

    def __init__(self, in_channels: int = 3, channels: int = 64) -> None:
        super().__init__()
        c = channels
        self.conv_E1 = nn.Sequential(conv_relu(in_channels, c), conv_relu(c, c))  # E1a, E1b
        self.conv_E2 = nn.Sequential(conv_relu(c, c), conv_relu(c, c))  # E2a, E2b
        self.conv_E3 = nn.Sequential(conv_relu(c, c), conv_relu(c, c))  # E3a, E3b
        self.conv_E4 = nn.Sequential(conv_relu(c, c), conv_relu(c, c))  # E4a, E4b
        self.pool = nn.MaxPool2d(2, 2)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        e1 = self.conv_E1(x)  # (N, C, H, W)         conv_E1b
        e2 = self.conv_E2(self.pool(e1))  # (N, C, H/2, W/2)  conv_E2b
        e3 = self.conv_E3(self.pool(e2))  # (N, C, H/4, W/4)  conv_E3b
        q = self.conv_E4(self.pool(e3))  # (N, C, H/8, W/8)   conv_E4b = query map
        return [e1, e2, e3], q
