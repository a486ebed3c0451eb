"""Segmentation scores and how well uncertainty ranks the errors."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = ["binary_scores", "uncertainty_error_auroc"]


def _ratio(numerator: int, denominator: int) -> float:
    # An undefined score (e.g. IoU with no water in truth nor prediction) is NaN, not 0 or 1.
    return float(numerator / denominator) if denominator else float("nan")


def binary_scores(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    """IoU, F1, precision and recall of water (True) over the valid pixels.

    All three arrays are boolean of one shape. Returns also ``pixels`` (valid pixels
    scored) and the confusion counts ``tp``, ``fp``, ``fn``, ``tn``.
    """
    pred, truth, valid = (np.asarray(a, dtype=bool) for a in (pred, truth, valid))
    if not pred.shape == truth.shape == valid.shape:
        raise ValueError(f"pred {pred.shape}, truth {truth.shape} and valid {valid.shape} "
                         "must have one shape")
    p, t = pred[valid], truth[valid]
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p & ~t))
    fn = int(np.count_nonzero(~p & t))
    tn = int(np.count_nonzero(~p & ~t))
    return {
        "iou": _ratio(tp, tp + fp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "pixels": int(p.size),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def uncertainty_error_auroc(uncertainty: np.ndarray, wrong: np.ndarray) -> float:
    """AUROC of uncertainty as a detector of wrong pixels (1: errors are the most uncertain,
    0.5: no better than chance). Rank-based (Mann-Whitney U) with ties averaged;
    non-finite uncertainties are ignored. NaN when there are no errors or no correct pixels.
    """
    score = np.asarray(uncertainty, dtype=np.float64).reshape(-1)
    positive = np.asarray(wrong, dtype=bool).reshape(-1)
    if score.shape != positive.shape:
        raise ValueError(f"uncertainty {score.shape} and wrong {positive.shape} differ in size")
    keep = np.isfinite(score)
    score, positive = score[keep], positive[keep]
    n_pos = int(positive.sum())
    n_neg = int(positive.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))
