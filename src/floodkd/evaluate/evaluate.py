"""Score the teacher, the student variants and the baselines against truth for one region.

Truth is, on a synthetic (demo) region whose truth rasters exist, the simulated inundation on
the held-out radar passes and on dates without a radar pass; on a real region, the labels of
the test-split tiles. Models predict whole tiles, stitched onto the region grid (overlaps
averaged), so the connectivity-based bathtub and the tiled models score the same pixels.

Outputs: ``metrics.json`` (exactly the agreed keys), ``metrics_by_subset.json`` (the same
scores per evaluation subset, plus what was evaluated) and ``metrics.md`` (a table).
"""

from __future__ import annotations

import glob
import json
import logging
import math
import re
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.warp import Resampling, reproject
from torch.utils.data import DataLoader

from floodkd.align.terrain import sea_mask
from floodkd.atomic import atomic_path
from floodkd.config import region_config
from floodkd.distill.calibration import expected_calibration_error
from floodkd.distill.data import (
    LABEL_NODATA,
    TERRAIN_VARIABLES,
    CubeTileDataset,
    RegionData,
    collate,
    open_region,
    padded_size,
)
from floodkd.distill.inference import StudentEnsemble
from floodkd.distill.loop import autocast, iso_times, pick_device
from floodkd.distill.student_training import STUDENT_FILE
from floodkd.errors import InputError
from floodkd.evaluate.baselines import bathtub, sar_otsu
from floodkd.evaluate.metrics import binary_scores, reliability_bins, uncertainty_error_auroc
from floodkd.grid import RegionGrid
from floodkd.models.checkpoint import load_checkpoint
from floodkd.models.teacher import RadarTeacher
from floodkd.settings import Settings, settings_from_config

__all__ = [
    "EvaluateConfig",
    "MODEL_NAMES",
    "SCORE_KEYS",
    "SUBSETS",
    "evaluate_region",
    "truth_times",
    "read_truth",
]

log = logging.getLogger(__name__)

MODEL_NAMES = ("teacher", "student_distilled", "student_labels_only", "student_no_ewc",
               "bathtub", "sar_otsu")
SCORE_KEYS = ("iou", "f1", "precision", "recall", "pixels")
# radar_passes: held-out passes (synthetic) or labelled test-tile passes (real); every model
# runs. no_radar_dates: no pass, so only the students and the bathtub can run.
SUBSETS = ("radar_passes", "no_radar_dates")
# the same scores on land only (DEM above 0 m): the open sea is easy water for every model
# and would otherwise dominate IoU
REPORTED_SUBSETS = SUBSETS + tuple(f"{subset}_land" for subset in SUBSETS)
RADAR_ONLY = {"teacher", "sar_otsu"}
STUDENT_VARIANTS = {"student_distilled": "distilled", "student_no_ewc": "no_ewc",
                    "student_labels_only": "labels_only"}
TRUTH_PATTERN = re.compile(r"inundation_(\d{8}T\d{6})\.tif$")


@dataclass(frozen=True)
class EvaluateConfig(Settings):
    """The ``evaluate`` block of the config."""

    mc_samples: int = 4  # MC-dropout draws per ensemble member (0: members only, no dropout)
    threshold: float = 0.5  # P(flood) above which a pixel counts as flooded
    truth_match_hours: float = 12.0  # a truth raster belongs to the cube time this close
    batch_size: int = 8


# ---------------------------------------------------------------- truth


def truth_times(paths: list[Path], cube_times: np.ndarray, tolerance_hours: float
                ) -> dict[int, Path]:
    """Cube time index -> truth raster ``*_<YYYYmmddTHHMMSS>.tif`` nearest in time."""
    found = {}
    cube_times = np.asarray(cube_times, dtype="datetime64[ns]")
    tolerance = np.timedelta64(int(tolerance_hours * 3600), "s")
    for path in sorted(paths):
        match = TRUTH_PATTERN.search(path.name)
        if not match:
            continue
        stamp = np.datetime64(
            f"{match[1][:4]}-{match[1][4:6]}-{match[1][6:8]}T"
            f"{match[1][9:11]}:{match[1][11:13]}:{match[1][13:15]}", "ns")
        gaps = np.abs(cube_times - stamp)
        nearest = int(np.argmin(gaps)) if gaps.size else -1
        if nearest >= 0 and gaps[nearest] <= tolerance:
            found[nearest] = path
    return found


