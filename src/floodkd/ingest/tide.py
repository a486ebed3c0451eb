"""Ingest tide-gauge records: QC, hourly resampling, harmonic gap filling, one NetCDF.

Writes into the modality folder ``tide.nc`` (dims station, time; hourly UTC) and
``constituents.csv``. QC order per station: duplicate timestamps (identical rows dropped,
conflicting ones refused), unsorted rows (sorted), provider "do not use" flags (missing),
hourly resampling (gaps NaN), flat lines, spikes against a ``utide`` harmonic fit; then the
final fit on the clean hours predicts the tide, and gaps inside the record are filled by that
prediction and flagged, never passed off as observations.
"""

from __future__ import annotations

import glob
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import utide
import xarray as xr
from pyproj import Geod
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from floodkd.errors import InputError
from floodkd.ingest.plausibility import check_water_levels
from floodkd.ingest.tide_formats import (
    GaugeRecord,
    read_gesla3,
    read_uhslc,
    read_uhslc_stations,
)
from floodkd.region import region_outline

__all__ = [
    "FLAG_FILLED", "FLAG_FLAT", "FLAG_MISSING", "FLAG_OBSERVED", "FLAG_SPIKE",
    "StationSeries", "assemble", "clean_rows", "constituents_table", "find_flat_lines",
    "find_spikes", "fit_tide", "fit_without_spikes", "ingest", "predict_tide",
    "process_station", "to_hourly",
]

log = logging.getLogger(__name__)

# Flag codes of the data contract (tide.nc `flag`).
FLAG_OBSERVED, FLAG_FILLED, FLAG_SPIKE, FLAG_FLAT, FLAG_MISSING = 0, 1, 2, 3, 4
FLAG_MEANINGS = "observed filled_by_prediction spike_removed_and_filled " \
                "flat_line_removed_and_filled missing_no_prediction"

HOUR = np.timedelta64(1, "h")
FLAT_RUN_HOURS = 6  # a gauge repeating one value this long is stuck, not measuring
SPIKE_Z = 5.0  # robust z-score above which a residual is a spike
MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this = its standard deviation
# Floor on the robust scale: a nearly noise-free record (a MAD of a millimetre) would
# otherwise call ordinary gauge resolution steps spikes.
SPIKE_MIN_SCALE_M = 0.01
# Residuals are compared with their running median over this many hours, so storm surges
# (hours to days long, the very signal flood mapping needs) are not taken for spikes.
SPIKE_WINDOW_HOURS = 7
SPIKE_PASSES = 4  # fits at most; two or three settle the spike set in practice
MIN_RECORD_DAYS = 15  # M2 and S2 separate after 14.8 days (Rayleigh criterion)
STATION_BUFFER_KM = 50.0  # gauges often sit just outside a region's outline
MAX_LISTED = 5  # how many bad timestamps an error message lists


@dataclass
class StationSeries:
    """One station after QC, on its own hourly axis, with its harmonic fit."""

    record: GaugeRecord
    time: np.ndarray  # hourly datetime64[ns]
    observed_m: np.ndarray  # clean observations, NaN where missing or removed
    removed_flag: np.ndarray  # int8: FLAG_SPIKE / FLAG_FLAT where QC removed a value, else 0
    coef: Any  # utide solution
    counts: dict[str, int] = field(default_factory=dict)


def ingest(region: dict[str, Any], out_dir: Path) -> None:
    """Read, QC and gap-fill the region's gauges; write ``tide.nc`` and ``constituents.csv``."""
    settings = region["inputs"]["tide"]
    pattern = settings["glob"]
    paths = [Path(p) for p in sorted(glob.glob(pattern)) if Path(p).is_file()]
    if settings["format"] == "uhslc":
        stations_path = settings.get("stations")
        if not stations_path:
            raise InputError("config", "inputs.tide.stations is missing for format uhslc",
                             "set it to the UHSLC station metadata CSV")
        stations_path = Path(stations_path)
        table = read_uhslc_stations(stations_path)
        paths = [p for p in paths if p.resolve() != stations_path.resolve()]
    if not paths:
        raise InputError(pattern, "no tide-gauge files match this glob",
                         "check inputs.tide.glob in the config, or run `floodkd demo` first")
    unit = settings.get("unit")
    if settings["format"] == "uhslc":
        records = [read_uhslc(p, table, stations_path, unit) for p in paths]
    else:
        records = [read_gesla3(p, unit) for p in paths]
    for record in records:
        check_water_levels(record.path, record.station, record.level_m, record.unit,
                           record.unit_fix)
    _check_unique_stations(records)
    outline = region_outline(region)
    for record in records:
        _check_near_region(record, outline)
    series = [process_station(record) for record in records]
    dataset = assemble(series)
    dataset.attrs["source_files"] = json.dumps([str(p) for p in paths])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_netcdf(dataset, out_dir / "tide.nc")
    constituents_table(series).to_csv(out_dir / "constituents.csv", index=False)


