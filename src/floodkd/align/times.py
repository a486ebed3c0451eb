"""The cube's time axis and the nearest-in-time matching of each modality to it."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

__all__ = ["time_axis", "match_nearest", "match_once", "to_utc_naive"]


def to_utc_naive(values: Iterable) -> np.ndarray:
    """Parse ISO 8601 times (any offset) to UTC ``datetime64[ns]`` without a zone."""
    parsed = pd.to_datetime(pd.Series(list(values), dtype=object), utc=True)
    return parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def time_axis(*time_sets: np.ndarray) -> np.ndarray:
    """The sorted union of the given times (radar passes, optical dates), duplicates removed."""
    arrays = [np.asarray(t, dtype="datetime64[ns]") for t in time_sets if len(t)]
    if not arrays:
        return np.array([], dtype="datetime64[ns]")
    return np.unique(np.concatenate(arrays))


def match_nearest(
    targets: np.ndarray, sources: np.ndarray, window_days: float
) -> np.ndarray:
    """For each target time, the index of the nearest source time within ``window_days``.

    Returns an int array (-1 where no source lies within the window). Ties go to the
    earlier source, so the result does not depend on the order of equal distances.
    """
    targets = np.asarray(targets, dtype="datetime64[ns]")
    sources = np.asarray(sources, dtype="datetime64[ns]")
    matched = np.full(targets.shape, -1, dtype=np.int64)
    if sources.size == 0 or targets.size == 0:
        return matched
    order = np.argsort(sources, kind="stable")
    ordered = sources[order]
    window = np.timedelta64(int(round(window_days * 86400e9)), "ns")
    right = np.clip(np.searchsorted(ordered, targets), 0, ordered.size - 1)
    left = np.clip(right - 1, 0, ordered.size - 1)
    gap_left = np.abs(targets - ordered[left])
    gap_right = np.abs(ordered[right] - targets)
    best = np.where(gap_left <= gap_right, left, right)
    gap = np.minimum(gap_left, gap_right)
    matched[gap <= window] = order[best[gap <= window]]
    return matched


def match_once(targets: np.ndarray, sources: np.ndarray, window_days: float) -> np.ndarray:
    """Like ``match_nearest``, but every source is used at one target only: its nearest within
    ``window_days`` (ties to the earlier). A target reached by several sources keeps the
    nearest of them. Why: a radar pass or a label copied into a second time would count its
    training samples and evaluation pixels twice.
    """
    targets = np.asarray(targets, dtype="datetime64[ns]")
    sources = np.asarray(sources, dtype="datetime64[ns]")
    matched = np.full(targets.shape, -1, dtype=np.int64)
    best_gap = np.full(targets.shape, np.iinfo(np.int64).max, dtype=np.int64)
    for source, target in enumerate(match_nearest(sources, targets, window_days)):
        if target < 0:
            continue
        gap = abs(int((targets[target] - sources[source]).astype(np.int64)))
        if gap < best_gap[target]:
            matched[target], best_gap[target] = source, gap
    return matched
