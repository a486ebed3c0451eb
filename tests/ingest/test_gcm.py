"""GCM ingest on tiny hand-made CMIP6-style files with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from floodkd.errors import InputError
from floodkd.ingest import gcm

REGION_BBOX = [106.55, 10.3, 106.7, 10.45]  # inside the 1-degree cell around (106.6E, 10.4N)
LATS = np.arange(-20.0, 31.0)


def cell_value(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """A value that names its cell: lon (in -180..180) / 100 + lat / 10000, so it also passes
    as a sea level in m and a rain rate in mm/day near the test region (about 1.06)."""
    lon = (np.asarray(lon) + 180) % 360 - 180
    return lon[None, :] / 100.0 + np.asarray(lat)[:, None] / 10000.0


def write_cmip6(path: Path, variable: str, lons: np.ndarray, times: np.ndarray, *,
                experiment: str = "historical", units: str = "m", calendar: str = "noleap",
                scale: float = 1.0, time_units: str = "days since 1850-01-01",
                attrs: bool = True, lats: np.ndarray = LATS) -> Path:
    """A CMIP6-like file: one variable (time, lat, lon), numeric CF time, global attrs."""
    field = cell_value(lons, lats) * scale
    data = np.broadcast_to(field, (len(times), *field.shape)).astype("float32")
    dataset = xr.Dataset(
        {variable: (("time", "lat", "lon"), data, {"units": units})},
        coords={
            "time": ("time", np.asarray(times, float), {"units": time_units, "calendar": calendar}),
            "lat": ("lat", lats, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", lons, {"units": "degrees_east", "standard_name": "longitude"}),
        },
        attrs={"experiment_id": experiment, "source_id": "TEST-ESM"} if attrs else {},
    )
    dataset.to_netcdf(path, engine="h5netcdf")
    return path


def region(pattern: Path, buffer_cells: int = 2) -> dict:
    return {"bbox": REGION_BBOX, "inputs": {"gcm": {"glob": str(pattern),
                                                    "buffer_cells": buffer_cells}}}


MONTHS_2015 = np.arange(12) * 30.0 + 15.0  # days since 2015-01-01 in a 360_day calendar


def write_pair(folder: Path, lons: np.ndarray, experiment: str = "historical") -> None:
    write_cmip6(folder / f"zos_Omon_TEST-ESM_{experiment}_r1i1p1f1_gn_201501-201512.nc", "zos",
                lons, MONTHS_2015, calendar="360_day", time_units="days since 2015-01-01",
                experiment=experiment)
    write_cmip6(folder / f"pr_Amon_TEST-ESM_{experiment}_r1i1p1f1_gn_201501-201512.nc", "pr",
                lons, MONTHS_2015, calendar="360_day", time_units="days since 2015-01-01",
                units="kg m-2 s-1", scale=1 / 86400, experiment=experiment)


def test_lon_0_360_subset_picks_cells_around_region(tmp_path: Path) -> None:
    write_pair(tmp_path, np.arange(0.0, 360.0))
    out = tmp_path / "out"
    out.mkdir()
    gcm.ingest(region(tmp_path / "*.nc"), out)
    with xr.open_dataset(out / "gcm.nc") as result:
        np.testing.assert_array_equal(result.lon.values, np.arange(104.0, 110.0))
        np.testing.assert_array_equal(result.lat.values, np.arange(8.0, 14.0))
        np.testing.assert_allclose(result.zos.isel(experiment=0, time=0).values,
                                   cell_value(np.arange(104.0, 110.0), np.arange(8.0, 14.0)))
        # pr written as kg m-2 s-1 = cell/86400 comes back as cell mm/day
        np.testing.assert_allclose(result.pr.isel(experiment=0, time=3).values,
                                   cell_value(np.arange(104.0, 110.0), np.arange(8.0, 14.0)),
                                   rtol=1e-6)
        assert result.zos.dims == ("experiment", "time", "lat", "lon")
        assert result.zos.attrs["units"] == "m" and result.pr.attrs["units"] == "mm day-1"
        assert result.attrs["model"] == "TEST-ESM"
        assert len(json.loads(result.attrs["source_files"])) == 2


def test_lon_minus180_180_file_gives_same_result(tmp_path: Path) -> None:
    east, west = tmp_path / "east", tmp_path / "west"
    for folder, lons in ((east, np.arange(0.0, 360.0)), (west, np.arange(-180.0, 180.0))):
        folder.mkdir()
        write_pair(folder, lons)
        (folder / "out").mkdir()
        gcm.ingest(region(folder / "*.nc"), folder / "out")
    with (xr.open_dataset(east / "out" / "gcm.nc") as a,
          xr.open_dataset(west / "out" / "gcm.nc") as b):
        xr.testing.assert_allclose(a[["zos", "pr"]], b[["zos", "pr"]])


def test_region_near_greenwich_normalises_and_sorts_longitudes(tmp_path: Path) -> None:
    write_pair(tmp_path, np.arange(0.0, 360.0))
    (tmp_path / "out").mkdir()
    near_zero = {"bbox": [-0.4, 10.3, 0.4, 10.45],
                 "inputs": {"gcm": {"glob": str(tmp_path / "*.nc"), "buffer_cells": 1}}}
    gcm.ingest(near_zero, tmp_path / "out")
    with xr.open_dataset(tmp_path / "out" / "gcm.nc") as result:
        np.testing.assert_array_equal(result.lon.values, [-2.0, -1.0, 0.0, 1.0, 2.0])
        zos = float(result.zos.sel(lon=-1.0, lat=10.0).isel(experiment=0, time=0))
        assert zos == pytest.approx(-0.009, abs=1e-7)


def test_360_day_calendar_maps_to_first_of_month() -> None:
    # day 59 of a 360_day year is 2015-02-30, which the standard calendar lacks
    months = gcm.month_starts(np.array([15.0, 59.0, 75.0, 359.5]), "days since 2015-01-01",
                              "360_day")
    expected = np.array(["2015-01-01", "2015-02-01", "2015-03-01", "2015-12-01"],
                        dtype="datetime64[ns]")
    np.testing.assert_array_equal(months, expected)
    assert months.dtype == np.dtype("datetime64[ns]")


@pytest.mark.parametrize("calendar", ["noleap", "gregorian", "standard", "proleptic_gregorian"])
def test_other_calendars_map_to_first_of_month(calendar: str) -> None:
    months = gcm.month_starts(np.array([14.5, 45.0]), "days since 2000-01-01 00:00:00", calendar)
    np.testing.assert_array_equal(months, np.array(["2000-01-01", "2000-02-01"], "datetime64[ns]"))


def test_pr_flux_converts_to_mm_per_day(tmp_path: Path) -> None:
    lons = np.arange(100.0, 112.0)
    write_cmip6(tmp_path / "zos_Omon_TEST-ESM_ssp245_r1i1p1f1_gn_201501-201502.nc", "zos", lons,
                [15.5, 45.0], experiment="ssp245", units="cm", scale=100.0,
                time_units="days since 2015-01-01")
    path = tmp_path / "pr_Amon_TEST-ESM_ssp245_r1i1p1f1_gn_201501-201502.nc"
    xr.Dataset(
        {"pr": (("time", "lat", "lon"), np.full((2, len(LATS), len(lons)), 1 / 86400, "float32"),
                {"units": "kg m-2 s-1"})},
        coords={"time": ("time", [15.5, 45.0], {"units": "days since 2015-01-01",
                                                "calendar": "noleap"}),
                "lat": ("lat", LATS, {"units": "degrees_north"}),
                "lon": ("lon", lons, {"units": "degrees_east"})},
        attrs={"experiment_id": "ssp245", "source_id": "TEST-ESM"},
    ).to_netcdf(path)
    (tmp_path / "out").mkdir()
    gcm.ingest(region(tmp_path / "*.nc"), tmp_path / "out")
    with xr.open_dataset(tmp_path / "out" / "gcm.nc") as result:
        np.testing.assert_allclose(result.pr.values, 1.0, rtol=1e-6)
        # zos given in cm (cell value * 100) comes back in metres
        np.testing.assert_allclose(result.zos.sel(lon=106.0, lat=10.0).values, 1.061, rtol=1e-6)


def test_two_files_of_one_experiment_concatenate_in_time(tmp_path: Path) -> None:
    lons = np.arange(100.0, 112.0)
    # written out of order, noleap calendar: Jan-Feb 2015 then Mar-Apr 2015
    write_cmip6(tmp_path / "zos_Omon_TEST-ESM_ssp585_r1i1p1f1_gn_201503-201504.nc", "zos", lons,
                [74.5, 105.0], experiment="ssp585", time_units="days since 2015-01-01")
    write_cmip6(tmp_path / "zos_Omon_TEST-ESM_ssp585_r1i1p1f1_gn_201501-201502.nc", "zos", lons,
                [15.5, 45.0], experiment="ssp585", time_units="days since 2015-01-01")
    write_cmip6(tmp_path / "pr_Amon_TEST-ESM_historical_r1i1p1f1_gn_201412-201412.nc", "pr", lons,
                [-16.5], experiment="historical", units="kg m-2 s-1", scale=1 / 86400,
                time_units="days since 2015-01-01")
    (tmp_path / "out").mkdir()
    gcm.ingest(region(tmp_path / "*.nc"), tmp_path / "out")
    with xr.open_dataset(tmp_path / "out" / "gcm.nc") as result:
        expected = np.array(["2014-12-01", "2015-01-01", "2015-02-01", "2015-03-01",
                             "2015-04-01"], "datetime64[ns]")
        np.testing.assert_array_equal(result.time.values, expected)
        assert list(result.experiment.values) == ["historical", "ssp585"]
        zos = result.zos.sel(experiment="ssp585", lat=10.0, lon=106.0).values
        assert np.isnan(zos[0]) and np.allclose(zos[1:], 1.061)
        # the historical run has pr only in December 2014; zos nowhere
        assert np.isnan(result.zos.sel(experiment="historical").values).all()


def test_pr_on_a_coarser_grid_is_interpolated_onto_the_zos_grid(tmp_path: Path) -> None:
    write_cmip6(tmp_path / "zos_Omon_TEST-ESM_historical_r1i1p1f1_gn_201501-201502.nc", "zos",
                np.arange(0.0, 360.0), [15.5, 45.0], time_units="days since 2015-01-01")
    # pr on a 2-degree grid whose centres straddle the region; the field is linear in lon
    # and lat, so linear interpolation must reproduce it exactly at the zos cell centres
    write_cmip6(tmp_path / "pr_Amon_TEST-ESM_historical_r1i1p1f1_gn_201501-201502.nc", "pr",
                np.arange(1.0, 360.0, 2.0), [15.5, 45.0], time_units="days since 2015-01-01",
                units="mm/day", lats=np.arange(-19.0, 30.0, 2.0))
    (tmp_path / "out").mkdir()
    gcm.ingest(region(tmp_path / "*.nc"), tmp_path / "out")
    with xr.open_dataset(tmp_path / "out" / "gcm.nc") as result:
        np.testing.assert_array_equal(result.lon.values, np.arange(104.0, 110.0))
        np.testing.assert_allclose(result.pr.isel(experiment=0, time=1).values,
                                   cell_value(np.arange(104.0, 110.0), np.arange(8.0, 14.0)),
                                   rtol=1e-6)
        assert "interpolated" in result.pr.attrs["comment"]


def test_overlapping_files_are_refused(tmp_path: Path) -> None:
    lons = np.arange(100.0, 112.0)
    for name in ("201501-201502", "201502-201503"):
        start = 15.5 if name.startswith("201501") else 45.0
        write_cmip6(tmp_path / f"zos_Omon_TEST-ESM_ssp585_r1i1p1f1_gn_{name}.nc", "zos", lons,
                    [start, start + 30], experiment="ssp585", time_units="days since 2015-01-01")
    with pytest.raises(InputError, match="month 2015-02 of zos ssp585 is also in"):
        gcm.ingest(region(tmp_path / "*.nc"), tmp_path)


def test_file_without_zos_or_pr_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    lons = np.arange(100.0, 112.0)
    write_pair(tmp_path, lons)
    bad = tmp_path / "tos_Omon_TEST-ESM_historical_r1i1p1f1_gn_201501-201512.nc"
    write_cmip6(bad, "tos", lons, MONTHS_2015, time_units="days since 2015-01-01")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError) as caught:
        gcm.ingest(region(tmp_path / "*.nc"), out)
    message = str(caught.value)
    assert str(bad) in message and "neither zos nor pr" in message and "'tos'" in message
    assert list(out.iterdir()) == []


def test_unknown_units_non_netcdf_and_empty_glob_are_refused(tmp_path: Path) -> None:
    lons = np.arange(100.0, 112.0)
    write_cmip6(tmp_path / "zos_Omon_TEST-ESM_historical_r1i1p1f1_gn_201501-201512.nc", "zos",
                lons, MONTHS_2015, units="furlongs", time_units="days since 2015-01-01")
    with pytest.raises(InputError, match="unknown units 'furlongs' for zos"):
        gcm.ingest(region(tmp_path / "*.nc"), tmp_path)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "zos_broken.nc").write_text("not a netcdf file")
    with pytest.raises(InputError, match="cannot open as NetCDF"):
        gcm.ingest(region(junk / "*.nc"), tmp_path)
    with pytest.raises(InputError, match="no GCM files match"):
        gcm.ingest(region(tmp_path / "nothing" / "*.nc"), tmp_path)


def test_region_outside_domain_is_refused(tmp_path: Path) -> None:
    write_pair(tmp_path, np.arange(0.0, 20.0))
    with pytest.raises(InputError, match="outside the file's domain"):
        gcm.ingest(region(tmp_path / "*.nc"), tmp_path)


def test_experiment_from_file_name_when_attribute_missing(tmp_path: Path) -> None:
    path = tmp_path / "zos_Omon_OTHER-ESM_ssp126_r1i1p1f1_gn_201501-201512.nc"
    assert gcm.experiment_and_model(path, {}) == ("ssp126", "OTHER-ESM")
    assert gcm.experiment_and_model(path, {"experiment_id": "ssp245"})[0] == "ssp245"
