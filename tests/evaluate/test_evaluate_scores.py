"""metrics.json end to end on hand-counted pixels: untrained models (seconds, no training),
the bathtub scored against truth with unknown pixels (255) and known misses and false alarms,
and flood (water outside a hand-made reference water layer). The toy truth is the bathtub
model itself, so every change made here is a known count."""

from __future__ import annotations

import json

import numpy as np
import pytest
from affine import Affine
from odc.geo.geobox import GeoBox

from floodkd.config import validate_config
from floodkd.distill.loop import iso_times
from floodkd.evaluate import evaluate as evaluate_module
from floodkd.evaluate.evaluate import EXTREME_KEYS, evaluate_region
from floodkd.evaluate.teacher_passes_cli import map_teacher_passes
from floodkd.grid import RegionGrid
from floodkd.reference.cli import write_reference_water
from floodkd.reference.water import REFERENCE, UNKNOWN
from tests.distill import conftest as cube_helpers
from tests.distill.untrained import TINY_STUDENT, TINY_TEACHER, write_student_dir, write_teacher

HELD_OUT = [5, 6, 7]  # radar passes 5 and 6; 7 has no radar pass
PIXELS = cube_helpers.SIZE_PX ** 2
LAND_COLUMNS = 33  # elevation -2 + 0.14 col > 0 m from column 15 on
# per held-out time: unknown at sea (water in the bathtub) and on high dry land
UNKNOWN_SEA = (slice(0, 4), slice(0, 4))  # 16 px
UNKNOWN_LAND = (slice(10, 13), slice(44, 47))  # 9 px
MISSED = (20, slice(40, 45))  # 5 px of high land marked flooded: false negatives
FALSE_ALARM = (25, slice(20, 22))  # 2 px below the level, marked dry: false positives
REFERENCE_COLUMNS = 17  # reference water: the sea (15 columns) and a 2-column channel
UNKNOWN_REFERENCE = (45, 16)  # in the channel, but unknown (255): counts as flood


@pytest.fixture(scope="module")
def evaluate_inputs(tmp_path_factory):
    """The toy target, its hand-set truth and reference water, the teacher's maps of its
    passes and a student: (truth, config, teacher passes, student, reference water path,
    folder)."""
    tmp_path = tmp_path_factory.mktemp("evaluate")
    results = tmp_path / "results"
    region = cube_helpers.write_region(results, "tgt", seed=3)
    truth = region.truth.copy()
    assert truth[HELD_OUT][(slice(None), *UNKNOWN_SEA)].all()  # what the counts rest on
    assert not truth[HELD_OUT][(slice(None), *UNKNOWN_LAND)].any()
    assert not truth[HELD_OUT][(slice(None), *MISSED)].any()
    assert truth[HELD_OUT][(slice(None), *FALSE_ALARM)].all()
    for t in HELD_OUT:
        truth[t][UNKNOWN_SEA] = truth[t][UNKNOWN_LAND] = 255
        truth[t][MISSED], truth[t][FALSE_ALARM] = 1, 0
    cube_helpers.write_truth(truth, region.truth_dir)
    area = {"bbox": [0, 0, 1, 1], "synthetic": True,
            "inputs": {"sar": {"glob": "s1/*.tif"}, "terrain": {"glob": "dem/*.tif"}}}
    config = validate_config({
        "results_dir": str(results),
        "regions": {"src": {**area, "role": "source"},
                    "tgt": {**area, "role": "target", "truth": f"{region.truth_dir}/*.tif"}},
        "models": {"teacher": TINY_TEACHER, "student": TINY_STUDENT},
        "evaluate": {"mc_samples": 2},
    })
    teacher = tmp_path / "teacher_passes.tif"
    map_teacher_passes(config, "tgt", write_teacher(tmp_path / "teacher.safetensors"), teacher)
    student = write_student_dir(tmp_path / "student", 0.5,
                                iso_times(cube_helpers.TIMES[HELD_OUT]))
    reference = np.zeros((cube_helpers.SIZE_PX,) * 2, np.uint8)
    reference[:, :REFERENCE_COLUMNS] = REFERENCE
    reference[UNKNOWN_REFERENCE] = UNKNOWN
    grid = RegionGrid(GeoBox(reference.shape, Affine(cube_helpers.RES_M, 0, cube_helpers.ORIGIN[0],
                                                     0, -cube_helpers.RES_M,
                                                     cube_helpers.ORIGIN[1]), cube_helpers.CRS))
    reference_path = write_reference_water(tmp_path / "reference_water.tif", reference, grid, {})
    return region.truth, config, teacher, student, reference_path, tmp_path


