"""The radar teacher on every labelled radar pass of the demo regions, by the demo's true land
cover: the share of labelled water it finds and of labelled dry land it calls water.

A blind spot on the target is either learned or transferred: if the teacher also misses a
cover's water on the source passes it trained on, the labels held it and the training did
not learn it. Each region's true cover is rebuilt from the demo's manifest (seed, size);
each pass is mapped as evaluation maps it (``predict_time`` over every tile of the region:
the teacher in eval mode, the student's calibrated ensemble mean with evaluation's MC draws).
Passes from the teacher's ``trained_before`` on (the target's held-out period, which the
teacher never trains on) are counted apart.

With ``--student DIR`` (a ``floodkd distill`` output of ``--region``), it also asks whether
the student learned what its teacher taught: on every radar pass of that region, by true
cover, the pixels the teacher calls water and the share the student calls water too, apart
on the passes distillation trained on and the held-out ones. Writes
benchmarks/results/teacher_cover.json (or ``--out``).

    .venv/bin/python benchmarks/teacher_cover.py [--config results/config.yaml]
        [--teacher results/teacher] [--student results/demo-target/student]   # after make run
"""

from __future__ import annotations

import argparse
import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from extreme_reach import demo_region, to_grid

from floodkd.config import load_config
from floodkd.distill.data import (
    TERRAIN_VARIABLES,
    holdout_mask,
    open_region,
    padded_size,
    time_window_days,
)
from floodkd.distill.inference import StudentEnsemble
from floodkd.distill.settings import training_settings
from floodkd.evaluate import evaluate as ev
from floodkd.grid import RegionGrid
from floodkd.models.checkpoint import load_checkpoint
from floodkd.models.teacher import RadarTeacher

RESULTS = Path(__file__).parent / "results" / "teacher_cover.json"
WATER, DRY = 1, 0


def pass_maps(region, t: int, teacher: RadarTeacher, ensembles: dict, settings
              ) -> dict[str, np.ndarray]:
    """The teacher's (and each ensemble's) P(water) at time ``t`` as evaluation stitches them,
    the teacher NaN where the pass has no backscatter."""
    multiples = [teacher.config.patch_size,
                 *(2 ** e.members[0].config.depth for e in ensembles.values())]
    size = padded_size([region.tiles], math.lcm(*multiples))
    torch.manual_seed(t)  # evaluate's MC-dropout draws
    maps = ev.predict_time(region, list(range(len(region.tiles))), t, size, teacher, ensembles,
                           settings, torch.device("cpu"))
    maps["teacher"][~np.isfinite(region.cube["vv_db"].isel(time=t).values)] = np.nan
    return maps


def student_against_teacher(config: dict, region, student_dir: Path, teacher: RadarTeacher,
                            settings, cover: np.ndarray) -> dict:
    """Per period and true cover: the teacher's water pixels and the share the student
    calls water too, over every radar pass of ``region``."""
    from floodkd.demo.terrain import Cover

    ensembles = {"student_distilled": StudentEnsemble.load(student_dir, device="cpu")}
    cube = region.cube
    radar = cube["radar_present"].values.astype(bool)
    held = holdout_mask(cube["time"].values, radar, training_settings(config).holdout_fraction,
                        time_window_days(config))
    counts: dict[str, dict[str, int]] = {}
    for t in np.flatnonzero(radar):
        maps = pass_maps(region, int(t), teacher, ensembles, settings)
        taught = maps["teacher"] > settings.threshold
        learned = maps["student_distilled"] > settings.threshold
        period = "held out" if held[t] else "distillation's passes"
        for kind in Cover:
            row = counts.setdefault(f"{period}, true cover {kind.name.lower()}",
                                    {"teacher_water_px": 0, "student_agrees_px": 0})
            row["teacher_water_px"] += int((taught & (cover == kind)).sum())
            row["student_agrees_px"] += int((taught & learned & (cover == kind)).sum())
    for row in counts.values():
        row["agreement"] = (row["student_agrees_px"] / row["teacher_water_px"]
                            if row["teacher_water_px"] else None)
    return {k: v for k, v in counts.items() if v["teacher_water_px"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="results/config.yaml")
    parser.add_argument("--teacher", type=Path, default=Path("results/teacher"))
    parser.add_argument("--student", type=Path, help="a distill output of --region")
    parser.add_argument("--region", default="demo-target")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(2)
    from floodkd.demo.generate import region_terrain
    from floodkd.demo.terrain import Cover

    config = load_config(args.config)
    teacher, meta = load_checkpoint(RadarTeacher, args.teacher / "teacher.safetensors")
    teacher.eval()
    settings = ev.settings_from_config(ev.EvaluateConfig, config, "evaluate")
    trained_before = np.datetime64(meta["trained_before"]) if meta.get("trained_before") else None
    out = {"created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
           "teacher": str(args.teacher), "epochs_run": meta["metrics"]["epochs_run"],
           "trained_before": meta.get("trained_before"), "regions": {}}
    results = Path(config.get("results_dir", "results"))
    for region in config["regions"]:
        demo = demo_region(config, region)
        if demo is None:
            continue
        spec, seed, size = demo
        data = open_region(results, region, ["vv_db", "vh_db", "radar_present", "label",
                                             *TERRAIN_VARIABLES])
        cube = data.cube
        terrain, inner = region_terrain(spec, seed, size)
        cover = to_grid(terrain.cover[inner], spec, size, RegionGrid.from_dataset(cube))
        counts: dict[str, dict[str, int]] = {}
        for t in np.flatnonzero(cube["radar_present"].values):
            label = cube["label"].isel(time=t).values
            if not ((label == WATER) | (label == DRY)).any():
                continue
            water = pass_maps(data, int(t), teacher, {}, settings)["teacher"] > settings.threshold
            time = cube["time"].values[t]
            period = ("from trained_before" if trained_before is not None
                      and time >= trained_before else "before trained_before")
            for kind in Cover:
                where = cover == kind
                row = counts.setdefault(f"{period}, true cover {kind.name.lower()}", {
                    "passes": 0, "water_px": 0, "found_px": 0, "dry_px": 0, "false_px": 0})
                row["passes"] += int((where & ((label == WATER) | (label == DRY))).any())
                for name, value in (("water_px", where & (label == WATER)),
                                    ("found_px", where & (label == WATER) & water),
                                    ("dry_px", where & (label == DRY)),
                                    ("false_px", where & (label == DRY) & water)):
                    row[name] += int(value.sum())
        for row in counts.values():
            row["recall"] = row["found_px"] / row["water_px"] if row["water_px"] else None
            row["false_share"] = row["false_px"] / row["dry_px"] if row["dry_px"] else None
        out["regions"][region] = {k: v for k, v in counts.items() if v["water_px"] + v["dry_px"]}
        if args.student is not None and region == args.region:
            out["student"] = str(args.student)
            out["student_against_teacher"] = student_against_teacher(
                config, data, args.student, teacher, settings, cover)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
