"""Where the distilled student (or ``--variant``) is wrong, how sure it is there, and whether
its teacher was wrong there too: its wrong pixels and the uncertainty-error AUROC by zone.

Over the pixels and dates ``floodkd evaluate`` pools for its AUROC (held-out radar passes and
no-radar dates), every wrong pixel (calibrated P(flood) on the wrong side of the threshold)
is put in a zone: the sea (DEM at or below sea level), reference water, and the land; on
the demo coast (its ``manifest.json`` beside the region's files) the land is split by the
demo's true land cover, rebuilt from the manifest's seed and size. Per zone: pixels, missed
water and false water, the wrong pixels the student is sure of (predictive entropy below
the median entropy of its right pixels), the AUROC with the zone left out, and the share of
the zone's water the teacher missed on the radar passes. Writes
benchmarks/results/error_sources.json (or ``--out``).

    .venv/bin/python benchmarks/error_sources.py [--config results/config.yaml]
        [--region demo-target] [--student results/demo-target/student]   # after `make run`
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from extreme_reach import demo_region, to_grid

from floodkd.align.terrain import sea_mask
from floodkd.config import load_config
from floodkd.distill.data import TERRAIN_VARIABLES, open_region, padded_size
from floodkd.evaluate import evaluate as ev
from floodkd.evaluate.metrics import uncertainty_error_auroc
from floodkd.grid import RegionGrid
from floodkd.reference.water import REFERENCE, read_reference_raster

RESULTS = Path(__file__).parent / "results" / "error_sources.json"


def zones(config: dict, region: str, elevation: np.ndarray, reference: np.ndarray,
          grid: RegionGrid) -> dict[str, np.ndarray]:
    """Disjoint zone masks: sea, reference water, then land (by true cover on the demo)."""
    sea = sea_mask(elevation)
    found = {"sea": sea, "reference water": reference & ~sea}
    land = ~sea & ~reference
    demo = demo_region(config, region)
    if demo is None:
        return found | {"land": land}
    from floodkd.demo.generate import region_terrain
    from floodkd.demo.terrain import Cover

    spec, seed, size = demo
    terrain, inner = region_terrain(spec, seed, size)
    cover = to_grid(terrain.cover[inner], spec, size, grid)
    for kind in Cover:  # sea too: where the DEM's coast is off the true one
        found[f"land, true cover {kind.name.lower()}"] = land & (cover == kind)
    return {name: mask for name, mask in found.items() if mask.any()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="results/config.yaml")
    parser.add_argument("--region", default="demo-target")
    parser.add_argument("--student", type=Path, help="default: results/<region>/student")
    parser.add_argument("--variant", default="distilled", choices=sorted(
        ev.STUDENT_VARIANTS.values()), help="which of the student ensembles to look at (each "
        "with the distilled student's MC-dropout draws; evaluate scores the others without)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(2)
    config = load_config(args.config)
    settings = ev.settings_from_config(ev.EvaluateConfig, config, "evaluate")
    base = Path(config.get("results_dir", "results")) / args.region
    student_dir = args.student or base / "student"
    region = open_region(base.parent, args.region, ["vv_db", "radar_present", "water_level_m",
                                                    "label", *TERRAIN_VARIABLES])
    cube, device = region.cube, torch.device("cpu")
    times = cube["time"].values
    doc = json.loads((student_dir / "student.json").read_text())
    held = np.isin(times.astype("datetime64[s]"),
                   np.array(doc["holdout_times"], dtype="datetime64[s]"))
    plan = ev.evaluation_plan(config, args.region, region, held, settings)
    grid = RegionGrid.from_dataset(cube)
    reference_path = base / "reference_water.tif"
    reference = (read_reference_raster(reference_path, grid) == REFERENCE
                 if reference_path.is_file() else np.zeros(grid.shape, bool))
    zone = zones(config, args.region, cube["elevation_m"].values, reference, grid)
    # predict_time names the maps of the ensemble under this key "student_distilled" (MC-dropout
    # draws and uncertainty included), whichever variant it is
    ensembles = {"student_distilled": ev.StudentEnsemble.load(student_dir, args.variant, device)}
    size = padded_size([region.tiles], 2 ** ensembles["student_distilled"].members[0].config.depth)
    pass_bands = ev.teacher_pass_bands(base / "teacher_passes.tif", grid, dict(zip(
        plan.times["radar_passes"], ev.iso_times(times[plan.times["radar_passes"]]), strict=True)))

    zone_of = np.full(grid.shape, -1, np.int16)  # -1: in no zone (missing elevation)
    for i, mask in enumerate(zone.values()):
        zone_of[mask] = i
    pooled = {key: [] for key in ("p", "entropy", "water", "zone")}
    teacher = {name: np.zeros(2, np.int64) for name in zone}  # water px, missed by the teacher
    for subset, subset_times in plan.times.items():
        for t in subset_times:
            # as evaluate: truth rasters, else the test tiles' labels; on no-radar dates never
            # a pixel the student was taught
            label = cube["label"].isel(time=t).values
            truth = ev.read_truth(plan.truth_files[t], grid) if plan.truth_files else label
            scored = truth != ev.LABEL_NODATA
            if plan.truth_files and subset == "no_radar_dates":
                scored &= label == ev.LABEL_NODATA
            torch.manual_seed(t)  # evaluate's MC-dropout draws
            maps = ev.predict_time(region, plan.tile_positions, t, size, None, ensembles,
                                   settings, device)
            ok = scored & np.isfinite(maps["student_distilled"])
            # float32, as evaluate keeps them for its whole-set scores
            pooled["p"].append(maps["student_distilled"][ok].astype(np.float32))
            pooled["entropy"].append(maps["entropy"][ok].astype(np.float32))
            pooled["water"].append(truth[ok] == 1)
            pooled["zone"].append(zone_of[ok])
            if subset == "radar_passes":
                called = ev.read_teacher_pass(base / "teacher_passes.tif", pass_bands[t])
                for name, mask in zone.items():
                    water = mask & ok & (truth == 1) & np.isfinite(called)
                    teacher[name] += [water.sum(), (water & (called <= settings.threshold)).sum()]
    p, entropy, water, where = (np.concatenate(pooled[k]) for k in pooled)
    wrong = (p > settings.threshold) != water
    sure = entropy < np.median(entropy[~wrong])
    report = {}
    for i, name in enumerate(zone):
        inside = where == i
        report[name] = {
            "pixels": int(inside.sum()), "water_px": int((inside & water).sum()),
            "missed_water_px": int((inside & wrong & water).sum()),
            "false_water_px": int((inside & wrong & ~water).sum()),
            "sure_wrong_px": int((inside & wrong & sure).sum()),
            "auroc_without": float(uncertainty_error_auroc(entropy[~inside], wrong[~inside])),
            "teacher_missed_water_share_radar_passes": (
                float(teacher[name][1] / teacher[name][0]) if teacher[name][0] else None)}
    out = {"created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
           "region": args.region, "student": str(student_dir), "variant": args.variant,
           "pixels": int(wrong.size), "wrong_px": int(wrong.sum()),
           "uncertainty_error_auroc": float(uncertainty_error_auroc(entropy, wrong)),
           "pixels_in_no_zone": int((where < 0).sum()), "zones": report}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
