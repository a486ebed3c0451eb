"""Calibration: Platt scaling (a temperature and a water bias) fitted on held-out pixels,
and its check (ECE)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from floodkd.distill.loop import autocast, to_device
from floodkd.models.student import FloodStudent

__all__ = ["water_probability", "Calibration", "fit_calibration", "calibration_targets",
           "expected_calibration_error", "ensemble_logits", "calibrate"]

IGNORE_LABEL = 255
MIN_CALIBRATION_PIXELS = 50  # of each class, to fit a calibration at all


def water_probability(logits: torch.Tensor, temperature: float | torch.Tensor = 1.0,
                      bias: float | torch.Tensor = 0.0, dim: int = -1) -> torch.Tensor:
    """Calibrated P(water) of (dry, water) logits along ``dim``: sigmoid(margin / T + b),
    the margin being the water logit minus the dry one (Platt scaling; b = 0 is temperature
    scaling, T = 1 and b = 0 the raw softmax). T > 0 keeps P non-decreasing in the margin,
    so a student monotone in the water level stays monotone."""
    dry, water = logits.unbind(dim)
    return torch.sigmoid((water - dry) / temperature + bias)


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of the members' logits: P = mean over members of sigmoid(m / T + b)."""

    temperature: float = 1.0
    bias: float = 0.0


def fit_calibration(logits: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray,
                    max_iter: int = 100) -> Calibration:
    """T and b minimising the NLL of the calibrated probability on held-out pixels.

    logits (N, 2) of one model, or (S, N, 2) of S ensemble members: then the probability is
    the members' mean of ``water_probability``, exactly what the maps average. labels (N,)
    integer; labels 255 are ignored. Optimised with LBFGS on log T so T stays positive.
    T > 1 softens an over-confident model; b > 0 moves every pixel towards water (a student
    that distils a cautious teacher can be biased as well as too soft or sharp).
    """
    logits_t = torch.as_tensor(logits, dtype=torch.float64).detach()
    if logits_t.ndim == 2:
        logits_t = logits_t[None]
    labels_t = torch.as_tensor(labels).long().reshape(-1)
    if logits_t.ndim != 3 or logits_t.shape[1] != labels_t.shape[0] or logits_t.shape[2] != 2:
        raise ValueError(f"logits must be (N, 2) or (S, N, 2) and labels (N,), got "
                         f"{tuple(logits_t.shape)} and {tuple(labels_t.shape)}")
    keep = labels_t != IGNORE_LABEL
    logits_t, is_water = logits_t[:, keep], (labels_t[keep] == 1).double()
    if is_water.numel() == 0:
        raise ValueError("no labelled pixels to fit a calibration on")
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t, bias], lr=0.5, max_iter=max_iter,
                                  line_search_fn="strong_wolfe")

    margin = logits_t[..., 1] - logits_t[..., 0]
    log_members = float(np.log(margin.shape[0]))

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        # the NLL of the members' mean P in log space: a clamped P would give a confidently
        # wrong pixel (|margin / T| > ~37) a constant loss and no pull on T
        z = margin / log_t.exp() + bias
        log_p = torch.logsumexp(F.logsigmoid(z), 0) - log_members
        log_q = torch.logsumexp(F.logsigmoid(-z), 0) - log_members
        loss = -(is_water * log_p + (1 - is_water) * log_q).mean()
        loss.backward()
        return loss

    optimiser.step(closure)
    # Clamp to a sane range: degenerate sets (all one class, separable) push T to 0 or inf.
    return Calibration(float(log_t.detach().clamp(np.log(0.05), np.log(100.0)).exp()),
                       float(bias.detach().clamp(-10.0, 10.0)))


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


def calibration_targets(batch: dict[str, torch.Tensor],
                        teacher: torch.nn.Module | None = None) -> torch.Tensor:
    """(B, H, W) int64 targets to calibrate on: the label where there is one, else the
    teacher's hard map where it sees valid radar (with a teacher), else 255."""
    targets = torch.where(batch["valid"], batch["label"], IGNORE_LABEL)
    if teacher is not None and "teacher_image" in batch:
        sees = (batch["valid"] & batch["radar_valid"]
                & (batch["radar_present"][:, None, None] > 0) & (targets == IGNORE_LABEL))
        if bool(sees.any()):
            teacher_logits, _ = teacher(batch["teacher_image"])
            targets = torch.where(sees, teacher_logits.argmax(1), targets)
    return targets


