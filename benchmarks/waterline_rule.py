"""A yardstick for the student: the waterline layer as a flood map of its own.

``floodkd waterline`` reads, per pixel, the level at which the target's radar archive (the
teacher's maps of the passes before the held-out start) sees it flood; the student anchors
its threshold there (``docs/student-limits.md``). Read alone as a map (water where the gauge
level reaches the layer's level; where the pixel was never seen wet, where it reaches the
higher of that level and the DEM, as the student's anchor), it says how much of the
student's skill is the archive's and how much its own. Scored as ``floodkd evaluate`` scores
(flood IoU: water outside the reference water) on the held-out radar passes with a truth
raster and at the extreme event, beside the teacher's maps of those passes and the
evaluation's own figures for the students (``results/<region>/eval``). Writes
benchmarks/results/waterline_rule.json (or ``--out``).

    .venv/bin/python benchmarks/waterline_rule.py    # after `make run`
"""

from __future__ import annotations

import argparse
import glob
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from floodkd.config import load_config, region_config
from floodkd.distill.data import open_cube
from floodkd.evaluate.evaluate import read_truth, truth_times
from floodkd.evaluate.metrics import flood_scores
from floodkd.evaluate.teacher_passes import read_teacher_pass, teacher_pass_bands
from floodkd.grid import RegionGrid
from floodkd.reference.water import REFERENCE, read_reference_raster
from floodkd.reference.waterline import read_waterline

RESULTS = Path(__file__).parent / "results" / "waterline_rule.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="results/config.yaml")
    parser.add_argument("--region", default="demo-target")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    config = load_config(args.config)
    base = Path(config.get("results_dir", "results")) / args.region
    cube = open_cube(base / "cube.zarr", required=("radar_present", "water_level_m",
                                                   "elevation_m"))
    grid = RegionGrid.from_dataset(cube)
    times = cube["time"].values
    before = np.datetime64(json.loads((base / "holdout.json").read_text())["train_before"])
    level, above = read_waterline(base / "waterline.tif", grid)
    anchor = np.where(above, np.maximum(level, cube["elevation_m"].values), level)

    reference = read_reference_raster(base / "reference_water.tif", grid) == REFERENCE
    radar = cube["radar_present"].values.astype(bool)
    truth_glob = region_config(config, args.region)["truth"]
    truths = truth_times([Path(p) for p in glob.glob(truth_glob)], times,
                         config["evaluate"]["truth_match_hours"])
    scored = [t for t in sorted(truths) if radar[t] and times[t] >= before]
    bands = teacher_pass_bands(base / "teacher_passes.tif", grid, {
        t: str(times[t].astype("datetime64[s]")) for t in scored})
    metrics = json.loads((base / "eval" / "metrics.json").read_text())
    extreme = set(metrics["extreme_event"]["dates"])
    pooled: dict[str, dict[str, list]] = {"radar_passes": {}, "extreme_event": {}}
    for t in scored:
        truth = read_truth(truths[t], grid)
        water_level = cube["water_level_m"].isel(time=t).values
        maps = {"teacher": read_teacher_pass(base / "teacher_passes.tif", bands[t]),
                "waterline_rule": np.where(np.isfinite(anchor) & np.isfinite(water_level),
                                           (water_level >= anchor) * 1.0, np.nan)}
        subsets = ["radar_passes"] + (["extreme_event"] if str(
            times[t].astype("datetime64[s]")) in extreme else [])
        for name, probability in maps.items():
            ok = (truth != 255) & np.isfinite(probability)
            for subset in subsets:
                parts = pooled[subset].setdefault(name, [[], [], [], []])
                for part, values in zip(parts, (probability[ok] >= 0.5, truth[ok] == 1,
                                                reference[ok], ok[ok]), strict=True):
                    part.append(values)
    flood_iou = {subset: {name: flood_scores(*(np.concatenate(p) for p in parts))["iou"]
                          for name, parts in models.items()}
                 for subset, models in pooled.items()}
    by_subset = json.loads((base / "eval" / "metrics_by_subset.json").read_text())["subsets"]
    for name in ("student_distilled", "student_labels_only"):
        flood_iou["radar_passes"][f"{name} (evaluate)"] = by_subset["radar_passes"][name][
            "flood_iou"]
        flood_iou["extreme_event"][f"{name} (evaluate)"] = metrics["extreme_event"]["models"][
            name]["flood_iou"]
    out = {"created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
           "config": args.config, "region": args.region,
           "waterline_pixels": {"known": int(np.isfinite(level).sum()),
                                "never seen wet": int(above.sum()), "all": int(level.size)},
           "scored_passes": len(scored), "flood_iou": flood_iou}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
