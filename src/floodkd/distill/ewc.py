"""Elastic weight consolidation: keep weights important to the distilled task near their values
while fine-tuning on a few local labels (Kirkpatrick et al. 2017)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

__all__ = ["fisher_diagonal", "EWC"]


def fisher_diagonal(
    model: nn.Module,
    batches: Iterable[Any],
    loss_fn: Callable[[nn.Module, Any], torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Diagonal Fisher information: mean over batches of squared gradients of the NLL.

    ``loss_fn(model, batch)`` returns the batch's negative log-likelihood (a scalar). The
    model runs in eval mode (no dropout noise in the gradients) and its mode is restored.
    Returns parameter name -> tensor of the parameter's shape.
    """
    parameters = {name: p for name, p in model.named_parameters() if p.requires_grad}
    fisher = {name: torch.zeros_like(p) for name, p in parameters.items()}
    was_training = model.training
    model.eval()
    count = 0
    try:
        for batch in batches:
            model.zero_grad(set_to_none=True)
            loss_fn(model, batch).backward()
            for name, p in parameters.items():
                if p.grad is not None:
                    fisher[name] += p.grad.detach() ** 2
            count += 1
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    if count == 0:
        raise ValueError("fisher_diagonal needs at least one batch")
    return {name: f / count for name, f in fisher.items()}


class EWC:
    """Quadratic penalty weight/2 * sum F (theta - theta*)^2 around the current weights."""

    def __init__(self, model: nn.Module, fisher: dict[str, torch.Tensor], weight: float):
        if weight < 0:
            raise ValueError(f"EWC weight must be >= 0, got {weight}")
        parameters = dict(model.named_parameters())
        unknown = set(fisher) - set(parameters)
        if unknown:
            raise ValueError(f"Fisher terms for parameters the model lacks: {sorted(unknown)}")
        self.weight = float(weight)
        self.fisher = {name: f.detach().clone() for name, f in fisher.items()}
        self.optimum = {name: parameters[name].detach().clone() for name in fisher}

    def penalty(self, model: nn.Module) -> torch.Tensor:
        """The EWC penalty of ``model``'s current weights (a scalar with gradient)."""
        parameters = dict(model.named_parameters())
        total = next(iter(parameters.values())).new_zeros(())
        for name, fisher in self.fisher.items():
            difference = parameters[name] - self.optimum[name].to(parameters[name].device)
            total = total + (fisher.to(difference.device) * difference**2).sum()
        return 0.5 * self.weight * total
