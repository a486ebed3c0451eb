"""Score the teacher, the student variants and the baselines against truth for one region.

Truth is, on a synthetic (demo) region whose truth rasters exist, the simulated inundation on
the held-out radar passes and on dates without a radar pass; on a real region, the labels of
the test-split tiles. Models predict whole tiles, stitched onto the region grid (overlaps
averaged), so the connectivity-based bathtub and the tiled models score the same pixels.

Every score comes twice: for all water, and as ``flood_iou`` for flood alone, water outside
the region's reference (permanent) water (``floodkd reference-water``), as the Copernicus
Global Flood Monitoring service reports flood. The held-out date(s) of the highest water
level at the gauges are scored again as ``extreme_event``, and ``monotone_in_water_level``
measures that the distilled student's probability never falls as the level rises
(``floodkd.evaluate.monotone``). Identical inputs and weights give identical numbers: MC
dropout is seeded per date.

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
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio
import torch
from rasterio.warp import Resampling, reproject

from floodkd.align.terrain import sea_mask
from floodkd.atomic import atomic_path
from floodkd.config import region_config
from floodkd.distill.calibration import Calibration, expected_calibration_error
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
from floodkd.evaluate.metrics import (
    binary_scores,
    flood_scores,
    reliability_bins,
    uncertainty_error_auroc,
)
from floodkd.evaluate.monotone import level_sweep, monotone_fraction, sweep_levels
from floodkd.evaluate.teacher_passes import read_teacher_pass, teacher_pass_bands
from floodkd.grid import RegionGrid
from floodkd.predict.uncertainty import (
    MOMENT_NAMES,
    UNCERTAINTY_BANDS,
    statistics_from_moments,
    tile_moments,
)
from floodkd.reference.water import REFERENCE, read_reference_raster
from floodkd.settings import Settings, settings_from_config

if TYPE_CHECKING:
    from floodkd.models.teacher import RadarTeacher

__all__ = [
    "EvaluateConfig",
    "EvaluationPlan",
    "MODEL_NAMES",
    "SCORE_KEYS",
    "SUBSETS",
    "evaluate_region",
    "evaluation_plan",
    "truth_times",
    "read_truth",
    "gauge_levels",
    "extreme_event_times",
]

log = logging.getLogger(__name__)

MODEL_NAMES = ("teacher", "student_distilled", "student_labels_only", "student_no_ewc",
               "bathtub", "sar_otsu")
SCORE_KEYS = ("iou", "flood_iou", "f1", "precision", "recall", "pixels")
EXTREME_KEYS = ("iou", "flood_iou", "pixels")
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
# the distilled ensemble's uncertainty bands, as the maps carry them; each is scored as a
# detector of wrong pixels. The headline is the predictive (total) entropy: errors gather
# where P is near the threshold (aleatoric) as well as where members disagree (epistemic).
UNCERTAINTY_MEASURES = tuple(band.name for band in UNCERTAINTY_BANDS)
HEADLINE_UNCERTAINTY = "entropy"


@dataclass(frozen=True)
class EvaluateConfig(Settings):
    """The ``evaluate`` block of the config."""

    mc_samples: int = 4  # MC-dropout draws per ensemble member (0: members only, no dropout)
    threshold: float = 0.5  # P(flood) above which a pixel counts as flooded
    truth_match_hours: float = 12.0  # a truth raster belongs to the cube time this close
    batch_size: int = 8
    monotone_steps: int = 21  # water levels of the monotonicity sweep
    monotone_headroom_m: float = 1.0  # the sweep ends this far above the highest level seen


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
                              size, student=bool(ensembles), waterline=region.waterline)
    stitcher = Stitcher((region.cube.sizes["y"], region.cube.sizes["x"]))
    for batch in chunk_ordered_batches(dataset, settings.batch_size):
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
                    for moment, values in zip(MOMENT_NAMES, tile_moments(samples[:, i]),
                                              strict=True):
                        stitcher.add(moment, window, values)
                    stitcher.add("uncalibrated", window,
                                 ensemble.calibrated(logits, Calibration())[:, i].mean(0))
        for i, window in enumerate(batch["window"]):
            if teacher is not None:
                stitcher.add("teacher", window, teacher_prob[i])
    maps = {name: stitcher.mean(name) for name in stitcher.sums if name not in MOMENT_NAMES}
    if "student_distilled" in ensembles:  # the product's uncertainty bands, as predict blends
        spread = statistics_from_moments(np.stack([stitcher.mean(m) for m in MOMENT_NAMES]))
        maps |= {"std": spread.std, "entropy": spread.entropy_nats,
                 "mutual_information": spread.mutual_information_nats}
    return maps


def chunk_ordered_batches(dataset: CubeTileDataset, batch_size: int
                          ) -> Iterator[dict[str, torch.Tensor]]:
    """The dataset's samples in batches, read chunk by chunk of the cube (``chunk_ordered``:
    a window read alone decompresses its whole chunk, one per tile of a time)."""
    samples = []
    for _, sample in dataset.chunk_ordered():
        samples.append(sample)
        if len(samples) == batch_size:
            yield collate(samples)
            samples = []
    if samples:
        yield collate(samples)


# ---------------------------------------------------------------- scoring


@dataclass
class Scored:
    """One model's scored pixels at one time: its prediction and the truth (water), whether
    each is reference water and whether it is land (outside the sea). Kept as bits
    (``np.packbits``), an eighth of four bool arrays: evaluation keeps one per model and
    time until it pools them."""

    bits: np.ndarray  # (4, ceil(pixels / 8)) uint8: pred, truth, reference, land
    pixels: int

    @classmethod
    def of(cls, pred: np.ndarray, truth: np.ndarray, reference: np.ndarray,
           land: np.ndarray) -> Scored:
        return cls(np.packbits(np.stack([pred, truth, reference, land]), axis=1), pred.size)

    def unpacked(self) -> np.ndarray:
        """(4, pixels) bool: pred, truth, reference, land."""
        return np.unpackbits(self.bits, axis=1, count=self.pixels).astype(bool)


def _scores(entries: list[Scored], land_only: bool = False,
            with_reference: bool = True) -> dict[str, float | int | None]:
    """SCORE_KEYS over the pooled pixels of ``entries``; ``flood_iou`` is None without a
    reference water layer."""
    if not entries:
        entries = [Scored.of(*(np.zeros(0, bool),) * 4)]
    pred, truth, reference, land = np.concatenate([e.unpacked() for e in entries], axis=1)
    valid = land if land_only else np.ones_like(pred)
    scores = binary_scores(pred, truth, valid)
    scores["flood_iou"] = (flood_scores(pred, truth, reference, valid)["iou"] if with_reference
                           else float("nan"))
    return {key: _finite_or_none(scores[key]) for key in SCORE_KEYS}


def _finite_or_none(value: float | int) -> float | int | None:
    """JSON has no NaN: an undefined score (no water anywhere) is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def gauge_levels(cube: Any) -> np.ndarray:
    """(time,) the highest water level of the cube's gauges at each time (the last hour of
    ``gauge_history_m``), NaN where no gauge has a value or the cube has no gauges."""
    if "gauge_history_m" not in cube or cube.sizes.get("gauge", 0) == 0:
        return np.full(cube.sizes["time"], np.nan)
    current = cube["gauge_history_m"].isel(lag=-1).values.astype(np.float64)  # (time, gauge)
    with np.errstate(invalid="ignore"):
        return np.fmax.reduce(current, axis=1)