def _ece_pair(logits: torch.Tensor, labels: torch.Tensor,
              calibration: Calibration) -> tuple[float, float]:
    """ECE of the members' mean P(water) before and after ``calibration``."""
    before = water_probability(logits).mean(0).numpy()
    after = water_probability(logits, calibration.temperature, calibration.bias).mean(0).numpy()
    return (expected_calibration_error(before, labels.numpy()),
            expected_calibration_error(after, labels.numpy()))


def calibrate(members: list[FloodStudent], loader: Iterable[dict[str, torch.Tensor]],
              device: torch.device, teacher: torch.nn.Module | None = None) -> dict[str, Any]:
    """Fit the calibration (``fit_calibration``) on the held-out pixels, for the members'
    mean probability that the maps use (dropout off here; the maps add MC draws).

    Targets are ``calibration_targets``: the hand labels, and with ``teacher`` its hard map
    of every radar pass elsewhere in the hold-out. Overlapping tiles see a pixel more than
    once: when batches carry ``window`` and ``time_index`` each (time, pixel) counts once.
    With no target pixel, or fewer than ``MIN_CALIBRATION_PIXELS`` of a class, the
    calibration stays the identity and the reason is recorded. ECE is reported on all the
    targets and on the hand-labelled ones alone.
    """
    logits_list, labels_list, keys_list, hand_list = [], [], [], []
    with torch.no_grad():
        for batch in loader:
            batch = to_device(batch, device)
            with autocast(device):
                member_logits = ensemble_logits(members, batch)  # (S, B, 2, H, W)
                targets = calibration_targets(batch, teacher)
            kept = targets != IGNORE_LABEL
            logits_list.append(member_logits.permute(0, 1, 3, 4, 2)[:, kept].float().cpu())
            labels_list.append(targets[kept].cpu())
            hand_list.append((batch["label"] != IGNORE_LABEL)[kept].cpu())
            if "window" in batch and "time_index" in batch:
                keys_list.append(_pixel_keys(batch)[kept].cpu())
    identity = asdict(Calibration())
    if not logits_list or sum(len(x) for x in labels_list) == 0:
        return {**identity, "pixels": 0, "pixels_per_class": [0, 0], "hand_labelled_pixels": 0,
                "note": "no held-out pixel to calibrate on: calibration left as it is"}
    logits, labels, hand = (torch.cat(logits_list, dim=1), torch.cat(labels_list),
                            torch.cat(hand_list))
    if len(keys_list) == len(logits_list):
        _, first = np.unique(torch.cat(keys_list).numpy(), return_index=True)
        logits, labels, hand = logits[:, first], labels[first], hand[first]
    per_class = torch.bincount(labels.long(), minlength=2)[:2]
    counts = {"pixels": int(labels.numel()), "pixels_per_class": per_class.tolist(),
              "hand_labelled_pixels": int(hand.sum())}
    if int(per_class.min()) < MIN_CALIBRATION_PIXELS:
        # one class only (e.g. 722 dry pixels): the NLL falls as T -> 0 without bound, so a
        # fit would only sharpen the map, never calibrate it
        ece, _ = _ece_pair(logits, labels, Calibration())
        return {**identity, **counts, "ece_before": ece, "ece_after": ece,
                "note": f"fewer than {MIN_CALIBRATION_PIXELS} held-out pixels of a class: "
                        "calibration left as it is"}
    calibration = fit_calibration(logits, labels)
    before, after = _ece_pair(logits, labels, calibration)
    result = {**asdict(calibration), **counts, "ece_before": before, "ece_after": after}
    if bool(hand.any()):
        result["hand_labelled_ece_before"], result["hand_labelled_ece_after"] = _ece_pair(
            logits[:, hand], labels[hand], calibration)
    return result
