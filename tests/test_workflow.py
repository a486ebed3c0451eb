"""End to end: the whole Snakemake workflow on a tiny demo coast in a temporary folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
import xarray as xr

from floodkd.grid import RegionGrid
from tests.workflow_tools import SCENARIOS, planned_jobs, snakemake, write_coast

pytestmark = pytest.mark.slow  # about 6 minutes on two idle cores; CI runs it (`make test-slow`)


@pytest.fixture(scope="module")
def coast(tmp_path_factory) -> Path:
    work = write_coast(tmp_path_factory.mktemp("coast"))
    result = snakemake(work)
    assert result.returncode == 0, result.stderr[-5000:]
    return work


def test_maps_lie_on_the_region_grid(coast):
    grid = RegionGrid.from_dataset(xr.open_zarr(coast / "results/demo-target/cube.zarr"))
    for scenario in SCENARIOS:
        maps = coast / "results/demo-target/maps"
        with rasterio.open(maps / f"flood_probability_{scenario}.tif") as src:
            assert src.crs == grid.crs and src.transform == grid.transform
            assert src.shape == grid.shape
            probability = src.read(1, masked=True)
            assert 0 <= probability.min() and probability.max() <= 1
            assert probability.count() > 0.5 * probability.size
        with rasterio.open(maps / f"flood_uncertainty_{scenario}.tif") as src:
            assert src.descriptions == ("std", "entropy", "mutual_information")
        # the extent, likelihood and inputs-used layers: uint8 on the same grid
        for layer in ("extent", "likelihood", "inputs_used"):
            with rasterio.open(maps / f"flood_{layer}_{scenario}.tif") as src:
                assert (src.crs, src.transform, src.shape) == (grid.crs, grid.transform,
                                                               grid.shape)
                assert src.dtypes == ("uint8",) and src.nodata == 255


def test_scenario_changes_the_map_and_is_recorded(coast):
    # a 1-epoch model need not be monotone in water level; that it reads the scenario must hold
    maps = coast / "results/demo-target/maps"
    probability = {}
    for scenario in ("observed", "surge_1m"):
        with rasterio.open(maps / f"flood_probability_{scenario}.tif") as src:
            probability[scenario] = src.read(1)
            assert src.tags()["SCENARIO"] == scenario
    assert np.abs(probability["surge_1m"] - probability["observed"]).max() > 1e-3
    # the Item's window spans the cube's times, up to the mapped date
    item = json.loads((maps / "flood_probability_observed.stac.json").read_text())["properties"]
    assert item["start_datetime"] < item["end_datetime"] == item["datetime"]


def test_metrics_name_every_model(coast):
    metrics = json.loads((coast / "results/demo-target/eval/metrics.json").read_text())
    for model in ("teacher", "student_distilled", "student_labels_only", "student_no_ewc",
                  "bathtub", "sar_otsu"):
        assert set(metrics[model]) >= {"iou", "f1", "precision", "recall"}
    assert 0 < metrics["label_fraction"] < 0.2


def test_exposure_and_plan_of_the_target(coast):
    results = coast / "results/demo-target"
    layers = {name for name, _ in pyogrio.list_layers(results / "exposure.gpkg")}
    assert layers == set(SCENARIOS)
    assets = gpd.read_file(results / "exposure.gpkg", layer="surge_1m")
    assert {"class", "building", "p_max", "p_mean", "std_mean"} <= set(assets.columns)
    assert assets["p_max"].notna().all()
    summary = pd.read_csv(results / "exposure_summary.csv")
    assert set(summary["class"]) == {"building", "hospital", "pumping_station", "road"}
    plan = json.loads((results / "plan.json").read_text())
    assert plan["conditions"]["models"] in (["student"], ["teacher", "student"])
    zones = gpd.read_file(results / "plan_zones.geojson")
    assert len(zones) == len(plan["zones"])  # the demo's zones file, not a grid
    assert set(zones["name"]) <= {"Polder and dike ring", "Town", "Coast, flats and creeks"}
    assert all(zone["actions"] for zone in plan["zones"])


def test_the_qgis_project_holds_every_scenario_and_the_reference_water(coast):
    results = coast / "results/demo-target"
    project = (results / "demo-target.qgs").read_text()
    assert "reference_water.tif" in project
    for scenario in SCENARIOS:
        assert f"maps/flood_extent_{scenario}.tif" in project
    collection = json.loads((results / "maps/collection.json").read_text())
    items = {link["href"] for link in collection["links"] if link["rel"] == "item"}
    assert {f"./flood_probability_{scenario}.stac.json" for scenario in SCENARIOS} <= items


def test_every_rule_wrote_a_benchmark(coast):
    benchmarks = sorted(p.relative_to(coast / "results/benchmarks").as_posix()
                        for p in (coast / "results/benchmarks").rglob("*.tsv"))
    assert {"train_teacher.tsv", "demo-target/align.tsv", "demo-target/distill.tsv",
            "demo-target/evaluate.tsv", "demo-target/predict_surge_1m.tsv",
            "demo-source/ingest_tide.tsv"} <= set(benchmarks)
    header = (coast / "results/benchmarks/train_teacher.tsv").read_text().split("\t")[:2]
    assert header == ["s", "h:m:s"]


def test_rerun_without_changes_does_nothing(coast):
    assert planned_jobs(coast) == []


REPORT = "Writing the report page of demo-target"
EXPOSURE = "Exposure of the assets of demo-target per scenario"
CATALOGUE = "Writing the QGIS project and STAC Collection of demo-target"
REFERENCE_WATER = "Mapping the reference (permanent) water of demo-target"
HOLDOUT = "Fixing the held-out period of demo-target"
TEACHER = "Training the radar teacher on demo-source"
TEACHER_PASSES = "Mapping the teacher on the radar passes demo-target is evaluated on"
# every region's waterline is the teacher's map of its archive
WATERLINES = [f"Reading the waterline of {region} from its radar archive"
              for region in ("demo-source", "demo-target")]
# The consumers of the models: evaluation, every scenario's map of the one target, what reads
# the maps (the exposure, the plan, the QGIS project) and its report.
MODEL_CONSUMERS = [
    "Evaluating models and baselines on demo-target",
    "Mapping flood probability for demo-target, scenario observed",
    "Mapping flood probability for demo-target, scenario surge_1m",
    "Mapping flood probability for demo-target, scenario ssp245_2050_rp100",
    REPORT,
    EXPOSURE,
    CATALOGUE,
    "Planning actions for demo-target from its latest conditions",
]


def test_a_training_setting_reruns_the_models_and_their_consumers(coast):
    jobs = planned_jobs(coast, "--config", "training={teacher_epochs: 2}")
    assert jobs == sorted([
        TEACHER, REFERENCE_WATER, TEACHER_PASSES, *WATERLINES,
        "Distilling the teacher into the student ensemble for demo-target", *MODEL_CONSUMERS])


def test_a_student_setting_leaves_the_teacher_alone(coast):
    jobs = planned_jobs(coast, "--config", "models={student: {base_width: 8}}")
    assert jobs == sorted(["Distilling the teacher into the student ensemble for demo-target",
                           *MODEL_CONSUMERS])


def test_a_scoring_setting_leaves_the_teacher_passes_alone(coast):
    scoring = planned_jobs(coast, "--config", "evaluate={threshold: 0.4}")
    assert "Evaluating models and baselines on demo-target" in scoring
    assert TEACHER_PASSES not in scoring
    # which truth a pass is scored against decides which passes the teacher maps
    assert TEACHER_PASSES in planned_jobs(coast, "--config", "evaluate={truth_match_hours: 6}")


def test_a_scenario_setting_reruns_only_that_map(coast):
    jobs = planned_jobs(coast, "--config",
                        "predict={scenarios: {surge_1m: {water_level_offset_m: 1.5}}}")
    assert jobs == sorted([EXPOSURE, REPORT, CATALOGUE,
                           "Mapping flood probability for demo-target, scenario surge_1m"])


def test_the_dask_address_reruns_nothing(coast):
    assert planned_jobs(coast, "--config", "align={dask_scheduler: tcp://elsewhere:8786}") == []


def test_the_region_page_holds_the_metrics_table(coast):
    metrics = json.loads((coast / "results/demo-target/eval/metrics.json").read_text())
    page = (coast / "results/demo-target/report/index.html").read_text()
    for model in ("teacher", "student_distilled", "bathtub"):
        iou = metrics[model]["iou"]
        assert f'<td>{model}</td><td class="n">{iou:.3f}</td>' in page
    assert page.count("data:image/png;base64,") >= 6  # 4 quicklooks, reliability, training
    assert "demo-target/distill" in page  # the benchmark table


def test_the_snakemake_report_holds_every_result_with_its_caption(coast):
    result = snakemake(coast, "--report", str(coast / "report.html"))
    assert result.returncode == 0, result.stderr[-3000:]
    report = (coast / "report.html").read_text()
    for name in ("index.html", "metrics.html", "reliability.png", "training_curves.png",
                 "benchmarks.html", "flood_probability_surge_1m.png",
                 "flood_uncertainty_observed.png"):
        assert name in report, name
    for caption in ("Reliability diagram of the distilled student", "Training curves behind",
                    "Benchmark files of the jobs", "Quicklook of a map of region"):
        assert caption in report, caption


def test_an_identical_rewrite_of_the_cube_reruns_none_of_its_consumers(coast):
    manifest = coast / "results/demo-target/cube.manifest.json"
    before = manifest.stat().st_mtime_ns, manifest.read_text()
    # the target's align runs again (as after a touched input); its consumers are checked
    # after it ran, and none runs
    result = snakemake(coast, "--forcerun", str(manifest.relative_to(coast)))
    assert result.returncode == 0, result.stderr[-3000:]
    ran = sorted(re.findall(r"^Job \d+: (.+)$", result.stdout + result.stderr, re.MULTILINE))
    assert ran == ["Aligning demo-target onto its region grid"]
    assert manifest.stat().st_mtime_ns > before[0] and manifest.read_text() == before[1]
    assert planned_jobs(coast) == []


def test_changed_tide_file_reruns_only_what_depends_on_it(coast):
    gauge = sorted((coast / "data/demo/demo-target/tide").glob("h*.csv"))[0]
    lines = gauge.read_text().splitlines()
    year, month, day, hour, level = lines[100].split(",")
    lines[100] = ",".join([year, month, day, hour, str(int(level) + 30)])
    gauge.write_text("\n".join(lines) + "\n")
    # the teacher reads the source region and the target's held-out period, which a dry run
    # cannot know is unchanged before the period is fixed again
    assert planned_jobs(coast) == sorted([
        "Ingesting tide of demo-target", "Aligning demo-target onto its region grid",
        "Fitting tide-gauge extremes of demo-target", HOLDOUT, TEACHER, REFERENCE_WATER,
        TEACHER_PASSES, *WATERLINES,
        "Distilling the teacher into the student ensemble for demo-target", *MODEL_CONSUMERS])
    result = snakemake(coast)
    assert result.returncode == 0, result.stderr[-3000:]
    ran = re.findall(r"^Job \d+: (.+)$", result.stdout + result.stderr, re.MULTILINE)
    # the same passes are held out: the period's file kept its content, the teacher stays
    assert HOLDOUT in ran and TEACHER not in ran
    assert "Distilling the teacher into the student ensemble for demo-target" in ran
