"""A synthetic CMIP6-style climate model (SYNTH-ESM): monthly ``zos`` and ``pr`` on 1 degree.

The patch covers both demo regions (Bay of Bengal to the South China Sea). Sea level rises
faster under stronger forcing; rain follows the monsoon. Longitudes run 0..360 and the
calendar is ``noleap``, as in many real models, so ingest has to convert both.
"""

from __future__ import annotations

import cftime
import numpy as np
import xarray as xr
from shapely import contains_xy, union_all
from shapely.geometry import Polygon

from floodkd.demo.fields import fbm, stream

__all__ = [
    "EXPERIMENTS",
    "VARIABLES",
    "SOURCE_ID",
    "gcm_file_name",
    "gcm_dataset",
    "monsoon_mm_day",
]

SOURCE_ID = "SYNTH-ESM"
TIME_UNITS = "days since 1850-01-01 00:00:00"
CALENDAR = "noleap"
# As CMIP6: ScenarioMIP runs to 2100; the historical run covers the AR6 baseline 1995-2014
# (real historical runs start in 1850; the demo keeps the years a baseline needs).
EXPERIMENTS = {"historical": (1995, 2014), "ssp245": (2015, 2100), "ssp585": (2015, 2100)}
VARIABLES = {  # variable -> (table, units, standard_name, long_name)
    "zos": ("Omon", "m", "sea_surface_height_above_geoid", "Sea Surface Height Above Geoid"),
    "pr": ("Amon", "kg m-2 s-1", "precipitation_flux", "Precipitation"),
}
SEA_LEVEL_TREND_M_PER_YEAR = {"historical": 0.0035, "ssp245": 0.0045, "ssp585": 0.0060}
RAIN_CHANGE_PER_DECADE = {"historical": 0.0, "ssp245": 0.01, "ssp585": 0.025}
LON_DEG_E = np.arange(85.5, 112.0, 1.0)
LAT_DEG_N = np.arange(0.5, 30.0, 1.0)
_FILL = np.float32(1.0e20)

# A coarse coastline of the patch (lon, lat): mainland Asia, the Malay peninsula, islands.
_LAND = [
    Polygon([(85, 21.0), (87, 21.5), (89, 22.6), (91.5, 22.6), (92.3, 21.0), (94.5, 16.0),
             (97.5, 16.5), (98.5, 10.0), (100.5, 13.5), (102, 12.5), (104.5, 10.5),
             (104.8, 8.6), (106.3, 9.3), (106.3, 10.4), (109.3, 12.5), (109.3, 15.5),
             (106.5, 19.0), (108, 21.5), (112, 22), (112, 30), (85, 30)]),
    Polygon([(98.5, 10), (99.5, 6.5), (101, 2.5), (103.5, 1.3), (103.5, 4.5), (102.3, 6.2),
             (100.3, 8.5), (99.5, 10.5)]),
    Polygon([(95.2, 5.6), (98, 4), (100.5, 1), (101.5, 0), (98.5, 0), (95.2, 4.5)]),
    Polygon([(109, 0), (109.5, 2), (111, 2.8), (112, 3), (112, 0)]),
    Polygon([(108.6, 18.5), (110, 18.2), (111, 19.6), (110, 20.2), (108.7, 19.5)]),
]


def gcm_file_name(variable: str, experiment: str) -> str:
    """CMIP6 file name: <var>_<table>_<source>_<experiment>_r1i1p1f1_gn_<YYYYMM>-<YYYYMM>.nc."""
    first, last = EXPERIMENTS[experiment]
    table = VARIABLES[variable][0]
    return f"{variable}_{table}_{SOURCE_ID}_{experiment}_r1i1p1f1_gn_{first}01-{last}12.nc"


def monsoon_mm_day(month: np.ndarray, lon_deg_e: np.ndarray, lat_deg_n: np.ndarray) -> np.ndarray:
    """Climatological rain (mm/day): the South Asian monsoon peaks in July west of ~98 E,
    the Mekong's wet season peaks in September-October; both are dry in winter."""
    east = np.clip((lon_deg_e - 92.0) / 10.0, 0.0, 1.0)  # 0 Bay of Bengal .. 1 Mekong
    peak_month = 7.0 + 2.5 * east
    wet = (11.0 - 3.0 * east) * np.exp(-0.5 * ((month - peak_month) / 1.9) ** 2)
    return 0.4 + 0.8 * east + wet * np.clip(1.2 - np.abs(lat_deg_n - 18.0) / 25.0, 0.4, 1.2)


