"""Exposure: footprint statistics on a known map, the annual exceedance integral, the CLI."""

from __future__ import annotations

import argparse

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import yaml
from shapely.geometry import LineString, MultiPoint, Point, box

from floodkd.errors import InputError
from floodkd.risk import exposure_cli
from floodkd.risk.exposure import (
    annual_exceedance,
    array_reader,
    climate_groups,
    footprint_statistics,
)
from floodkd.risk.exposure_assets import read_assets
from tests.risk.fakes import CRS, SHAPE, TRANSFORM, known_probability, pixel_centre, write_maps


def _stats(geometries, probability=None):
    probability = known_probability() if probability is None else probability
    return footprint_statistics(geometries, TRANSFORM, SHAPE,
                                array_reader(probability, probability / 10))


def test_point_takes_the_value_of_its_pixel():
    x, y = pixel_centre(3, 5)
    stats = _stats([Point(x + 3, y - 4)])  # anywhere inside pixel (3, 5)
    assert stats.loc[0, "p_max"] == pytest.approx(0.29)
    assert stats.loc[0, "p_mean"] == pytest.approx(0.29)
    assert stats.loc[0, "std_at_max"] == pytest.approx(0.029)
    assert stats.loc[0, "pixels"] == 1


def test_polygon_takes_the_max_and_mean_of_the_pixels_it_touches():
    # rows 2..3, cols 1..3 fully, and it reaches 2 m into col 4 and row 4: all-touched
    left, top = TRANSFORM * (1, 2)
    polygon = box(left, top - 22, left + 32, top)
    stats = _stats([polygon])
    touched = known_probability()[2:5, 1:5]
    assert stats.loc[0, "pixels"] == touched.size
    assert stats.loc[0, "p_max"] == pytest.approx(touched.max())
    assert stats.loc[0, "p_mean"] == pytest.approx(touched.mean())
    assert stats.loc[0, "std_mean"] == pytest.approx(touched.mean() / 10)


def test_line_takes_the_pixels_it_crosses_and_nodata_is_left_out():
    probability = known_probability()
    probability[6, 2] = np.nan  # no prediction there
    x0, y = pixel_centre(6, 0)
    x1, _ = pixel_centre(6, 4)
    stats = _stats([LineString([(x0, y), (x1, y)])], probability)
    assert stats.loc[0, "pixels"] == 5
    assert stats.loc[0, "covered_fraction"] == pytest.approx(4 / 5)
    assert stats.loc[0, "p_mean"] == pytest.approx(np.mean([0.48, 0.49, 0.51, 0.52]))


def test_assets_off_the_grid_have_no_statistics():
    x, y = pixel_centre(0, 0)
    stats = _stats([Point(x - 500, y), MultiPoint([(x - 500, y), (x, y)])])
    assert stats.loc[0, "pixels"] == 0 and np.isnan(stats.loc[0, "p_max"])
    assert stats.loc[1, "pixels"] == 1 and stats.loc[1, "p_max"] == pytest.approx(0.0)


def test_annual_exceedance_matches_the_hand_computed_integral():
    # f = 1/100, 1/50, 1/10 with p = 0.8, 0.5, 0.2:
    # flat rare tail 0.01 * 0.8 = 0.008; trapezoids 0.01 * 0.65 = 0.0065 and 0.08 * 0.35 = 0.028
    aep = annual_exceedance([50, 10, 100], np.array([[0.5], [0.2], [0.8]]))
    assert aep.central[0] == pytest.approx(0.0425)
    assert aep.lower[0] == pytest.approx(0.008 + 0.01 * 0.5 + 0.08 * 0.2)
    assert aep.upper[0] == pytest.approx(0.01 * 1.0 + 0.01 * 0.8 + 0.08 * 0.5 + 0.9 * 0.2)
    assert aep.lower[0] <= aep.central[0] <= aep.upper[0]


def test_annual_exceedance_makes_p_non_decreasing_in_the_return_period():
    # the 50-year map says less than the 10-year one: it is raised to 0.3
    aep = annual_exceedance([10, 50], np.array([[0.3], [0.1]]))
    assert aep.central[0] == pytest.approx(0.02 * 0.3 + 0.08 * 0.3)


def test_climates_group_scenarios_that_differ_only_in_return_period():
    groups = climate_groups({
        "observed": {}, "present_rp10": {"return_period_years": 10},
        "present_rp100": {"return_period_years": 100},
        "ssp245_2050_rp100": {"experiment": "ssp245", "horizon": 2050,
                              "return_period_years": 100},
        "plus_1m": {"water_level_offset_m": 1.0},
    })
    assert groups == {"present": {10.0: "present_rp10", 100.0: "present_rp100"},
                      "ssp245_2050": {100.0: "ssp245_2050_rp100"}}


