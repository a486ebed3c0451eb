"""Elastic weight consolidation."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from floodkd.distill.ewc import EWC, fisher_diagonal


def _nll(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y)


def test_fisher_is_mean_squared_gradient():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    batches = [(torch.randn(4, 3), torch.randint(0, 2, (4,))) for _ in range(3)]
    expected = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    for batch in batches:
        grads = torch.autograd.grad(_nll(model, batch), list(model.parameters()))
        for (name, _), g in zip(model.named_parameters(), grads, strict=True):
            expected[name] += g**2 / len(batches)
    fisher = fisher_diagonal(model, batches, _nll)
    for name in expected:
        torch.testing.assert_close(fisher[name], expected[name])
    assert all(p.grad is None for p in model.parameters())


def test_penalty_is_zero_at_optimum_and_quadratic_away():
    model = nn.Linear(2, 1)
    fisher = {name: torch.full_like(p, 2.0) for name, p in model.named_parameters()}
    ewc = EWC(model, fisher, weight=3.0)
    assert float(ewc.penalty(model).detach()) == 0.0
    with torch.no_grad():
        model.weight += 0.1
    first = float(ewc.penalty(model).detach())
    # 3/2 * 2 * (0.1^2 * 2 weights) = 0.06
    assert first == pytest.approx(0.06, rel=1e-4)
    with torch.no_grad():
        model.weight += 0.1  # twice as far -> four times the penalty
    assert float(ewc.penalty(model).detach()) == pytest.approx(4 * first, rel=1e-4)


def test_penalty_pulls_weights_back():
    model = nn.Linear(2, 1)
    ewc = EWC(model, {"weight": torch.ones(1, 2)}, weight=1.0)
    with torch.no_grad():
        model.weight += 1.0
    ewc.penalty(model).backward()
    assert (model.weight.grad > 0).all()  # gradient descent moves the weight back down
    assert model.bias.grad is None


def test_fisher_needs_batches():
    with pytest.raises(ValueError, match="at least one batch"):
        fisher_diagonal(nn.Linear(1, 1), [], _nll)