def _month_bounds(first_year: int, last_year: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Numeric (days since 1850) month bounds and midpoints on the noleap calendar."""
    starts = [cftime.DatetimeNoLeap(y, m, 1) for y in range(first_year, last_year + 1)
              for m in range(1, 13)]
    ends = starts[1:] + [cftime.DatetimeNoLeap(last_year + 1, 1, 1)]
    start_days = cftime.date2num(starts, TIME_UNITS, CALENDAR)
    end_days = cftime.date2num(ends, TIME_UNITS, CALENDAR)
    return start_days, end_days, (start_days + end_days) / 2.0


def gcm_dataset(variable: str, experiment: str, seed: int) -> xr.Dataset:
    """One CMIP6-style file's content: ``variable`` for ``experiment``, monthly, 1 degree."""
    first, last = EXPERIMENTS[experiment]
    table, units, standard_name, long_name = VARIABLES[variable]
    start_days, end_days, mid_days = _month_bounds(first, last)
    n_months = mid_days.size
    years = first + np.arange(n_months) / 12.0
    months = np.tile(np.arange(1, 13), last - first + 1)
    lon2d, lat2d = np.meshgrid(LON_DEG_E, LAT_DEG_N)
    rng = stream(seed, "gcm", variable, experiment)
    weather = np.stack([fbm(lon2d.shape, 3.0, rng) for _ in range(n_months)])

    if variable == "zos":
        pattern = stream(seed, "gcm", "zos-pattern")  # the same mean state in every experiment
        base = 0.35 + 0.1 * fbm(lon2d.shape, 3.5, pattern) - 0.006 * (lat2d - 15.0)
        rise = _sea_level_rise_m(years, experiment)
        east = np.clip((lon2d - 92.0) / 10.0, 0.0, 1.0)
        peak = 8.5 + 3.0 * east  # Bay of Bengal peaks in autumn, South China Sea in winter
        seasonal = (0.18 - 0.06 * east) * np.cos(2 * np.pi * (months[:, None, None] - peak) / 12)
        values = base + rise[:, None, None] + seasonal + 0.03 * weather
        land = contains_xy(union_all(_LAND), lon2d, lat2d)
        values = np.where(land[None], np.nan, values)
    else:
        climatology = monsoon_mm_day(months[:, None, None], lon2d, lat2d)
        change = 1.0 + RAIN_CHANGE_PER_DECADE[experiment] * (years - 2015.0).clip(0) / 10.0
        anomaly = np.exp(0.35 * weather - 0.06)  # lognormal month-to-month variability
        values = climatology * change[:, None, None] * anomaly / 86400.0  # -> kg m-2 s-1

    data = np.where(np.isnan(values), _FILL, values).astype(np.float32)
    dataset = xr.Dataset(
        {
            variable: (("time", "lat", "lon"), data, {
                "standard_name": standard_name, "long_name": long_name, "units": units,
                "_FillValue": _FILL, "missing_value": _FILL, "cell_methods": "time: mean",
            }),
            "time_bnds": (("time", "bnds"), np.stack([start_days, end_days], axis=1)),
            "lat_bnds": (("lat", "bnds"), np.stack([LAT_DEG_N - 0.5, LAT_DEG_N + 0.5], 1)),
            "lon_bnds": (("lon", "bnds"), np.stack([LON_DEG_E - 0.5, LON_DEG_E + 0.5], 1)),
        },
        coords={
            "time": ("time", mid_days, {
                "units": TIME_UNITS, "calendar": CALENDAR, "standard_name": "time",
                "axis": "T", "bounds": "time_bnds",
            }),
            "lat": ("lat", LAT_DEG_N, {"units": "degrees_north", "standard_name": "latitude",
                                       "axis": "Y", "bounds": "lat_bnds"}),
            "lon": ("lon", LON_DEG_E, {"units": "degrees_east", "standard_name": "longitude",
                                       "axis": "X", "bounds": "lon_bnds"}),
        },
        attrs={
            "Conventions": "CF-1.7 CMIP-6.2",
            "title": f"{SOURCE_ID} output prepared for the floodkd demo coast",
            "source_id": SOURCE_ID,
            "experiment_id": experiment,
            "variable_id": variable,
            "table_id": table,
            "frequency": "mon",
            "realm": "ocean" if variable == "zos" else "atmos",
            "grid_label": "gn",
            "nominal_resolution": "100 km",
            "variant_label": "r1i1p1f1",
            "calendar_note": "noleap: every year has 365 days",
            "synthetic": "true",
            "comment": f"SYNTHETIC data made by floodkd demo (seed {seed}); not a real model",
        },
    )
    return dataset


def _sea_level_rise_m(years: np.ndarray, experiment: str) -> np.ndarray:
    """Sea-level change since 2000 (m): continuous across 2015, steeper with more forcing."""
    historical = SEA_LEVEL_TREND_M_PER_YEAR["historical"]
    if experiment == "historical":
        return historical * (years - 2000.0)
    return historical * 15.0 + SEA_LEVEL_TREND_M_PER_YEAR[experiment] * (years - 2015.0)

