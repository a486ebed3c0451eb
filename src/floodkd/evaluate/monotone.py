"""Is the student's flood probability non-decreasing in the water level at every pixel?

The student is built to be (``floodkd.models.student``); this measures it. The target's water
level is swept over ``levels`` (from its lowest to above its highest observed value): each
tile is predicted at every level, as ``floodkd predict`` predicts a scenario of an absolute
level (``floodkd.predict.cli.apply_scenario``: the level everywhere, each gauge history
shifted to end at it), and a pixel counts as monotone when no tile that covers it gives it a
lower probability at a higher level (so the blended map is monotone too). A fall smaller
than ``ROUNDING_TOLERANCE`` is float32 rounding, not the model: shifting a gauge history by
the level and reading it back relative to its last hour is exact only in real arithmetic
(on the demo, falls of 7e-9 at a P of 0.03).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["ROUNDING_TOLERANCE", "sweep_levels", "monotone_fraction", "level_sweep"]

ROUNDING_TOLERANCE = 1e-6  # of P: float32 resolves 6e-8 near P = 1


def sweep_levels(observed_m: np.ndarray, headroom_m: float, steps: int) -> np.ndarray | None:
    """``steps`` levels from the lowest observed level to ``headroom_m`` above the highest;
    None when nothing was observed."""
    observed = np.asarray(observed_m, dtype=np.float64)
    observed = observed[np.isfinite(observed)]
    if observed.size == 0:
        return None
    return np.linspace(observed.min(), observed.max() + headroom_m, steps)


def monotone_fraction(sweeps: Iterable[tuple[tuple[int, int, int, int], np.ndarray]],
                      shape: tuple[int, int],
                      tolerance: float = ROUNDING_TOLERANCE) -> float | None:
    """Share of the valid pixels whose probability never decreases (by more than
    ``tolerance``) along the sweep.

    ``sweeps`` yields (window (row_off, col_off, height, width), probabilities (levels,
    height, width)) per tile, levels in increasing order; a pixel of a tile is valid when its
    probability is finite at every level. None when no pixel is valid."""
    valid = np.zeros(shape, bool)
    broken = np.zeros(shape, bool)
    for (row_off, col_off, height, width), probabilities in sweeps:
        rows, cols = slice(row_off, row_off + height), slice(col_off, col_off + width)
        finite = np.isfinite(probabilities).all(0)
        with np.errstate(invalid="ignore"):
            decreases = (np.diff(probabilities, axis=0) < -tolerance).any(0)
        valid[rows, cols] |= finite
        broken[rows, cols] |= finite & decreases
    count = int(valid.sum())
    return float((valid & ~broken).sum() / count) if count else None


def level_sweep(cube_path: Any, time_index: int, windows: Iterable[tuple[int, int, int, int]],
                ensemble: Any, levels: np.ndarray, multiple: int
                ) -> Iterator[tuple[tuple[int, int, int, int], np.ndarray]]:
    """(window, calibrated P(flood) of the ensemble mean (levels, h, w)) per window of the
    cube at ``time_index``, all levels in one batch; dropout off, so the sweep is exact."""
    from floodkd.distill.data import collate, read_window, sample_tensors
    from floodkd.predict.cli import apply_scenario

    cube = xr.open_zarr(cube_path, chunks=None)
    for row_off, col_off, height, width in windows:
        window = read_window(cube, time_index, row_off, col_off, height, width)
        size = (-(-height // multiple) * multiple, -(-width // multiple) * multiple)
        bounds = (row_off, col_off, height, width)
        batch = collate([sample_tensors(apply_scenario(window, {"water_level_m": float(level)}),
                                        size, bounds, time_index) for level in levels])
        probabilities = ensemble.predict_probabilities(batch, 0).mean(0)  # (levels, H, W)
        probabilities = probabilities[:, :height, :width]
        no_terrain = ~np.isfinite(window["elevation_m"].values)
        probabilities[:, no_terrain] = np.nan  # as the maps: no terrain, no prediction
        yield bounds, probabilities