def extreme_event_times(levels_m: np.ndarray, candidates: list[int]) -> list[int]:
    """The candidate time indices at the highest finite water level (ties all kept); none
    when no candidate has a level."""
    known = [t for t in candidates if np.isfinite(levels_m[t])]
    if not known:
        return []
    top = max(levels_m[t] for t in known)
    return sorted(t for t in known if levels_m[t] == top)


@dataclass(frozen=True)
class EvaluationPlan:
    """What a region is scored on: the time indices of each subset, the tiles, the truth."""

    times: dict[str, list[int]]  # subset (SUBSETS) -> cube time indices
    tile_positions: list[int]
    truth_files: dict[int, Path]  # time index -> truth raster; empty: the test tiles' labels
    truth_source: str


def evaluation_plan(config: dict[str, Any], region_name: str, region: RegionData,
                    held: np.ndarray, settings: EvaluateConfig) -> EvaluationPlan:
    """On a region with truth rasters (``regions.<name>.truth``), its held-out times that
    have one, over all tiles; else the times with labels in its test-split tiles, over those
    tiles. ``held`` (time,) marks the held-out period."""
    times = region.cube["time"].values
    radar = region.cube["radar_present"].values.astype(bool)
    truth_glob = region_config(config, region_name).get("truth")
    truth_paths = [Path(p) for p in glob.glob(truth_glob)] if truth_glob else []
    truth_files = truth_times(truth_paths, times, settings.truth_match_hours)
    if truth_files:
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
    return EvaluationPlan(plan, tile_positions, truth_files, truth_source)


