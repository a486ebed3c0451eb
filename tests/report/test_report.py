"""The region page from a hand-made results folder: what it shows, what it embeds, and the
sections that appear only when their stage ran."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import rasterio
import yaml
from rasterio.transform import from_origin

from floodkd.cli import main
from floodkd.evaluate.metrics import reliability_bins

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REGION = "coast-a"


def _config(work: Path) -> Path:
    config = {"results_dir": str(work / "results"), "regions": {REGION: {
        "role": "target", "bbox": [4.0, 52.0, 4.01, 52.01], "synthetic": True,
        "inputs": {"sar": {"glob": str(work / "data" / "s1" / "*.tif")}}}}}
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _results(work: Path, risk: bool) -> None:
    (work / "data" / "s1").mkdir(parents=True)
    for name in ("S1A_20240101.tif", "S1A_20240113.tif"):
        (work / "data" / "s1" / name).write_bytes(b"")
    here = work / "results" / REGION
    (here / "eval").mkdir(parents=True)
    metrics = {"student_distilled": {"iou": 0.8123, "f1": 0.9, "precision": 0.85,
                                     "recall": 0.95, "pixels": 4096},
               "bathtub": {"iou": 0.4567, "f1": 0.6, "precision": 0.5, "recall": 0.7,
                           "pixels": 4096},
               "label_fraction": 0.05, "ece": {"before_calibration": 0.2,
                                               "after_calibration": 0.031},
               "uncertainty_error_auroc": 0.77}
    (here / "eval" / "metrics.json").write_text(json.dumps(metrics))
    rng = np.random.default_rng(0)
    prob = rng.uniform(size=500)
    water = rng.uniform(size=500) < prob
    (here / "eval" / "metrics_by_subset.json").write_text(json.dumps({
        "truth": "truth rasters", "settings": {"threshold": 0.5},
        "reliability": {"before_calibration": reliability_bins(prob ** 2, water),
                        "after_calibration": reliability_bins(prob, water)}}))
    maps = here / "maps"
    maps.mkdir()
    profile = {"driver": "GTiff", "width": 4, "height": 4, "count": 1, "dtype": "float32",
               "crs": "EPSG:32631", "transform": from_origin(600000, 5800000, 10, 10)}
    with rasterio.open(maps / "flood_probability_surge.tif", "w", **profile) as dst:
        dst.write(np.full((1, 4, 4), 0.5, np.float32))
        dst.update_tags(SCENARIO="surge", SCENARIO_WATER_LEVEL_OFFSET_M="1.0",
                        SCENARIO_DATETIME="2024-01-13T06:00:00+00:00", MODEL_SHA256="ab" * 32,
                        INPUT_FILES=json.dumps(["data/s1/S1A_20240113.tif"]))
    (maps / "flood_probability_surge.png").write_bytes(PNG_MAGIC + b"quicklook")
    (here / "student").mkdir()
    (here / "student" / "distill-0_log.csv").write_text(
        "epoch,train_total,val_loss\n1,0.9,1.0\n2,0.5,0.7\n")
    (work / "results" / "teacher").mkdir()
    (work / "results" / "teacher" / "teacher_log.csv").write_text("epoch,train_total\n1,0.6\n")
    bench = work / "results" / "benchmarks" / REGION
    bench.mkdir(parents=True)
    (bench / "align.tsv").write_text("s\th:m:s\tmax_rss\tcpu_time\tmean_load\n"
                                     "12.5\t0:00:12\t812.3\t20.1\t160.8\n")
    if risk:
        (here / "risk").mkdir()
        (here / "risk" / "return_levels.csv").write_text(
            "station,return_period_years,level_m,lower_m,upper_m,method,record_years\n"
            "h123a,100,3.412,3.1,3.9,gev,31.5\n")
        (here / "risk" / "return_levels.png").write_bytes(PNG_MAGIC + b"levels")
        (here / "plan.json").write_text(json.dumps(
            {"scenario": "ssp245_2050_rp100",
             "zones": [{"zone": "polder-north", "action": "raise dike", "people": 1200}]}))


def _report(work: Path) -> tuple[int, Path]:
    config = _config(work)
    code = main(["report", "--config", str(config), "--region", REGION])
    return code, work / "results" / REGION / "report"


def test_the_page_shows_metrics_maps_inputs_and_benchmarks(tmp_path):
    _results(tmp_path, risk=False)
    code, out = _report(tmp_path)
    assert code == 0
    page = (out / "index.html").read_text()
    assert re.search(r"<td>student_distilled</td><td class=\"n\">0.812</td>", page)
    assert re.search(r"<td>bathtub</td><td class=\"n\">0.457</td>", page)
    assert "0.031" in page and "SYNTHETIC" in page  # ECE after calibration, demo warning
    assert "<td>water_level_offset_m=1.0</td>" in page and "abababababab" in page
    assert "datetime=" not in page
    assert "S1A_20240101.tif" in page and "read by flood_probability_surge.tif: 1 file" in page
    assert re.search(r"<td>coast-a/align</td><td class=\"n\">12.500</td>", page)
    # standalone: images inline, nothing fetched from elsewhere
    assert page.count("data:image/png;base64,") == 3  # quicklook, reliability, training
    assert not re.search(r"(src|href)=\"(?!data:)", page)
    assert "Return levels" not in page and "<h2>Plan</h2>" not in page
    for name in ("reliability.png", "training_curves.png"):
        assert (out / name).read_bytes().startswith(PNG_MAGIC)
    assert "student_distilled" in (out / "metrics.html").read_text()
    assert "coast-a/align" in (out / "benchmarks.html").read_text()


def test_return_levels_and_the_plan_appear_when_present(tmp_path):
    _results(tmp_path, risk=True)
    code, out = _report(tmp_path)
    assert code == 0
    page = (out / "index.html").read_text()
    assert re.search(r"<td>h123a</td><td class=\"n\">100.000</td><td class=\"n\">3.412</td>",
                     page)
    assert "<td>polder-north</td><td>raise dike</td>" in page and "ssp245_2050_rp100" in page
    assert page.count("data:image/png;base64,") == 4


def test_a_region_without_results_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "data" / "s1").mkdir(parents=True)
    code, out = _report(tmp_path)
    assert code == 2
    err = capsys.readouterr().err
    assert "holds neither maps nor an evaluation" in err and "run the workflow" in err
    assert not out.exists()


def test_an_unknown_region_names_the_choices(tmp_path, capsys):
    config = _config(tmp_path)
    assert main(["report", "--config", str(config), "--region", "elsewhere"]) == 2
    assert "pick one of ['coast-a']" in capsys.readouterr().err


def test_without_reliability_data_there_is_no_diagram(tmp_path):
    _results(tmp_path, risk=False)
    (tmp_path / "results" / REGION / "eval" / "metrics_by_subset.json").unlink()
    code, out = _report(tmp_path)
    assert code == 0
    assert not (out / "reliability.png").exists()
    assert "Reliability diagram" not in (out / "index.html").read_text()