@pytest.fixture(scope="module")
def evaluated(evaluate_inputs):
    truth, config, teacher, student, reference_path, tmp_path = evaluate_inputs
    outputs = []
    for run in ("eval", "again"):  # twice: identical inputs must give identical files
        metrics = evaluate_region(config, "tgt", teacher, student, tmp_path / run, reference_path)
        outputs.append({name: (tmp_path / run / name).read_bytes()
                        for name in ("metrics.json", "metrics_by_subset.json", "metrics.md")})
    details = json.loads((tmp_path / "eval" / "metrics_by_subset.json").read_text())
    return truth, metrics, details, outputs


def _flood_iou(truth: np.ndarray, times: list[int]) -> float:
    """The bathtub's flood IoU by hand: water east of the reference water, and the one
    pixel whose reference is unknown; the misses and false alarms all lie east of it."""
    water = int(truth[times][:, :, REFERENCE_COLUMNS:].sum())
    water += int(truth[times][(slice(None), *UNKNOWN_REFERENCE)].sum())
    tp = water - 2 * len(times)
    fp, fn = 2 * len(times), 5 * len(times)
    return tp / (tp + fp + fn)


def _expected(truth: np.ndarray, times: list[int], land_only: bool) -> dict[str, float]:
    """Bathtub scores by hand: the unchanged toy truth is the bathtub's prediction."""
    columns = slice(cube_helpers.SIZE_PX - LAND_COLUMNS, None) if land_only else slice(None)
    water = int(truth[times][:, :, columns].sum())
    unknown_water = 0 if land_only else 16
    tp = water - len(times) * (unknown_water + 2)
    fp, fn = 2 * len(times), 5 * len(times)
    unknown = len(times) * (9 + unknown_water)
    pixels = len(times) * cube_helpers.SIZE_PX * (LAND_COLUMNS if land_only else
                                                  cube_helpers.SIZE_PX) - unknown
    return {"iou": tp / (tp + fp + fn), "f1": 2 * tp / (2 * tp + fp + fn),
            "precision": tp / (tp + fp), "recall": tp / (tp + fn), "pixels": pixels,
            # the sea is reference water: flood is the same on land and everywhere
            "flood_iou": _flood_iou(truth, times)}


def test_bathtub_scores_skip_unknown_truth_and_tell_misses_from_false_alarms(evaluated):
    truth, metrics, details, _ = evaluated
    assert metrics["bathtub"] == pytest.approx(_expected(truth, HELD_OUT, land_only=False))
    subsets = details["subsets"]
    assert subsets["radar_passes"]["bathtub"] == pytest.approx(_expected(truth, [5, 6], False))
    assert subsets["no_radar_dates"]["bathtub"] == pytest.approx(_expected(truth, [7], False))
    assert subsets["radar_passes_land"]["bathtub"] == pytest.approx(
        _expected(truth, [5, 6], land_only=True))
    assert subsets["no_radar_dates_land"]["bathtub"] == pytest.approx(
        _expected(truth, [7], land_only=True))


def test_every_model_scores_exactly_the_known_truth_pixels(evaluated):
    _, metrics, details, _ = evaluated
    known_per_time = PIXELS - 16 - 9
    for name in ("teacher", "sar_otsu"):  # radar passes only
        assert metrics[name]["pixels"] == 2 * known_per_time
        assert name not in details["subsets"]["no_radar_dates"]
    for name in ("student_distilled", "student_labels_only", "student_no_ewc", "bathtub"):
        assert metrics[name]["pixels"] == 3 * known_per_time
    assert details["times"]["radar_passes"] == ["2024-01-06T06:00:00", "2024-01-07T06:00:00"]
    assert details["times"]["no_radar_dates"] == ["2024-01-08T06:00:00"]
    assert details["temperature"] == 0.5


def test_label_fraction_counts_pixels_ever_labelled(evaluated):
    _, metrics, _, _ = evaluated
    # labels cover the radar passes everywhere but a grid of every 5th row and 7th column
    never = len(range(0, cube_helpers.SIZE_PX, 5)) * len(range(0, cube_helpers.SIZE_PX, 7))
    assert metrics["label_fraction"] == pytest.approx(1 - never / PIXELS)


def test_the_extreme_event_is_the_held_out_date_of_the_highest_gauge_level(evaluated):
    truth, metrics, details, _ = evaluated
    # the toy level rises every day: of the held-out dates, the last (no radar pass) is highest
    extreme = metrics["extreme_event"]
    assert extreme["dates"] == ["2024-01-08T06:00:00"]
    assert set(extreme["models"]) == {"student_distilled", "student_labels_only",
                                      "student_no_ewc", "bathtub"}  # no radar, no teacher
    expected = _expected(truth, [7], land_only=False)
    assert extreme["models"]["bathtub"] == pytest.approx({k: expected[k] for k in EXTREME_KEYS})
    level = float(cube_helpers.water_levels_m()[7])
    assert details["extreme_event"]["gauge_level_m"] == pytest.approx([level])
    assert details["extreme_event"]["record_max_gauge_level_m"] == pytest.approx(level)