def evaluate_region(config: dict[str, Any], region_name: str, teacher_passes: str | Path,
                    student_dir: str | Path, out_dir: str | Path,
                    reference_water: str | Path | None = None) -> dict[str, Any]:
    """Evaluate all models of one region; write ``out_dir/metrics.json``, ``metrics.md`` and
    ``metrics_by_subset.json``. ``teacher_passes`` is the teacher's map of each radar pass
    scored (``floodkd teacher-passes``), ``reference_water`` the region's reference water
    COG (without it ``flood_iou`` is null). Returns the ``metrics.json`` document."""
    out_dir, student_dir = Path(out_dir), Path(student_dir)
    settings = settings_from_config(EvaluateConfig, config, "evaluate")
    region = open_region(config.get("results_dir", "results"), region_name,
                         ["vv_db", "radar_present", "water_level_m", *TERRAIN_VARIABLES])
    student_doc = json.loads((student_dir / STUDENT_FILE).read_text()) if (
        student_dir / STUDENT_FILE).is_file() else None
    if student_doc is None:
        raise InputError(student_dir / STUDENT_FILE, "the student description does not exist",
                         "run `floodkd distill` for this region first")
    device = pick_device((config.get("training") or {}).get("device", "auto"))
    ensembles = {name: StudentEnsemble.load(student_dir, variant, device)
                 for name, variant in STUDENT_VARIANTS.items()}
    cube, times = region.cube, region.cube["time"].values
    radar = cube["radar_present"].values.astype(bool)
    held = np.isin(times.astype("datetime64[s]"),  # stored to the second
                   np.array(student_doc["holdout_times"], dtype="datetime64[s]"))
    elevation = cube["elevation_m"].values
    sea = sea_mask(elevation)
    grid = RegionGrid.from_dataset(cube)
    permanent = (np.zeros(elevation.shape, bool) if reference_water is None
                 else read_reference_raster(reference_water, grid) == REFERENCE)

    plan = evaluation_plan(config, region_name, region, held, settings)
    pass_bands = teacher_pass_bands(teacher_passes, grid, dict(zip(
        plan.times["radar_passes"], iso_times(times[plan.times["radar_passes"]]), strict=True)))
    multiple = 2 ** ensembles["student_distilled"].members[0].config.depth
    size = padded_size([region.tiles], multiple)
    tile_positions, truth_files = plan.tile_positions, plan.truth_files
    cover = np.zeros(elevation.shape, bool)
    for p in tile_positions:
        tile = region.tiles.iloc[p]
        cover[tile.row_off:tile.row_off + tile.height, tile.col_off:tile.col_off + tile.width] = 1

    scored: dict[str, dict[int, Scored]] = defaultdict(dict)
    calibration: dict[str, list] = defaultdict(list)
    for subset, subset_times in plan.times.items():
        for t in subset_times:
            label = cube["label"].isel(time=t).values if "label" in cube else None
            if truth_files:
                truth = read_truth(truth_files[t], grid)
                scored_px = cover & (truth != LABEL_NODATA)  # tiles may leave gaps in the grid
                if subset == "no_radar_dates" and label is not None:
                    scored_px &= label == LABEL_NODATA  # not a pixel the student was taught
            else:
                truth = label
                scored_px = cover & (truth != LABEL_NODATA)
            torch.manual_seed(t)  # the same MC-dropout draws on every run
            maps = predict_time(region, tile_positions, t, size, None, ensembles, settings,
                                device)
            level = cube["water_level_m"].isel(time=t).values
            if np.isfinite(level).any():
                maps["bathtub"] = bathtub(elevation, level, sea).astype(np.float64)
                maps["bathtub"][~np.isfinite(elevation) | ~np.isfinite(level)] = np.nan
            if radar[t]:  # radar models are not scored where the pass has no data
                vv = cube["vv_db"].isel(time=t).values
                maps["teacher"] = read_teacher_pass(teacher_passes, pass_bands[t])
                if np.isfinite(vv).any():
                    maps["sar_otsu"] = sar_otsu(vv).astype(np.float64)
                    maps["sar_otsu"][~np.isfinite(vv)] = np.nan
            is_water = truth == 1
            for name in MODEL_NAMES:
                if name in maps:
                    ok = scored_px & np.isfinite(maps[name])
                    scored[name][t] = Scored.of(maps[name][ok] > settings.threshold,
                                                is_water[ok], permanent[ok], ~sea[ok])
            # kept for the whole-set calibration and AUROC scores: float32 and bool, half
            # the memory of the float64 maps, as these grow with area times dates
            ok = scored_px & np.isfinite(maps["student_distilled"])
            for key, name in (("after", "student_distilled"), ("before", "uncalibrated"),
                              *((m, m) for m in UNCERTAINTY_MEASURES)):
                calibration[key].append(maps[name][ok].astype(np.float32))
            calibration["truth"].append(is_water[ok])
            log.info("evaluated %s time %s (%s)", subset, times[t], sorted(maps))

    with_reference = reference_water is not None

    def scores(name: str, at: list[int], land_only: bool = False) -> dict[str, Any]:
        return _scores([scored[name][t] for t in at if t in scored[name]], land_only,
                       with_reference)

    by_subset = {subset: {name: scores(name, plan.times[subset.removesuffix("_land")],
                                       subset.endswith("_land"))
                          for name in MODEL_NAMES if name not in RADAR_ONLY or
                          subset.startswith("radar_passes")}
                 for subset in REPORTED_SUBSETS}
    evaluated = sorted(t for subset in SUBSETS for t in plan.times[subset])
    levels = gauge_levels(cube)
    extreme = extreme_event_times(levels, evaluated)
    after = np.concatenate(calibration["after"])
    truth_all = np.concatenate(calibration["truth"])
    wrong = (after > settings.threshold) != truth_all
    metrics: dict[str, Any] = {name: scores(name, evaluated) for name in MODEL_NAMES}
    metrics["label_fraction"] = label_fraction(region)
    metrics["ece"] = {
        "before_calibration": _finite_or_none(
            expected_calibration_error(np.concatenate(calibration["before"]), truth_all)),
        "after_calibration": _finite_or_none(expected_calibration_error(after, truth_all)),
    }
    auroc = {measure: _finite_or_none(uncertainty_error_auroc(
        np.concatenate(calibration[measure]), wrong)) for measure in UNCERTAINTY_MEASURES}
    metrics["uncertainty_error_auroc"] = auroc[HEADLINE_UNCERTAINTY]
    metrics["extreme_event"] = {
        "dates": iso_times(times[extreme]),
        "models": {name: {key: value for key, value in scores(name, extreme).items()
                          if key in EXTREME_KEYS}
                   for name in MODEL_NAMES if any(t in scored[name] for t in extreme)}}
    sweep = sweep_levels(cube["gauge_history_m"].values if "gauge_history_m" in cube else [],
                         settings.monotone_headroom_m, settings.monotone_steps)
    metrics["monotone_in_water_level"] = None if sweep is None or not extreme else (
        _monotone(region, tile_positions, extreme, ensembles["student_distilled"], sweep,
                  multiple))
    details = {"region": region_name, "truth": plan.truth_source, "subsets": by_subset,
               "times": {s: iso_times(times[plan.times[s]]) for s in SUBSETS},
               "reference_water": str(reference_water) if with_reference else None,
               "extreme_event": {"dates": iso_times(times[extreme]),
                                 "gauge_level_m": [float(levels[t]) for t in extreme],
                                 "record_max_gauge_level_m": _finite_or_none(
                                     float(np.nanmax(levels)) if np.isfinite(levels).any()
                                     else float("nan"))},
               "monotone_sweep_m": None if sweep is None else [float(v) for v in sweep],
               "uncertainty_error_auroc": auroc,
               "temperature": student_doc["temperature"],
               "water_bias": student_doc.get("water_bias", 0.0), "settings": asdict(settings),
               # the data of the report's reliability diagram (distilled student)
               "reliability": {
                   "before_calibration": reliability_bins(np.concatenate(calibration["before"]),
                                                          truth_all),
                   "after_calibration": reliability_bins(after, truth_all)}}
    _write(out_dir, metrics, details)
    return metrics


