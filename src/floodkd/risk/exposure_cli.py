"""``floodkd exposure``: each asset's flood probability per scenario, and its annual exceedance.

Reads the region's assets (``regions.<name>.assets``) and its scenario maps, and writes
``exposure.gpkg`` (one layer per scenario: the assets' own attributes and geometry, plus the
footprint statistics, and for climate scenarios the annual exceedance probability of their
climate) and ``exposure_summary.csv`` (per scenario and asset class). See
``floodkd.risk.exposure`` for the statistics and the integration over return periods.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio

from floodkd.atomic import atomic_path
from floodkd.config import load_config, region_config
from floodkd.errors import InputError
from floodkd.outputs import check_outputs
from floodkd.risk.exposure import (
    annual_exceedance,
    climate_groups,
    footprint_statistics,
    summarise,
)
from floodkd.risk.exposure_assets import CLASS_COLUMN, read_assets

__all__ = ["add_arguments", "run", "map_scenarios", "map_paths", "exposure_layers",
           "EXPOSURE_FILE", "SUMMARY_FILE"]

log = logging.getLogger(__name__)

EXPOSURE_FILE = "exposure.gpkg"
SUMMARY_FILE = "exposure_summary.csv"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="workflow config YAML")
    parser.add_argument("--region", required=True, help="region name in the config")
    parser.add_argument("--maps", required=True, help="the region's maps folder")
    parser.add_argument("--out", required=True,
                        help=f"folder for {EXPOSURE_FILE} and {SUMMARY_FILE}, e.g. "
                        "results/<region>")


def map_scenarios(config: dict[str, Any], region: str) -> list[str]:
    """The scenarios a region has maps of: all configured ones, or only ``observed`` for a
    region mapped by the radar teacher (which reads no water level)."""
    if region_config(config, region).get("model", "student") == "teacher":
        return ["observed"]
    return list(config["predict"]["scenarios"])


def map_paths(maps_dir: Path, scenario: str) -> tuple[Path, Path]:
    return (maps_dir / f"flood_probability_{scenario}.tif",
            maps_dir / f"flood_uncertainty_{scenario}.tif")


def _scenario_statistics(assets: gpd.GeoDataFrame, maps_dir: Path, scenario: str):
    """Footprint statistics of every asset on one scenario's maps."""
    probability_path, uncertainty_path = map_paths(maps_dir, scenario)
    for path in (probability_path, uncertainty_path):
        if not path.is_file():
            raise InputError(path, f"the map of scenario '{scenario}' is missing",
                             f"run `floodkd predict --scenario {scenario}` for this region")
    with rasterio.open(probability_path) as prob, rasterio.open(uncertainty_path) as unc:
        if prob.crs != unc.crs or prob.transform != unc.transform or prob.shape != unc.shape:
            raise InputError(uncertainty_path, f"is not on the grid of {probability_path}",
                             "rerun `floodkd predict` so both maps come from one run")

        def read(window):
            return (prob.read(1, window=window, masked=True).filled(np.nan),
                    unc.read(1, window=window, masked=True).filled(np.nan))  # band 1: std

        on_grid = assets.geometry.to_crs(prob.crs)
        return footprint_statistics(list(on_grid), prob.transform, prob.shape, read)


def exposure_layers(
    assets: gpd.GeoDataFrame, scenarios: dict[str, dict], maps_dir: Path, threshold: float,
    source: str | Path = "assets",
) -> dict[str, gpd.GeoDataFrame]:
    """One frame per scenario: the assets with their statistics, ``exposed`` (``p_max`` at or
    above ``threshold``) and, for scenarios of a climate, that climate's AEP columns."""
    layers: dict[str, gpd.GeoDataFrame] = {}
    for scenario in scenarios:
        stats = _scenario_statistics(assets, maps_dir, scenario)
        frame = assets.copy()
        for column in stats.columns:
            frame[column] = stats[column].to_numpy()
        frame["exposed"] = frame["p_max"].to_numpy() >= threshold
        frame["scenario"] = scenario
        layers[scenario] = frame
    on_maps = layers[next(iter(layers))]["pixels"] > 0 if layers else []
    if len(on_maps) and not np.any(on_maps):
        raise InputError(source, "none of the assets lies on the region's maps",
                         "check that the file covers the region and that its CRS is right")
    for climate, by_period in climate_groups(scenarios).items():
        periods = sorted(by_period)
        p_max = np.stack([layers[by_period[t]]["p_max"].to_numpy() for t in periods])
        aep = annual_exceedance(periods, p_max)
        for t in periods:
            frame = layers[by_period[t]]
            frame["climate"] = climate
            frame["return_period_years"] = t
            frame["aep_flood"], frame["aep_flood_lower"], frame["aep_flood_upper"] = (
                aep.central, aep.lower, aep.upper)
            frame["aep_return_periods"] = ",".join(f"{p:g}" for p in periods)
    return layers


def run(args: argparse.Namespace) -> None:
    config = load_config(args.config)
    region = region_config(config, args.region)
    if "assets" not in region:
        raise InputError(args.config, f"regions.{args.region} has no assets",
                         f"set regions.{args.region}.assets to a GeoPackage or GeoParquet of "
                         "the assets (buildings, roads, hospitals, ...)")
    out, maps_dir = Path(args.out), Path(args.maps)
    exposure_path, summary_path = out / EXPOSURE_FILE, out / SUMMARY_FILE
    check_outputs(config, args.config, replaced=[exposure_path, summary_path],
                  inputs=[maps_dir])
    assets = read_assets(region["assets"], f"regions.{args.region}.assets")
    names = map_scenarios(config, args.region)
    scenarios = {name: config["predict"]["scenarios"].get(name) or {} for name in names}
    threshold = float(config["exposure"]["threshold"])
    log.info("exposure of %d assets of %s over %d scenarios", len(assets), args.region,
             len(scenarios))
    layers = exposure_layers(assets, scenarios, maps_dir, threshold, region["assets"])
    summary = summarise(layers, CLASS_COLUMN, threshold)
    with atomic_path(exposure_path) as tmp_gpkg, atomic_path(summary_path) as tmp_csv:
        for name, frame in layers.items():
            frame.to_file(tmp_gpkg, layer=name, driver="GPKG")
        summary.to_csv(tmp_csv, index=False, float_format="%.6g")
    for row in summary.to_dict("records"):
        log.info("%s %s: %d of %d exposed (P >= %g)", row["scenario"], row["class"],
                 row["exposed"], row["assets"], threshold)
    log.info("wrote %s and %s", exposure_path, summary_path)
