"""MemDerain: the full network of Fig. 2 — encode, query the memory, decode the rain layer.

Value convention: the network sees and returns images in [-1, 1] (Sec. III-E), NCHW.
Conversion from/to uint8 or [0, 1] happens only in :mod:`memderain.inference.io`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from memderain.config import ModelConfig
from memderain.model.decoder import Decoder
from memderain.model.encoder import Encoder
from memderain.model.memory import MemoryModule

SIZE_MULTIPLE = 8  # three 2x2 max-pools


class DerainOutput(NamedTuple):
    """Everything one forward pass produces (all NCHW, same H, W as the input except query)."""

    background: torch.Tensor  # B_hat = I - R_hat (clamped to [-1, 1] if configured)
    rain: torch.Tensor  # R_hat, decoder output
    query: torch.Tensor  # q, the encoder's query map (N, C, ceil(H/8), ceil(W/8)), used by L_w
    read_weights: torch.Tensor | None  # alpha (N, M, h, w) of Eq. 2, None without memory


def split_pair(out: DerainOutput, n: int) -> tuple[DerainOutput, DerainOutput]:
    """The outputs of one forward on ``cat([I_w, I_v])`` (``n`` images each) as (out_w, out_v)."""
    halves = [o.split(n) if o is not None else (None, None) for o in out]
    return DerainOutput(*(h[0] for h in halves)), DerainOutput(*(h[1] for h in halves))


def pad_to_multiple(x: torch.Tensor, multiple: int = SIZE_MULTIPLE) -> tuple[torch.Tensor, int, int]:
    """Pad H and W at the bottom/right up to a multiple (reflect, replicate if too small)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, 0, 0
    mode = "reflect" if (ph < h and pw < w) else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), ph, pw


class MemDerain(nn.Module):
    """Memory-guided de-raining network (paper Table I). Input I in [-1, 1], any H and W."""

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or ModelConfig()
        c = config.channels
        self.encoder = Encoder(config.in_channels, c)
        self.memory: MemoryModule | None = None
        if config.use_memory:
            self.memory = MemoryModule(
                config.num_items, c, config.read_temperature, config.normalize_query_in_update
            )
        bottleneck = 2 * c if config.use_memory else c  # {conv_E4b, p_hat} or q alone
        self.decoder = Decoder(c, bottleneck, config.in_channels)

    def forward(self, image: torch.Tensor) -> DerainOutput:
        """image (N, 3, H, W) in [-1, 1] -> :class:`DerainOutput`.

        In training mode the memory items are updated (Eq. 5-6) after being read; in eval mode
        they are only read.
        """
        h, w = image.shape[-2:]
        x, _, _ = pad_to_multiple(image)
        skips, query = self.encoder(x)  # encode
        read_weights = None
        if self.memory is not None:  # query the memory (Eq. 2-6)
            p_hat, read_weights = self.memory(query)
            bottleneck = torch.cat([query, p_hat.to(query.dtype)], dim=1)
        else:
            bottleneck = query
        rain = self.decoder(skips, bottleneck)[..., :h, :w]  # decode R_hat, crop padding
        if self.config.nonnegative_rain:
            rain = rain.clamp(min=0.0)  # rain only adds light (Eq. 1 with R >= 0)
        if self.config.rain_gain != 1.0:
            rain = rain * self.config.rain_gain  # 0: an identity (adapt's safety fallback)
        background = image - rain  # Eq. 1: B = I - R
        if self.config.clamp_background:
            background = background.clamp(-1.0, 1.0)
        return DerainOutput(background, rain, query, read_weights)