# ----------------------------------------------------------------------------- QC steps


def clean_rows(record: GaugeRecord) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Duplicates, order and provider flags: (sorted unique times, levels, counts).

    Rows repeating a timestamp with the same level are dropped; a timestamp with different
    levels is refused, since no rule can tell which is right.
    """
    rows = pd.DataFrame({"time": record.time_utc, "level": record.level_m,
                         "use": record.use, "line": record.line})
    counts: dict[str, int] = {}
    repeated = rows[rows["time"].duplicated(keep=False)]
    if len(repeated):
        conflicting = repeated.groupby("time").filter(
            lambda g: g["level"].round(6).nunique(dropna=False) > 1)
        if len(conflicting):
            listed = [f"{t:%Y-%m-%d %H:%M} (lines {', '.join(map(str, g['line']))})"
                      for t, g in list(conflicting.groupby("time"))[:MAX_LISTED]]
            raise InputError(record.path, f"{conflicting['time'].nunique()} timestamps appear "
                             f"twice with different sea levels: {'; '.join(listed)}",
                             "keep one row per time (the correct value) and rerun")
        # identical repeats carry no information; a "do not use" copy keeps the row unusable
        rows["use"] = rows.groupby("time")["use"].transform("all")
        counts["duplicates_dropped"] = int(rows["time"].duplicated().sum())
        rows = rows.drop_duplicates("time", keep="first")
        log.info("%s: dropped %d duplicate rows with identical values", record.path,
                 counts["duplicates_dropped"])
    steps_back = int((np.diff(rows["time"].to_numpy()) < np.timedelta64(0)).sum())
    if steps_back:
        rows = rows.sort_values("time", kind="stable")
        log.info("%s: timestamps out of order at %d places; sorted", record.path, steps_back)
    counts["unsorted_steps"] = steps_back
    level = rows["level"].to_numpy(float).copy()
    not_usable = ~rows["use"].to_numpy(bool) & ~np.isnan(level)
    level[not_usable] = np.nan
    counts["use_flag_rejected"] = int(not_usable.sum())
    return rows["time"].to_numpy("datetime64[ns]"), level, counts


def to_hourly(time: np.ndarray, level: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Valid values onto a regular hourly axis spanning them; hours without a value are NaN.

    Sub-hourly records contribute the sample nearest each full hour, within half their
    sampling step (at most 30 min), which keeps the tidal peaks an hourly mean would flatten.
    """
    valid = ~np.isnan(level)
    if not valid.any():
        return np.array([], "datetime64[ns]"), np.array([], float)
    times = pd.DatetimeIndex(time[valid])
    step = pd.Timedelta(np.median(np.diff(times.asi8))) if len(times) > 1 else pd.Timedelta("1h")
    tolerance = min(step / 2, pd.Timedelta(minutes=30))
    axis = pd.date_range(times[0].floor("h"), times[-1].ceil("h"), freq="h")
    hourly = pd.Series(level[valid], index=times).reindex(axis, method="nearest",
                                                          tolerance=tolerance)
    kept = np.flatnonzero(hourly.notna().to_numpy())
    hourly = hourly.iloc[kept[0]:kept[-1] + 1]  # an axis that starts and ends on a value
    return hourly.index.to_numpy("datetime64[ns]"), hourly.to_numpy(float, copy=True)


def find_flat_lines(level: np.ndarray, min_run: int = FLAT_RUN_HOURS) -> np.ndarray:
    """Mask of values in runs of at least ``min_run`` identical consecutive hourly values."""
    if level.size == 0:
        return np.zeros(0, bool)
    same = np.concatenate([[False], level[1:] == level[:-1]])  # NaN never equals: breaks runs
    run_id = np.cumsum(~same)
    run_length = np.bincount(run_id)[run_id]
    return (run_length >= min_run) & ~np.isnan(level)


