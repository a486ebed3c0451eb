"""Sea-level change: zero over the baseline, a hand-computed delta on a tiny file, the table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from floodkd.errors import InputError
from floodkd.risk.climate import ClimateSettings, gcm_changes, table_changes

LON, LAT = 90.0, 21.0  # the region's centre


def tiny_gcm(path, members: int = 1) -> xr.Dataset:
    """gcm.nc as ingest writes it: 3 x 3 one-degree cells around the region, the middle row
    land (NaN); the corners lie ~152 km from the centre, beyond the 150 km radius, and one
    of them holds 5 m so that counting it would show.
    zos = 0.1 m + 1 cm per year since 1995 (+ 1 cm more per member) + a seasonal cycle."""
    months = pd.date_range("1995-01-01", "2060-12-01", freq="MS")
    years = months.year.values + (months.month.values - 1) / 12
    season = 0.05 * np.cos(2 * np.pi * (months.month.values - 1) / 12)
    lat, lon = np.array([22.0, 21.0, 20.0]), np.array([89.0, 90.0, 91.0])
    zos = np.empty((2, members, months.size, 3, 3))
    for m in range(members):
        zos[:, m] = (0.1 + (0.01 + 0.01 * m) * (years - 1995) + season)[None, :, None, None]
    zos[..., 1, :] = np.nan  # land row
    zos[..., 0, 0] = 5.0  # a far cell: must not count
    historical = months.year <= 2014
    zos[0, :, ~historical] = np.nan
    zos[1, :, historical] = np.nan
    data = xr.Dataset(
        {"zos": (("experiment", "member", "time", "lat", "lon"), zos.astype("float32"))},
        coords={"experiment": ["historical", "ssp245"], "member": np.arange(members),
                "time": months, "lat": lat, "lon": lon},
        attrs={"model": "TINY-ESM"})
    if members == 1:
        data = data.squeeze("member", drop=True)
    data.to_netcdf(path)
    return xr.open_dataset(path).load()


def test_delta_is_zero_over_the_baseline_itself(tmp_path):
    gcm = tiny_gcm(tmp_path / "gcm.nc")
    settings = ClimateSettings(horizons=(2004,), radius_km=150)  # window 1995-2014
    row = gcm_changes(gcm, LON, LAT, settings, set(), tmp_path / "gcm.nc").iloc[0]
    assert (row.experiment, row.horizon) == ("ssp245", 2004)
    assert row.delta_m == pytest.approx(0.0, abs=1e-6)


def test_delta_equals_the_hand_computed_change(tmp_path):
    gcm = tiny_gcm(tmp_path / "gcm.nc")
    settings = ClimateSettings(horizons=(2050,))
    table = gcm_changes(gcm, LON, LAT, settings, set(), tmp_path / "gcm.nc")
    row = table.iloc[0]
    # 2041-2060 mean minus 1995-2014 mean of 1 cm/yr (annual means: the season cancels)
    assert row.delta_m == pytest.approx(0.01 * (2050.5 - 2004.5), abs=1e-5)
    assert row.lower_m == pytest.approx(row.delta_m, abs=1e-5)  # no variability, one member
    assert "TINY-ESM" in row.source and "2 ocean cells within 150 km" in row.source
    assert "1 member(s)" in row.source and "2041-2060" in row.source


def test_members_spread_widens_the_interval(tmp_path):
    gcm = tiny_gcm(tmp_path / "gcm.nc", members=3)
    row = gcm_changes(gcm, LON, LAT, ClimateSettings(horizons=(2050,)), set(),
                      tmp_path / "gcm.nc").iloc[0]
    deltas = np.array([0.01, 0.02, 0.03]) * (2050.5 - 2004.5)
    assert row.delta_m == pytest.approx(deltas.mean(), abs=1e-5)
    half = 1.6448536 * deltas.std(ddof=1)
    assert (row.lower_m, row.upper_m) == pytest.approx((deltas.mean() - half,
                                                        deltas.mean() + half), abs=1e-5)
    assert "3 member(s): interval from member spread" in row.source


def test_horizon_beyond_the_run_and_missing_experiment_are_refused(tmp_path):
    gcm = tiny_gcm(tmp_path / "gcm.nc")
    with pytest.raises(InputError, match="ssp245 zos covers only 0 years of the 2091-2110"):
        gcm_changes(gcm, LON, LAT, ClimateSettings(horizons=(2100,)), set(), "gcm.nc")
    with pytest.raises(InputError, match="needs experiment 'ssp585'"):
        gcm_changes(gcm, LON, LAT, ClimateSettings(horizons=(2050,)), {("ssp585", 2050)},
                    "gcm.nc")
    with pytest.raises(InputError, match="lacks 5 complete years of the baseline 1990-2009"):
        gcm_changes(gcm, LON, LAT, ClimateSettings(baseline=(1990, 2009), horizons=(2050,)),
                    set(), "gcm.nc")


def test_projection_table_is_interpolated_in_year():
    table = pd.DataFrame(
        [("ssp245", year, q, value) for year, scale in ((2040, 0.15), (2060, 0.25))
         for q, value in ((0.05, 0.6 * scale), (0.5, scale), (0.95, 1.5 * scale))],
        columns=["experiment", "year", "quantile", "sea_level_change_m"])
    rows = table_changes(table, ClimateSettings(horizons=(2050,)), set(), "ar6.csv")
    row = rows.iloc[0]
    assert (row.delta_m, row.lower_m, row.upper_m) == pytest.approx((0.2, 0.12, 0.3))
    assert "ar6.csv" in row.source
    with pytest.raises(InputError, match="no 0.05 quantile of ssp245 spanning 2100"):
        table_changes(table, ClimateSettings(horizons=(2100,)), set(), "ar6.csv")
