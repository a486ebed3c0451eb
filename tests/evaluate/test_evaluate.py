"""Evaluation: truth matching and regridding, stitching, and the metrics files end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from odc.geo.geobox import GeoBox
from PIL import Image

from floodkd.evaluate.evaluate import (
    MODEL_NAMES,
    SCORE_KEYS,
    Stitcher,
    read_truth,
    truth_times,
)
from floodkd.grid import RegionGrid
from tests.distill import conftest as cube_helpers  # the synthetic-cube writer

REQUIRED_KEYS = {*MODEL_NAMES, "label_fraction", "ece", "uncertainty_error_auroc",
                 "extreme_event", "monotone_in_water_level"}


def test_truth_times_match_nearest_within_tolerance(tmp_path):
    for stamp in ("20240101T060010", "20240103T000000", "20240110T060000"):
        (tmp_path / f"inundation_{stamp}.tif").touch()
    cube_times = np.array(["2024-01-01T06:00", "2024-01-02T06:00", "2024-01-03T06:00"],
                          dtype="datetime64[ns]")
    found = truth_times(list(tmp_path.glob("*.tif")), cube_times, tolerance_hours=12)
    assert {k: p.name for k, p in found.items()} == {
        0: "inundation_20240101T060010.tif", 2: "inundation_20240103T000000.tif"}


def test_read_truth_same_grid_and_reprojected(tmp_path):
    grid = RegionGrid(GeoBox((4, 4), Affine(10, 0, 500000, 0, -10, 5800000), "EPSG:32631"))
    truth = np.array([[0, 1, 1, 0]] * 4, np.uint8)
    truth[0, 0] = 7  # not a class: unknown
    same = tmp_path / "same.tif"
    _write(same, truth, grid.transform, "EPSG:32631")
    read = read_truth(same, grid)
    assert read[0, 0] == 255 and (read[1:] == truth[1:]).all()
    # a 5 m raster of the same area: nearest neighbour brings it onto the 10 m grid
    fine = np.repeat(np.repeat(truth, 2, 0), 2, 1)
    other = tmp_path / "fine.tif"
    _write(other, fine, Affine(5, 0, 500000, 0, -5, 5800000), "EPSG:32631")
    np.testing.assert_array_equal(read_truth(other, grid)[1:], truth[1:])


def _write(path, array, transform, crs):
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[1], height=array.shape[0],
                       count=1, dtype="uint8", crs=crs, transform=transform) as dst:
        dst.write(array, 1)


def test_stitcher_averages_overlaps():
    stitcher = Stitcher((4, 6))
    stitcher.add("p", torch.tensor([0, 0, 4, 4]), np.full((8, 8), 0.2))  # padded tile
    stitcher.add("p", torch.tensor([0, 2, 4, 4]), np.full((4, 4), 0.6))
    mean = stitcher.mean("p")
    np.testing.assert_allclose(mean[:, :2], 0.2)
    np.testing.assert_allclose(mean[:, 2:4], 0.4)
    np.testing.assert_allclose(mean[:, 4:], 0.6)
    partial = Stitcher((2, 2))
    partial.add("q", torch.tensor([0, 0, 1, 1]), np.ones((1, 1)))
    assert np.isnan(partial.mean("q")[1, 1])


@pytest.mark.slow
def test_evaluate_writes_required_metrics(tmp_path):
    from floodkd.distill.student_training import distill_region
    from floodkd.distill.teacher_training import train_teacher
    from floodkd.evaluate.evaluate import evaluate_region
    from floodkd.evaluate.teacher_passes_cli import map_teacher_passes

    results = tmp_path / "results"
    cube_helpers.write_region(results, "src", seed=2)
    cube_helpers.write_region(results, "tgt", seed=3)
    region = {"bbox": [0, 0, 1, 1], "synthetic": True,
              "inputs": {"sar": {"glob": "s1/*.tif"}, "terrain": {"glob": "dem/*.tif"}}}
    from floodkd.config import validate_config
    config = validate_config({
        "results_dir": str(results),
        "regions": {"src": {**region, "role": "source"},
                    "tgt": {**region, "role": "target", "truth": f"{results}/tgt/truth/*.tif"}},
        "align": {"time_window_days": 0.5},
        "models": {"teacher": {"image_size": 16, "hidden_size": 16, "num_hidden_layers": 1,
                               "num_attention_heads": 2, "intermediate_size": 32},
                   "student": {"base_width": 8, "temporal_dim": 8, "temporal_heads": 2}},
        "training": {"teacher_epochs": 2, "distill_epochs": 1, "finetune_epochs": 1,
                     "ensemble_members": 2},
        "evaluate": {"mc_samples": 2},
    })
    train_teacher(config, tmp_path / "teacher")
    distill_region(config, "tgt", tmp_path / "teacher" / "teacher.safetensors",
                   results / "tgt" / "student")
    out = results / "tgt" / "eval"
    passes = results / "tgt" / "teacher_passes.tif"
    assert map_teacher_passes(config, "tgt", tmp_path / "teacher" / "teacher.safetensors",
                              passes) == ["2024-01-06T06:00:00", "2024-01-07T06:00:00"]
    metrics = evaluate_region(config, "tgt", passes, results / "tgt" / "student", out)

    saved = json.loads((out / "metrics.json").read_text())
    assert saved == metrics
    assert set(saved) == REQUIRED_KEYS
    for name in MODEL_NAMES:
        assert set(saved[name]) == set(SCORE_KEYS)
        for key in ("iou", "f1", "precision", "recall"):
            assert 0 <= saved[name][key] <= 1
    assert set(saved["ece"]) == {"before_calibration", "after_calibration"}
    assert all(0 <= v <= 1 for v in saved["ece"].values())
    assert 0 <= saved["uncertainty_error_auroc"] <= 1
    assert saved["monotone_in_water_level"] == 1.0  # a trained student, swept
    assert saved["extreme_event"]["dates"] == ["2024-01-08T06:00:00"]  # the highest level
    assert saved["student_distilled"]["flood_iou"] is None  # no reference water given
    # held-out passes (2 of 5 radar times: 5, 6) and held-out dates without radar (7 only:
    # 2 and 4 fall in the training period)
    pixels = cube_helpers.SIZE_PX ** 2
    assert saved["teacher"]["pixels"] == saved["sar_otsu"]["pixels"] == 2 * pixels
    assert saved["student_distilled"]["pixels"] == saved["bathtub"]["pixels"] == 3 * pixels
    # the toy truth is exactly the bathtub model, so it must score perfectly
    assert saved["bathtub"]["iou"] == 1.0
    # labels cover the radar passes everywhere except a sparse grid of unlabelled pixels
    assert 0.9 < saved["label_fraction"] < 1.0
    subsets = json.loads((out / "metrics_by_subset.json").read_text())
    by_measure = subsets["uncertainty_error_auroc"]
    assert set(by_measure) == {"std", "entropy", "mutual_information"}
    assert saved["uncertainty_error_auroc"] == by_measure["entropy"]  # the headline
    assert "teacher" not in subsets["subsets"]["no_radar_dates"]
    land, everywhere = subsets["subsets"]["radar_passes_land"], subsets["subsets"]["radar_passes"]
    assert 0 < land["teacher"]["pixels"] < everywhere["teacher"]["pixels"]  # the sea left out
    assert subsets["times"]["radar_passes"] == ["2024-01-06T06:00:00", "2024-01-07T06:00:00"]
    table = (out / "metrics.md").read_text()
    assert all(f"| {name} |" in table for name in MODEL_NAMES)
    with Image.open(out / "reliability.png") as diagram:  # the calibration, drawn in eval/
        colours = diagram.getcolors(1 << 20)
        assert diagram.size[0] > 300 and colours is not None and len(colours) > 8
