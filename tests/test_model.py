"""Network structure (Table I), parameter count, arbitrary sizes, gradients."""

from __future__ import annotations

import pytest
import torch

from memderain.config import ModelConfig
from memderain.model import MemDerain, build_model, count_parameters


def test_default_parameter_count_matches_paper_within_1_percent():
    n = count_parameters(build_model("paper"))
    assert abs(n - 0.82e6) / 0.82e6 < 0.01, n


def test_table_i_layer_shapes():
    m = build_model("paper")
    assert m.encoder.conv_E1[0][0].weight.shape == (64, 3, 3, 3)
    assert m.decoder.conv_D4[0][0].weight.shape == (64, 128, 3, 3)  # {conv_E4b, p_hat}
    assert m.decoder.conv_D1[0][0].weight.shape == (64, 128, 3, 3)  # {upconv_D1, conv_E1b}
    assert m.decoder.output.weight.shape == (3, 64, 3, 3)
    assert m.memory.items.shape == (20, 64)
    nm = build_model("no-memory")
    assert nm.memory is None and nm.decoder.conv_D4[0][0].weight.shape == (64, 64, 3, 3)


@pytest.mark.parametrize("size", [(16, 16), (13, 29), (5, 3), (1, 1), (33, 8)])
def test_any_input_size_gives_same_output_size(tiny_config, size):
    m = MemDerain(tiny_config).eval()
    x = torch.rand(2, 3, *size) * 2 - 1
    out = m(x)
    assert out.background.shape == x.shape and out.rain.shape == x.shape
    h8, w8 = -(-size[0] // 8), -(-size[1] // 8)
    assert out.query.shape == (2, tiny_config.channels, h8, w8)
    assert out.read_weights.shape == (2, tiny_config.num_items, h8, w8)
    assert torch.allclose(out.read_weights.sum(1), torch.ones(2, h8, w8), atol=1e-5)


def test_background_is_input_minus_rain_clamped(tiny_config):
    m = MemDerain(tiny_config).eval()
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    out = m(x)
    assert torch.allclose(out.background, (x - out.rain).clamp(-1, 1))
    assert out.background.min() >= -1 and out.background.max() <= 1
    raw = MemDerain(ModelConfig(channels=8, num_items=4, clamp_background=False)).eval()
    raw.load_state_dict(m.state_dict())
    assert torch.allclose(raw(x).background, x - out.rain)


def test_padding_does_not_leak_across_batch_and_is_per_image(tiny_config):
    m = MemDerain(tiny_config).eval()
    x = torch.rand(2, 3, 12, 20) * 2 - 1
    both = m(x).background
    one = m(x[1:]).background
    assert torch.allclose(both[1:], one, atol=1e-5)


def test_every_parameter_gets_a_finite_gradient(tiny_config):
    m = MemDerain(tiny_config).train()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    out = m(x)
    (out.rain.abs().mean() + out.query.mean()).backward()
    for name, p in m.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    assert m.memory.items.grad is None


def test_eval_forward_is_deterministic_and_leaves_memory(tiny_config):
    m = MemDerain(tiny_config).eval()
    before = m.memory.items.clone()
    x = torch.rand(1, 3, 16, 16)
    a, b = m(x).background, m(x).background
    assert torch.equal(a, b) and torch.equal(m.memory.items, before)


def test_nonnegative_rain_never_brightens():
    from memderain.config import ModelConfig
    from memderain.model import build_model

    torch.manual_seed(0)
    free = build_model(ModelConfig(channels=8, num_items=4)).eval()
    clamped = build_model(ModelConfig(channels=8, num_items=4, nonnegative_rain=True)).eval()
    clamped.load_state_dict(free.state_dict())
    x = torch.rand(1, 3, 24, 40) * 2 - 1
    with torch.no_grad():
        a, b = free(x), clamped(x)
    assert bool((a.rain < 0).any())  # the paper's free R_hat can brighten ...
    torch.testing.assert_close(b.rain, a.rain.clamp(min=0))  # ... the option cannot
    assert bool((b.background <= x + 1e-6).all())
