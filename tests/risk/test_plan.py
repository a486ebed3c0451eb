"""The plan: the modalities it says it used, rules from config, triggers and exposed assets."""

from __future__ import annotations

import argparse
import copy
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import yaml
from shapely.geometry import Point

from floodkd.config import validate_config
from floodkd.errors import InputError
from floodkd.risk import plan_cli
from floodkd.risk.plan import evaluate_rules
from tests.risk.fakes import CRS, fake_cube, known_probability, pixel_centre, write_maps

# g0, a station whose record was refused, has no levels; g1 is the cube's gauge
LEVELS = pd.DataFrame({"station": ["g0", "g1", "g1"], "return_period_years": [10, 10, 100],
                       "level_m": [np.nan, 1.0, 1.6], "lower_m": [np.nan, 0.9, 1.4],
                       "upper_m": [np.nan, 1.1, 1.9],
                       "method": ["refused: 0.5 years of observations", "gev", "gev"],
                       "record_years": [0.5, 30, 30]})


def _config(tmp_path, assets=True, **plan):
    region = {"role": "target", "bbox": [105, 9, 106, 10],
              "inputs": {"sar": {"glob": "data/s1/*.tif"}}}
    if assets:
        x, y = pixel_centre(6, 6)
        path = tmp_path / "assets.gpkg"
        gpd.GeoDataFrame({"class": ["hospital"], "name": ["Synth Hospital"]},
                         geometry=[Point(x, y)], crs=CRS).to_file(path, driver="GPKG")
        region["assets"] = str(path)
    config = {"regions": {"r": region}, "plan": {"zone_size_m": 40, **plan}}
    return validate_config(config)


def _maps(tmp_path):
    maps = tmp_path / "maps"
    maps.mkdir(exist_ok=True)
    write_maps(maps, "observed", known_probability())
    return maps


def _zone(plan, zone_id):
    return next(z for z in plan["zones"] if z["zone_id"] == zone_id)


def test_without_radar_the_student_alone_makes_the_belief_and_the_plan_says_so(tmp_path):
    plan, zones = plan_cli.make_plan(_config(tmp_path), "r", fake_cube(radar_at_latest=False),
                                     _maps(tmp_path), tmp_path / "teacher", LEVELS,
                                     "return_levels.csv")
    assert plan["conditions"]["models"] == ["student"]
    assert plan["conditions"]["belief"].startswith("no radar pass at the latest time")
    assert "student alone, on optical (100% clear), gauges, GCM, terrain" in \
        plan["conditions"]["belief"]
    assert set(zones["models"]) == {"student"}
    assert zones.crs.to_epsg() == 4326 and len(zones) == 4  # 80 m grid in 40 m squares


def test_zone_belief_and_its_triggers_hold_the_numbers(tmp_path):
    plan, _ = plan_cli.make_plan(_config(tmp_path), "r", fake_cube(False), _maps(tmp_path),
                                 None, LEVELS, "return_levels.csv")
    bottom_right = _zone(plan, "r1c1")
    values = known_probability()[4:, 4:]  # its land pixels: the zone lies off the sea column
    assert bottom_right["belief"]["flood_probability_p90"] == pytest.approx(
        np.percentile(values, 90), abs=1e-4)
    assert bottom_right["belief"]["water_level_over_rp10_m"] == pytest.approx(0.2, abs=1e-4)
    assert bottom_right["belief"]["return_level_station"] == "g1"  # g0 is nearer, no levels
    fired = {entry["rule"]: entry for entry in bottom_right["actions"]}
    surge = fired["surge above the 10-year level"]
    assert surge["actions"] == ["close floodgates", "warn shipping"]
    assert surge["triggers"] == [{"variable": "water_level_over_rp10_m", "value": 0.2,
                                  "comparison": "above", "threshold": 0.0}]
    assert "flood likely" not in fired and "flood possible" in fired
    for entry in fired.values():  # the hospital (P 0.54 >= 0.5) goes with every action
        assert [a["name"] for a in entry["exposed_assets"]] == ["Synth Hospital"]
    top_left = _zone(plan, "r0c0")
    assert top_left["belief"]["land_pixels"] == 12  # the sea column is left out


def test_thresholds_come_from_config(tmp_path):
    rules = copy.deepcopy(_config(tmp_path)["plan"]["rules"])
    rules[0]["when"]["flood_probability_p90"]["above"] = 0.5  # "flood likely" now at 0.5
    plan, zones = plan_cli.make_plan(_config(tmp_path, rules=rules), "r", fake_cube(False),
                                     _maps(tmp_path), None, LEVELS, "return_levels.csv")
    fired = {entry["rule"]: entry for entry in _zone(plan, "r1c1")["actions"]}
    assert fired["flood likely"]["actions"] == ["evacuate low-lying areas", "activate pumps",
                                                "deploy sandbags"]
    assert fired["flood likely"]["triggers"][0]["threshold"] == 0.5
    assert "evacuate low-lying areas" in zones.set_index("zone_id").loc["r1c1", "actions"]
    assert plan["rules"] == rules


