"""Tide-gauge extremes: return levels with confidence intervals from a QC'd hourly record.

Per station: only observed hours count (ingest's filled hours are a tide prediction, never an
observation of a surge). The linear mean-sea-level trend is fitted jointly with an annual
cycle (so a record's seasons do not pass for a trend) and removed, so levels are those of
the sea at the record's end (``reference_year``), the present. A record shorter than
``trend_min_years`` keeps its levels (a few years of surges swamp a mm/yr trend, and fitting
one would add error, not remove it); its ``reference_year`` is the record's mean time. Then,
by record length (observed hours, in years):

- ``annual_maxima_gev``: at least ``min_years_annual_maxima`` complete years: a GEV fitted
  to the annual maxima (scipy.stats.genextreme; its shape ``c`` is minus the usual xi).
- ``pot_gpd``: shorter: peaks over the ``threshold_quantile`` of the hourly levels,
  declustered (a storm ends after ``decluster_hours`` below the threshold), a GPD fitted to
  the cluster peaks' excesses (scipy.stats.genpareto; its ``c`` is xi) and a Poisson rate.
- ``pot_gpd_regional_shape``: under ``min_years_free_shape``: a handful of storms cannot
  tell a tail's shape (a free fit on the demo's two years gives xi near 1 and a 100-year
  level of kilometres), so the shape is fixed at a regional value, as regional frequency
  analysis does (``regional_shape``, 0: an exponential tail), and the interval draws the
  shape from ``regional_shape`` +- ``shape_range`` (tide-gauge surge tails mostly fall in
  -0.2..0.2) in every bootstrap refit: the wider, documented method for short records.
- refused: under ``min_record_years`` of observations, or fewer than ``min_peaks`` storms:
  the station's row has no level and its ``method`` says why. If no station has a level,
  the whole region is refused with an InputError.

Intervals: a parametric-free bootstrap (peaks resampled with replacement, their number drawn
from a Poisson for POT), percentiles at ``confidence``. A return period beyond
``extrapolation_factor`` times the record is still given, but ``method`` says
``extrapolated <k>x the record``: no record can test its tail that far, so it is indicative.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from floodkd.errors import InputError

__all__ = [
    "ExtremeSettings", "StationFit", "COLUMNS", "observed_series", "remove_msl_trend",
    "annual_maxima", "decluster_peaks", "fit_station", "return_levels_table", "fit_region",
    "design_storm",
]

HOURS_PER_YEAR = 24 * 365.25
FLAG_OBSERVED = 0  # tide.nc flag: a real observation (see floodkd.ingest.tide)
COLUMNS = ["station", "return_period_years", "level_m", "lower_m", "upper_m", "method",
           "record_years", "reference_year"]


@dataclass(frozen=True)
class ExtremeSettings:
    """The ``risk.extremes`` config block (defaults in the schema)."""

    return_periods_years: tuple[float, ...] = (10.0, 50.0, 100.0)
    confidence: float = 0.9
    bootstrap_samples: int = 200
    min_record_years: float = 1.0
    min_years_annual_maxima: int = 20
    year_coverage: float = 0.8
    threshold_quantile: float = 0.98
    decluster_hours: int = 72
    min_peaks: int = 8
    extrapolation_factor: float = 4.0
    trend_min_years: float = 5.0
    min_years_free_shape: float = 10.0
    regional_shape: float = 0.0
    shape_range: float = 0.2
    seed: int = 0

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ExtremeSettings:
        block = dict(config.get("risk", {}).get("extremes", {}))
        if "return_periods_years" in block:
            block["return_periods_years"] = tuple(float(t) for t in block["return_periods_years"])
        return cls(**block)


@dataclass(frozen=True)
class StationFit:
    """One station's fitted model, or why there is none (``distribution`` None)."""

    station: str
    method: str
    record_years: float
    reference_year: float
    distribution: str | None = None  # "genextreme" or "genpareto"
    params: tuple[float, ...] = ()  # scipy's (c, loc, scale)
    rate_per_year: float = 1.0  # events per year (1 for annual maxima)
    threshold_m: float = 0.0  # POT threshold (0 for annual maxima)
    boot_params: np.ndarray | None = None  # (B, 3) bootstrap refits
    boot_rates: np.ndarray | None = None  # (B,)
    peaks_m: np.ndarray | None = None  # the maxima or cluster peaks, detrended
    peak_return_periods: np.ndarray | None = None  # their empirical return periods (years)

    def levels(self, periods: np.ndarray, params: tuple[float, ...] | np.ndarray | None = None,
               rate: float | np.ndarray | None = None) -> np.ndarray:
        """Return levels (m) for ``periods`` (years); with arrays of params, one row each."""
        c, loc, scale = (np.asarray(p, float)[..., None] for p in
                         (params if params is not None else self.params))
        rate = np.asarray(self.rate_per_year if rate is None else rate, float)[..., None]
        periods = np.asarray(periods, float)
        if self.distribution == "genextreme":
            return stats.genextreme.ppf(1.0 - 1.0 / periods, c, loc, scale)
        # POT: the level exceeded rate * (1 - F(excess)) = 1 / T times a year
        exceed = np.clip(1.0 / (rate * periods), 0.0, 1.0)
        return self.threshold_m + stats.genpareto.ppf(1.0 - exceed, c, 0.0, scale)

    def interval(self, periods: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
        """Bootstrap percentile interval of the return levels for ``periods``."""
        samples = self.levels(periods, self.boot_params.T, self.boot_rates)
        alpha = (1.0 - confidence) / 2.0
        return (np.nanquantile(samples, alpha, axis=0),
                np.nanquantile(samples, 1.0 - alpha, axis=0))


def observed_series(tide: xr.Dataset, station: str) -> pd.Series:
    """Observed hourly levels of one station (filled, removed and missing hours dropped)."""
    one = tide.sel(station=station)
    keep = (one["flag"].values == FLAG_OBSERVED) & np.isfinite(one["water_level_m"].values)
    return pd.Series(one["water_level_m"].values[keep].astype(float),
                     index=pd.DatetimeIndex(one["time"].values[keep]))


def decimal_year(index: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(index.year + (index.day_of_year - 1 + index.hour / 24.0) / 365.25)


def remove_msl_trend(levels: pd.Series) -> tuple[pd.Series, float, float]:
    """Levels with the linear MSL trend removed, referred to the record's end.

    Returns (detrended levels, trend in m per year, reference year). The trend is fitted
    with an annual cycle beside it, so a season that falls once more than others in a short
    record is not mistaken for a trend.
    """
    years = decimal_year(levels.index)
    reference = float(years.max())
    phase = 2 * np.pi * years
    design = np.column_stack([np.ones_like(years), years - reference, np.cos(phase),
                              np.sin(phase)])
    coef, *_ = np.linalg.lstsq(design, levels.values, rcond=None)
    trend = float(coef[1])
    return levels - trend * (years - reference), trend, reference


def annual_maxima(levels: pd.Series, coverage: float) -> pd.Series:
    """The maximum of each calendar year with at least ``coverage`` of its hours observed."""
    by_year = levels.groupby(levels.index.year)
    hours = np.array([366 * 24 if pd.Timestamp(year=y, month=1, day=1).is_leap_year else 8760
                      for y in by_year.size().index])
    complete = by_year.size().values >= coverage * hours
    return by_year.max()[complete]


def decluster_peaks(levels: pd.Series, threshold: float, run_hours: int) -> pd.Series:
    """Cluster maxima above ``threshold``: a cluster ends after ``run_hours`` hours without
    an exceedance (runs declustering, as pyextremes' ``get_extremes(method="POT", r=...)``)."""
    above = levels[levels > threshold]
    if above.empty:
        return above
    gap = above.index.to_series().diff() > pd.Timedelta(hours=run_hours)
    cluster = gap.cumsum().values
    return above.loc[above.groupby(cluster).idxmax().values]


def fit_station(station: str, levels: pd.Series, settings: ExtremeSettings) -> StationFit:
    """Detrend, choose the method by record length, fit and bootstrap one station."""
    record_years = levels.size / HOURS_PER_YEAR
    if record_years < settings.min_record_years:
        end = float(np.max(decimal_year(levels.index))) if levels.size else float("nan")
        return StationFit(station, f"refused: {record_years:.2f} years of observations, "
                          f"under risk.extremes.min_record_years {settings.min_record_years:g}",
                          record_years, end)
    if record_years >= settings.trend_min_years:
        detrended, trend, reference = remove_msl_trend(levels)
        trend_note = f"MSL trend {trend * 1000:+.1f} mm/yr removed"
    else:  # a few years of surges and seasons swamp a mm/yr trend: fitting one adds error
        detrended, reference = levels, float(np.mean(decimal_year(levels.index)))
        trend_note = (f"no MSL trend removed ({record_years:.1f} y < risk.extremes."
                      f"trend_min_years {settings.trend_min_years:g}): levels at the record's "
                      "mean sea level")
    rng = np.random.default_rng(settings.seed)
    maxima = annual_maxima(detrended, settings.year_coverage)
    if maxima.size >= settings.min_years_annual_maxima:
        peaks = maxima.values
        params = _fit("genextreme", peaks)
        boot = np.array([_fit("genextreme", rng.choice(peaks, peaks.size))
                         for _ in range(settings.bootstrap_samples)])
        ranks = np.arange(1, peaks.size + 1)
        return StationFit(
            station, f"annual_maxima_gev ({peaks.size} years; {trend_note})", record_years,
            reference, "genextreme", params, 1.0, 0.0, boot, np.ones(len(boot)),
            np.sort(peaks)[::-1], (peaks.size + 1) / ranks)
    threshold = float(np.quantile(detrended.values, settings.threshold_quantile))
    peaks = decluster_peaks(detrended, threshold, settings.decluster_hours).values
    if peaks.size < settings.min_peaks:
        return StationFit(station, f"refused: {peaks.size} storms above the "
                          f"{settings.threshold_quantile:g} quantile, under "
                          f"risk.extremes.min_peaks {settings.min_peaks}", record_years, reference)
    rate = peaks.size / record_years
    free = record_years >= settings.min_years_free_shape
    shape = None if free else settings.regional_shape
    params = _fit("genpareto", peaks - threshold, shape)
    boot_params, boot_rates = [], []
    for _ in range(settings.bootstrap_samples):
        count = max(int(rng.poisson(peaks.size)), 3)
        # too few storms to estimate a tail shape: draw it from the regional range instead
        drawn = None if free else shape + rng.uniform(-1, 1) * settings.shape_range
        boot_params.append(_fit("genpareto", rng.choice(peaks, count) - threshold, drawn))
        boot_rates.append(count / record_years)
    ranks = np.arange(1, peaks.size + 1)
    name = "pot_gpd" if free else (
        f"pot_gpd_regional_shape (shape fixed at {shape:g}, interval with shape in "
        f"{shape - settings.shape_range:g}..{shape + settings.shape_range:g}: "
        f"{record_years:.1f} y < risk.extremes.min_years_free_shape "
        f"{settings.min_years_free_shape:g})")
    return StationFit(
        station, f"{name}; {peaks.size} storms over {threshold:.2f} m, declustered "
        f"{settings.decluster_hours} h; {trend_note}", record_years, reference, "genpareto",
        params, rate, threshold, np.array(boot_params), np.array(boot_rates),
        np.sort(peaks)[::-1], record_years * (peaks.size + 1) / (peaks.size * ranks))


def _fit(distribution: str, values: np.ndarray,
         shape: float | None = None) -> tuple[float, float, float]:
    """Maximum-likelihood (c, loc, scale); a GPD's location is fixed at 0 (excesses) and its
    shape too where ``shape`` is given."""
    with warnings.catch_warnings():  # optimiser chatter on bootstrap resamples with ties
        warnings.simplefilter("ignore", RuntimeWarning)
        if distribution == "genpareto" and shape is not None:
            c, loc, scale = stats.genpareto.fit(values, fc=shape, floc=0.0)
        elif distribution == "genpareto":
            c, loc, scale = stats.genpareto.fit(values, floc=0.0)
        else:
            c, loc, scale = stats.genextreme.fit(values)
    return float(c), float(loc), float(scale)


def return_levels_table(fits: list[StationFit], settings: ExtremeSettings) -> pd.DataFrame:
    """The ``return_levels.csv`` rows: one per station and configured return period."""
    periods = np.asarray(settings.return_periods_years, float)
    rows = []
    for fit in fits:
        if fit.distribution is None:
            levels = lower = upper = np.full(periods.shape, np.nan)
        else:
            levels = fit.levels(periods)
            lower, upper = fit.interval(periods, settings.confidence)
        for period, level, low, high in zip(periods, levels, lower, upper, strict=True):
            method = fit.method
            factor = period / fit.record_years
            if fit.distribution is not None and factor > settings.extrapolation_factor:
                method += (f"; extrapolated {factor:.0f}x the record: whether the fitted "
                           "tail holds that far is untested, read as indicative")
            rows.append({"station": fit.station, "return_period_years": period,
                         "level_m": level, "lower_m": low, "upper_m": high, "method": method,
                         "record_years": round(fit.record_years, 3),
                         "reference_year": round(fit.reference_year, 3)})
    return pd.DataFrame(rows, columns=COLUMNS)


def design_storm(tide: xr.Dataset, station: str, hours: int) -> pd.DataFrame:
    """The ``hours`` before and at the station's highest observed hour that has a full history,
    relative to that peak (lag 0 oldest): the shape a scenario's storm hydrograph takes.
    The history may use filled hours (the tide between observations); the peak is observed."""
    one = tide.sel(station=station)
    level = one["water_level_m"].values.astype(float)
    observed = (one["flag"].values == FLAG_OBSERVED) & np.isfinite(level)
    order = np.argsort(np.where(observed, level, -np.inf))[::-1]
    for peak in order[: max(int(observed.sum()), 0)]:
        if peak + 1 < hours:
            continue
        window = level[peak - hours + 1: peak + 1]
        if np.isfinite(window).all():
            return pd.DataFrame({"station": station, "lag": np.arange(hours),
                                 "level_below_peak_m": window - level[peak]})
    raise InputError(station, f"no observed peak of this gauge has {hours} hours of record "
                     "before it", "give a longer record or lower align.gauge_history_hours")


def fit_region(tide: xr.Dataset, settings: ExtremeSettings, source: str) -> list[StationFit]:
    """Fit every station of a region's ``tide.nc``; refuse the region if none has a level."""
    fits = [fit_station(str(s), observed_series(tide, str(s)), settings)
            for s in tide["station"].values]
    if all(fit.distribution is None for fit in fits):
        reasons = "; ".join(f"{fit.station}: {fit.method}" for fit in fits)
        raise InputError(source, f"no gauge record supports return levels ({reasons})",
                         "give a longer tide-gauge record (at least risk.extremes."
                         "min_record_years of observed hours), or lower that minimum knowingly")
    return fits