def find_spikes(level: np.ndarray, tide_m: np.ndarray) -> np.ndarray:
    """Mask of isolated outliers of the residual (observation - tidal fit), by robust z-score.

    z = |deviation - median| / (1.4826 * MAD of the residual), where the deviation is the
    residual minus its running median: an isolated jump stands out, a surge lasting hours
    does not.
    """
    residual = pd.Series(level - tide_m)
    if residual.isna().all():
        return np.zeros(level.shape, bool)
    local = residual.rolling(SPIKE_WINDOW_HOURS, center=True, min_periods=1).median()
    deviation = (residual - local).to_numpy()
    values = residual.to_numpy()
    mad = np.nanmedian(np.abs(values - np.nanmedian(values)))
    scale = max(MAD_TO_SIGMA * mad, SPIKE_MIN_SCALE_M)
    with np.errstate(invalid="ignore"):
        return np.abs(deviation - np.nanmedian(deviation)) / scale > SPIKE_Z


def fit_tide(time: np.ndarray, level: np.ndarray, lat: float) -> Any:
    """Harmonic fit (utide, OLS, constant mean, no trend) on the valid hours.

    No trend: a trend fitted on weeks of data extrapolates badly into long gaps.
    Constituents 'auto' keep only those the record length resolves (Rayleigh criterion).
    """
    valid = ~np.isnan(level)
    return utide.solve(time[valid], level[valid], lat=lat, method="ols", conf_int="none",
                       constit="auto", trend=False, verbose=False)


def fit_without_spikes(time: np.ndarray, level: np.ndarray, lat: float
                       ) -> tuple[np.ndarray, Any]:
    """Spike mask and the harmonic fit on the data without them.

    An OLS fit with dozens of constituents spreads one big spike into small ripples that
    look like more spikes, so every pass re-judges all observations against a fit made
    without the previous pass's spikes, until the set of spikes no longer changes.
    """
    spikes = np.zeros(level.shape, bool)
    coef = fit_tide(time, level, lat)
    for _ in range(SPIKE_PASSES):
        found = find_spikes(level, predict_tide(coef, time))
        if np.array_equal(found, spikes):
            break
        spikes = found
        coef = fit_tide(time, np.where(spikes, np.nan, level), lat)
    return spikes, coef


def predict_tide(coef: Any, time: np.ndarray) -> np.ndarray:
    """The fitted tide (mean sea level included) at ``time``."""
    if time.size == 0:
        return np.zeros(0)
    return np.asarray(utide.reconstruct(time, coef, verbose=False).h, dtype=float)


def process_station(record: GaugeRecord) -> StationSeries:
    """All QC steps and the final harmonic fit for one station."""
    time, level, counts = clean_rows(record)
    time, observed = to_hourly(time, level)
    removed = np.zeros(observed.shape, np.int8)
    flat = find_flat_lines(observed)
    removed[flat] = FLAG_FLAT
    observed[flat] = np.nan
    counts["flat_line_hours"] = int(flat.sum())
    _check_enough_data(record, observed)
    spikes, coef = fit_without_spikes(time, observed, record.lat)
    removed[spikes] = FLAG_SPIKE
    observed[spikes] = np.nan
    counts["spike_hours"] = int(spikes.sum())
    _check_enough_data(record, observed)
    counts["observed_hours"] = int((~np.isnan(observed)).sum())
    counts["gap_hours"] = int(np.isnan(observed).sum() - (removed > 0).sum())
    log.info("%s (%s): %s", record.station, record.path.name,
             ", ".join(f"{k} {v}" for k, v in counts.items()))
    return StationSeries(record, time, observed, removed, coef, counts)


