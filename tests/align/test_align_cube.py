"""End to end: `floodkd align` on a hand-made region, checked against known answers."""

from __future__ import annotations

import shutil

import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr
import yaml
from odc.geo.xr import ODCExtensionDs  # noqa: F401  (registers .odc)

from floodkd.cli import main
from floodkd.config import load_config
from floodkd.grid import RegionGrid
from tests.align import fakes

T_RADAR1, T_OPTICAL, T_RADAR2 = 0, 1, 2  # the cube's three times, in order


def _pixel_of(grid: RegionGrid, lon: float, lat: float) -> tuple[float, float]:
    """Fractional (row, col) of a lon/lat point; pixel centres sit at integers."""
    x, y = fakes.to_utm.transform(lon, lat)
    col, row = ~grid.transform @ (x, y)
    return row - 0.5, col - 0.5


def _grid(aligned) -> RegionGrid:
    return RegionGrid.from_config(load_config(aligned["config"]), fakes.REGION)


def test_time_axis_and_matching(aligned):
    ds = aligned["ds"]
    expected = np.array(["2024-01-10T06:00", "2024-01-11T10:30", "2024-01-20T06:00"],
                        dtype="datetime64[ns]")
    np.testing.assert_array_equal(ds["time"].values, expected)
    # the optical scene (Jan 11) is within 3 days of the first pass, so it is matched to it;
    # a radar pass is never copied to the optical scene's time
    assert ds["radar_present"].values.tolist() == [True, False, True]
    assert ds["optical_present"].values.tolist() == [True, True, False]
    np.testing.assert_array_equal(ds["radar_time"].values[[0, 2]], expected[[0, 2]])
    assert np.isnat(ds["radar_time"].values[1])
    assert ds["vv_db"].isel(time=T_OPTICAL).isnull().all()
    assert np.isnan(ds["b02"].isel(time=T_RADAR2)).all()
    assert (ds["clear_sky"].isel(time=T_RADAR2) == 0).all()


def test_feature_lands_on_the_same_pixel_from_both_crs(aligned):
    """A bright target at a known lon/lat, in a UTM raster with a shifted origin and in an
    EPSG:4326 raster, lands within half a pixel of its true position in both."""
    grid = _grid(aligned)
    true_row, true_col = _pixel_of(grid, *fakes.FEATURE_LONLAT)
    for t in (T_RADAR1, T_RADAR2):
        vv = aligned["ds"]["vv_db"].isel(time=t).values
        excess = np.nan_to_num(vv - fakes.BACKGROUND_DB).clip(min=0)
        assert excess.sum() > 0
        rows, cols = np.indices(vv.shape)
        row = (rows * excess).sum() / excess.sum()
        col = (cols * excess).sum() / excess.sum()
        assert abs(row - true_row) < 0.5 and abs(col - true_col) < 0.5, (t, row, col)
        peak = np.unravel_index(np.nanargmax(vv), vv.shape)
        assert abs(peak[0] - true_row) <= 1 and abs(peak[1] - true_col) <= 1


def test_nodata_stays_missing_never_zero(aligned):
    ds = aligned["ds"]
    vv = ds["vv_db"].isel(time=T_RADAR1).values
    # the first scene has NaN in its 12 westmost columns: ~5 grid columns are missing
    assert np.isnan(vv[:, :4]).all() and np.isfinite(vv[:, 8:]).all()
    assert not (vv == 0).any()
    valid = vv[np.isfinite(vv)]
    assert valid.min() >= fakes.BACKGROUND_DB - 1e-4  # no NaN mixed into neighbours as 0
    # optical lacks B11/B12: missing, not 0
    assert np.isnan(ds["b11"].values).all() and np.isnan(ds["b12"].values).all()
    b02 = ds["b02"].isel(time=T_OPTICAL).values
    np.testing.assert_allclose(b02[np.isfinite(b02)], 0.1, atol=1e-6)


def test_masks_and_labels_stay_categorical(aligned):
    ds = aligned["ds"]
    assert ds["clear_sky"].dtype == np.uint8 and ds["label"].dtype == np.uint8
    assert set(np.unique(ds["clear_sky"].values)) <= {0, 1}
    assert set(np.unique(ds["label"].values)) <= {0, 1, 255}
    clear = ds["clear_sky"].isel(time=T_OPTICAL).values
    assert clear[0, :10].tolist() == [1] * 10 and clear[-1, :10].tolist() == [0] * 10
    assert ds["clear_sky"].attrs["resampling"] == "nearest"


