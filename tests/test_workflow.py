"""End to end: the whole Snakemake workflow on a tiny demo coast in a temporary folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
import yaml

from floodkd.cli import main
from floodkd.grid import RegionGrid

REPO = Path(__file__).parents[1]
pytestmark = pytest.mark.slow  # about 3 minutes on two cores; CI runs it (`make test-slow`)

# Just enough training to exercise every stage; the shipped config trains for real.
TINY_TRAINING = {"teacher_epochs": 1, "distill_epochs": 1, "finetune_epochs": 1,
                 "ensemble_members": 2, "batch_size": 4}


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"),
               "--cores", "2", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)


def planned_jobs(workdir: Path) -> dict[str, int]:
    """Rule -> job count of a dry run (Snakemake's "Job stats" table)."""
    result = snakemake(workdir, "--dry-run")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {rule: int(count) for rule, count in
            re.findall(r"^(\w+)\s+(\d+)$", result.stdout, flags=re.MULTILINE)
            if rule != "total"}


@pytest.fixture(scope="module")
def coast(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("coast")
    assert main(["demo", "--out", str(work / "data" / "demo"), "--size", "64", "--seed", "7"]) == 0
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["demo"]["size"] = 64
    config["training"] = TINY_TRAINING
    config["align"] = {"tile_px": 32, "tile_overlap_px": 8, "split_block_tiles": 1}
    config["predict"] = {"tile_px": 32, "overlap_px": 8, "mc_samples": 2,
                         "scenarios": {"observed": {}, "surge_1m": {"water_level_offset_m": 1.0}}}
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(work)
    assert result.returncode == 0, result.stderr[-5000:]
    return work


def test_maps_lie_on_the_region_grid(coast):
    grid = RegionGrid.from_dataset(xr.open_zarr(coast / "results/demo-target/cube.zarr"))
    for scenario in ("observed", "surge_1m"):
        maps = coast / "results/demo-target/maps"
        with rasterio.open(maps / f"flood_probability_{scenario}.tif") as src:
            assert src.crs == grid.crs and src.transform == grid.transform
            assert src.shape == grid.shape
            probability = src.read(1, masked=True)
            assert 0 <= probability.min() and probability.max() <= 1
            assert probability.count() > 0.5 * probability.size
        with rasterio.open(maps / f"flood_uncertainty_{scenario}.tif") as src:
            assert src.descriptions == ("std", "entropy", "mutual_information", "inputs_used")


def test_scenario_changes_the_map_and_is_recorded(coast):
    # a 1-epoch model need not be monotone in water level; that it reads the scenario must hold
    maps = coast / "results/demo-target/maps"
    probability = {}
    for scenario in ("observed", "surge_1m"):
        with rasterio.open(maps / f"flood_probability_{scenario}.tif") as src:
            probability[scenario] = src.read(1)
            assert src.tags()["SCENARIO"] == scenario
    assert np.abs(probability["surge_1m"] - probability["observed"]).max() > 1e-3


def test_metrics_name_every_model(coast):
    metrics = json.loads((coast / "results/demo-target/eval/metrics.json").read_text())
    for model in ("teacher", "student_distilled", "student_labels_only", "student_no_ewc",
                  "bathtub", "sar_otsu"):
        assert set(metrics[model]) >= {"iou", "f1", "precision", "recall"}
    assert 0 < metrics["label_fraction"] < 0.2


def test_rerun_without_changes_does_nothing(coast):
    assert planned_jobs(coast) == {}


def test_changed_tide_file_reruns_only_what_depends_on_it(coast):
    gauge = sorted((coast / "data/demo/demo-target/tide").glob("h*.csv"))[0]
    lines = gauge.read_text().splitlines()
    year, month, day, hour, level = lines[100].split(",")
    lines[100] = ",".join([year, month, day, hour, str(int(level) + 30)])
    gauge.write_text("\n".join(lines) + "\n")
    jobs = planned_jobs(coast)
    assert jobs.get("ingest") == 1  # only demo-target's tide
    assert "train_teacher" not in jobs  # the teacher reads only the source region
    assert {"align", "distill", "predict", "evaluate"} <= set(jobs)
