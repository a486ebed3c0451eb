"""Ingest climate-model output (CMIP6 / CF NetCDF) into one tidy regional subset.

Reads every file matching ``region["inputs"]["gcm"]["glob"]`` and writes ``gcm.nc`` into the
modality folder: ``zos`` (m) and ``pr`` (mm day-1) with dims (experiment, time, lat, lon),
longitudes in -180..180, ``time`` = first day of each month (datetime64, standard calendar,
whatever the model calendar was), NaN outside an experiment's period.
"""

from __future__ import annotations

import glob
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cftime
import numpy as np
import pandas as pd
import xarray as xr

from floodkd.errors import InputError
from floodkd.ingest.plausibility import check_gcm_field
from floodkd.region import region_outline

__all__ = ["ingest", "month_starts", "normalise_longitudes", "window_indices"]

log = logging.getLogger(__name__)

OUTPUT_NAME = "gcm.nc"
VARIABLES = ("zos", "pr")

# Accepted unit spellings (lower case, single spaces) -> factor to the output unit.
UNIT_FACTORS: dict[str, dict[str, float]] = {
    "zos": {"m": 1.0, "meter": 1.0, "meters": 1.0, "metre": 1.0, "metres": 1.0, "cm": 0.01},
    "pr": {
        "kg m-2 s-1": 86400.0,  # 1 kg m-2 of water is 1 mm; 86400 s per day
        "kg m^-2 s^-1": 86400.0,
        "kg m**-2 s**-1": 86400.0,
        "kg/m2/s": 86400.0,
        "kg/m^2/s": 86400.0,
        "mm day-1": 1.0,
        "mm d-1": 1.0,
        "mm/day": 1.0,
    },
}
OUTPUT_ATTRS: dict[str, dict[str, str]] = {
    "zos": {
        "standard_name": "sea_surface_height_above_geoid",
        "long_name": "Sea surface height above geoid",
        "units": "m",
    },
    "pr": {
        "standard_name": "lwe_precipitation_rate",
        "long_name": "Precipitation",
        "units": "mm day-1",
    },
}
# <var>_<table>_<model>_<experiment>_<member>_<grid>[_<range>].nc
CMIP6_NAME = re.compile(
    r"^(?P<var>[^_]+)_(?P<table>[^_]+)_(?P<model>[^_]+)_(?P<experiment>[^_]+)_[^_]+_[^_]+"
)
LAT_NAMES = ("lat", "latitude", "nav_lat")
LON_NAMES = ("lon", "longitude", "nav_lon")


@dataclass(frozen=True)
class _Piece:
    """One variable of one file, already cut to the region, in output units."""

    path: Path
    variable: str
    experiment: str
    model: str
    data: xr.DataArray  # dims (time, lat, lon), time = month starts


def ingest(region: dict[str, Any], out_dir: Path) -> None:
    """Read the region's GCM files, validate and subset them, write ``out_dir/gcm.nc``."""
    settings = region["inputs"]["gcm"]
    pattern = settings["glob"]
    paths = [Path(p) for p in sorted(glob.glob(pattern)) if Path(p).is_file()]
    if not paths:
        raise InputError(pattern, "no GCM files match this glob",
                         "check inputs.gcm.glob in the config, or run `floodkd demo` first")
    bbox = region_outline(region).bounds  # (lon_min, lat_min, lon_max, lat_max)
    buffer_cells = int(settings.get("buffer_cells", 2))
    pieces = [piece for path in paths for piece in _read_file(path, bbox, buffer_cells)]
    dataset = combine_pieces(pieces)
    dataset.attrs["source_files"] = json.dumps([str(p) for p in paths])
    _write(dataset, Path(out_dir) / OUTPUT_NAME)
    log.info("gcm: %d files, experiments %s, %d months, %d x %d cells -> %s",
             len(paths), list(dataset.experiment.values), dataset.sizes["time"],
             dataset.sizes["lat"], dataset.sizes["lon"], Path(out_dir) / OUTPUT_NAME)


# ----------------------------------------------------------------------------- pure helpers


def normalise_longitudes(lon: np.ndarray) -> np.ndarray:
    """Longitudes in degrees mapped to -180..180 (180 maps to -180)."""
    return (np.asarray(lon, dtype=float) + 180.0) % 360.0 - 180.0