def test_labels_matched_and_rasterised(aligned):
    ds, grid = aligned["ds"], _grid(aligned)
    raster = ds["label"].isel(time=T_RADAR1).values
    assert {0, 1, 255} == set(np.unique(raster))
    # the Jan 19 polygons match the Jan 20 pass (within 3 days), not the Jan 10/11 times
    vector = ds["label"].isel(time=T_RADAR2).values
    row, col = _pixel_of(grid, 3.0025, 51.0025)
    assert vector[round(row), round(col)] == 1
    row, col = _pixel_of(grid, 3.006, 51.0025)
    assert vector[round(row), round(col)] == 0
    row, col = _pixel_of(grid, 3.0025, 51.0055)
    assert vector[round(row), round(col)] == 255
    # each label is used at its nearest time only, never copied to the optical scene's
    assert (ds["label"].isel(time=T_OPTICAL).values == 255).all()


def test_water_level_field_and_gauge_history(aligned):
    ds = aligned["ds"]
    hour = int((ds["time"].values[T_RADAR1] - fakes.GAUGE_START) / np.timedelta64(1, "h"))
    level = ds["water_level_m"].isel(time=T_RADAR1).values
    # gauges sit on pixels (20, 10) and (40, 50): the field equals their values there
    assert level[20, 10] == pytest.approx(fakes.gauge_level(0, hour), abs=1e-5)
    assert level[40, 50] == pytest.approx(fakes.gauge_level(1, hour), abs=1e-5)
    # between them, weights 1/d^2: (30, 30) is 500 px^2 from both gauges; (20, 30) is
    # 400 px^2 from gauge 0 and 800 px^2 from gauge 1, so gauge 0 weighs twice as much
    g0, g1 = fakes.gauge_level(0, hour), fakes.gauge_level(1, hour)
    assert level[30, 30] == pytest.approx((g0 + g1) / 2, abs=1e-5)
    assert level[20, 30] == pytest.approx((2 * g0 + g1) / 3, abs=1e-5)
    # at the second pass gauge 0 is missing: the field is gauge 1 everywhere
    hour2 = int((ds["time"].values[T_RADAR2] - fakes.GAUGE_START) / np.timedelta64(1, "h"))
    np.testing.assert_allclose(ds["water_level_m"].isel(time=T_RADAR2).values,
                               fakes.gauge_level(1, hour2), atol=1e-5)
    # gauge 1 is always filled by prediction; gauge 0 observed except at the second pass
    assert ds["gauge_present"].values.tolist() == [True, True, False]
    history = ds["gauge_history_m"]
    assert history.dims == ("time", "gauge", "lag") and history.sizes["lag"] == 72
    expected = fakes.gauge_level(0, np.arange(hour - 71, hour + 1))
    np.testing.assert_allclose(history.isel(time=T_RADAR1, gauge=0).values, expected, atol=1e-6)
    assert ds["lag_hours_before"].values[0] == 71 and ds["lag_hours_before"].values[-1] == 0
    last = history.isel(time=T_RADAR2, gauge=0).values
    assert np.isnan(last[-1]) and np.isfinite(last[:-1]).all()


def test_gcm_months_experiments_and_bilinear_values(aligned):
    ds, grid = aligned["ds"], _grid(aligned)
    # all times are January 2024: after the historical run, so ssp245, month index 12
    assert ds["gcm_experiment"].values.tolist() == ["ssp245"] * 3
    assert ds["gcm_present"].values.all()
    row, col = 30, 40
    lon, lat = fakes.to_lonlat.transform(grid.x[col], grid.y[row])
    expected = fakes.gcm_value(lon, lat, 12, "ssp245")
    assert ds["zos_m"].isel(time=0, y=row, x=col).item() == pytest.approx(expected, abs=1e-4)
    assert ds["pr_mm_day"].isel(time=0, y=row, x=col).item() == pytest.approx(2 * expected,
                                                                              abs=2e-4)
    assert ds["zos_m"].attrs["resampling"] == "bilinear"
    assert ds.attrs["gcm_scenario_experiment"] == "ssp245"


