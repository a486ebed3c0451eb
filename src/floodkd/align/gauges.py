"""Tide gauges on the grid: an inverse-distance water-level field and each time's history."""

from __future__ import annotations

import dask.array as da
import numpy as np

from floodkd.grid import RegionGrid

__all__ = ["IDW_POWER", "hour_index", "levels_at", "history", "idw_field"]

IDW_POWER = 2.0  # weights 1/d^2: smooth between gauges, the gauge value at a gauge
FLAG_MISSING = 4  # tide.nc flag: no observation and no prediction possible
FLAG_OBSERVED = 0


def hour_index(gauge_times: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index into the hourly gauge axis of the hour each time falls in (-1 outside it)."""
    hours = np.asarray(times, dtype="datetime64[ns]").astype("datetime64[h]")
    axis = np.asarray(gauge_times, dtype="datetime64[ns]").astype("datetime64[h]")
    if axis.size == 0:
        return np.full(hours.shape, -1, dtype=np.int64)
    idx = np.searchsorted(axis, hours)
    found = (idx < axis.size) & (axis[np.clip(idx, 0, axis.size - 1)] == hours)
    return np.where(found, idx, -1)


def levels_at(levels_m: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """(time, gauge) levels at the given hour indices; NaN where the hour is not recorded."""
    n_gauges = levels_m.shape[0]
    out = np.full((idx.size, n_gauges), np.nan, dtype=np.float32)
    ok = idx >= 0
    out[ok] = levels_m[:, idx[ok]].T
    return out


def history(levels_m: np.ndarray, idx: np.ndarray, hours: int) -> np.ndarray:
    """(time, gauge, lag) hourly levels: lag 0 is ``hours - 1`` hours before, the last lag
    is the hour of the time itself. NaN before the record starts or where unrecorded."""
    n_gauges = levels_m.shape[0]
    lags = np.arange(hours)
    out = np.full((idx.size, n_gauges, hours), np.nan, dtype=np.float32)
    for t, end in enumerate(idx):
        if end < 0:
            continue
        positions = end - (hours - 1) + lags
        ok = positions >= 0
        out[t][:, ok] = levels_m[:, positions[ok]]
    return out


def _idw_block(
    levels_m: np.ndarray,
    gauge_x: np.ndarray,
    gauge_y: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
) -> np.ndarray:
    """IDW of one time's gauge levels at the pixel centres ``x`` (cols), ``y`` (rows)."""
    valid = np.isfinite(levels_m)
    if not valid.any():
        return np.full((y.size, x.size), np.nan, dtype=np.float32)
    gx, gy, value = gauge_x[valid], gauge_y[valid], levels_m[valid].astype(np.float64)
    dx = x[None, None, :] - gx[:, None, None]
    dy = y[None, :, None] - gy[:, None, None]
    dist2 = dx * dx + dy * dy
    on_gauge = dist2 == 0
    with np.errstate(divide="ignore", invalid="ignore"):  # inf/inf on a gauge, fixed below
        weight = 1.0 / dist2 ** (IDW_POWER / 2)
        field = (weight * value[:, None, None]).sum(0) / weight.sum(0)
    # at a gauge the weight is infinite: take the gauge value itself
    hit = on_gauge.any(0)
    if hit.any():
        field[hit] = value[on_gauge.argmax(0)[hit]]
    return field.astype(np.float32)


def idw_field(
    levels_tg: np.ndarray,
    gauge_x: np.ndarray,
    gauge_y: np.ndarray,
    grid: RegionGrid,
    chunk_px: int,
) -> da.Array:
    """Lazy (time, y, x) water-level field from (time, gauge) levels at gauge positions (grid
    CRS metres), one chunk computed at a time."""
    n_times = levels_tg.shape[0]
    ny, nx = grid.shape
    x_all, y_all = grid.x, grid.y
    template = da.empty((n_times, ny, nx), dtype=np.float32, chunks=(1, chunk_px, chunk_px))

    def block(_: np.ndarray, block_info=None) -> np.ndarray:
        (t0, t1), (r0, r1), (c0, c1) = block_info[None]["array-location"]
        return np.stack([
            _idw_block(levels_tg[t], gauge_x, gauge_y, x_all[c0:c1], y_all[r0:r1])
            for t in range(t0, t1)
        ])

    return da.map_blocks(block, template, dtype=np.float32)