def window_indices(centres: np.ndarray, low: float, high: float, buffer_cells: int) -> np.ndarray:
    """Indices (into ascending ``centres``) of the cells covering [low, high] plus a buffer.

    The window reaches from the last centre at or below ``low`` to the first centre at or
    above ``high``, so a region lying inside one cell still gets the cells around it, then
    ``buffer_cells`` more on each side, clipped to the grid.
    """
    count = len(centres)
    first = max(int(np.searchsorted(centres, low, side="right")) - 1, 0)
    last = min(int(np.searchsorted(centres, high, side="left")), count - 1)
    first = max(first - buffer_cells, 0)
    last = min(last + buffer_cells, count - 1)
    return np.arange(first, last + 1)


def month_starts(values: np.ndarray, units: str, calendar: str) -> np.ndarray:
    """CF time numbers in any cftime calendar -> datetime64 of the first day of their month.

    Works through (year, month) so dates that do not exist in the standard calendar
    (2015-02-30 in ``360_day``) map to the month they belong to.
    """
    dates = cftime.num2date(np.asarray(values), units, calendar, only_use_cftime_datetimes=True)
    return np.array(
        [np.datetime64(f"{d.year:04d}-{d.month:02d}-01", "ns") for d in np.ravel(dates)]
    )


def unit_factor(variable: str, units: str | None) -> float | None:
    """Factor from ``units`` to the output unit of ``variable``; None when unknown."""
    if units is None:
        return None
    key = " ".join(units.strip().lower().split())
    return UNIT_FACTORS[variable].get(key)


def experiment_and_model(path: Path, attrs: dict[str, Any]) -> tuple[str, str]:
    """Experiment and model from the CMIP6 global attributes, else from the file name."""
    match = CMIP6_NAME.match(path.name)
    experiment = attrs.get("experiment_id") or (match["experiment"] if match else None)
    model = attrs.get("source_id") or (match["model"] if match else None)
    if not experiment:
        raise InputError(path, "cannot tell the experiment: no global attribute experiment_id "
                         "and the name is not <var>_<table>_<model>_<experiment>_<member>_<grid>",
                         "add the experiment_id attribute or rename the file the CMIP6 way")
    return str(experiment), str(model or "unknown")


def combine_pieces(pieces: list[_Piece]) -> xr.Dataset:
    """Concatenate pieces in time per (variable, experiment), stack experiments, merge variables.

    Months covered twice are refused; months an experiment lacks become NaN. When ``pr`` and
    ``zos`` come on different grids (atmosphere vs ocean), ``pr`` is interpolated linearly
    onto the ``zos`` grid so both share one (lat, lon).
    """
    models = sorted({p.model for p in pieces})
    if len(models) > 1:
        raise InputError(pieces[0].path.parent, f"files from several models {models}",
                         "ingest one model per region: narrow inputs.gcm.glob")
    by_variable: dict[str, xr.DataArray] = {}
    for variable in VARIABLES:
        mine = [p for p in pieces if p.variable == variable]
        if not mine:
            found = sorted({p.variable for p in pieces})
            raise InputError(pieces[0].path.parent, f"no file provides '{variable}' "
                             f"(found only {found})", f"add the {variable} files to the glob")
        experiments = sorted({p.experiment for p in mine})
        series = [_concat_in_time([p for p in mine if p.experiment == e]) for e in experiments]
        by_variable[variable] = xr.concat(
            series, dim=pd.Index(experiments, dtype=object, name="experiment"), join="outer"
        )
    zos, pr = by_variable["zos"], by_variable["pr"]
    regridded = not (_same_axis(zos.lat, pr.lat) and _same_axis(zos.lon, pr.lon))
    if regridded:
        log.info("gcm: pr and zos grids differ; interpolating pr linearly onto the zos grid")
        pr = pr.interp(lat=zos.lat, lon=zos.lon, method="linear",
                       kwargs={"fill_value": None})  # extrapolate the outermost half cell
    else:
        pr = pr.assign_coords(lat=zos.lat, lon=zos.lon)
    zos, pr = xr.align(zos, pr, join="outer")
    dataset = xr.Dataset({"zos": zos.astype("float32"), "pr": pr.astype("float32")})
    for name, attrs in OUTPUT_ATTRS.items():
        dataset[name].attrs = dict(attrs)
    if regridded:
        dataset["pr"].attrs["comment"] = "interpolated linearly from the model's pr grid"
    dataset["lat"].attrs = {"standard_name": "latitude", "units": "degrees_north"}
    dataset["lon"].attrs = {"standard_name": "longitude", "units": "degrees_east"}
    dataset["time"].attrs = {"standard_name": "time", "long_name": "first day of the month"}
    dataset.attrs = {"Conventions": "CF-1.8", "model": models[0],
                     "title": "GCM sea level and precipitation, regional subset"}
    return dataset


