"""Where the extreme event's flood lies: water the sea can reach at the gauge level over the
DEM, or not, and (on the demo) what the simulated truth says it is.

This splits the held-out extreme event's flood truth (``eval/metrics.json``; water outside
the reference water, on land) by the DEM's spill level (the lowest sea level at which water
from the sea reaches a cell over 4-connected cells: its ground, or behind a dike the crest)
against the gauge level of the pass, and scores every model on each part. On the demo
coast (its ``manifest.json`` beside the region's files) it also rebuilds the true terrain
from the manifest's seed and size and splits the same truth into what the demo's physics
made it: the sea's inundation over the true ground, or rain ponded in a depression
(``floodkd.demo.hydro.flood_extent``), with the DEM's error over the flood and each model's
recall and false flood on each part and inside the polder. Writes
benchmarks/results/extreme_reach.json.

    .venv/bin/python benchmarks/extreme_reach.py [--config results/config.yaml]
        [--region demo-target]   # after `make run`
"""

from __future__ import annotations

import argparse
import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.warp import Resampling, reproject

from floodkd.align.terrain import sea_mask, spill_level
from floodkd.config import load_config, region_config
from floodkd.demo.regions import DEMO_REGIONS, RegionSpec
from floodkd.distill.data import TERRAIN_VARIABLES, open_region, padded_size
from floodkd.evaluate import evaluate as ev
from floodkd.grid import RegionGrid
from floodkd.models.checkpoint import load_checkpoint
from floodkd.models.teacher import RadarTeacher
from floodkd.reference.water import REFERENCE, read_reference_raster

RESULTS = Path(__file__).parent / "results" / "extreme_reach.json"


def _share(part: np.ndarray, whole: np.ndarray) -> float | None:
    return float(part.sum() / whole.sum()) if whole.any() else None


def demo_region(config: dict, region: str) -> tuple[RegionSpec, int, int] | None:
    """(spec, seed, size) of a demo region whose ``manifest.json`` lies beside its files (the
    demo generator's inputs, to rebuild its true terrain); None for other regions."""
    area_file = region_config(config, region).get("area_file")
    manifest = Path(area_file).parent.parent / "manifest.json" if area_file else None
    spec = next((s for s in DEMO_REGIONS if s.name == region), None)
    if spec is None or manifest is None or not manifest.is_file():
        return None
    demo = json.loads(manifest.read_text())
    return spec, demo["seed"], demo["size_px"]


def to_grid(values: np.ndarray, spec: RegionSpec, size: int, grid: RegionGrid) -> np.ndarray:
    """A demo raster on its radar grid, nearest-resampled onto the cube grid (float32)."""
    from floodkd.demo.generate import radar_geobox

    source = radar_geobox(spec, size)
    target = np.full(grid.shape, np.nan, np.float32)
    reproject(values.astype(np.float32), target, src_transform=source.affine,
              src_crs=str(source.crs), dst_transform=grid.transform, dst_crs=grid.crs,
              resampling=Resampling.nearest, src_nodata=None, dst_nodata=np.nan)
    return target


