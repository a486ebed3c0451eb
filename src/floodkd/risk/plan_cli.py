"""``floodkd plan``: what to do now, per zone, from the latest conditions of a region.

The latest conditions are the cube's last time, the date ``predict``'s ``observed`` maps
describe. The belief uses whatever modalities exist then:

- a radar pass at that time (and a teacher): the radar teacher over the pass and the
  student's observed map, pooled as an equal-weight mixture (mean of the two, variance the
  mean of their variances plus their spread), so disagreement between them raises the
  uncertainty;
- no radar pass: the student alone, on what is left (clear optical pixels, gauges, GCM,
  terrain); a region mapped by the teacher alone uses its latest pass's map.

The plan says which it did and on what. It writes ``plan.json`` (conditions, inputs, rules,
and per zone its belief and actions, each with its triggers and the zone's exposed assets)
and ``plan_zones.geojson`` (the zones with their actions, for QGIS).
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import xarray as xr
from pyproj import Transformer

from floodkd import __version__
from floodkd.align.terrain import sea_mask
from floodkd.atomic import atomic_path
from floodkd.config import load_config, region_config
from floodkd.errors import InputError
from floodkd.outputs import check_outputs
from floodkd.risk.exposure import array_reader, footprint_statistics
from floodkd.risk.exposure_assets import read_assets, read_polygons
from floodkd.risk.exposure_cli import map_paths
from floodkd.risk.plan import (
    RETURN_LEVEL_VARIABLE,
    evaluate_rules,
    over_return_levels,
    zone_belief,
    zone_grid,
    zone_masks,
)

__all__ = ["add_arguments", "run", "latest_conditions", "pool", "read_return_levels",
           "make_plan", "PLAN_FILE", "ZONES_FILE"]

log = logging.getLogger(__name__)

PLAN_FILE = "plan.json"
ZONES_FILE = "plan_zones.geojson"
RETURN_LEVEL_COLUMNS = ("station", "return_period_years", "level_m")
REFERENCE_WATER = 1  # cube reference_water: 1 permanent water or sea, 0 not, 255 unknown
_DIGITS = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="workflow config YAML")
    parser.add_argument("--region", required=True, help="region name in the config")
    parser.add_argument("--cube", required=True, help="the region's cube.zarr")
    parser.add_argument("--maps", required=True, help="the region's maps folder (observed)")
    parser.add_argument("--teacher", help="folder of teacher.safetensors, used when the latest "
                        "time has a radar pass")
    parser.add_argument("--return-levels", help="risk/return_levels.csv of the region")
    parser.add_argument("--out", required=True,
                        help=f"folder for {PLAN_FILE} and {ZONES_FILE}, e.g. results/<region>")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if present)")


def latest_conditions(cube: xr.Dataset) -> dict[str, Any]:
    """Which modalities the cube holds at its last time (the observed state)."""
    t = cube.sizes["time"] - 1
    at = cube.isel(time=t)
    when = pd.Timestamp(cube["time"].values[t])
    radar_times = pd.to_datetime(cube["time"].values[np.asarray(cube["radar_present"], bool)])
    optical = bool(at["optical_present"])
    clear = float(np.asarray(at["clear_sky"]).mean()) if optical else 0.0
    return {
        "time_index": t,
        "time": when.isoformat(),
        "radar_pass": bool(at["radar_present"]),
        "last_radar_pass": radar_times[-1].isoformat() if len(radar_times) else None,
        "optical_scene": optical,
        "optical_clear_fraction": round(clear, _DIGITS),
        "gauge_observed": bool(at["gauge_present"]),
        "gcm": bool(at["gcm_present"]),
        "terrain": bool(np.isfinite(np.asarray(cube["elevation_m"])).any()),
    }


def pool(student: tuple[np.ndarray, np.ndarray], teacher: tuple[np.ndarray, np.ndarray]
         ) -> tuple[np.ndarray, np.ndarray]:
    """Equal-weight mixture of two beliefs (P, std) where both exist, the student's where
    the teacher has none (no backscatter); nothing where the student has none."""
    (p_s, s_s), (p_t, s_t) = student, teacher
    both = np.isfinite(p_s) & np.isfinite(p_t)
    mean = np.where(both, (p_s + p_t) / 2, p_s)
    variance = (np.square(s_s) + np.square(s_t)) / 2 + np.square(p_s - p_t) / 4
    return mean, np.where(both, np.sqrt(variance), s_s)


def _read_map(maps_dir: Path, scenario: str = "observed"):
    paths = map_paths(maps_dir, scenario)
    for path in paths:
        if not path.is_file():
            raise InputError(path, "the observed map is missing",
                             "run `floodkd predict --scenario observed` for this region")
    with rasterio.open(paths[0]) as prob, rasterio.open(paths[1]) as unc:
        probability = prob.read(1, masked=True).filled(np.nan).astype(np.float64)
        std = unc.read(1, masked=True).filled(np.nan).astype(np.float64)
        return probability, std, prob.tags(), [str(p) for p in paths]


def _teacher_belief(cube, time_index: int, teacher_dir: Path, config, shape, device):
    """The radar teacher's mean and std over its ViTs' MC-dropout draws on one pass, as
    whole-grid arrays."""
    import torch

    from floodkd.models.checkpoint import load_checkpoint
    from floodkd.models.teacher import RadarTeacher
    from floodkd.predict.teacher import TEACHER_WEIGHTS, teacher_window_predictor
    from floodkd.predict.tiled import predict_row_bands

    teacher, meta = load_checkpoint(RadarTeacher, teacher_dir / TEACHER_WEIGHTS)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    teacher.to(device)
    settings = config["predict"]
    tile_px = int(meta.get("tile_size_px", [teacher.config.image_size])[0])  # as predict does
    window = teacher_window_predictor(cube, time_index, teacher, int(settings["mc_samples"]),
                                      device)
    probability, std = np.full(shape, np.nan), np.full(shape, np.nan)
    for band in predict_row_bands(shape, window, tile_px,
                                  min(int(settings["overlap_px"]), tile_px // 4)):
        rows = slice(band.row_off, band.row_off + band.height)
        probability[rows], std[rows] = band.maps.probability, band.maps.std
    return probability, std


def read_return_levels(path: str | Path) -> pd.DataFrame:
    """``return_levels.csv`` with its station ids as text."""
    try:
        table = pd.read_csv(path, dtype={"station": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputError(path, f"cannot be read as CSV ({error})",
                         "rerun `floodkd return-levels` for this region") from error
    missing = [c for c in RETURN_LEVEL_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(path, f"lacks the columns {missing}",
                         "rerun the return-level stage that writes it")
    return table


def _land(cube: xr.Dataset) -> np.ndarray:
    """Pixels that can flood: not permanent water (the cube's reference_water where known,
    else the DEM's sea); everything where neither exists (a radar-only region)."""
    elevation = np.asarray(cube["elevation_m"])
    water = sea_mask(elevation)
    if "reference_water" in cube:
        reference = np.asarray(cube["reference_water"])
        water = np.where(reference == 255, water, reference == REFERENCE_WATER)
    return ~water


def _nearest_station(zones_grid: gpd.GeoSeries, cube: xr.Dataset, stations: set[str]):
    """Per zone, the nearest gauge of the cube that has return levels (None if none)."""
    if "gauge" not in cube.coords:
        return [None] * len(zones_grid)
    ids = [str(g) for g in cube["gauge"].values]
    keep = [k for k, g in enumerate(ids) if g in stations]
    if not keep:
        return [None] * len(zones_grid)
    to_grid = Transformer.from_crs("EPSG:4326", zones_grid.crs, always_xy=True)
    gx, gy = to_grid.transform(cube["gauge_lon"].values[keep], cube["gauge_lat"].values[keep])
    centres = zones_grid.centroid
    return [ids[keep[int(np.argmin(np.hypot(np.asarray(gx) - c.x, np.asarray(gy) - c.y)))]]
            for c in centres]


def _assets_on_grid(region: dict, name: str, crs, transform, shape, probability, std):
    if "assets" not in region:
        return None
    assets = read_assets(region["assets"], f"regions.{name}.assets")
    on_grid = assets.to_crs(crs)
    stats = footprint_statistics(list(on_grid.geometry), transform, shape,
                                 array_reader(probability, std))
    on_grid = on_grid.reset_index(drop=True)
    for column in stats.columns:
        on_grid[column] = stats[column].to_numpy()
    return on_grid


def _exposed(assets: gpd.GeoDataFrame | None, zone_geometry, threshold: float) -> list[dict]:
    if assets is None:
        return []
    inside = assets[assets.intersects(zone_geometry) & (assets["p_max"] >= threshold)]
    return [{"id": _plain(row.get("osm_id", index)), "class": row["class"],
             "name": _plain(row.get("name")), "p_max": _plain(row["p_max"]),
             "p_mean": _plain(row["p_mean"]), "std_at_max": _plain(row["std_at_max"])}
            for index, row in inside.sort_values("p_max", ascending=False).iterrows()]


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars to Python, floats rounded, NaN and None to None."""
    if value is None or (isinstance(value, float | np.floating) and not np.isfinite(value)):
        return None
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, float | np.floating):
        return round(float(value), _DIGITS)
    return value


def _belief_sources(conditions: dict, model: str, teacher_dir: Path | None) -> tuple[list, str]:
    """Which models make the belief, and a sentence saying so and why."""
    at = conditions["time"]
    rest = [name for name, present in (
        (f"optical ({conditions['optical_clear_fraction']:.0%} clear)",
         conditions["optical_scene"]), ("gauges", conditions["gauge_observed"]),
        ("GCM", conditions["gcm"]), ("terrain", conditions["terrain"])) if present]
    if model == "teacher":
        return ["teacher"], (f"radar teacher alone (the region is mapped from radar only), "
                             f"from its latest pass {conditions['last_radar_pass']}")
    if conditions["radar_pass"] and teacher_dir is not None:
        return ["teacher", "student"], (f"radar pass at {at}: teacher and student pooled "
                                        f"(student on {', '.join(rest) or 'nothing else'})")
    why = ("no teacher was given" if conditions["radar_pass"] else
           f"no radar pass at the latest time {at} (last pass {conditions['last_radar_pass']})")
    return ["student"], f"{why}: student alone, on {', '.join(rest) or 'no input'}"


def make_plan(config: dict, region_name: str, cube: xr.Dataset, maps_dir: Path,
              teacher_dir: Path | None, return_levels: pd.DataFrame | None,
              return_levels_path: str | None, device: str | None = None
              ) -> tuple[dict, gpd.GeoDataFrame]:
    """The plan (a JSON-ready dict) and the zones with their actions (EPSG:4326)."""
    region = region_config(config, region_name)
    settings = config["plan"]
    model = region.get("model", "student")
    conditions = latest_conditions(cube)
    probability, std, tags, map_files = _read_map(maps_dir)
    if model == "student" and tags.get("SCENARIO_DATETIME", "")[:19] != conditions["time"][:19]:
        raise InputError(map_files[0], f"describes {tags.get('SCENARIO_DATETIME')}, not the "
                         f"cube's latest time {conditions['time']}",
                         "rerun `floodkd predict --scenario observed` on this cube")
    models, statement = _belief_sources(conditions, model, teacher_dir)
    inputs = {"cube": str(cube.encoding.get("source", "cube")), "maps": map_files,
              "return_levels": return_levels_path}
    with rasterio.open(map_files[0]) as src:
        crs, transform, shape = src.crs, src.transform, src.shape
    if models == ["teacher", "student"]:
        teacher = _teacher_belief(cube, conditions["time_index"], teacher_dir, config, shape,
                                  device)
        probability, std = pool((probability, std), teacher)
        inputs["teacher"] = str(teacher_dir)
    log.info("belief: %s", statement)

    if "zones" in region:
        zones = read_polygons(region["zones"], f"regions.{region_name}.zones").to_crs(crs)
        zones = zones.reset_index(drop=True)
        zones["zone_id"] = zones.get("zone_id", pd.Series(range(len(zones)))).astype(str)
        zones["name"] = zones.get("name", zones["zone_id"]).astype(str)
        inputs["zones"] = region["zones"]
    else:
        zones = zone_grid(transform, shape, crs, float(settings["zone_size_m"]))
    land = _land(cube)
    level_field = np.asarray(cube["water_level_m"].isel(time=conditions["time_index"]))
    level_source = ("gauge observation" if conditions["gauge_observed"] else
                    "tide prediction filling a gauge gap (no surge in it)"
                    if np.isfinite(level_field).any() else None)
    if return_levels is not None:  # a refused station's rows have no level: skip them
        return_levels = return_levels[np.isfinite(return_levels["level_m"])]
    stations = set(return_levels["station"]) if return_levels is not None else set()
    nearest = _nearest_station(zones.geometry, cube, stations)
    assets = _assets_on_grid(region, region_name, crs, transform, shape, probability, std)
    if assets is not None:
        inputs["assets"] = region["assets"]
    _check_return_periods(settings["rules"], return_levels, return_levels_path)
    threshold = float(config["exposure"]["threshold"])

    zone_records, actions_column, rules_column = [], [], []
    masks = zone_masks(zones.geometry, transform, shape)
    for k, zone in zones.iterrows():
        belief = zone_belief(masks[k], land, probability, std,
                             level_field if level_source else None,
                             float(settings["flooded_probability"]))
        belief["water_level_source"] = level_source
        belief["return_level_station"] = nearest[k]
        if nearest[k] is not None:
            levels = return_levels[return_levels["station"] == nearest[k]]
            belief |= over_return_levels(belief["water_level_m"], levels)
        outcome = evaluate_rules(belief, settings["rules"])
        exposed = _exposed(assets, zone.geometry, threshold)
        fired = outcome.fired or [{"rule": "no rule fired",
                                   "actions": list(settings["default_actions"]),
                                   "triggers": []}]
        for entry in fired:
            entry["exposed_assets"] = exposed
        zone_records.append({"zone_id": zone["zone_id"], "name": zone["name"],
                             "belief": {k: _plain(v) for k, v in belief.items()},
                             "actions": _plain_tree(fired),
                             "not_evaluated": outcome.not_evaluated})
        actions_column.append("; ".join(a for e in fired for a in e["actions"]))
        rules_column.append("; ".join(e["rule"] for e in fired))

    plan = {
        "region": region_name,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "floodkd_version": __version__,
        "synthetic": bool(region.get("synthetic", False)),
        "conditions": {**{k: v for k, v in conditions.items() if k != "time_index"},
                       "models": models, "belief": statement},
        "inputs": inputs,
        "rules": settings["rules"],
        "default_actions": settings["default_actions"],
        "exposure_threshold": threshold,
        "zones": zone_records,
    }
    out_zones = zones[["zone_id", "name", "geometry"]].copy()
    out_zones["actions"], out_zones["rules"] = actions_column, rules_column
    for variable in ("flood_probability_p90", "flood_probability_mean",
                     "flood_uncertainty_std_mean", "flooded_share", "water_level_m"):
        out_zones[variable] = [z["belief"].get(variable) for z in zone_records]
    out_zones["exposed_assets"] = [len(z["actions"][0]["exposed_assets"]) for z in zone_records]
    out_zones["models"] = "+".join(models)
    return plan, out_zones.to_crs("EPSG:4326")


def _plain_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_tree(v) for v in value]
    return _plain(value)


def _check_return_periods(rules, return_levels, path) -> None:
    """A rule on the T-year level needs T among the return levels: say so up front."""
    if return_levels is None:
        return
    known = set(return_levels["return_period_years"].astype(float))
    for rule in rules:
        for variable in rule["when"]:
            match = RETURN_LEVEL_VARIABLE.match(variable)
            if match and float(match["years"]) not in known:
                raise InputError(path, f"has no {match['years']}-year return level, which "
                                 f"plan rule '{rule['name']}' compares against",
                                 "add that return period to the return-level stage's "
                                 "config, or change the rule in plan.rules")


def run(args: argparse.Namespace) -> None:
    config = load_config(args.config)
    region_config(config, args.region)
    out = Path(args.out)
    plan_path, zones_path = out / PLAN_FILE, out / ZONES_FILE
    cube_path, maps_dir = Path(args.cube), Path(args.maps)
    reads = [cube_path, maps_dir] + ([Path(args.teacher)] if args.teacher else [])
    check_outputs(config, args.config, replaced=[plan_path, zones_path], inputs=reads,
                  cubes=True)
    if not cube_path.exists():
        raise InputError(cube_path, "the datacube does not exist",
                         "run `floodkd align` for this region first")
    cube = xr.open_zarr(cube_path)
    levels = read_return_levels(args.return_levels) if args.return_levels else None
    plan, zones = make_plan(config, args.region, cube, maps_dir,
                            Path(args.teacher) if args.teacher else None, levels,
                            args.return_levels, args.device)
    with atomic_path(plan_path) as tmp_plan, atomic_path(zones_path) as tmp_zones:
        tmp_plan.write_text(json.dumps(plan, indent=2) + "\n")
        zones.to_file(tmp_zones, driver="GeoJSON")
    for zone in plan["zones"]:
        for entry in zone["actions"]:
            log.info("%s: %s (%s) %s", zone["name"], ", ".join(entry["actions"]),
                     entry["rule"], "; ".join(f"{t['variable']} {t['value']} {t['comparison']} "
                                               f"{t['threshold']}" for t in entry["triggers"]))
    log.info("wrote %s and %s", plan_path, zones_path)