def test_terrain_fields(aligned):
    ds, grid = aligned["ds"], _grid(aligned)
    elevation = ds["elevation_m"].values
    row, col = 30, 40
    lon, _ = fakes.to_lonlat.transform(grid.x[col], grid.y[row])
    assert elevation[row, col] == pytest.approx((lon - fakes.SEA_LON) / 0.0001, abs=0.3)
    sea = elevation <= 0
    assert sea.any() and (~sea).any()
    np.testing.assert_allclose(ds["hand_m"].values[sea], 0, atol=1e-6)
    assert (ds["coast_distance_m"].values[sea] == 0).all()
    assert (ds["coast_distance_m"].values[~sea] >= 10).all()
    assert (ds["hand_m"].values[~sea] > 0).all()


def test_every_variable_on_the_region_grid(aligned):
    grid = _grid(aligned)
    reopened = xr.open_zarr(aligned["cube"], decode_coords="all")
    assert reopened.rio.crs.to_epsg() == grid.crs.epsg
    assert RegionGrid.from_dataset(reopened).same_as(grid)
    for name, var in reopened.data_vars.items():
        assert "resampling" in var.attrs, name
        if "x" in var.dims:
            assert var.shape[-2:] == grid.shape, name
            assert var.rio.crs.to_epsg() == grid.crs.epsg, name
            assert var.rio.transform().almost_equals(grid.transform), name
            assert var.encoding["chunks"][-1] == 32, name
    tiles = gpd.read_parquet(aligned["tiles"])
    assert tiles.crs.to_epsg() == grid.crs.epsg
    first = tiles.iloc[0]
    left, top = grid.transform @ (first.col_off, first.row_off)
    assert first.geometry.bounds == pytest.approx(
        (left, top - first.height * 10, left + first.width * 10, top))


def test_tiles_have_fractions_and_disjoint_splits(aligned):
    tiles = gpd.read_parquet(aligned["tiles"])
    assert list(tiles.columns) == ["tile_id", "row_off", "col_off", "height", "width",
                                   "valid_fraction", "labelled_fraction", "split", "geometry"]
    assert set(tiles["split"]) <= {"train", "val", "test"}
    assert tiles["tile_id"].is_unique
    assert ((tiles.valid_fraction > 0.99) & (tiles.valid_fraction <= 1)).all()
    assert tiles.labelled_fraction.between(0, 1).all() and tiles.labelled_fraction.max() > 0.5
    shape = _grid(aligned).shape
    owner = np.full(shape, "", dtype=object)
    for tile in tiles.itertuples():
        rows = slice(tile.row_off, tile.row_off + tile.height)
        window = owner[rows, tile.col_off:tile.col_off + tile.width]
        clash = (window != "") & (window != tile.split)
        assert not clash.any(), tile.tile_id
        window[:] = tile.split
    assert (owner != "").all()  # the tiles cover the whole grid


def test_protected_areas_carry_their_highest_crest(tmp_path):
    config = fakes.make_region(tmp_path, modalities=("defences",))
    cube = tmp_path / "cube.zarr"
    assert main(["align", "--config", str(config), "--region", fakes.REGION, "--cube", str(cube),
                 "--tiles", str(tmp_path / "tiles.parquet"), "--threads", "1"]) == 0
    ds = xr.open_zarr(cube).load()
    crest, grid = ds["protection_level_m"].values, RegionGrid.from_config(
        load_config(config), fakes.REGION)
    for lon, lat, expected in ((3.002, 51.0025, 3.0), (3.005, 51.0025, 4.5),
                               (3.008, 51.0025, np.nan), (3.002, 51.0055, np.nan)):
        row, col = _pixel_of(grid, lon, lat)
        np.testing.assert_equal(crest[round(row), round(col)], np.float32(expected))
    assert ds["protection_level_m"].attrs["units"] == "m"