def demo_truth_parts(config: dict, region: str, truth_path: Path,
                     grid: RegionGrid) -> dict[str, np.ndarray] | None:
    """On the demo coast: the true terrain's sea inundation and rain ponds at the truth's
    moment, the polder, and the true elevation, on the cube grid; None for other regions."""
    from floodkd.demo import hydro
    from floodkd.demo.generate import PIXEL_M, region_terrain
    from floodkd.demo.terrain import Cover

    demo = demo_region(config, region)
    if demo is None:
        return None
    spec, seed, size = demo
    with rasterio.open(truth_path) as src:
        tags = src.tags()
    terrain, inner = region_terrain(spec, seed, size)
    elevation, sea = terrain.elevation_m[inner], terrain.cover[inner] == Cover.SEA
    parts = {"sea_inundation": hydro.sea_inundation(
                 elevation, sea, float(tags["SEA_LEVEL_M"]), spec.attenuation_m_per_km, PIXEL_M),
             "rain_ponds": hydro.rain_ponding(elevation, float(tags["RAIN_3DAY_MM"])),
             "polder": terrain.polder[inner], "true_elevation_m": elevation}
    out = {name: to_grid(values, spec, size, grid) for name, values in parts.items()}
    return {name: values if name == "true_elevation_m" else values == 1
            for name, values in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="results/config.yaml")
    parser.add_argument("--region", default="demo-target")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    config = load_config(args.config)
    settings = ev.settings_from_config(ev.EvaluateConfig, config, "evaluate")
    results = Path(config.get("results_dir", "results"))
    base = results / args.region
    metrics = json.loads((base / "eval" / "metrics.json").read_text())
    (event,) = metrics["extreme_event"]["dates"][:1]
    region = open_region(results, args.region, ["vv_db", "radar_present", "water_level_m",
                                                *TERRAIN_VARIABLES])
    cube = region.cube
    t = int(np.flatnonzero(cube["time"].values.astype("datetime64[s]")
                           == np.datetime64(event))[0])
    grid = RegionGrid.from_dataset(cube)
    truth_paths = [Path(p) for p in sorted(Path().glob(region_config(config, args.region)
                                                       ["truth"]))]
    truth_files = ev.truth_times(truth_paths, cube["time"].values, settings.truth_match_hours)
    truth = ev.read_truth(truth_files[t], grid)
    reference = read_reference_raster(base / "reference_water.tif", grid) == REFERENCE
    elevation = cube["elevation_m"].values.astype(np.float64)
    sea = sea_mask(elevation)
    level = float(np.nanmean(cube["water_level_m"].isel(time=t).values))
    reachable = spill_level(elevation) <= level
    scored = (truth != ev.LABEL_NODATA) & ~reference & ~sea & np.isfinite(elevation)
    flood = scored & (truth == 1)

    device = torch.device("cpu")
    teacher, _ = load_checkpoint(RadarTeacher, results / "teacher" / "teacher.safetensors")
    teacher.eval()
    ensembles = {name: ev.StudentEnsemble.load(base / "student", variant, device)
                 for name, variant in ev.STUDENT_VARIANTS.items()}
    multiple = math.lcm(teacher.config.patch_size,
                        2 ** ensembles["student_distilled"].members[0].config.depth)
    torch.manual_seed(t)  # evaluate's MC-dropout draws
    maps = ev.predict_time(region, list(range(len(region.tiles))), t,
                           padded_size([region.tiles], multiple), teacher, ensembles,
                           settings, device)
    maps["bathtub"] = ev.bathtub(elevation, level, sea).astype(np.float64)
    calls = {name: maps[name] > settings.threshold
             for name in ("teacher", "student_distilled", "student_labels_only", "bathtub")}
    models: dict[str, dict] = {name: {} for name in calls}
    for name, called in calls.items():
        for part, where in (("reachable", reachable), ("unreachable", ~reachable)):
            models[name][f"{part}_flood_recall"] = _share(called & flood & where, flood & where)
            models[name][f"false_flood_px_{part}"] = int(
                (called & scored & (truth == 0) & where).sum())
    unreachable = flood & ~reachable
    truth_parts = demo_truth_parts(config, args.region, truth_files[t], grid)
    if truth_parts is not None:
        sea_flood = flood & truth_parts["sea_inundation"]
        ponds = flood & truth_parts["rain_ponds"] & ~truth_parts["sea_inundation"]
        dry_polder = scored & (truth == 0) & truth_parts["polder"]
        dem_error = elevation - truth_parts["true_elevation_m"]
        for name, called in calls.items():
            scores = models[name]
            scores["sea_inundation_recall"] = _share(called & sea_flood, sea_flood)
            scores["rain_pond_recall"] = _share(called & ponds, ponds)
            scores["false_flood_px_in_polder"] = int((called & dry_polder).sum())
    doc = {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "region": args.region, "event": event, "gauge_level_m": level,
        "flood_px": int(flood.sum()),
        "flood_share_unreachable_by_the_sea": _share(unreachable, flood),
        "unreachable_flood_elevation_m_p10_p50_p90": (
            np.percentile(elevation[unreachable], [10, 50, 90]).round(2).tolist()
            if unreachable.any() else None),
        "demo_truth": None if truth_parts is None else {
            "sea_inundation_share": _share(sea_flood, flood),
            "rain_pond_share": _share(ponds, flood),
            "sea_inundation_dem_minus_true_m_p10_p50_p90": np.nanpercentile(
                dem_error[sea_flood], [10, 50, 90]).round(2).tolist() if sea_flood.any() else None,
            "sea_inundation_share_unreachable_over_the_dem": _share(sea_flood & ~reachable,
                                                                    sea_flood),
            "polder_flood_px": int((flood & truth_parts["polder"]).sum()),
            "polder_dry_px": int(dry_polder.sum())},
        "models": models,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