def test_the_student_is_monotone_in_the_water_level(evaluated):
    _, metrics, details, _ = evaluated
    assert metrics["monotone_in_water_level"] == 1.0  # measured over the sweep, never set
    levels = cube_helpers.water_levels_m()
    sweep = details["monotone_sweep_m"]
    assert len(sweep) == 21
    assert sweep[0] == pytest.approx(levels.min()) and sweep[-1] == pytest.approx(levels.max() + 1)


def test_the_monotone_share_is_measured_over_the_sweep(evaluate_inputs, monkeypatch, tmp_path):
    # the same student, but the first tile's sweep read backwards (P falling as the level
    # rises): the share must drop below 1
    _, config, teacher, student, reference_path, _ = evaluate_inputs
    sweep = evaluate_module.level_sweep

    def first_tile_falling(*args, **kwargs):
        for index, (window, probabilities) in enumerate(sweep(*args, **kwargs)):
            yield window, probabilities[::-1] if index == 0 else probabilities

    monkeypatch.setattr(evaluate_module, "level_sweep", first_tile_falling)
    metrics = evaluate_region(config, "tgt", teacher, student, tmp_path, reference_path)
    assert 0 < metrics["monotone_in_water_level"] < 1


def test_evaluating_twice_gives_identical_files(evaluated):
    *_, outputs = evaluated
    assert outputs[0] == outputs[1]


def test_the_teacher_is_scored_from_its_maps_of_the_held_out_passes(evaluate_inputs, evaluated):
    import rasterio

    truth, metrics, details, _ = evaluated
    _, _, passes, *_ = evaluate_inputs
    with rasterio.open(passes) as src:
        # the held-out period cut as distillation cuts it holds the passes scored (the
        # student here is made by hand, its held-out times a part of that period)
        assert set(details["times"]["radar_passes"]) <= set(src.descriptions)
        assert src.crs == cube_helpers.CRS and src.transform.c == cube_helpers.ORIGIN[0]
        maps = src.read(masked=True)
        band_of = dict(zip(src.descriptions, maps, strict=True))
    assert maps.count() > 0 and 0 <= maps.min() and maps.max() <= 1
    hits = union = 0
    for time, t in zip(details["times"]["radar_passes"], HELD_OUT[:2], strict=True):
        band, truth_t = band_of[time], truth[t].copy()  # as the fixture wrote it
        truth_t[UNKNOWN_SEA] = truth_t[UNKNOWN_LAND] = 255
        truth_t[MISSED], truth_t[FALSE_ALARM] = 1, 0
        known = (truth_t != 255) & ~np.ma.getmaskarray(band)
        pred, water = band.filled(0) > 0.5, truth_t == 1
        hits += int((pred & water & known).sum())
        union += int(((pred | water) & known).sum())
    assert metrics["teacher"]["iou"] == pytest.approx(hits / union)


def test_evaluation_refuses_pass_maps_without_a_pass_it_scores(evaluate_inputs, tmp_path):
    from floodkd.errors import InputError
    from floodkd.evaluate.teacher_passes import write_teacher_passes

    _, config, _, student, reference_path, _ = evaluate_inputs
    grid = RegionGrid(GeoBox((cube_helpers.SIZE_PX,) * 2, Affine(
        cube_helpers.RES_M, 0, cube_helpers.ORIGIN[0], 0, -cube_helpers.RES_M,
        cube_helpers.ORIGIN[1]), cube_helpers.CRS))
    one_pass = write_teacher_passes(tmp_path / "passes.tif", [np.zeros(grid.shape)],
                                    ["2024-01-06T06:00:00"], grid, "tgt")
    with pytest.raises(InputError, match=r"passes.tif: no teacher map of the radar pass\(es\) "
                       r"\['2024-01-07T06:00:00'\].*rerun `floodkd teacher-passes`"):
        evaluate_region(config, "tgt", one_pass, student, tmp_path / "eval", reference_path)
    assert not (tmp_path / "eval" / "metrics.json").exists()


def test_evaluation_never_imports_transformers():
    """The ViT is built by ``floodkd teacher-passes``; evaluation starts without it."""
    import subprocess
    import sys

    code = ("import sys, floodkd.evaluate.cli; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "['torch']"
