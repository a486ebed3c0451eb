"""Where the extreme event's flood lies: water the sea can reach at the gauge level, or not.

The student maps water from the water level and the terrain (it has no radar and no rain of
the day), so at the held-out extreme event (``eval/metrics.json``) it can place the flood the
sea reaches over the DEM, but hardly water the sea cannot reach at that level (rain ponding
behind a dike, overtopping of a lower dike stretch than the DEM shows, DEM errors). This
splits the event's flood truth (water outside the reference water, on land) by the DEM's
spill level (the lowest sea level at which water from the sea reaches a cell over
4-connected cells: its ground, or behind a dike the crest) against the gauge level of the
pass, and scores every model on each part. Writes benchmarks/results/extreme_reach.json.

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
import torch

from floodkd.align.terrain import sea_mask, spill_level
from floodkd.config import load_config, region_config
from floodkd.distill.data import TERRAIN_VARIABLES, open_region, padded_size
from floodkd.evaluate import evaluate as ev
from floodkd.grid import RegionGrid
from floodkd.models.checkpoint import load_checkpoint
from floodkd.models.teacher import RadarTeacher
from floodkd.reference.water import REFERENCE, read_reference_raster

RESULTS = Path(__file__).parent / "results" / "extreme_reach.json"


def _share(part: np.ndarray, whole: np.ndarray) -> float | None:
    return float(part.sum() / whole.sum()) if whole.any() else None


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
    models: dict[str, dict] = {}
    for name in ("teacher", "student_distilled", "student_labels_only", "bathtub"):
        called = maps[name] > settings.threshold
        models[name] = {}
        for part, where in (("reachable", reachable), ("unreachable", ~reachable)):
            models[name][f"{part}_flood_recall"] = _share(called & flood & where, flood & where)
            models[name][f"false_flood_px_{part}"] = int(
                (called & scored & (truth == 0) & where).sum())
    unreachable = flood & ~reachable
    doc = {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "region": args.region, "event": event, "gauge_level_m": level,
        "flood_px": int(flood.sum()),
        "flood_share_unreachable_by_the_sea": _share(unreachable, flood),
        "unreachable_flood_elevation_m_p10_p50_p90": (
            np.percentile(elevation[unreachable], [10, 50, 90]).round(2).tolist()
            if unreachable.any() else None),
        "models": models,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
