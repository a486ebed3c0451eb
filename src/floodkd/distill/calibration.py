"""Calibration: temperature scaling fitted on held-out labelled pixels, and its check (ECE)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["fit_temperature", "expected_calibration_error"]

IGNORE_LABEL = 255


def fit_temperature(logits: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray,
                    max_iter: int = 100) -> float:
    """The temperature T minimising the NLL of the calibrated probability on held-out pixels.

    logits (N, K) of one model, or (S, N, K) of S ensemble members: then the probability is
    the members' mean of softmax(logits / T), exactly what the maps average. labels (N,)
    integer; labels 255 are ignored. Optimised with LBFGS on log T so T stays positive.
    T > 1 softens an over-confident model.
    """
    logits_t = torch.as_tensor(logits, dtype=torch.float64).detach()
    if logits_t.ndim == 2:
        logits_t = logits_t[None]
    labels_t = torch.as_tensor(labels).long().reshape(-1)
    if logits_t.ndim != 3 or logits_t.shape[1] != labels_t.shape[0]:
        raise ValueError(f"logits must be (N, K) or (S, N, K) and labels (N,), got "
                         f"{tuple(logits_t.shape)} and {tuple(labels_t.shape)}")
    keep = labels_t != IGNORE_LABEL
    logits_t, labels_t = logits_t[:, keep], labels_t[keep]
    if labels_t.numel() == 0:
        raise ValueError("no labelled pixels to fit a temperature on")
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter,
                                  line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        log_probs = torch.log_softmax(logits_t / log_t.exp(), dim=-1)
        # log of the members' mean probability, computed stably
        log_mean = torch.logsumexp(log_probs, dim=0) - np.log(logits_t.shape[0])
        loss = F.nll_loss(log_mean, labels_t)
        loss.backward()
        return loss

    optimiser.step(closure)
    # Clamp to a sane range: degenerate sets (all one class, separable) push T to 0 or inf.
    return float(log_t.detach().clamp(np.log(0.05), np.log(100.0)).exp())


def expected_calibration_error(prob_water: np.ndarray | torch.Tensor,
                               labels: np.ndarray | torch.Tensor, bins: int = 15) -> float:
    """ECE of the water probability: sum over equal-width bins of P(water) in [0, 1] of
    (share of pixels in the bin) * |mean P(water) - observed water fraction|.

    This calibrates the probability map itself (what the flood maps show). Labels 255 and
    non-finite probabilities are ignored.
    """
    prob = np.asarray(prob_water, dtype=np.float64).reshape(-1)
    truth = np.asarray(labels).reshape(-1)
    if prob.shape != truth.shape:
        raise ValueError(f"prob_water {prob.shape} and labels {truth.shape} differ in size")
    keep = (truth != IGNORE_LABEL) & np.isfinite(prob)
    prob, truth = prob[keep], truth[keep].astype(np.float64)
    if prob.size == 0:
        return float("nan")
    index = np.clip((prob * bins).astype(int), 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    prob_sum = np.bincount(index, weights=prob, minlength=bins)
    truth_sum = np.bincount(index, weights=truth, minlength=bins)
    filled = counts > 0
    gap = np.abs(prob_sum[filled] - truth_sum[filled]) / counts[filled]
    return float((counts[filled] / prob.size * gap).sum())
