"""Exposure of assets: flood probability over each footprint, and its annual exceedance.

Footprints: a point (or each point of a multipoint) samples the pixel it falls in; a line or
polygon takes every pixel it touches (GDAL's all-touched rasterisation), so a 6 m road on a
10 m grid still meets the pixels it crosses. Pixels without a prediction (nodata) are left
out; ``covered_fraction`` says how much of the footprint had one.

Annual exceedance probability (AEP) of flooding, per asset and climate. A scenario map of
the T-year event gives p(T), the probability that the asset floods when the water stands at
the T-year level. If the annual maximum level has exceedance frequency f = 1/T, the chance
that the asset floods in a year is the integral of p over f from 0 to 1 (an annual maximum
is a draw of f uniform on (0, 1)). With maps at a few return periods:

- p is first made non-decreasing in T (a rarer, higher event floods at least what a more
  frequent one does; the student is monotone in the water level, ensemble noise is not);
- between the computed frequencies: the trapezoid rule over f;
- rarer than the longest T (f below 1/T_max): p held at p(T_max) (flat tail);
- more frequent than the shortest T (f above 1/T_min): p = 0, i.e. the T_min-year event is
  taken as the standard that the coast's defences hold, as expected-annual-damage practice
  does with a protection standard.

``aep_flood_lower`` and ``aep_flood_upper`` bound the integral using only that p is
monotone: between computed points p lies between its two end values; below f = 1/T_max it
lies in [p(T_max), 1]; above f = 1/T_min in [0, p(T_min)]. The central value lies between.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
from affine import Affine
from rasterio.features import rasterize
from rasterio.windows import Window
from shapely.geometry.base import BaseGeometry

__all__ = ["FOOTPRINT_COLUMNS", "Reader", "array_reader", "footprint_statistics",
           "AnnualExceedance", "annual_exceedance", "climate_groups", "summarise"]

FOOTPRINT_COLUMNS = ("p_max", "p_mean", "std_mean", "std_at_max", "pixels", "covered_fraction")

# read(window) -> (P(flood), std of P(flood)) for that window, NaN where no prediction
Reader = Callable[[Window], tuple[np.ndarray, np.ndarray]]


def array_reader(probability: np.ndarray, std: np.ndarray) -> Reader:
    """A Reader over in-memory (rows, cols) arrays of the whole grid."""

    def read(window: Window) -> tuple[np.ndarray, np.ndarray]:
        rows, cols = window.toslices()
        return probability[rows, cols], std[rows, cols]

    return read


def footprint_statistics(
    geometries: Sequence[BaseGeometry | None], transform: Affine, shape: tuple[int, int],
    read: Reader,
) -> pd.DataFrame:
    """Per geometry (in the grid's CRS), the columns of FOOTPRINT_COLUMNS.

    ``p_max``/``p_mean``: max and mean P(flood) over the footprint's pixels with a prediction;
    ``std_mean``: mean std of P(flood) there; ``std_at_max``: std at the pixel of ``p_max``;
    ``pixels``: pixels the footprint touches inside the grid; ``covered_fraction``: share of
    them with a prediction. NaN statistics where no pixel has one.
    """
    rows = [_one_footprint(geometry, transform, shape, read) for geometry in geometries]
    return pd.DataFrame(rows, columns=list(FOOTPRINT_COLUMNS))


def _one_footprint(geometry, transform, shape, read) -> tuple:
    window, mask = _footprint_mask(geometry, transform, shape)
    pixels = int(mask.sum()) if mask is not None else 0
    if pixels == 0:
        return (np.nan, np.nan, np.nan, np.nan, 0, 0.0)
    probability, std = (np.asarray(a, dtype=np.float64) for a in read(window))
    valid = mask & np.isfinite(probability)
    if not valid.any():
        return (np.nan, np.nan, np.nan, np.nan, pixels, 0.0)
    values, spread = probability[valid], std[valid]
    at_max = int(np.argmax(values))
    std_mean = float(np.nanmean(spread)) if np.isfinite(spread).any() else np.nan
    return (float(values[at_max]), float(values.mean()), std_mean, float(spread[at_max]),
            pixels, float(valid.sum() / pixels))


def _footprint_mask(
    geometry: BaseGeometry | None, transform: Affine, shape: tuple[int, int]
) -> tuple[Window | None, np.ndarray | None]:
    """The window around a footprint (clipped to the grid) and its pixel mask there."""
    if geometry is None or geometry.is_empty:
        return None, None
    n_rows, n_cols = shape
    inverse = ~transform
    if geometry.geom_type in ("Point", "MultiPoint"):
        points = getattr(geometry, "geoms", [geometry])
        cells = {tuple(int(np.floor(v)) for v in inverse * (p.x, p.y))[::-1] for p in points}
        cells = {(r, c) for r, c in cells if 0 <= r < n_rows and 0 <= c < n_cols}
        if not cells:
            return None, None
        r0, c0 = min(r for r, _ in cells), min(c for _, c in cells)
        r1, c1 = max(r for r, _ in cells) + 1, max(c for _, c in cells) + 1
        mask = np.zeros((r1 - r0, c1 - c0), dtype=bool)
        for r, c in cells:
            mask[r - r0, c - c0] = True
        return Window(c0, r0, c1 - c0, r1 - r0), mask
    corners = [inverse * xy for xy in _corners(geometry.bounds)]
    cols = [c for c, _ in corners]
    rows = [r for _, r in corners]
    # one pixel of margin: all-touched may reach the pixel beyond a bound on a pixel edge
    c0, c1 = max(int(np.floor(min(cols))) - 1, 0), min(int(np.ceil(max(cols))) + 1, n_cols)
    r0, r1 = max(int(np.floor(min(rows))) - 1, 0), min(int(np.ceil(max(rows))) + 1, n_rows)
    if c1 <= c0 or r1 <= r0:
        return None, None
    window = Window(c0, r0, c1 - c0, r1 - r0)
    mask = rasterize([(geometry, 1)], out_shape=(r1 - r0, c1 - c0),
                     transform=transform * Affine.translation(c0, r0), fill=0,
                     all_touched=True, dtype="uint8").astype(bool)
    return window, mask


def _corners(bounds: tuple[float, float, float, float]) -> list[tuple[float, float]]:
    left, bottom, right, top = bounds
    return [(left, bottom), (left, top), (right, bottom), (right, top)]


@dataclass(frozen=True)
class AnnualExceedance:
    """Annual probability of flooding (see the module docstring), per asset."""

    central: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def annual_exceedance(
    return_periods_years: Sequence[float], probabilities: np.ndarray
) -> AnnualExceedance:
    """AEP of flooding from P(flood) at each return period.

    ``probabilities`` is (n_return_periods, n_assets), row k for ``return_periods_years[k]``.
    NaN where an asset has no probability at some return period.
    """
    periods = np.asarray(return_periods_years, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64).reshape(periods.size, -1)
    if periods.size == 0 or np.any(periods <= 1) or np.unique(periods).size != periods.size:
        raise ValueError(f"return periods must be distinct and above 1 year, got {periods}")
    order = np.argsort(periods)  # frequent to rare
    periods, p = periods[order], np.maximum.accumulate(p[order], axis=0)
    frequency = 1.0 / periods  # decreasing: frequent to rare
    rare, frequent = p[-1], p[0]
    gaps = -np.diff(frequency)[:, None]  # widths between neighbouring frequencies
    trapezoid = (gaps * (p[1:] + p[:-1]) / 2).sum(axis=0)
    central = frequency[-1] * rare + trapezoid
    lower = frequency[-1] * rare + (gaps * p[:-1]).sum(axis=0)
    upper = frequency[-1] * 1.0 + (gaps * p[1:]).sum(axis=0) + (1 - frequency[0]) * frequent
    return AnnualExceedance(central, lower, upper)


def climate_groups(scenarios: dict[str, dict]) -> dict[str, dict[float, str]]:
    """Scenarios that differ only in ``return_period_years``, grouped by their climate.

    Returns {climate name: {return period: scenario}}; the climate is ``present`` or
    ``<experiment>_<horizon>``. Scenarios without a return period (observed, fixed water
    levels) belong to none.
    """
    groups: dict[str, dict[float, str]] = {}
    for name, spec in scenarios.items():
        spec = spec or {}
        if "return_period_years" not in spec:
            continue
        rest = {k: v for k, v in spec.items() if k != "return_period_years"}
        # sorted keys: experiment, horizon -> "ssp245_2050"
        climate = "_".join(str(rest[k]) for k in sorted(rest)) if rest else "present"
        groups.setdefault(climate, {})[float(spec["return_period_years"])] = name
    return groups


def summarise(layers: dict[str, gpd.GeoDataFrame], class_column: str,
              threshold: float) -> pd.DataFrame:
    """Per scenario and asset class: how many assets, how many exposed (``p_max`` at or
    above ``threshold``), the expected number flooded (sum of ``p_max``, a lower bound when
    an asset's pixels flood independently), and the mean and max of the statistics."""
    rows = []
    for scenario, frame in layers.items():
        for klass, group in frame.groupby(class_column, sort=True):
            row = {
                "scenario": scenario,
                "climate": group["climate"].iloc[0] if "climate" in group else "",
                "class": klass,
                "assets": len(group),
                "exposed": int((group["p_max"] >= threshold).sum()),
                "expected_flooded": float(group["p_max"].sum(skipna=True)),
                "p_max_mean": float(group["p_max"].mean()),
                "p_max_max": float(group["p_max"].max()),
                "p_mean_mean": float(group["p_mean"].mean()),
                "std_mean": float(group["std_mean"].mean()),
            }
            if "aep_flood" in group:
                row |= {"aep_flood_mean": float(group["aep_flood"].mean()),
                        "aep_flood_max": float(group["aep_flood"].max())}
            rows.append(row)
    return pd.DataFrame(rows)