def _assets_file(tmp_path, frame=None, name="assets.gpkg"):
    if frame is None:
        x, y = pixel_centre(3, 5)
        left, top = TRANSFORM * (1, 2)
        frame = gpd.GeoDataFrame(
            {"class": ["pumping_station", "building"], "man_made": ["pumping_station", None],
             "building": [None, "house"], "name": ["Pump 1", "House 1"]},
            geometry=[Point(x, y), box(left, top - 22, left + 32, top)], crs=CRS,
        ).to_crs("EPSG:4326")  # as an OSM export comes: lon/lat
    path = tmp_path / name
    if path.suffix == ".gpkg":
        frame.to_file(path, layer="assets", driver="GPKG")
    else:
        frame.to_parquet(path)
    return path


def test_exposure_cli_writes_a_layer_per_scenario_with_the_aep(tmp_path):
    maps = tmp_path / "results" / "r" / "maps"
    maps.mkdir(parents=True)
    base = known_probability()
    for scenario, factor in (("observed", 0.5), ("present_rp10", 0.5), ("present_rp50", 1.0),
                             ("present_rp100", 1.2)):
        write_maps(maps, scenario, np.clip(base * factor, 0, 1))
    assets = _assets_file(tmp_path)
    config = {"regions": {"r": {"role": "target", "bbox": [105, 9, 106, 10],
                                "inputs": {"sar": {"glob": "data/s1/*.tif"}},
                                "assets": str(assets)}},
              "predict": {"scenarios": {"observed": {}, "present_rp10": {},
                                        "present_rp50": {}, "present_rp100": {}}}}
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    groups = {"present_rp10": 10, "present_rp50": 50, "present_rp100": 100}
    loaded = {"observed": {}, **{k: {"return_period_years": v} for k, v in groups.items()}}
    layers = exposure_cli.exposure_layers(read_assets(assets), loaded, maps, 0.25)
    assert set(layers) == {"observed", *groups}
    pump = [layers[s].loc[0, "p_max"] for s in groups]
    assert pump == pytest.approx([0.145, 0.29, 0.348], abs=1e-6)
    expected = annual_exceedance([10, 50, 100], np.array(pump)[:, None]).central[0]
    assert layers["present_rp50"].loc[0, "aep_flood"] == pytest.approx(expected)
    assert "aep_flood" not in layers["observed"]
    assert layers["observed"].loc[0, "name"] == "Pump 1"  # the assets' own attributes kept
    assert list(layers["present_rp100"]["exposed"]) == [True, True]


def test_exposure_cli_run_writes_the_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    maps = tmp_path / "results" / "r" / "maps"
    maps.mkdir(parents=True)
    write_maps(maps, "observed", known_probability())
    assets = _assets_file(tmp_path, name="assets.parquet")
    config = {"regions": {"r": {"role": "target", "bbox": [105, 9, 106, 10],
                                "inputs": {"sar": {"glob": "data/s1/*.tif"}},
                                "assets": str(assets)}},
              "predict": {"scenarios": {"observed": {}}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "results" / "r"
    exposure_cli.run(argparse.Namespace(config="config.yaml", region="r", maps=str(maps),
                                        out=str(out)))
    layer = gpd.read_file(out / "exposure.gpkg", layer="observed")
    assert layer.crs.to_epsg() == 4326 and list(layer["class"]) == ["pumping_station",
                                                                     "building"]
    summary = pd.read_csv(out / "exposure_summary.csv")
    assert list(summary["class"]) == ["building", "pumping_station"]
    building = known_probability()[2:5, 1:5]
    assert summary.loc[0, "p_max_max"] == pytest.approx(building.max())
    assert summary.loc[0, "exposed"] == 0  # 0.36 < 0.5


@pytest.mark.parametrize("fault, problem", [
    ("missing", "file not found"),
    ("suffix", "is not a supported format"),
    ("no_class", "has no 'class' column"),
    ("no_crs", "has no coordinate reference system"),
    ("two_layers", "holds 2 layers"),
])
def test_asset_file_errors_name_the_file_and_the_fix(tmp_path, fault, problem):
    path = _assets_file(tmp_path)
    if fault == "missing":
        path = tmp_path / "nowhere.gpkg"
    elif fault == "suffix":
        path = path.rename(tmp_path / "assets.shp")
    elif fault == "no_class":
        frame = gpd.read_file(path).drop(columns="class")
        path = _assets_file(tmp_path, frame, "no_class.gpkg")
    elif fault == "no_crs":
        frame = gpd.read_file(path).set_crs(None, allow_override=True)
        path = _assets_file(tmp_path, frame, "no_crs.parquet")
    elif fault == "two_layers":
        gpd.read_file(path).to_file(path, layer="more", driver="GPKG")
    with pytest.raises(InputError) as error:
        read_assets(path)
    assert str(path) in str(error.value) and problem in str(error.value)
    assert error.value.fix