def _concat_in_time(pieces: list[_Piece]) -> xr.DataArray:
    """Pieces of one variable and experiment joined in time; overlaps refused."""
    pieces = sorted(pieces, key=lambda p: p.data.time.values[0])
    first = pieces[0]
    seen: dict[np.datetime64, Path] = {}
    for piece in pieces:
        if not (_same_axis(piece.data.lat, first.data.lat)
                and _same_axis(piece.data.lon, first.data.lon)):
            raise InputError(piece.path, f"its grid differs from {first.path.name} "
                             f"({piece.variable}, {piece.experiment})",
                             "use files of one model grid for each variable")
        for month in piece.data.time.values:
            if month in seen:
                raise InputError(piece.path, f"month {str(month)[:7]} of {piece.variable} "
                                 f"{piece.experiment} is also in {seen[month].name}",
                                 "remove the duplicate or overlapping file from the glob")
            seen[month] = piece.path
    joined = xr.concat([p.data for p in pieces], dim="time")
    return joined.assign_coords(lat=first.data.lat, lon=first.data.lon)


def _same_axis(a: xr.DataArray, b: xr.DataArray) -> bool:
    return a.shape == b.shape and bool(np.allclose(a.values, b.values, atol=1e-6))


# ----------------------------------------------------------------------------- file edge


def _read_file(path: Path, bbox: tuple[float, ...], buffer_cells: int) -> list[_Piece]:
    """Every output variable in one file, validated and cut to the region."""
    try:
        dataset = xr.open_dataset(path, decode_times=False)
    except Exception as error:  # netCDF4/h5py/xarray raise many types for non-NetCDF files
        raise InputError(path, f"cannot open as NetCDF ({type(error).__name__}: {error})",
                         "give CMIP6/CF NetCDF files; re-download a corrupt file") from error
    with dataset:
        present = [v for v in VARIABLES if v in dataset.data_vars]
        if not present:
            raise InputError(path, f"has neither zos nor pr (variables: "
                             f"{sorted(map(str, dataset.data_vars))})",
                             "point inputs.gcm.glob at zos (Omon) and pr (Amon) files only")
        experiment, model = experiment_and_model(path, dataset.attrs)
        months = _months(path, dataset)
        return [_read_variable(path, dataset, v, months, experiment, model, bbox, buffer_cells)
                for v in present]


def _months(path: Path, dataset: xr.Dataset) -> np.ndarray:
    if "time" not in dataset.variables:
        raise InputError(path, "has no time coordinate", "give CF files with a time axis")
    time = dataset["time"]
    units = time.attrs.get("units")
    calendar = time.attrs.get("calendar", "standard")
    try:
        months = month_starts(time.values, units, calendar)
    except Exception as error:  # cftime raises ValueError/TypeError for bad units/calendars
        raise InputError(path, f"cannot decode time (units={units!r}, calendar={calendar!r}: "
                         f"{error})", "give CF time units like 'days since 1850-01-01'") from error
    if len(np.unique(months)) != len(months):
        raise InputError(path, "several time steps fall in the same month",
                         "give monthly-mean files (CMIP6 tables Omon/Amon)")
    return months


def _find_coordinate(dataset: xr.Dataset, names: tuple[str, ...], standard_name: str,
                     units: str) -> str | None:
    """The latitude or longitude variable: a known name, else a CF standard_name or unit."""
    known = next((n for n in names if n in dataset.variables), None)
    if known is not None:
        return known
    return next((str(name) for name, coord in dataset.variables.items()
                 if coord.attrs.get("standard_name") == standard_name
                 or coord.attrs.get("units") == units), None)


