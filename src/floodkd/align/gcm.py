"""Climate-model forcing on the grid: the month of each time, bilinear from the coarse grid."""

from __future__ import annotations

import logging
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox
from odc.geo.xr import wrap_xr

from floodkd.align.regrid import missing_plane, regrid_band
from floodkd.errors import InputError
from floodkd.grid import RegionGrid

log = logging.getLogger(__name__)

__all__ = [
    "HISTORICAL", "SCENARIO_EXPERIMENT", "GCM_RESAMPLING", "normalise_longitudes",
    "coarse_geobox", "experiment_for_months", "month_fields",
]

HISTORICAL = "historical"
# Past the end of the historical run, observed times are closest to a middle-of-the-road
# scenario; the choice is recorded in the cube attrs.
SCENARIO_EXPERIMENT = "ssp245"
GCM_RESAMPLING = "bilinear"  # coarse cells (~100 km) refined to 10 m: smooth, not blocky


def normalise_longitudes(ds: xr.Dataset) -> xr.Dataset:
    """Longitudes in -180..180, ascending; latitudes descending (north-up rows)."""
    lon = ((ds["lon"].values + 180.0) % 360.0) - 180.0
    ds = ds.assign_coords(lon=lon).sortby("lon")
    return ds.sortby("lat", ascending=False)


def coarse_geobox(lat: np.ndarray, lon: np.ndarray, path: Path) -> GeoBox:
    """The GCM's regular lon/lat grid as a GeoBox (lat descending, lon ascending)."""
    if lat.size < 2 or lon.size < 2:
        raise InputError(path, "the GCM grid needs at least 2 cells in lat and lon",
                         "rerun ingest for gcm with a larger buffer_cells")
    dlat, dlon = np.diff(lat), np.diff(lon)
    if not (np.allclose(dlat, dlat[0], rtol=1e-3) and np.allclose(dlon, dlon[0], rtol=1e-3)):
        raise InputError(path, "the GCM lat/lon grid is not regular",
                         "regrid the GCM output to a regular lat/lon grid before ingest")
    transform = Affine(dlon[0], 0.0, lon[0] - dlon[0] / 2, 0.0, dlat[0], lat[0] - dlat[0] / 2)
    return GeoBox((lat.size, lon.size), transform, "EPSG:4326")


def experiment_for_months(ds: xr.Dataset, months: np.ndarray) -> list[str | None]:
    """For each month: ``historical`` up to its last month with data, then the scenario.

    None where the chosen experiment is absent from the file.
    """
    experiments = [str(e) for e in ds["experiment"].values]
    last_historical = None
    if HISTORICAL in experiments:
        finite = ds["zos"].sel(experiment=HISTORICAL).notnull().any(("lat", "lon")).values
        if finite.any():
            last_historical = ds["time"].values[finite].max().astype("datetime64[M]")
    chosen: list[str | None] = []
    for month in months:
        if last_historical is not None and month <= last_historical:
            chosen.append(HISTORICAL)
        else:
            chosen.append(SCENARIO_EXPERIMENT if SCENARIO_EXPERIMENT in experiments else None)
    return chosen


def month_fields(
    ds: xr.Dataset,
    variable: str,
    times: np.ndarray,
    grid: RegionGrid,
    chunk_px: int,
    path: Path,
) -> tuple[da.Array, np.ndarray, list[str | None]]:
    """Lazy (time, y, x) field of ``variable`` for the month of each time.

    Returns the field, a presence flag per time (a finite value for that month) and the
    experiment used per time.
    """
    ds = normalise_longitudes(ds)
    geobox = coarse_geobox(ds["lat"].values, ds["lon"].values, path)
    months = np.asarray(times, dtype="datetime64[ns]").astype("datetime64[M]")
    gcm_months = ds["time"].values.astype("datetime64[M]")
    experiments = experiment_for_months(ds, months)
    planes, present, cache = [], np.zeros(months.size, dtype=bool), {}
    for i, (month, experiment) in enumerate(zip(months, experiments, strict=True)):
        hit = np.flatnonzero(gcm_months == month)
        coarse = None
        if experiment is not None and hit.size:
            coarse = ds[variable].sel(experiment=experiment).isel(time=hit[0]).values
        if coarse is None or not np.isfinite(coarse).any():
            planes.append(missing_plane(grid, chunk_px, np.nan, np.float32))
            continue
        present[i] = True
        key = (experiment, str(month))
        if key not in cache:
            source = wrap_xr(da.from_array(coarse.astype(np.float32)), geobox)
            cache[key] = regrid_band(source, grid, chunk_px, GCM_RESAMPLING, np.nan, "float32")
        planes.append(cache[key])
    if not present.all():
        absent = sorted({str(m) for m, p in zip(months, present, strict=True) if not p})
        log.warning("%s: no %s for %d of %d cube times (months %s; experiments in the file: %s); "
                    "the student maps those times without the climate model", path, variable,
                    len(months) - present.sum(), len(months), ", ".join(absent[:6])
                    + (", ..." if len(absent) > 6 else ""),
                    ", ".join(str(e) for e in ds["experiment"].values))
    if not planes:
        return da.empty((0, *grid.shape), dtype=np.float32, chunks=(1, chunk_px, chunk_px)), \
            present, experiments
    return da.stack(planes), present, experiments
