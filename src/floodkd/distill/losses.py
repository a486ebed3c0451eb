"""Distillation losses: softened KL to the teacher, feature alignment, labelled task loss."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "IGNORE_LABEL",
    "DistillWeights",
    "kd_kl",
    "feature_alignment",
    "task_loss",
    "distillation_loss",
    "temperature_at",
]

IGNORE_LABEL = 255  # "no label" in label rasters


@dataclass(frozen=True)
class DistillWeights:
    """Weights of the three terms of the distillation loss."""

    kd: float = 0.5
    feature: float = 0.3
    task: float = 0.2


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of (B, H, W) values over pixels where mask is true (0 with gradient if none)."""
    if mask is None:
        return values.mean()
    weights = mask.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp(min=1.0)


def kd_kl(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pixel-wise KL(teacher || student) of softmax(logits / T), times T^2, mean over pixels.

    Logits are (B, K, H, W); ``mask`` (B, H, W) bool limits the mean to some pixels (e.g.
    where the teacher saw valid radar). The T^2 factor keeps gradient magnitudes comparable
    across temperatures (Hinton et al. 2015).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student {tuple(student_logits.shape)} and teacher "
                         f"{tuple(teacher_logits.shape)} logits differ in shape")
    student_log_p = F.log_softmax(student_logits / temperature, dim=1)
    teacher_log_p = F.log_softmax(teacher_logits.detach() / temperature, dim=1)
    per_pixel = (teacher_log_p.exp() * (teacher_log_p - student_log_p)).sum(dim=1)
    return _masked_mean(per_pixel, mask) * temperature**2


def feature_alignment(projected: torch.Tensor, teacher_features: torch.Tensor,
                      pixel_mask: torch.Tensor | None = None) -> torch.Tensor:
    """1 - cosine similarity between projected student and teacher features, mean over cells.

    ``projected`` (B, D, h, w) is average-pooled onto the teacher's (B, D, h', w') grid first.
    ``pixel_mask`` (B, H, W) bool keeps only the cells all of whose pixels it holds (a cell
    that sees a hidden pixel would pass the teacher's view of it on).
    """
    if projected.shape[:2] != teacher_features.shape[:2]:
        raise ValueError(f"projected {tuple(projected.shape)} and teacher "
                         f"{tuple(teacher_features.shape)} features differ in batch or width")
    if projected.shape[-2:] != teacher_features.shape[-2:]:
        projected = F.adaptive_avg_pool2d(projected, teacher_features.shape[-2:])
    cosine = F.cosine_similarity(projected, teacher_features.detach(), dim=1, eps=1e-6)
    cells = None
    if pixel_mask is not None:
        share = F.adaptive_avg_pool2d(pixel_mask[:, None].float(), teacher_features.shape[-2:])
        cells = share[:, 0] > 1 - 1e-6
    return _masked_mean(1.0 - cosine, cells)


def task_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Class-weighted cross-entropy over labelled pixels; label 255 is ignored.

    logits (B, K, H, W), labels (B, H, W) integer. With no labelled pixel the loss is 0
    (with a gradient path), not NaN, so sparsely labelled batches are safe.
    """
    labels = labels.long()
    labelled = labels != IGNORE_LABEL
    if not bool(labelled.any()):
        return logits.sum() * 0.0
    weight = None if class_weights is None else class_weights.to(logits.dtype).to(logits.device)
    return F.cross_entropy(logits, labels, weight=weight, ignore_index=IGNORE_LABEL)


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    projected_features: torch.Tensor,
    teacher_features: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    weights: DistillWeights = DistillWeights(),
    class_weights: torch.Tensor | None = None,
    kd_mask: torch.Tensor | None = None,
    feature_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """weights.kd * KL + weights.feature * (1 - cos) + weights.task * CE(labelled).

    ``kd_mask`` and ``feature_mask`` (B, H, W) limit the KL and the feature cells to pixels
    (see ``kd_kl`` and ``feature_alignment``).

    Returns the total (with gradient) and the detached parts by name (``kd``, ``feature``,
    ``task``, ``total``) for logging.
    """
    kd = kd_kl(student_logits, teacher_logits, temperature, kd_mask)
    feature = feature_alignment(projected_features, teacher_features, feature_mask)
    task = task_loss(student_logits, labels, class_weights)
    total = weights.kd * kd + weights.feature * feature + weights.task * task
    parts = {name: float(value.detach()) for name, value in
             (("kd", kd), ("feature", feature), ("task", task), ("total", total))}
    return total, parts


def temperature_at(step: int, total_steps: int, t_start: float = 5.0, t_end: float = 1.0) -> float:
    """Exponentially annealed temperature: t_start at step 0, t_end at step total_steps - 1.

    Steps outside [0, total_steps - 1] are clamped; a single-step run uses t_end.
    """
    if t_start <= 0 or t_end <= 0:
        raise ValueError(f"temperatures must be > 0, got t_start={t_start}, t_end={t_end}")
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if total_steps == 1:
        return float(t_end)
    fraction = min(max(step, 0), total_steps - 1) / (total_steps - 1)
    return float(t_start * math.exp(fraction * math.log(t_end / t_start)))
