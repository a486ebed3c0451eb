"""The waterline layer: the rule on a hand-made series of passes, the same rule by row blocks
of bits, the stage end to end on the toy cube (only the passes before the held-out period),
and the student's threshold anchored on it."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from odc.geo.geobox import GeoBox
from rio_cogeo.cogeo import cog_validate

from floodkd.cli import main
from floodkd.config import load_config
from floodkd.distill.data import open_region
from floodkd.distill.holdout_cli import holdout_document
from floodkd.errors import InputError
from floodkd.grid import RegionGrid
from floodkd.models.channels import student_image
from floodkd.models.student import FloodStudent, StudentConfig
from floodkd.reference import waterline as wl
from floodkd.reference.waterline import BEYOND_M, WaterlineArchive, read_waterline, waterline_level
from floodkd.reference.waterline_cli import write_waterline
from tests.distill import conftest as cube_helpers
from tests.distill.untrained import write_teacher
from tests.reference.test_reference_water import DarkIsWater, _config, _grid

LEVELS = np.array([-1.0, -0.5, 0.0, 0.4, 0.6, 1.0])


def _series(*wet_columns: list[bool]) -> tuple[np.ndarray, np.ndarray]:
    """(levels, water) of one row of pixels, one column per pixel: (passes, 1, pixels)."""
    water = np.array(wet_columns, bool).T[:, None, :]
    return np.broadcast_to(LEVELS[:, None, None], water.shape).copy(), water


def test_the_waterline_of_a_hand_made_series():
    levels, water = _series(
        [False, False, False, False, True, True],  # floods between 0.4 and 0.6 m
        [True, False, False, False, True, True],  # the same, one wrong pass at low water
        [False] * 6,  # never wet
        [True] * 6,  # always wet
    )
    level, above = waterline_level(levels, water, np.ones_like(water), min_passes=3)
    np.testing.assert_allclose(level[0], [0.5, 0.5, 1.0 + BEYOND_M, -1.0 - BEYOND_M], atol=1e-6)
    np.testing.assert_array_equal(above[0], [False, False, True, False])


def test_passes_without_data_count_neither_way_and_too_few_leave_it_unknown():
    levels, water = _series([False, True, False, False, True, True], [True] * 6)
    valid = np.ones_like(water)
    valid[1, 0, 0] = False  # the wet pass at -0.5 m was not observed: 0.5 m again
    valid[2:, 0, 1] = False  # two passes only
    level, above = waterline_level(levels, water, valid, min_passes=3)
    assert level[0, 0] == pytest.approx(0.5)
    assert np.isnan(level[0, 1]) and not above[0, 1]
    levels[3, 0, 0] = np.nan  # a pass without a gauge level is not a pass of this pixel
    assert waterline_level(levels, water, valid, min_passes=3)[0][0, 0] == pytest.approx(0.3)


def test_the_archive_judges_row_blocks_of_bits_as_the_whole_stack(monkeypatch):
    rng = np.random.default_rng(0)
    passes, shape = 9, (7, 13)
    levels = rng.normal(0, 1, (passes, *shape))
    ground = rng.normal(0, 1, shape)
    probability = np.where(levels + rng.normal(0, 0.2, levels.shape) > ground, 0.9, 0.1)
    probability[rng.random(levels.shape) < 0.1] = np.nan
    monkeypatch.setattr(wl, "ROW_BLOCK", 3)
    archive = WaterlineArchive(shape)
    for t in range(passes):
        archive.add(10 + t, probability[t], 0.5)
    got = archive.level(lambda times, rows: levels[np.array(times) - 10][:, rows], 4)
    want = waterline_level(levels, probability >= 0.5, np.isfinite(probability), 4)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_layer_off_the_grid_is_refused_naming_the_file(tmp_path):
    grid = _grid()
    path = write_waterline(tmp_path / "waterline.tif", np.zeros(grid.shape, np.float32),
                           np.zeros(grid.shape, bool), grid, {})
    level, above = read_waterline(path, grid)
    assert level.shape == grid.shape and not above.any()
    shifted = tmp_path / "shifted" / "waterline.tif"
    write_waterline(shifted, np.zeros(grid.shape, np.float32), np.zeros(grid.shape, bool),
                    RegionGrid(GeoBox(grid.shape, grid.transform * grid.transform.translation(
                        1, 0), grid.crs)), {})
    with pytest.raises(InputError, match="not on the region grid") as error:
        read_waterline(shifted, grid)
    assert "waterline.tif" in str(error.value) and "floodkd waterline" in str(error.value)


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> cube_helpers.SyntheticRegion:
    """The toy region: 5 radar passes, the level rising every day over a sloping ground."""
    return cube_helpers.write_region(tmp_path_factory.mktemp("results"), "tgt", seed=1)


def _run_stage(toy, tmp_path, monkeypatch, role: str):
    monkeypatch.setattr("floodkd.models.checkpoint.load_checkpoint",
                        lambda cls, path: (DarkIsWater(), {"tile_size_px": [16]}))
    teacher = write_teacher(tmp_path / "teacher" / "teacher.safetensors")
    out = tmp_path / "waterline.tif"
    config = _config(tmp_path, toy.results_dir, role=role)
    assert main(["waterline", "--config", str(config), "--region", "tgt", "--teacher",
                 str(teacher.parent), "--cube", str(toy.cube_path), "--out", str(out),
                 "--threads", "1"]) == 0
    return out, config


def test_the_stage_reads_the_level_at_which_each_pixel_floods(toy, tmp_path, monkeypatch):
    out, _ = _run_stage(toy, tmp_path, monkeypatch, "source")  # every pass: no held-out period
    assert cog_validate(str(out))[0]
    with rasterio.open(out) as src:
        assert src.descriptions == ("waterline_m", "waterline_above")
        assert src.transform == _grid().transform and src.shape == _grid().shape
        assert src.tags()["RADAR_PASSES"] == str(cube_helpers.RADAR.sum())
    level, above = read_waterline(out, _grid())
    # every radar pass of the toy floods exactly the ground under its level: the layer's rule
    # gives back each pass's water, and the level lies between the ground's neighbours
    levels = cube_helpers.water_levels_m()
    for t in np.flatnonzero(cube_helpers.RADAR):
        np.testing.assert_array_equal(np.where(above, False, levels[t] >= level), toy.truth[t])
    elevation = cube_helpers.elevation_m()
    changed = ~above & (level > levels[cube_helpers.RADAR].min())
    assert changed.any() and (np.abs(level - elevation)[changed] <= 0.35 + 1e-6).all()
    # never wet: the high ground, and the basin behind the toy's dike, which the DEM puts
    # under every level (so the student's anchor there is the archive's, not the DEM's)
    basin = np.zeros_like(above)
    basin[32:40, 32:40] = True
    highest = levels[cube_helpers.RADAR].max()
    np.testing.assert_array_equal(above, basin | (elevation >= highest))
    np.testing.assert_allclose(level[basin], highest + BEYOND_M)


def test_the_stage_reads_only_passes_before_the_held_out_period(toy, tmp_path, monkeypatch):
    out, config = _run_stage(toy, tmp_path, monkeypatch, "target")
    # the period distillation holds out, from the config (as `floodkd holdout` writes it)
    before = holdout_document(load_config(config), "tgt")["train_before"]
    earlier = cube_helpers.RADAR & (cube_helpers.TIMES < np.datetime64(before))
    assert earlier.sum() < cube_helpers.RADAR.sum()  # the toy holds out its passes and window
    with rasterio.open(out) as src:
        assert src.tags()["RADAR_PASSES"] == str(earlier.sum())
        assert f"before the held-out period ({before})" in src.tags()["SOURCE"]
    # a layer with levels (every pass), beside the cube, reaches the student's channels
    # through open_region
    out, _ = _run_stage(toy, tmp_path, monkeypatch, "source")
    assert np.isfinite(read_waterline(out, _grid())[0]).any()
    (toy.results_dir / "tgt" / "waterline.tif").write_bytes(out.read_bytes())
    try:
        cube = open_region(toy.results_dir, "tgt", ["elevation_m"]).cube
        np.testing.assert_array_equal(cube["waterline_m"].values, read_waterline(out, _grid())[0])
    finally:
        (toy.results_dir / "tgt" / "waterline.tif").unlink()


def _probability(student: FloodStudent, level_m: float, waterline_m: float, above: float,
                 elevation_m: float = 4.0) -> float:
    shape = (8, 8)
    arrays = {"elevation_m": np.full(shape, elevation_m), "hand_m": np.full(shape, 1.0),
              "coast_distance_m": np.full(shape, 100.0),
              "waterline_m": np.full(shape, waterline_m), "waterline_above": np.full(shape, above),
              "water_level_m": np.full(shape, level_m)}
    image = torch.from_numpy(student_image(arrays, {"gauge": True}))[None]
    with torch.no_grad():
        logits, _ = student(image, torch.tensor([[0.0, 1.0, 0.0]]), torch.zeros(1, 0, 0))
    return float(torch.softmax(logits, 1)[0, 1].mean())


@pytest.mark.parametrize("reads", [True, False])
def test_the_student_anchors_its_threshold_on_the_waterline(reads):
    torch.manual_seed(0)
    student = FloodStudent(StudentConfig(base_width=8, temporal_dim=8, temporal_heads=2,
                                         reads_waterline=reads)).eval()
    torch.nn.init.zeros_(student.head.weight)  # threshold = the anchor, whatever the trunk
    torch.nn.init.zeros_(student.head.bias)
    # at its threshold the sea's term is 1/2 (the other water's starts at sigmoid(-4))
    at_threshold = 1 - 0.5 * (1 - 1 / (1 + np.exp(4.0)))
    if reads:  # the tide reaches the pixel at 1 m, whatever the DEM reads (a canopy's top)
        assert _probability(student, 1.0, 1.0, 0.0) == pytest.approx(at_threshold, abs=1e-4)
        assert _probability(student, -1.0, 1.0, 0.0) < 0.05
        # never seen wet up to 1 m: above that the DEM decides (a surge over the record)
        assert _probability(student, 4.0, 1.0, 1.0) == pytest.approx(at_threshold, abs=1e-4)
        assert _probability(student, 2.0, 1.0, 1.0) < 0.05
        # where the DEM is lower than what the archive saw stay dry, the archive decides
        assert _probability(student, 1.0, 1.0, 1.0, elevation_m=-2.0) == pytest.approx(
            at_threshold, abs=1e-4)
    else:  # the labels-only reference: the layer changes nothing, the DEM anchors
        assert _probability(student, 4.0, 1.0, 0.0) == pytest.approx(at_threshold, abs=1e-4)
        assert _probability(student, 4.0, 1.0, 0.0) == _probability(student, 4.0, -3.0, 1.0)