def _monotone(region: RegionData, tile_positions: list[int], at: list[int],
              ensemble: StudentEnsemble, levels: np.ndarray, multiple: int) -> float | None:
    """monotone_fraction of the distilled student swept over ``levels`` at the times ``at``,
    over the evaluated tiles: a pixel counts as monotone when it is at every one of them."""
    windows = [tuple(int(v) for v in region.tiles.iloc[p][["row_off", "col_off", "height",
                                                            "width"]]) for p in tile_positions]
    sweeps = chain.from_iterable(level_sweep(region.cube_path, t, windows, ensemble, levels,
                                             multiple) for t in at)
    return monotone_fraction(sweeps, (region.cube.sizes["y"], region.cube.sizes["x"]))


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
    if details.get("reliability"):
        from floodkd.report.figures import reliability_diagram  # matplotlib only when needed

        reliability_diagram(details["reliability"], out_dir / "reliability.png",
                            f"{details['region']}: distilled student, held-out evaluation truth")
    with atomic_path(out_dir / "metrics.json") as tmp:  # last: the rule's main output
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")


def _sweep_text(levels: list[float] | None) -> str:
    if not levels:
        return "no gauge level observed"
    return f"{levels[0]:.2f} .. {levels[-1]:.2f} m in {len(levels)} steps"


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def metrics_markdown(metrics: dict[str, Any], details: dict[str, Any]) -> str:
    """A short Markdown report: one row per model, pooled and per-subset IoU, then the
    extreme event, calibration and monotonicity."""
    subsets = details["subsets"]
    reference = details["reference_water"] or "none given: flood IoU n/a"
    lines = [f"# Evaluation: {details['region']}", "",
             f"Truth: {details['truth']}. Flooded means P(flood) > "
             f"{details['settings']['threshold']}. Flood IoU: water outside the reference "
             f"(permanent) water ({reference}).", "",
             "| model | IoU | flood IoU | F1 | precision | recall | pixels | "
             + " | ".join(f"IoU {s.replace('_', ' ')}" for s in REPORTED_SUBSETS) + " |",
             "|---|---|---|---|---|---|---|" + "---|" * len(REPORTED_SUBSETS)]
    for name in MODEL_NAMES:
        row = metrics[name]
        per_subset = [_fmt(subsets[s][name]["iou"]) if name in subsets[s] else "n/a"
                      for s in REPORTED_SUBSETS]
        lines.append(f"| {name} | " + " | ".join(_fmt(row[k]) for k in SCORE_KEYS) + " | "
                     + " | ".join(per_subset) + " |")
    extreme = metrics["extreme_event"]
    levels = ", ".join(_fmt(level) for level in details["extreme_event"]["gauge_level_m"])
    lines += ["", f"Extreme event (held-out date(s) of the highest gauge level, "
              f"{levels or 'n/a'} m; record maximum "
              f"{_fmt(details['extreme_event']['record_max_gauge_level_m'])} m): "
              f"{', '.join(extreme['dates']) or 'none'}", "",
              "| model | IoU | flood IoU | pixels |", "|---|---|---|---|"]
    lines += [f"| {name} | " + " | ".join(_fmt(row[k]) for k in EXTREME_KEYS) + " |"
              for name, row in extreme["models"].items()]
    ece = metrics["ece"]
    lines += ["", f"- label fraction: {_fmt(metrics['label_fraction'])}",
              f"- ECE before / after calibration (T = {details['temperature']:.3f}, "
              f"b = {details['water_bias']:.3f}): "
              f"{_fmt(ece['before_calibration'])} / {_fmt(ece['after_calibration'])}",
              f"- uncertainty-error AUROC, {HEADLINE_UNCERTAINTY}: "
              f"{_fmt(metrics['uncertainty_error_auroc'])} ("
              + ", ".join(f"{measure} {_fmt(value)}" for measure, value
                          in details.get("uncertainty_error_auroc", {}).items()) + ")",
              "- share of pixels whose distilled P(flood) never falls as the water level rises "
              f"(swept over {_sweep_text(details['monotone_sweep_m'])}): "
              f"{_fmt(metrics['monotone_in_water_level'])}", ""]
    return "\n".join(lines)
