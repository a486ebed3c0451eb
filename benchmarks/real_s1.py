"""Benchmark the radar teacher on real Sentinel-1: Sen1Floods11-style hand-labelled chips.

For every ``<chip>_S1Hand.tif`` with a ``<chip>_LabelHand.tif`` beside it in ``--chips``, the
product's own path runs: a config with one radar-only region around the chip (``model:
teacher``, the label's -1/0/1 encoding declared), ``floodkd ingest`` (sar, labels),
``floodkd align`` and ``floodkd predict --model teacher``. The teacher's map (P >= 0.5) and
the Otsu baseline on the cube's VV are scored against the hand label on the region grid,
per chip and pooled (summed confusion counts), and written to benchmarks/results/real_s1.json.

The chips carry no acquisition time; radar and label get one nominal time, since only their
pairing matters here. Nothing here trains or tunes: the chips only measure transfer.

    .venv/bin/python benchmarks/real_s1.py --chips /path/to/chips [--teacher results/teacher]
        [--work DIR]   # keep the cubes and maps, to look at where the teacher errs
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import rasterio
import xarray as xr
import yaml
from rasterio.warp import transform_bounds

from floodkd.cli import main as floodkd
from floodkd.distill.data import cube_pass_land_level_db
from floodkd.evaluate.baselines import otsu_threshold_db
from floodkd.evaluate.metrics import binary_scores

RESULTS = Path(__file__).parent / "results" / "real_s1.json"
NOMINAL_TIME = "2000-01-01T00:00:00Z"
SEN1FLOODS11_VALUES = {"water": 1, "dry": 0, "nodata": -1}
THRESHOLD = 0.5
COUNTS = ("tp", "fp", "fn", "tn")


def chip_pairs(folder: Path) -> list[tuple[str, Path, Path]]:
    """(chip name, S1 file, label file) for every chip that has both files."""
    pairs = []
    for s1 in sorted(folder.glob("*_S1Hand.tif")):
        label = s1.with_name(s1.name.replace("_S1Hand.tif", "_LabelHand.tif"))
        if label.is_file():
            pairs.append((s1.name.removesuffix("_S1Hand.tif"), s1, label))
    if not pairs:
        raise SystemExit(f"{folder}: no *_S1Hand.tif with a matching *_LabelHand.tif")
    return pairs


def region_name(chip: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", chip.lower()).strip("-")


def chip_region(s1: Path, label: Path) -> dict:
    """A radar-only region whose bbox is the chip's footprint less one pixel at each edge."""
    with rasterio.open(s1) as src:
        west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
        pad_x, pad_y = (east - west) / src.width, (north - south) / src.height
    return {"role": "target", "model": "teacher",
            "bbox": [west + pad_x, south + pad_y, east - pad_x, north - pad_y],
            "inputs": {"sar": {"glob": str(s1), "times": {s1.name: NOMINAL_TIME}},
                       "labels": {"glob": str(label), "times": {label.name: NOMINAL_TIME},
                                  "values": SEN1FLOODS11_VALUES}}}


def run_chip(name: str, s1: Path, label: Path, teacher_dir: Path, work: Path) -> dict:
    """The product's path over one chip; returns the two models' confusion counts."""
    region = region_name(name)
    config = work / f"{region}.yaml"
    results = work / "results"
    config.write_text(yaml.safe_dump({"results_dir": str(results),
                                      "regions": {region: chip_region(s1, label)}}))
    base = results / region
    steps = [["ingest", m, "--config", str(config), "--region", region,
              "--out", str(base / "ingest" / m)] for m in ("sar", "labels")]
    steps.append(["align", "--config", str(config), "--region", region, "--cube",
                  str(base / "cube.zarr"), "--tiles", str(base / "tiles.parquet")])
    steps.append(["predict", "--config", str(config), "--region", region, "--model", "teacher",
                  "--teacher", str(teacher_dir), "--cube", str(base / "cube.zarr"),
                  "--out", str(base / "maps")])
    for step in steps:
        if floodkd(step) != 0:
            raise SystemExit(f"{name}: floodkd {' '.join(step[:2])} failed")
    cube = xr.open_zarr(base / "cube.zarr")
    truth = cube["label"].isel(time=-1).values
    vv = cube["vv_db"].isel(time=-1).values
    with rasterio.open(base / "maps" / "flood_probability_observed.tif") as src:
        probability = src.read(1, masked=True).filled(np.nan)
    valid = (truth != 255) & np.isfinite(probability) & np.isfinite(vv)
    water = truth == 1
    threshold = otsu_threshold_db(vv[valid])
    return {
        "teacher": binary_scores(probability >= THRESHOLD, water, valid),
        "otsu": binary_scores(vv < threshold, water, valid),
        "otsu_threshold_db": threshold,
        # the pass's land level (VV, VH dB) that the teacher's land-relative channels took
        "land_level_db": list(cube_pass_land_level_db(cube, cube.sizes["time"] - 1)),
        "water_fraction": float(water[valid].mean()),
        "teacher_water_fraction": float((probability[valid] >= THRESHOLD).mean()),
    }


def pooled(per_chip: dict[str, dict], model: str) -> dict:
    """Scores from the confusion counts summed over the chips."""
    total = {k: sum(chip[model][k] for chip in per_chip.values()) for k in COUNTS}
    tp, fp, fn = total["tp"], total["fp"], total["fn"]
    return {"iou": tp / (tp + fp + fn) if tp + fp + fn else float("nan"),
            "precision": tp / (tp + fp) if tp + fp else float("nan"),
            "recall": tp / (tp + fn) if tp + fn else float("nan"), **total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chips", required=True, type=Path, help="folder of Sen1Floods11 chips")
    parser.add_argument("--teacher", type=Path, default=Path("results/teacher"),
                        help="folder of teacher.safetensors (default: results/teacher)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--work", type=Path, default=None,
                        help="keep each chip's config, cube and maps in this folder "
                             "(default: a temporary folder, removed)")
    args = parser.parse_args()
    weights = args.teacher / "teacher.safetensors"
    if not weights.is_file():
        raise SystemExit(f"{weights}: no trained teacher; run the demo workflow first")
    per_chip = {}
    with tempfile.TemporaryDirectory(prefix="real_s1_") as temporary:
        work = args.work or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        for name, s1, label in chip_pairs(args.chips):
            per_chip[name] = run_chip(name, s1, label, args.teacher, work)
    result = {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "teacher": str(args.teacher),
        "teacher_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "teacher_meta": json.loads((args.teacher / "teacher.json").read_text())["meta"].get(
            "training", {}),
        "threshold": THRESHOLD,
        "chips": per_chip,
        "pooled": {model: pooled(per_chip, model) for model in ("teacher", "otsu")},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"{'chip':<24} {'model':<8} {'IoU':>6} {'prec':>6} {'recall':>6}")
    for name, chip in {**per_chip, "pooled": result["pooled"]}.items():
        for model in ("teacher", "otsu"):
            s = chip[model]
            print(f"{name:<24} {model:<8} {s['iou']:6.3f} {s['precision']:6.3f} "
                  f"{s['recall']:6.3f}")


if __name__ == "__main__":
    main()
