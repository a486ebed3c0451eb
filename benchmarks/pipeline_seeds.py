"""The issue-9 targets over seeds of the whole pipeline after align: teacher included.

The student's figures are ratios to its teacher's, and the teacher's training draw moves them
more than the student's (docs/student-limits.md, "Which teacher"). For each seed this runs,
in its own folder and on the cubes of an existing run (linked, not copied), every stage
that depends on ``training.seed``: train-teacher, waterline (every region), reference-water,
teacher-passes, distill and evaluate, then reads the targets from the evaluation. Writes
benchmarks/results/pipeline_seeds.json (or ``--out``); about 8 min per seed at the demo's
192 px on two cores. Seed s trains the teacher's ViTs s to s + teacher_members - 1, so seeds
0 3 6 9 draw teachers with no member in common.

    .venv/bin/python benchmarks/pipeline_seeds.py --seeds 0 3 6 9   # after `make run`
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import yaml

RESULTS = Path(__file__).parent / "results" / "pipeline_seeds.json"
LINKED = ("cube.zarr", "tiles.parquet", "holdout.json", "ingest")
FLOODKD = [sys.executable, "-m", "floodkd.cli"]


def run_seed(config: dict, seed: int, folder: Path, threads: int) -> dict[str, dict]:
    """Every seeded stage for ``seed`` in ``folder``; the targets of each target region."""
    source_results = Path(config.get("results_dir", "results")).resolve()
    results = folder / "results"
    for region in config["regions"]:
        (results / region).mkdir(parents=True, exist_ok=True)
        for name in LINKED:
            link, target = results / region / name, source_results / region / name
            if target.exists() and not link.exists():
                link.symlink_to(target)
    seeded = {**config, "results_dir": str(results),
              "training": {**(config.get("training") or {}), "seed": seed}}
    config_path = folder / "config.yaml"
    config_path.write_text(yaml.safe_dump(seeded))
    targets = [name for name, r in config["regions"].items() if r["role"] == "target"]
    common = ["--config", str(config_path)]
    teacher = folder / "teacher"
    stages = [["train-teacher", "--out", str(teacher), "--holdout",
               *(str(results / t / "holdout.json") for t in targets)]]
    for region in config["regions"]:
        stages.append(["waterline", "--region", region, "--teacher", str(teacher), "--cube",
                       str(results / region / "cube.zarr"), "--out",
                       str(results / region / "waterline.tif")])
    for region in targets:
        base = results / region
        stages += [
            ["reference-water", "--region", region, "--teacher", str(teacher),
             "--cube", str(base / "cube.zarr"), "--out", str(base / "reference_water.tif")],
            ["teacher-passes", "--region", region, "--teacher", str(teacher),
             "--out", str(base / "teacher_passes.tif")],
            ["distill", "--region", region, "--teacher", str(teacher),
             "--out", str(base / "student")],
            ["evaluate", "--region", region, "--teacher-passes",
             str(base / "teacher_passes.tif"), "--student", str(base / "student"),
             "--reference-water", str(base / "reference_water.tif"), "--out",
             str(base / "eval")],
        ]
    for stage in stages:
        # as `make run` on two cores: evaluation on one thread, every other stage on two
        threads_now = "1" if stage[0] == "evaluate" else str(threads)
        subprocess.run([*FLOODKD, *stage, *common, "--threads", threads_now,
                        "--log", str(folder / f"{stage[0]}.log")], check=True)
    return {region: targets_of(results / region / "eval") for region in targets}


def targets_of(eval_dir: Path) -> dict[str, float]:
    """The issue's figures from one evaluation: ratios on the held-out radar passes."""
    top = json.loads((eval_dir / "metrics.json").read_text())
    passes = json.loads((eval_dir / "metrics_by_subset.json").read_text())
    radar = passes["subsets"]["radar_passes"]
    teacher, student = radar["teacher"], radar["student_distilled"]
    extreme = top["extreme_event"]["models"]
    return {
        "teacher_flood_iou": teacher["flood_iou"],
        "student_flood_iou": student["flood_iou"],
        "iou_ratio": student["iou"] / teacher["iou"],
        "flood_iou_ratio": student["flood_iou"] / teacher["flood_iou"],
        "extreme_flood_iou_ratio": (extreme["student_distilled"]["flood_iou"]
                                    / extreme["teacher"]["flood_iou"]),
        "extreme_over_bathtub": (extreme["student_distilled"]["flood_iou"]
                                 - extreme["bathtub"]["flood_iou"]),
        "over_labels_only": student["iou"] - radar["student_labels_only"]["iou"],
        "uncertainty_error_auroc": top["uncertainty_error_auroc"],
        "ece_before": top["ece"]["before_calibration"],
        "ece_after": top["ece"]["after_calibration"],
        "monotone_in_water_level": top["monotone_in_water_level"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="results/config.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 3, 6, 9])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/floodkd-pipeline-seeds"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    config = yaml.safe_load(Path(args.config).read_text())
    runs = {seed: run_seed(config, seed, args.workdir / f"seed{seed}", args.threads)
            for seed in args.seeds}
    regions = sorted({region for run in runs.values() for region in run})
    means = {region: {key: statistics.fmean(runs[s][region][key] for s in args.seeds)
                      for key in runs[args.seeds[0]][region]} for region in regions}
    out = {"created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
           "config": args.config, "threads": args.threads, "seeds": runs, "mean": means}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
