"""Memory read (Eq. 2-4) and update (Eq. 5-6) against direct, loop-based computations."""

from __future__ import annotations

import math

import torch

from memderain.model.memory import MemoryModule


def _cos(a, b):
    return float(a @ b) / (a.norm().item() * b.norm().item())


def _memory(items: torch.Tensor, **kw) -> MemoryModule:
    mem = MemoryModule(items.shape[0], items.shape[1], **kw)
    mem.items.copy_(items)
    return mem


def test_read_matches_direct_computation():
    items = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # M=2, C=3
    q = torch.tensor([[[[2.0]], [[0.0]], [[0.0]]], [[[1.0]], [[1.0]], [[1.0]]]])  # (2, 3, 1, 1)
    mem = _memory(items).eval()
    p_hat, alpha = mem.read(q)
    for n in range(2):
        qk = q[n, :, 0, 0]
        d = [_cos(items[m], qk) for m in range(2)]
        z = sum(math.exp(x) for x in d)
        a = [math.exp(x) / z for x in d]  # Eq. 2
        expect = a[0] * items[0] + a[1] * items[1]  # Eq. 4
        assert torch.allclose(alpha[n, :, 0, 0], torch.tensor(a), atol=1e-6)
        assert torch.allclose(p_hat[n, :, 0, 0], expect, atol=1e-6)
    # first query is parallel to item 0 -> cos = 1 and 0
    assert alpha[0, 0, 0, 0] > alpha[0, 1, 0, 0]


def test_update_matches_direct_computation_literal_eq6():
    items = torch.nn.functional.normalize(torch.tensor([[1.0, 0.5], [-0.3, 1.0]]), dim=1)
    q = torch.tensor([[[[1.0, 0.0]], [[0.0, 2.0]]]])  # (1, C=2, 1, 2): queries (1,0) and (0,2)
    queries = [torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])]
    mem = _memory(items.clone(), normalize_query_in_update=False).train()
    mem.update(q)
    for m in range(2):
        d = [_cos(items[m], qk) for qk in queries]
        z = sum(math.exp(x) for x in d)
        beta = [math.exp(x) / z for x in d]  # Eq. 5: over queries
        raw = items[m] + beta[0] * queries[0] + beta[1] * queries[1]
        expect = raw / raw.norm()  # Eq. 6
        assert torch.allclose(mem.items[m], expect, atol=1e-6)


def test_update_with_normalized_queries():
    items = torch.nn.functional.normalize(torch.tensor([[1.0, 1.0]]), dim=1)
    q = torch.tensor([[[[3.0, 0.0]], [[0.0, 5.0]]]])  # queries (3,0), (0,5) -> unit (1,0), (0,1)
    mem = _memory(items.clone(), normalize_query_in_update=True)
    mem.update(q)
    # both queries have the same cosine to the item -> beta = 1/2 each
    raw = items[0] + 0.5 * torch.tensor([1.0, 0.0]) + 0.5 * torch.tensor([0.0, 1.0])
    assert torch.allclose(mem.items[0], raw / raw.norm(), atol=1e-6)


def test_eval_never_changes_items_and_train_does():
    mem = MemoryModule(5, 8)
    before = mem.items.clone()
    q = torch.randn(2, 8, 4, 4)
    mem.eval()
    for _ in range(3):
        mem(q)
    assert torch.equal(mem.items, before)
    mem.train()
    mem(q)
    assert not torch.allclose(mem.items, before)
    assert torch.allclose(mem.items.norm(dim=1), torch.ones(5), atol=1e-6)


def test_items_are_buffer_not_parameter_and_get_no_gradient():
    mem = MemoryModule(3, 4)
    assert "items" in dict(mem.named_buffers())
    assert len(list(mem.parameters())) == 0
    q = torch.randn(1, 4, 2, 2, requires_grad=True)
    p_hat, _ = mem.eval()(q)
    p_hat.sum().backward()
    assert q.grad is not None and q.grad.abs().sum() > 0  # gradient flows to queries via alpha
    assert mem.items.grad is None


def test_reduce_fn_is_applied_to_update_term():
    mem = MemoryModule(2, 3)
    calls = []

    def reduce(t):
        calls.append(t.shape)
        return torch.zeros_like(t)  # a reduction returning zero leaves normalised items unchanged

    mem.reduce_fn = reduce
    before = mem.items.clone()
    mem.train()(torch.randn(1, 3, 2, 2))
    assert calls == [torch.Size([2, 3])]
    assert torch.allclose(mem.items, before, atol=1e-6)
