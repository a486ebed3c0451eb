"""Climate scenario forcing: scenario levels from the risk tables, monotone maps, bands."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from pyproj import Transformer

from floodkd.distill.data import open_cube
from floodkd.distill.inference import StudentEnsemble
from floodkd.errors import InputError
from floodkd.grid import RegionGrid
from floodkd.predict import climate_scenario as cs
from floodkd.predict import write_scenario_maps
from floodkd.predict.cli import resolve_scenario, run
from tests.distill import conftest as cube_helpers
from tests.distill.untrained import write_student_dir

RETURN_LEVELS = pd.DataFrame({
    "station": ["G1"] * 3 + ["G2"] * 3,
    "return_period_years": [10.0, 50.0, 100.0] * 2,
    "level_m": [1.0, 1.4, 1.6, 1.1, 1.5, 1.7],
    "lower_m": [0.8, 1.0, 1.1, 0.9, 1.1, 1.2],
    "upper_m": [1.3, 2.0, 2.4, 1.4, 2.1, 2.5],
    "method": ["pot_gpd"] * 6, "record_years": [2.0] * 6, "reference_year": [2024.0] * 6,
})
SEA_LEVEL = pd.DataFrame({
    "experiment": ["ssp245", "ssp245", "ssp585", "ssp585"], "horizon": [2050, 2100] * 2,
    "delta_m": [0.2, 0.5, 0.25, 0.8], "lower_m": [0.1, 0.3, 0.15, 0.5],
    "upper_m": [0.3, 0.7, 0.35, 1.1], "source": ["test"] * 4,
})
TABLES = {"return_levels": RETURN_LEVELS, "sea_level_change": SEA_LEVEL}
SCENARIOS = {  # in rising order of level, draw by draw
    "present_rp10": {"return_period_years": 10},
    "present_rp100": {"return_period_years": 100},
    "ssp245_2050_rp100": {"experiment": "ssp245", "horizon": 2050, "return_period_years": 100},
    "ssp585_2100_rp100": {"experiment": "ssp585", "horizon": 2100, "return_period_years": 100},
}


def levels(name: str, draws: int = 20) -> cs.ScenarioLevels:
    return cs.scenario_levels(SCENARIOS[name], TABLES, draws, 0.9, (1995, 2014))


def test_present_levels_are_draws_within_the_return_level_interval():
    present = levels("present_rp100")
    assert present.stations == ["G1", "G2"]
    assert present.draws_m.shape == (2, 20)
    assert present.draws_m[0].min() > 1.1 and present.draws_m[0].max() < 2.4
    assert np.median(present.draws_m[0]) == pytest.approx(1.6, abs=0.05)
    assert (present.sea_level_change_m == 0).all()


def test_climate_change_counts_only_what_the_record_does_not_already_hold():
    future = levels("ssp245_2050_rp100")
    # the records stand on 2024's sea: 0.2 m * (2024 - 2005) / (2050 - 2005) is in them
    already = 0.2 * (2024 - 2005) / (2050 - 2005)
    assert np.median(future.sea_level_change_m) == pytest.approx(0.2 - already, abs=0.01)
    assert future.sea_level_change_m.min() > 0.1 - already
    assert future.sea_level_change_m.max() < 0.3 - already
    np.testing.assert_allclose(future.draws_m - future.sea_level_change_m[None],
                               levels("present_rp100").draws_m)


def test_every_draw_rises_with_the_scenario():
    ordered = [levels(name).draws_m for name in SCENARIOS]
    for lower, higher in zip(ordered, ordered[1:], strict=False):
        assert (higher >= lower).all()


def test_unknown_return_period_and_horizon_are_refused():
    with pytest.raises(InputError, match="no return level for 25 years.*return_periods_years"):
        cs.scenario_levels({"return_period_years": 25}, TABLES, 20, 0.9, (1995, 2014))
    with pytest.raises(InputError, match="no sea-level change for ssp245 2070"):
        cs.scenario_levels({"return_period_years": 10, "experiment": "ssp245", "horizon": 2070},
                           TABLES, 20, 0.9, (1995, 2014))


def test_clear_composite_takes_each_pixels_latest_clear_value():
    import xarray as xr
    clear = np.array([[[1, 0]], [[0, 0]], [[1, 0]]], np.uint8)  # (time, y, x)
    b02 = np.array([[[0.1, 0.5]], [[0.2, 0.6]], [[0.3, 0.7]]], np.float32)
    cube = xr.Dataset({"clear_sky": (("time", "y", "x"), clear),
                       "b02": (("time", "y", "x"), b02)})
    out = cs.clear_composite(cube, slice(0, 1), slice(0, 2))
    np.testing.assert_allclose(out["b02"], [[0.3, np.nan]])
    np.testing.assert_array_equal(out["clear_sky"], [[1, 0]])


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """The distill tests' toy cube with two gauges placed on it, and an untrained student
    (monotone in the water level by construction, whatever its weights)."""
    tmp = tmp_path_factory.mktemp("climate")
    region = cube_helpers.write_region(tmp / "results", "toy", seed=4)
    cube = open_cube(region.cube_path)
    grid = RegionGrid.from_dataset(cube)
    to_lonlat = Transformer.from_crs(grid.crs.to_wkt(), "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform(grid.x[[5, 40]], grid.y[[5, 40]])
    cube = cube.assign_coords(gauge=["G1", "G2"], gauge_lon=("gauge", lon),
                              gauge_lat=("gauge", lat))
    ensemble = StudentEnsemble.load(write_student_dir(tmp / "student", 1.0, []), device="cpu")
    lags = cube.sizes["lag"]
    storm = pd.DataFrame({"station": np.repeat(["G1", "G2"], lags),
                          "lag": np.tile(np.arange(lags), 2),
                          "level_below_peak_m": np.tile(np.linspace(-1.0, 0.0, lags), 2)})
    return tmp, cube, grid, ensemble, storm


def scenario_samples(toy, name: str) -> np.ndarray:
    _, cube, grid, ensemble, storm = toy
    scenario = levels(name, draws=4)
    histories = cs.storm_histories(scenario.draws_m, storm, scenario.stations, ["G1", "G2"],
                                   cube.sizes["lag"])
    weights = cs.gauge_weights(cube, scenario.stations, grid, 64)
    predict = cs.climate_window_predictor(cube, cube.sizes["time"] - 1, ensemble, scenario,
                                          histories, weights, 2, 8)
    samples, flags = predict(0, 0, *grid.shape)
    # 2 members x 1 dropout mask per draw (2 MC samples over 4 draws) x 4 draws
    assert samples.shape == (2 * 1 * 4, *grid.shape)
    assert (flags & 2).all() and not (flags & 16).any()  # gauge yes, radar never
    return samples


def test_a_higher_scenario_never_lowers_flood_probability_at_any_pixel(toy):
    means = [scenario_samples(toy, name).mean(0) for name in SCENARIOS]
    for lower, higher in zip(means, means[1:], strict=False):
        assert (higher >= lower - 1e-6).all()
    assert (means[-1] - means[0]).max() > 0.05  # the levels do move the map


def test_uncertainty_band_descriptions_say_what_the_draws_span(toy, provenance):
    tmp, cube, grid, ensemble, storm = toy
    scenario = levels("ssp245_2050_rp100", draws=4)
    bands = cs.uncertainty_bands(scenario.description)
    histories = cs.storm_histories(scenario.draws_m, storm, scenario.stations, ["G1", "G2"],
                                   cube.sizes["lag"])
    predict = cs.climate_window_predictor(cube, cube.sizes["time"] - 1, ensemble, scenario,
                                          histories, cs.gauge_weights(cube, scenario.stations,
                                                                      grid, 64), 1, 8)
    written = write_scenario_maps(grid, predict, tmp / "maps", provenance, tile_px=48,
                                  overlap_px=0, blocksize=64, uncertainty_bands=bands)
    with rasterio.open(written.uncertainty) as src:
        assert src.descriptions[0] == "std"
        text = src.tags(1)["long_name"]
    assert text.startswith("standard deviation of P(flood) over ensemble members x MC "
                           "dropout x 4 draws of the 100-year level within its 90% interval")
    assert "ssp245 sea-level change to 2050" in text


def test_climate_scenarios_resolve_and_the_radar_teacher_refuses_them(tmp_path):
    config = {"regions": {"radar-only": {"role": "target", "model": "teacher",
                                         "bbox": [106.0, 9.9, 106.1, 10.0],
                                         "inputs": {"sar": {"glob": "s1/*.tif"}}}},
              "predict": {"scenarios": {"present_rp100": SCENARIOS["present_rp100"]}}}
    assert resolve_scenario(config, "present_rp100") == {"return_period_years": 100}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    args = argparse.Namespace(config=str(tmp_path / "config.yaml"), region="radar-only",
                              scenario="present_rp100", model=None, student=None,
                              teacher=str(tmp_path), cube=str(tmp_path / "cube.zarr"),
                              out=str(tmp_path / "maps"), device="cpu", risk=None)
    with pytest.raises(InputError, match="scenario 'present_rp100' is a storm that has not "
                       "happened.*radar teacher alone.*Fix: map it with the student"):
        run(args)
    assert not (tmp_path / "maps").exists()