def _read_variable(path: Path, dataset: xr.Dataset, variable: str, months: np.ndarray,
                   experiment: str, model: str, bbox: tuple[float, ...],
                   buffer_cells: int) -> _Piece:
    data = dataset[variable]
    units = data.attrs.get("units")
    factor = unit_factor(variable, units)
    if factor is None:
        raise InputError(path, f"unknown units {units!r} for {variable}",
                         f"use one of {sorted(UNIT_FACTORS[variable])}")
    lat_name = _find_coordinate(dataset, LAT_NAMES, "latitude", "degrees_north")
    lon_name = _find_coordinate(dataset, LON_NAMES, "longitude", "degrees_east")
    if lat_name is None or lon_name is None:
        raise InputError(path, f"{variable} has no latitude/longitude coordinates",
                         "give files with CF lat/lon coordinates")
    lat, lon = dataset[lat_name], dataset[lon_name]
    if lat.ndim != 1 or lon.ndim != 1:
        raise InputError(path, f"{variable} is on a curvilinear grid (2-D {lat_name}/{lon_name})",
                         "regrid to a regular lat/lon grid first (e.g. `cdo remapbil,r360x180`)")
    extra = [d for d in data.dims if d not in ("time", lat.dims[0], lon.dims[0])]
    if any(data.sizes[d] != 1 for d in extra) or "time" not in data.dims:
        raise InputError(path, f"{variable} has dims {data.dims}; expected (time, lat, lon)",
                         "give 2-D monthly fields (surface variables)")
    data = data.squeeze(extra, drop=True).transpose("time", lat.dims[0], lon.dims[0])
    data = data.drop_vars(list(data.coords))
    data = data.rename({old: new for old, new in ((lat.dims[0], "lat"), (lon.dims[0], "lon"))
                        if old != new})

    lon_min, lat_min, lon_max, lat_max = bbox
    lat_values = lat.values.astype(float)
    lon_values = normalise_longitudes(lon.values)
    _check_domain(path, lat_values, lon_values, bbox)
    lat_order = np.argsort(lat_values, kind="stable")
    lon_order = np.argsort(lon_values, kind="stable")
    lat_pick = lat_order[window_indices(lat_values[lat_order], lat_min, lat_max, buffer_cells)]
    lon_pick = lon_order[window_indices(lon_values[lon_order], lon_min, lon_max, buffer_cells)]
    subset = data.isel(lat=lat_pick, lon=lon_pick).load() * factor
    check_gcm_field(path, variable, subset.values)
    subset = subset.assign_coords(time=months, lat=lat_values[lat_pick], lon=lon_values[lon_pick])
    return _Piece(path, variable, experiment, model, subset.drop_attrs())


def _check_domain(path: Path, lat: np.ndarray, lon: np.ndarray, bbox: tuple[float, ...]) -> None:
    """The region's bounding box must lie within the grid (cells reach half a step out)."""
    lon_min, lat_min, lon_max, lat_max = bbox

    def half_step(values: np.ndarray) -> float:
        return float(np.median(np.diff(np.sort(values))) / 2) if len(values) > 1 else 0.0

    lat_ok = lat.min() - half_step(lat) <= lat_min and lat_max <= lat.max() + half_step(lat)
    lon_global = np.ptp(lon) + 2 * half_step(lon) >= 360.0 - 1e-6
    lon_ok = lon_global or (lon.min() - half_step(lon) <= lon_min
                            and lon_max <= lon.max() + half_step(lon))
    if not (lat_ok and lon_ok):
        raise InputError(path, f"the region (lon {lon_min:.3f}..{lon_max:.3f}, lat "
                         f"{lat_min:.3f}..{lat_max:.3f}) lies outside the file's domain (lon "
                         f"{lon.min():.2f}..{lon.max():.2f}, lat {lat.min():.2f}..{lat.max():.2f})",
                         "give files whose domain covers the region")


def _write(dataset: xr.Dataset, path: Path) -> None:
    encoding = {name: {"zlib": True, "complevel": 4, "_FillValue": np.float32(np.nan)}
                for name in ("zos", "pr")}
    encoding["time"] = {"units": "days since 1850-01-01", "calendar": "standard",
                        "dtype": "float64"}
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.to_netcdf(path, engine="h5netcdf", encoding=encoding)