def assemble(series: list[StationSeries]) -> xr.Dataset:
    """Stations on the union hourly axis: observed values, prediction fills, flags.

    Inside a station's record, missing hours get the prediction (flag 1, or 2/3 where QC
    removed a spike / flat line). Outside it the level stays NaN with flag 4: no
    observations there to anchor a surge or mean level, so nothing is claimed.
    """
    start = min(s.time[0] for s in series)
    end = max(s.time[-1] for s in series)
    axis = np.arange(start, end + HOUR, HOUR).astype("datetime64[ns]")
    levels, predictions, flags = [], [], []
    for station in series:
        prediction = predict_tide(station.coef, axis)
        inside = (axis >= station.time[0]) & (axis <= station.time[-1])
        offset = int((station.time[0] - start) // HOUR)
        observed = np.full(axis.shape, np.nan)
        observed[offset:offset + station.time.size] = station.observed_m
        removed = np.zeros(axis.shape, np.int8)
        removed[offset:offset + station.time.size] = station.removed_flag
        flag = np.full(axis.shape, FLAG_MISSING, np.int8)
        gap = inside & np.isnan(observed)
        flag[inside & ~np.isnan(observed)] = FLAG_OBSERVED
        flag[gap] = np.where(removed[gap] > 0, removed[gap], FLAG_FILLED)
        levels.append(np.where(gap, prediction, observed))
        predictions.append(prediction)
        flags.append(flag)
    records = [s.record for s in series]

    def per_station(values: list[Any]) -> np.ndarray:
        return np.array(values, dtype=object)

    dataset = xr.Dataset(
        {
            "water_level_m": (("station", "time"), np.stack(levels), {
                "long_name": "sea level after QC, gaps filled by tidal prediction",
                "units": "m", "comment": "relative to each station's datum"}),
            "tide_prediction_m": (("station", "time"), np.stack(predictions), {
                "long_name": "harmonic tide prediction (utide) including mean sea level",
                "units": "m"}),
            "flag": (("station", "time"), np.stack(flags), {
                "long_name": "origin of water_level_m",
                "flag_values": np.arange(5, dtype=np.int8), "flag_meanings": FLAG_MEANINGS}),
        },
        coords={
            "station": ("station", per_station([r.station for r in records])),
            "time": ("time", axis, {"standard_name": "time", "comment": "hourly, UTC"}),
            "lat": ("station", np.array([r.lat for r in records]),
                    {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("station", np.array([r.lon for r in records]),
                    {"standard_name": "longitude", "units": "degrees_east"}),
            "station_name": ("station", per_station([r.name for r in records])),
            "datum": ("station", per_station([r.datum for r in records])),
        },
        attrs={
            "Conventions": "CF-1.8",
            "title": "tide-gauge sea level, QC'd and gap-filled by harmonic prediction",
            "qc_counts": json.dumps({s.record.station: s.counts for s in series}),
            "qc_method": (
                f"duplicates, order, provider flags; flat lines >= {FLAT_RUN_HOURS} h; spikes "
                f"|z| > {SPIKE_Z} (MAD scale; residual to the utide fit minus its "
                f"{SPIKE_WINDOW_HOURS} h running median); utide OLS, constit auto, no trend"),
        },
    )
    return dataset


def constituents_table(series: list[StationSeries]) -> pd.DataFrame:
    """station, name, amplitude_m, phase_deg (Greenwich) of every fitted constituent."""
    rows = [
        {"station": s.record.station, "name": str(name), "amplitude_m": float(amplitude),
         "phase_deg": float(phase)}
        for s in series for name, amplitude, phase in zip(s.coef.name, s.coef.A, s.coef.g,
                                                            strict=True)
    ]
    return pd.DataFrame(rows, columns=["station", "name", "amplitude_m", "phase_deg"])


# ----------------------------------------------------------------------------- validation


def _check_enough_data(record: GaugeRecord, observed: np.ndarray) -> None:
    hours = int((~np.isnan(observed)).sum())
    if hours < MIN_RECORD_DAYS * 24:
        raise InputError(record.path, f"station {record.station} has only {hours / 24:.1f} days "
                         f"of valid hourly data after QC; a harmonic fit needs at least "
                         f"{MIN_RECORD_DAYS}", "give a longer record or leave this gauge out")


def _check_unique_stations(records: list[GaugeRecord]) -> None:
    seen: dict[str, Path] = {}
    for record in records:
        if record.station in seen:
            raise InputError(record.path, f"station {record.station} is also in "
                             f"{seen[record.station]}", "give one file per station")
        seen[record.station] = record.path


def _check_near_region(record: GaugeRecord, outline: BaseGeometry) -> None:
    if not (-90 <= record.lat <= 90 and -180 <= record.lon <= 360):
        raise InputError(record.path, f"station position lat {record.lat}, lon {record.lon} "
                         "is not valid", "give decimal degrees")
    lon = (record.lon + 180) % 360 - 180
    point = Point(lon, record.lat)
    if outline.covers(point):
        return
    nearest = nearest_points(outline, point)[0]
    distance_km = Geod(ellps="WGS84").inv(lon, record.lat, nearest.x, nearest.y)[2] / 1000
    if distance_km > STATION_BUFFER_KM:
        raise InputError(record.path, f"station {record.station} (lat {record.lat}, lon "
                         f"{record.lon}) lies {distance_km:.0f} km from the region, beyond "
                         f"{STATION_BUFFER_KM:.0f} km", "check its coordinates or the tide glob")


def _write_netcdf(dataset: xr.Dataset, path: Path) -> None:
    encoding = {
        "water_level_m": {"zlib": True, "_FillValue": np.nan},
        "tide_prediction_m": {"zlib": True, "_FillValue": np.nan},
        "flag": {"zlib": True},
        "time": {"units": "hours since 1970-01-01 00:00:00", "calendar": "standard",
                 "dtype": "int64"},
    }
    dataset.to_netcdf(path, engine="h5netcdf", encoding=encoding)