def test_optional_modalities_absent(tmp_path):
    config = fakes.make_region(tmp_path, modalities=())
    cube = tmp_path / "cube.zarr"
    assert main(["align", "--config", str(config), "--region", fakes.REGION, "--cube", str(cube),
                 "--tiles", str(tmp_path / "tiles.parquet"), "--threads", "1"]) == 0
    ds = xr.open_zarr(cube).load()
    for flag in ("optical_present", "gauge_present", "gcm_present"):
        assert not ds[flag].values.any(), flag
    for name in ("b02", "water_level_m", "zos_m"):
        assert ds[name].isnull().all().item(), name
    assert (ds["label"] == 255).all().item() and (ds["clear_sky"] == 0).all().item()
    assert ds["protection_level_m"].isnull().all().item()  # no register: nothing protected
    assert ds.sizes["gauge"] == 0 and ds.sizes["lag"] == 72


@pytest.mark.parametrize("damage", ["corrupt_radar", "no_terrain", "bad_scene_table",
                                    "register_without_crest"])
def test_bad_input_writes_nothing(tmp_path, capsys, damage):
    config = fakes.make_region(tmp_path, modalities=("defences",))
    ingest = tmp_path / "results" / fakes.REGION / "ingest"
    if damage == "register_without_crest":
        register = ingest / "defences" / "defences.gpkg"
        gpd.read_file(register).drop(columns="crest_m").to_file(register, layer="defences")
        expected = "defences.gpkg: column 'crest_m' is missing. Fix: rerun ingest for defences"
    elif damage == "corrupt_radar":
        (ingest / "sar" / "20240120T060000.tif").write_text("not a GeoTIFF")
        expected = "20240120T060000.tif"
    elif damage == "no_terrain":
        (ingest / "terrain" / "dem.tif").unlink()
        expected = "dem.tif: the DEM is missing"
    else:
        (ingest / "sar" / "scenes.csv").write_text("when,file\n2024,x.tif\n")
        expected = "missing columns"
    cube, tiles = tmp_path / "cube.zarr", tmp_path / "tiles.parquet"
    rc = main(["align", "--config", str(config), "--region", fakes.REGION, "--cube", str(cube),
               "--tiles", str(tiles)])
    assert rc == 2
    assert expected in capsys.readouterr().err
    assert not cube.exists() and not tiles.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def _single_pass(root):
    """The hand-made region cut to its first pass, an optical scene a day later and the
    raster label of that pass."""
    config = fakes.make_region(root, modalities=("optical", "labels"))
    ingest = root / "results" / fakes.REGION / "ingest"
    for table in (ingest / "sar" / "scenes.csv", ingest / "labels" / "labels.csv"):
        lines = table.read_text().splitlines()
        table.write_text("\n".join(lines[:2]) + "\n")
    return config


def test_a_single_pass_and_its_label_are_never_duplicated(tmp_path):
    config = _single_pass(tmp_path)
    cube = tmp_path / "cube.zarr"
    assert main(["align", "--config", str(config), "--region", fakes.REGION, "--cube", str(cube),
                 "--tiles", str(tmp_path / "tiles.parquet"), "--threads", "1"]) == 0
    ds = xr.open_zarr(cube).load()
    assert ds.sizes["time"] == 2  # the pass and the optical scene
    assert ds["radar_present"].values.tolist() == [True, False]
    assert ds["vv_db"].isel(time=1).isnull().all()
    labelled = (ds["label"] != 255).sum(("y", "x")).values
    assert labelled[0] > 0 and labelled[1] == 0


def test_a_radar_only_region_needs_terrain_only_for_the_student(tmp_path, capsys):
    config = fakes.make_region(tmp_path, modalities=())
    shutil.rmtree(tmp_path / "results" / fakes.REGION / "ingest" / "terrain")
    cube, tiles = tmp_path / "cube.zarr", tmp_path / "tiles.parquet"
    args = ["align", "--config", str(config), "--region", fakes.REGION, "--cube", str(cube),
            "--tiles", str(tiles), "--threads", "1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "the terrain input is missing; the student needs it" in err
    assert "model: teacher" in err and not cube.exists()
    settings = yaml.safe_load(config.read_text())
    settings["regions"][fakes.REGION]["model"] = "teacher"
    del settings["regions"][fakes.REGION]["inputs"]["terrain"]
    config.write_text(yaml.safe_dump(settings))
    assert main(args) == 0
    ds = xr.open_zarr(cube).load()
    assert ds["elevation_m"].isnull().all() and ds["vv_db"].notnull().any()
    assert "terrain" not in ds.attrs["modalities_present"]
    assert len(gpd.read_parquet(tiles)) > 0  # tiles come from the radar footprint