def read_truth(path: Path, grid: RegionGrid) -> np.ndarray:
    """A 0/1 truth raster on the region grid (uint8, 255 where unknown); reprojected with
    nearest neighbour when its grid differs."""
    try:
        with rasterio.open(path) as src:
            same = (src.crs is not None and src.crs.to_wkt() == grid.crs.to_wkt()
                    and (src.height, src.width) == grid.shape
                    and src.transform.almost_equals(grid.transform))
            if same:
                truth = src.read(1)
            else:
                if src.crs is None:
                    raise InputError(path, "the truth raster has no CRS",
                                     "write it with the radar grid's CRS")
                truth = np.full(grid.shape, LABEL_NODATA, np.uint8)
                reproject(rasterio.band(src, 1), truth, dst_transform=grid.transform,
                          dst_crs=grid.crs.to_wkt(), dst_nodata=LABEL_NODATA,
                          resampling=Resampling.nearest)
    except rasterio.errors.RasterioIOError as error:
        raise InputError(path, f"cannot read the truth raster ({error})",
                         "rerun `floodkd demo`") from error
    return np.where(np.isin(truth, (0, 1)), truth, LABEL_NODATA).astype(np.uint8)


# ---------------------------------------------------------------- stitching


class Stitcher:
    """Averages per-tile maps onto the region grid where tiles overlap."""

    def __init__(self, shape: tuple[int, int]):
        self.shape = shape
        self.sums: dict[str, np.ndarray] = {}
        self.counts: dict[str, np.ndarray] = {}

    def add(self, name: str, window: torch.Tensor, values: np.ndarray) -> None:
        row, col, height, width = (int(v) for v in window)
        if name not in self.sums:
            self.sums[name] = np.zeros(self.shape, np.float64)
            self.counts[name] = np.zeros(self.shape, np.int32)
        self.sums[name][row:row + height, col:col + width] += values[:height, :width]
        self.counts[name][row:row + height, col:col + width] += 1

    def mean(self, name: str) -> np.ndarray:
        """The averaged map (NaN where no tile covered a pixel)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.counts[name] > 0, self.sums[name] / self.counts[name], np.nan)


def predict_time(region: RegionData, tile_positions: list[int], t: int, size: tuple[int, int],
                 teacher: RadarTeacher | None, ensembles: dict[str, StudentEnsemble],
                 settings: EvaluateConfig, device: torch.device) -> dict[str, np.ndarray]:
    """Stitched maps for one time: ``teacher`` P(flood) when radar is given, each student
    variant's mean calibrated P(flood), and ``uncalibrated`` and ``uncertainty`` (sample
    standard deviation) of the distilled ensemble."""
    dataset = CubeTileDataset(region.cube_path, region.tiles, [(p, t) for p in tile_positions],
                              size)
    stitcher = Stitcher((region.cube.sizes["y"], region.cube.sizes["x"]))
    for batch in DataLoader(dataset, batch_size=settings.batch_size, collate_fn=collate):
        if teacher is not None:
            with torch.no_grad(), autocast(device):
                logits, _ = teacher(batch["teacher_image"].to(device))
            teacher_prob = torch.softmax(logits.float(), 1)[:, 1].cpu().numpy()
        for name, ensemble in ensembles.items():
            # only the distilled ensemble's spread is scored; the others need no MC draws
            draws = settings.mc_samples if name == "student_distilled" else 0
            logits = ensemble.sample_logits(batch, draws)
            samples = ensemble.calibrated(logits)
            for i, window in enumerate(batch["window"]):
                stitcher.add(name, window, samples[:, i].mean(0))
                if name == "student_distilled":
                    stitcher.add("uncertainty", window, samples[:, i].std(0))
                    stitcher.add("uncalibrated", window,
                                 ensemble.calibrated(logits, 1.0)[:, i].mean(0))
        for i, window in enumerate(batch["window"]):
            if teacher is not None:
                stitcher.add("teacher", window, teacher_prob[i])
    return {name: stitcher.mean(name) for name in stitcher.sums}


# ---------------------------------------------------------------- scoring


def _scores(pred: list[np.ndarray], truth: list[np.ndarray]) -> dict[str, float | int]:
    if not pred:
        pred, truth = [np.zeros(0, bool)], [np.zeros(0, bool)]
    p, t = np.concatenate(pred), np.concatenate(truth)
    scores = binary_scores(p, t, np.ones_like(p))
    return {key: _finite_or_none(scores[key]) for key in SCORE_KEYS}


def _finite_or_none(value: float | int) -> float | int | None:
    """JSON has no NaN: an undefined score (no water anywhere) is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def evaluate_region(config: dict[str, Any], region_name: str, teacher_path: str | Path,
                    student_dir: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Evaluate all models of one region; write ``out_dir/metrics.json``, ``metrics.md`` and
    ``metrics_by_subset.json``. Returns the ``metrics.json`` document."""
    out_dir, student_dir = Path(out_dir), Path(student_dir)
    settings = settings_from_config(EvaluateConfig, config, "evaluate")
    region_cfg = region_config(config, region_name)
    region = open_region(config.get("results_dir", "results"), region_name,
                         ["vv_db", "radar_present", "water_level_m", *TERRAIN_VARIABLES])
    student_doc = json.loads((student_dir / STUDENT_FILE).read_text()) if (
        student_dir / STUDENT_FILE).is_file() else None
    if student_doc is None:
        raise InputError(student_dir / STUDENT_FILE, "the student description does not exist",
                         "run `floodkd distill` for this region first")
    device = pick_device((config.get("training") or {}).get("device", "auto"))
    teacher, _ = load_checkpoint(RadarTeacher, teacher_path)
    teacher.to(device).eval()
    ensembles = {name: StudentEnsemble.load(student_dir, variant, device)
                 for name, variant in STUDENT_VARIANTS.items()}
    cube, times = region.cube, region.cube["time"].values
    radar = cube["radar_present"].values.astype(bool)
    held = np.isin(times.astype("datetime64[s]"),  # stored to the second
                   np.array(student_doc["holdout_times"], dtype="datetime64[s]"))
    elevation = cube["elevation_m"].values
    sea = sea_mask(elevation)

    truth_glob = region_cfg.get("truth")
    truth_paths = [Path(p) for p in glob.glob(truth_glob)] if truth_glob else []
    truth_files = truth_times(truth_paths, times, settings.truth_match_hours)
    if truth_files:
        grid = RegionGrid.from_dataset(cube)
        truth_source = f"truth rasters matching {truth_glob}"
        tile_positions = list(range(len(region.tiles)))
        plan = {"radar_passes": [t for t in sorted(truth_files) if radar[t] and held[t]],
                # dates without radar also only from the held-out period: earlier dates share
                # floods (and neighbouring pixels) with the labels the students were taught
                "no_radar_dates": [t for t in sorted(truth_files) if not radar[t] and held[t]]}
    else:
        truth_source = "held-out labels of the test-split tiles"
        tile_positions = list(np.flatnonzero(region.tiles["split"].to_numpy() == "test"))
        labelled = _test_label_times(region, tile_positions)
        plan = {"radar_passes": [t for t in labelled if radar[t]],
                "no_radar_dates": [t for t in labelled if not radar[t]]}
    if not plan["radar_passes"] and not plan["no_radar_dates"]:
        raise InputError(region.cube_path, f"nothing to evaluate against ({truth_source}: no "
                         "matching time)", "keep some labelled test tiles or truth rasters")
    multiple = math.lcm(teacher.config.patch_size,
                        2 ** ensembles["student_distilled"].members[0].config.depth)
    size = padded_size([region.tiles], multiple)
    cover = np.zeros(elevation.shape, bool)
    for p in tile_positions:
        tile = region.tiles.iloc[p]
        cover[tile.row_off:tile.row_off + tile.height, tile.col_off:tile.col_off + tile.width] = 1

    pred: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    truth_px: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    calibration: dict[str, list] = defaultdict(list)
    for subset, subset_times in plan.items():
        for t in subset_times:
            label = cube["label"].isel(time=t).values if "label" in cube else None
            if truth_files:
                truth = read_truth(truth_files[t], grid)
                scored = cover & (truth != LABEL_NODATA)  # tiles may leave gaps in the grid
                if subset == "no_radar_dates" and label is not None:
                    scored &= label == LABEL_NODATA  # not a pixel the student was taught
            else:
                truth = label
                scored = cover & (truth != LABEL_NODATA)
            maps = predict_time(region, tile_positions, t, size, teacher if radar[t] else None,
                                ensembles, settings, device)
            level = cube["water_level_m"].isel(time=t).values
            if np.isfinite(level).any():
                maps["bathtub"] = bathtub(elevation, level, sea).astype(np.float64)
                maps["bathtub"][~np.isfinite(elevation) | ~np.isfinite(level)] = np.nan
            if radar[t]:  # radar models are not scored where the pass has no data
                vv = cube["vv_db"].isel(time=t).values
                maps["teacher"][~np.isfinite(vv)] = np.nan
                if np.isfinite(vv).any():
                    maps["sar_otsu"] = sar_otsu(vv).astype(np.float64)
                    maps["sar_otsu"][~np.isfinite(vv)] = np.nan
            is_water = truth == 1
            for name in MODEL_NAMES:
                if name not in maps:
                    continue
                ok = scored & np.isfinite(maps[name])
                pred[name][subset].append(maps[name][ok] > settings.threshold)
                truth_px[name][subset].append(is_water[ok])
                land = ok & ~sea
                pred[name][f"{subset}_land"].append(maps[name][land] > settings.threshold)
                truth_px[name][f"{subset}_land"].append(is_water[land])
            ok = scored & np.isfinite(maps["student_distilled"])
            calibration["after"].append(maps["student_distilled"][ok])
            calibration["before"].append(maps["uncalibrated"][ok])
            calibration["uncertainty"].append(maps["uncertainty"][ok])
            calibration["truth"].append(truth[ok])
            log.info("evaluated %s time %s (%s)", subset, times[t], sorted(maps))

    by_subset = {subset: {name: _scores(pred[name][subset], truth_px[name][subset])
                          for name in MODEL_NAMES if name not in RADAR_ONLY or
                          subset.startswith("radar_passes")}
                 for subset in REPORTED_SUBSETS}
    after = np.concatenate(calibration["after"])
    truth_all = np.concatenate(calibration["truth"])
    wrong = (after > settings.threshold) != (truth_all == 1)
    metrics: dict[str, Any] = {
        name: _scores([p for s in SUBSETS for p in pred[name][s]],
                      [x for s in SUBSETS for x in truth_px[name][s]])
        for name in MODEL_NAMES}
    metrics["label_fraction"] = label_fraction(region)
    metrics["ece"] = {
        "before_calibration": _finite_or_none(
            expected_calibration_error(np.concatenate(calibration["before"]), truth_all)),
        "after_calibration": _finite_or_none(expected_calibration_error(after, truth_all)),
    }
    metrics["uncertainty_error_auroc"] = _finite_or_none(
        uncertainty_error_auroc(np.concatenate(calibration["uncertainty"]), wrong))
    details = {"region": region_name, "truth": truth_source, "subsets": by_subset,
               "times": {s: iso_times(times[plan[s]]) for s in SUBSETS},
               "temperature": student_doc["temperature"], "settings": asdict(settings),
               # the data of the report's reliability diagram (distilled student)
               "reliability": {
                   "before_calibration": reliability_bins(np.concatenate(calibration["before"]),
                                                          truth_all == 1),
                   "after_calibration": reliability_bins(after, truth_all == 1)}}
    _write(out_dir, metrics, details)
    return metrics


def _test_label_times(region: RegionData, tile_positions: list[int]) -> list[int]:
    if "label" not in region.cube or not tile_positions:
        return []
    labelled = np.zeros(region.cube.sizes["time"], bool)
    for p in tile_positions:
        tile = region.tiles.iloc[p]
        window = region.cube["label"].isel(y=slice(tile.row_off, tile.row_off + tile.height),
                                           x=slice(tile.col_off, tile.col_off + tile.width))
        labelled |= (window != LABEL_NODATA).any(("y", "x")).values
    return list(np.flatnonzero(labelled))


def label_fraction(region: RegionData) -> float:
    """Share of the region's pixels (finite elevation) labelled at some time."""
    land = np.isfinite(region.cube["elevation_m"].values)
    if "label" not in region.cube or not land.any():
        return 0.0
    ever = (region.cube["label"] != LABEL_NODATA).any("time").values
    return float((ever & land).sum() / land.sum())


def _write(out_dir: Path, metrics: dict[str, Any], details: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "metrics_by_subset.json") as tmp:
        tmp.write_text(json.dumps(details, indent=2) + "\n")
    with atomic_path(out_dir / "metrics.md") as tmp:
        tmp.write_text(metrics_markdown(metrics, details))
    with atomic_path(out_dir / "metrics.json") as tmp:  # last: the rule's main output
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def metrics_markdown(metrics: dict[str, Any], details: dict[str, Any]) -> str:
    """A short Markdown report: one row per model, pooled and per-subset IoU."""
    subsets = details["subsets"]
    lines = [f"# Evaluation: {details['region']}", "",
             f"Truth: {details['truth']}. Flooded means P(flood) > "
             f"{details['settings']['threshold']}.", "",
             "| model | IoU | F1 | precision | recall | pixels | "
             + " | ".join(f"IoU {s.replace('_', ' ')}" for s in REPORTED_SUBSETS) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(REPORTED_SUBSETS)]
    for name in MODEL_NAMES:
        row = metrics[name]
        per_subset = [_fmt(subsets[s][name]["iou"]) if name in subsets[s] else "n/a"
                      for s in REPORTED_SUBSETS]
        lines.append(f"| {name} | " + " | ".join(_fmt(row[k]) for k in SCORE_KEYS) + " | "
                     + " | ".join(per_subset) + " |")
    ece = metrics["ece"]
    lines += ["", f"- label fraction: {_fmt(metrics['label_fraction'])}",
              f"- ECE before / after calibration (T = {details['temperature']:.3f}): "
              f"{_fmt(ece['before_calibration'])} / {_fmt(ece['after_calibration'])}",
              f"- uncertainty-error AUROC: {_fmt(metrics['uncertainty_error_auroc'])}", ""]
    return "\n".join(lines)
