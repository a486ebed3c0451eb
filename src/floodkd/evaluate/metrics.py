"""Segmentation scores and how well uncertainty ranks the errors."""

from __future__ import annotations

import numpy as np

__all__ = ["binary_scores", "flood_scores", "reliability_bins", "uncertainty_error_auroc"]


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


def flood_scores(pred: np.ndarray, truth: np.ndarray, reference_water: np.ndarray,
                 valid: np.ndarray) -> dict[str, float]:
    """``binary_scores`` of flood: water outside ``reference_water`` (permanent water, as the
    Copernicus Global Flood Monitoring service keeps it apart). A reference water pixel is
    flood in neither prediction nor truth, so it still counts in ``pixels`` and ``tn`` but
    cannot change IoU, F1, precision or recall."""
    reference = np.asarray(reference_water, dtype=bool)
    return binary_scores(np.asarray(pred, dtype=bool) & ~reference,
                         np.asarray(truth, dtype=bool) & ~reference, valid)


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
    from scipy.stats import rankdata  # 0.5 s to import: paid when scoring, not at start-up

    ranks = rankdata(score)
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def reliability_bins(prob_water: np.ndarray, is_water: np.ndarray,
                     bins: int = 10) -> list[dict[str, float]]:
    """The data of a reliability diagram: per equal-width bin of P(water) in [0, 1], its
    bounds, ``pixels``, ``mean_probability`` and ``observed_fraction`` (of water pixels;
    both None for an empty bin). Non-finite probabilities are ignored."""
    prob = np.asarray(prob_water, dtype=np.float64).reshape(-1)
    truth = np.asarray(is_water, dtype=bool).reshape(-1)
    if prob.shape != truth.shape:
        raise ValueError(f"prob_water {prob.shape} and is_water {truth.shape} differ in size")
    keep = np.isfinite(prob)
    prob, truth = prob[keep], truth[keep]
    index = np.clip((prob * bins).astype(int), 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    prob_sum = np.bincount(index, weights=prob, minlength=bins)
    water = np.bincount(index, weights=truth.astype(np.float64), minlength=bins)
    return [{"lower": i / bins, "upper": (i + 1) / bins, "pixels": int(counts[i]),
             "mean_probability": float(prob_sum[i] / counts[i]) if counts[i] else None,
             "observed_fraction": float(water[i] / counts[i]) if counts[i] else None}
            for i in range(bins)]
