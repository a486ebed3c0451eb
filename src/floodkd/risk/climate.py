"""Sea-level change per climate scenario: GCM ``zos`` near the region, or an AR6-style table.

From the GCM (ingest's ``gcm.nc``: zos in m, dims experiment, time, lat, lon, optionally
member): annual means of the ocean cells within ``radius_km`` of the region's centre (the
nearest ocean cell where none is that close). For each experiment the series is the same
model's historical run, continued by the experiment after the historical run ends, so the
model's own mean state and drift cancel in the difference

    delta = mean(horizon window) - mean(baseline years)

where the horizon window is the ``window_years`` centred on the horizon (2041-2060 for 2050),
cut to the years the run has. Interval: the members' spread where ``gcm.nc`` has a
``member`` dimension, plus the sampling error of both means from year-to-year variability
(residuals about a linear fit in each window), combined as a normal interval at
``confidence``. One member gives the variability part alone, and ``source`` says so.

A GCM's zos is dynamic and steric sea level only (no ice sheets, glaciers or land motion);
an AR6-style table (``risk.climate.projection_table``: experiment, year, quantile,
sea_level_change_m relative to the baseline) gives the total and replaces the GCM.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from pyproj import Geod
from scipy import stats

from floodkd.errors import InputError

__all__ = [
    "ClimateSettings", "COLUMNS", "HISTORICAL", "annual_series", "near_region_mean",
    "window_delta", "gcm_changes", "table_changes", "scenario_pairs",
]

COLUMNS = ["experiment", "horizon", "delta_m", "lower_m", "upper_m", "source"]
HISTORICAL = "historical"
_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class ClimateSettings:
    """The ``risk.climate`` config block (defaults in the schema)."""

    baseline: tuple[int, int] = (1995, 2014)
    horizons: tuple[int, ...] = (2050, 2100)
    window_years: int = 20
    radius_km: float = 150.0
    confidence: float = 0.9
    projection_table: str | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ClimateSettings:
        block = dict(config.get("risk", {}).get("climate", {}))
        for key in ("baseline", "horizons"):
            if key in block:
                block[key] = tuple(int(v) for v in block[key])
        block.setdefault("confidence", config.get("risk", {}).get("extremes", {})
                         .get("confidence", cls.confidence))
        return cls(**block)

    @property
    def baseline_text(self) -> str:
        return f"{self.baseline[0]}-{self.baseline[1]}"


def scenario_pairs(config: dict[str, Any]) -> set[tuple[str, int]]:
    """(experiment, horizon) of every climate scenario under predict.scenarios."""
    scenarios = config.get("predict", {}).get("scenarios", {})
    return {(str(s["experiment"]), int(s["horizon"])) for s in scenarios.values()
            if s and "experiment" in s}


def near_region_mean(zos: xr.DataArray, lon: float, lat: float, radius_km: float,
                     source: str | Path) -> tuple[xr.DataArray, int]:
    """zos averaged over ocean cells within ``radius_km`` of (lon, lat); the nearest ocean
    cell where none is that close. Returns the mean (dims without lat/lon) and the cell count."""
    ocean = zos.notnull().any([d for d in zos.dims if d not in ("lat", "lon")]).values
    if not ocean.any():
        raise InputError(source, "zos has no ocean cell (all values missing)",
                         "give zos files whose subset reaches the sea (raise buffer_cells)")
    lon2d, lat2d = np.meshgrid(zos["lon"].values, zos["lat"].values)
    _, _, metres = _GEOD.inv(np.full(lon2d.shape, lon), np.full(lat2d.shape, lat), lon2d, lat2d)
    distance = np.where(ocean, metres / 1000.0, np.inf)
    chosen = distance <= radius_km
    if not chosen.any():
        chosen = distance == distance.min()
    mask = xr.DataArray(chosen, dims=("lat", "lon"))
    return zos.where(mask).mean(("lat", "lon")), int(chosen.sum())


def annual_series(monthly: xr.DataArray) -> pd.DataFrame:
    """Annual means (years x experiment[, member] columns) of complete years only."""
    frame = monthly.to_series().dropna().unstack([d for d in monthly.dims if d != "time"])
    index = pd.DatetimeIndex(frame.index)
    counts = frame.groupby(index.year).count()
    means = frame.groupby(index.year).mean()
    return means.where(counts == 12)


def window_delta(years: np.ndarray, values: np.ndarray, baseline: tuple[int, int],
                 window: tuple[int, int]) -> tuple[float, float, int]:
    """(delta, its standard error, years in the window) of window mean minus baseline mean."""
    ok = np.isfinite(values)
    base = ok & (years >= baseline[0]) & (years <= baseline[1])
    late = ok & (years >= window[0]) & (years <= window[1])
    if not late.any():
        return float("nan"), float("nan"), 0
    delta = float(values[late].mean() - values[base].mean())
    return delta, float(np.hypot(_mean_error(years[base], values[base]),
                                 _mean_error(years[late], values[late]))), int(late.sum())


def _mean_error(years: np.ndarray, values: np.ndarray) -> float:
    """Standard error of a window mean from the residuals about its linear trend."""
    if values.size < 3:
        return 0.0
    residual = values - np.polyval(np.polyfit(years, values, 1), years)
    return float(residual.std(ddof=2) / np.sqrt(values.size))


def horizon_window(horizon: int, window_years: int) -> tuple[int, int]:
    """The ``window_years`` around ``horizon``: 2041-2060 for 2050 and 20 years."""
    first = horizon - window_years // 2 + 1
    return first, first + window_years - 1


def gcm_changes(gcm: xr.Dataset, lon: float, lat: float, settings: ClimateSettings,
                pairs: set[tuple[str, int]], source: str | Path) -> pd.DataFrame:
    """sea_level_change rows for every experiment x horizon and every scenario pair."""
    experiments = [str(e) for e in gcm["experiment"].values]
    if HISTORICAL not in experiments:
        raise InputError(source, f"no historical zos (experiments: {experiments}); the "
                         "baseline must come from the same model's historical run",
                         "add the model's historical zos files to inputs.gcm.glob")
    local, cells = near_region_mean(gcm["zos"], lon, lat, settings.radius_km, source)
    annual = annual_series(local)
    futures = sorted(set(experiments) - {HISTORICAL})
    wanted = sorted({(e, h) for e in futures for h in settings.horizons} | pairs)
    members = int(gcm.sizes.get("member", 1))
    z = stats.norm.ppf(0.5 + settings.confidence / 2.0)
    rows = []
    for experiment, horizon in wanted:
        if experiment not in experiments:
            raise InputError(source, f"a scenario needs experiment '{experiment}', which the "
                             f"GCM files lack (they have {experiments})",
                             f"add {experiment} zos files, or drop the scenario")
        series = _joined(annual, experiment)
        window = horizon_window(horizon, settings.window_years)
        deltas, errors = [], []
        for column in series.columns:
            years, values = series.index.values, series[column].values
            _check_years(years, values, settings.baseline, f"historical+{experiment} zos",
                         settings.baseline_text, source)
            delta, error, count = window_delta(years, values, settings.baseline, window)
            if count < settings.window_years // 2:
                raise InputError(source, f"{experiment} zos covers only {count} years of the "
                                 f"{window[0]}-{window[1]} window around {horizon}",
                                 "give files reaching the horizon, or change "
                                 "risk.climate.horizons / window_years")
            deltas.append(delta)
            errors.append(error)
        deltas, errors = np.array(deltas), np.array(errors)
        spread = deltas.std(ddof=1) if deltas.size > 1 else 0.0
        sigma = float(np.sqrt(spread ** 2 + np.mean(errors ** 2)))
        used = (window[0], min(window[1], int(series.index.max())))
        rows.append({
            "experiment": experiment, "horizon": horizon, "delta_m": float(deltas.mean()),
            "lower_m": float(deltas.mean() - z * sigma),
            "upper_m": float(deltas.mean() + z * sigma),
            "source": (f"GCM {gcm.attrs.get('model', 'unknown')} zos (dynamic+steric only), "
                       f"{experiment} vs historical {settings.baseline_text}, {used[0]}-"
                       f"{used[1]} mean, {cells} ocean cells within {settings.radius_km:g} km; "
                       f"{members} member(s): interval from "
                       + ("member spread and " if members > 1 else "")
                       + "year-to-year variability"),
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def _joined(annual: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """The historical run continued by ``experiment`` (columns: members, or one)."""
    def part(name: str) -> pd.DataFrame:
        block = annual[name] if isinstance(annual.columns, pd.MultiIndex) else annual[[name]]
        return block.to_frame() if isinstance(block, pd.Series) else block

    historical, future = part(HISTORICAL).dropna(how="all"), part(experiment)
    future = future[future.index > historical.index.max()].dropna(how="all")
    future.columns = historical.columns
    return pd.concat([historical, future]).sort_index()


def _check_years(years: np.ndarray, values: np.ndarray, baseline: tuple[int, int], what: str,
                 text: str, source: str | Path) -> None:
    have = set(years[np.isfinite(values)].tolist())
    missing = [y for y in range(baseline[0], baseline[1] + 1) if y not in have]
    if missing:
        raise InputError(source, f"{what} lacks {len(missing)} complete years of the baseline "
                         f"{text} (first missing: {missing[0]})",
                         "add historical files covering the baseline, or set "
                         "risk.climate.baseline to years the run has")


def table_changes(table: pd.DataFrame, settings: ClimateSettings,
                  pairs: set[tuple[str, int]], source: str | Path) -> pd.DataFrame:
    """sea_level_change rows from an AR6-style table (columns experiment, year, quantile,
    sea_level_change_m, relative to the baseline), interpolated linearly in year."""
    needed = {"experiment", "year", "quantile", "sea_level_change_m"}
    if not needed <= set(table.columns):
        raise InputError(source, f"columns {sorted(table.columns)} lack "
                         f"{sorted(needed - set(table.columns))}",
                         "give experiment,year,quantile,sea_level_change_m (one row each)")
    alpha = (1.0 - settings.confidence) / 2.0
    quantiles = {"lower_m": alpha, "delta_m": 0.5, "upper_m": 1.0 - alpha}
    experiments = sorted(set(table["experiment"].astype(str)))
    wanted = sorted({(e, h) for e in experiments for h in settings.horizons} | pairs)
    rows = []
    for experiment, horizon in wanted:
        mine = table[table["experiment"].astype(str) == experiment]
        row: dict[str, Any] = {"experiment": experiment, "horizon": horizon}
        for column, q in quantiles.items():
            at = mine[np.isclose(mine["quantile"].astype(float), q)].sort_values("year")
            years = at["year"].astype(float).values
            if years.size == 0 or not years.min() <= horizon <= years.max():
                raise InputError(source, f"no {q:g} quantile of {experiment} spanning {horizon}",
                                 f"add rows for quantile {q:g} around year {horizon} "
                                 "(risk.extremes.confidence sets which quantiles are read)")
            row[column] = float(np.interp(horizon, years, at["sea_level_change_m"].values))
        row["source"] = (f"projection table {Path(source).name} ({experiment}, quantiles "
                         f"{alpha:g}/0.5/{1 - alpha:g}, relative to {settings.baseline_text})")
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)

