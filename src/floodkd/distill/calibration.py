"""Calibration: temperature scaling fitted on held-out labelled pixels, and its check (ECE)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from floodkd.distill.loop import autocast, to_device
from floodkd.models.student import FloodStudent

__all__ = ["fit_temperature", "expected_calibration_error", "ensemble_logits", "calibrate"]

IGNORE_LABEL = 255
MIN_CALIBRATION_PIXELS = 50  # of each class, to fit a temperature at all


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


def ensemble_logits(members: Iterable[FloodStudent], batch: dict[str, torch.Tensor],
                    mc_dropout: bool = False) -> torch.Tensor:
    """(members, B, 2, H, W) logits of each member for one batch (float32)."""
    outputs = []
    for member in members:
        logits, _ = member(batch["student_image"], batch["presence"], batch["gauge_history"],
                           mc_dropout=mc_dropout)
        outputs.append(logits.float())
    return torch.stack(outputs)


def _pixel_keys(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, H, W) int64: one key per (time, region row, region column) of each padded pixel."""
    _, height, width = batch["label"].shape
    rows = batch["window"][:, 0, None, None] + torch.arange(height, device=batch["label"].device
                                                             )[None, :, None]
    cols = batch["window"][:, 1, None, None] + torch.arange(width, device=batch["label"].device
                                                             )[None, None, :]
    span = 1 << 20  # larger than any region's rows or columns
    return (batch["time_index"][:, None, None] * span + rows) * span + cols


def calibrate(members: list[FloodStudent], loader: DataLoader,
              device: torch.device) -> dict[str, Any]:
    """Fit the temperature on held-out labelled pixels, for the members' mean of
    softmax(logits / T) that the maps use (dropout off here; the maps add MC draws).

    Overlapping tiles see a pixel more than once: when batches carry ``window`` and
    ``time_index`` each (time, pixel) counts once. With no labelled pixel, or fewer than
    ``MIN_CALIBRATION_PIXELS`` of a class, the temperature stays 1 and the reason is recorded.
    """
    logits_list, labels_list, keys_list = [], [], []
    with torch.no_grad():
        for batch in loader:
            batch = to_device(batch, device)
            with autocast(device):
                member_logits = ensemble_logits(members, batch)  # (S, B, 2, H, W)
            labelled = (batch["label"] != 255) & batch["valid"]
            logits_list.append(member_logits.permute(0, 1, 3, 4, 2)[:, labelled].float().cpu())
            labels_list.append(batch["label"][labelled].cpu())
            if "window" in batch and "time_index" in batch:
                keys_list.append(_pixel_keys(batch)[labelled].cpu())
    if not logits_list or sum(len(x) for x in labels_list) == 0:
        return {"temperature": 1.0, "pixels": 0, "pixels_per_class": [0, 0],
                "note": "no held-out labelled pixel: temperature left at 1"}
    logits, labels = torch.cat(logits_list, dim=1), torch.cat(labels_list)
    if len(keys_list) == len(logits_list):
        _, first = np.unique(torch.cat(keys_list).numpy(), return_index=True)
        logits, labels = logits[:, first], labels[first]
    per_class = torch.bincount(labels.long(), minlength=2)[:2]
    if int(per_class.min()) < MIN_CALIBRATION_PIXELS:
        # one class only (e.g. 722 dry pixels on the demo target): the NLL falls as T -> 0
        # without bound, so a fit would only sharpen the map, never calibrate it
        probs = torch.softmax(logits, -1)[..., 1].mean(0).numpy()
        ece = expected_calibration_error(probs, labels.numpy())
        return {"temperature": 1.0, "pixels": int(labels.numel()),
                "pixels_per_class": per_class.tolist(), "ece_before": ece, "ece_after": ece,
                "note": f"fewer than {MIN_CALIBRATION_PIXELS} held-out labelled pixels of "
                        "a class: temperature left at 1"}
    temperature = fit_temperature(logits, labels)
    before = torch.softmax(logits, -1)[..., 1].mean(0).numpy()
    after = torch.softmax(logits / temperature, -1)[..., 1].mean(0).numpy()
    return {"temperature": temperature, "pixels": int(labels.numel()),
            "pixels_per_class": per_class.tolist(),
            "ece_before": expected_calibration_error(before, labels.numpy()),
            "ece_after": expected_calibration_error(after, labels.numpy())}