def test_exposed_assets_go_with_the_actions_of_their_zone(tmp_path):
    config = _config(tmp_path)
    plan, _ = plan_cli.make_plan(config, "r", fake_cube(False, water_level_m=0.5),
                                 _maps(tmp_path), None, LEVELS, "return_levels.csv")
    entry = _zone(plan, "r1c1")["actions"][0]
    assert entry["rule"] == "flood possible"
    assert entry["exposed_assets"] == [{"id": 0, "class": "hospital", "name": "Synth Hospital",
                                        "p_max": 0.54, "p_mean": 0.54, "std_at_max": 0.054}]
    config["exposure"]["threshold"] = 0.6  # the exposure threshold comes from config too
    plan, _ = plan_cli.make_plan(config, "r", fake_cube(False, water_level_m=0.5),
                                 _maps(tmp_path), None, LEVELS, "return_levels.csv")
    assert _zone(plan, "r1c1")["actions"][0]["exposed_assets"] == []
    quiet = _zone(plan, "r0c0")["actions"]
    assert quiet == [{"rule": "no rule fired", "actions": ["continue monitoring"],
                      "triggers": [], "exposed_assets": []}]


def test_a_radar_pass_pools_teacher_and_student(tmp_path, monkeypatch):
    teacher = (np.full((8, 8), 0.9), np.full((8, 8), 0.1))
    monkeypatch.setattr(plan_cli, "_teacher_belief", lambda *args: teacher)
    plan, _ = plan_cli.make_plan(_config(tmp_path, assets=False), "r", fake_cube(True),
                                 _maps(tmp_path), tmp_path / "teacher", None, None)
    assert plan["conditions"]["models"] == ["teacher", "student"]
    assert plan["conditions"]["belief"].startswith("radar pass at 2024-12-02T03:20:00: "
                                                   "teacher and student pooled")
    student = known_probability()[4:, 4:].astype(np.float64)
    pooled = (student + 0.9) / 2
    assert _zone(plan, "r1c1")["belief"]["flood_probability_mean"] == pytest.approx(
        pooled.mean(), abs=1e-4)
    # without return levels the surge rule is not evaluated, and the plan says why
    assert _zone(plan, "r1c1")["not_evaluated"][0]["variable"] == "water_level_over_rp10_m"


def test_pooled_variance_adds_the_spread_between_the_models():
    mean, std = plan_cli.pool((np.array([0.2, 0.4]), np.array([0.1, 0.1])),
                              (np.array([0.6, np.nan]), np.array([0.3, np.nan])))
    assert mean == pytest.approx([0.4, 0.4])
    assert std == pytest.approx([np.sqrt((0.01 + 0.09) / 2 + 0.04), 0.1])


def test_a_rule_on_a_missing_value_does_not_fire_and_says_why():
    rules = [{"name": "surge", "when": {"water_level_over_rp10_m": {"above": 0}},
              "actions": ["close floodgates"]}]
    outcome = evaluate_rules({"water_level_m": None}, rules)
    assert outcome.fired == []
    assert "no water level" in outcome.not_evaluated[0]["reason"]


def test_a_rule_on_an_absent_return_period_is_refused(tmp_path):
    rules = [{"name": "surge", "when": {"water_level_over_rp25_m": {"above": 0}},
              "actions": ["close floodgates"]}]
    with pytest.raises(InputError, match="return_levels.csv: has no 25-year return level"):
        plan_cli.make_plan(_config(tmp_path, rules=rules), "r", fake_cube(False),
                           _maps(tmp_path), None, LEVELS, "return_levels.csv")


def test_a_stale_observed_map_is_refused(tmp_path):
    maps = tmp_path / "maps"
    maps.mkdir()
    write_maps(maps, "observed", known_probability(), when="2024-11-20T22:53:00+00:00")
    with pytest.raises(InputError, match="not the cube's latest time"):
        plan_cli.make_plan(_config(tmp_path), "r", fake_cube(False), maps, None, LEVELS, None)


def test_plan_cli_writes_the_plan_and_the_zones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = _config(tmp_path)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    fake_cube(False).to_zarr(tmp_path / "cube.zarr", zarr_format=2, consolidated=True)
    LEVELS.to_csv(tmp_path / "return_levels.csv", index=False)
    out = tmp_path / "results" / "r"
    plan_cli.run(argparse.Namespace(
        config="config.yaml", region="r", cube="cube.zarr", maps=str(_maps(tmp_path)),
        teacher=None, return_levels="return_levels.csv", out=str(out), device=None))
    plan = json.loads((out / "plan.json").read_text())
    zones = gpd.read_file(out / "plan_zones.geojson")
    assert len(plan["zones"]) == len(zones) == 4
    assert "close floodgates" in zones.set_index("zone_id").loc["r1c1", "actions"]
