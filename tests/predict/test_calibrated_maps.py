"""The probability map is the members' mean of sigmoid(margin / T + b), T and b the fitted
calibration (margin: water logit minus dry logit):
student ensemble (distill/inference.py) -> predict window -> tiled engine -> COG."""

from __future__ import annotations

import numpy as np
import rasterio
import torch

from floodkd.distill.data import collate, open_cube, read_window, sample_tensors
from floodkd.distill.inference import StudentEnsemble
from floodkd.grid import RegionGrid
from floodkd.predict import write_scenario_maps
from floodkd.predict.cli import student_window_predictor
from floodkd.predict.tiled import CONTEXT_CELLS, mirror_pad
from tests.distill import conftest as cube_helpers
from tests.distill.untrained import write_student_dir

TEMPERATURE = 0.4  # sharpens: far from 1, so a map at T = 1 differs visibly
WATER_BIAS = 0.7  # and moves towards water


def test_probability_map_is_the_calibrated_members_mean(tmp_path, provenance):
    region = cube_helpers.write_region(tmp_path / "results", "toy", seed=4)
    student_dir = write_student_dir(tmp_path / "student", TEMPERATURE, [],
                                    water_bias=WATER_BIAS)
    ensemble = StudentEnsemble.load(student_dir, device="cpu")
    cube = open_cube(region.cube_path)
    grid = RegionGrid.from_dataset(cube)
    t = cube.sizes["time"] - 1
    multiple = 2 ** ensemble.members[0].config.depth
    size = cube_helpers.SIZE_PX  # one tile over the whole grid: no blending between tiles
    predictor = student_window_predictor(cube, t, ensemble, {}, 0, multiple)
    written = write_scenario_maps(grid, predictor, tmp_path / "maps", provenance,
                                  tile_px=size, overlap_px=0, blocksize=64)

    batch = collate([sample_tensors(read_window(cube, t, 0, 0, size, size), (size, size),
                                    (0, 0, size, size), t)])
    # the predictor mirrors the region around its edge (48 px: no padding to the stride)
    margin = CONTEXT_CELLS * multiple
    batch["student_image"] = torch.from_numpy(mirror_pad(batch["student_image"].numpy(),
                                                         ((margin, margin), (margin, margin))))
    with torch.no_grad():
        logits = torch.stack([member(batch["student_image"].float(), batch["presence"].float(),
                                     batch["gauge_history"].float())[0]
                              for member in ensemble.members])  # (members, 1, 2, H, W)
    logits = logits[..., margin:margin + size, margin:margin + size]
    margin = logits[:, 0, 1] - logits[:, 0, 0]
    expected = torch.sigmoid(margin / TEMPERATURE + WATER_BIAS).mean(0).numpy()
    at_one = torch.softmax(logits, dim=2)[:, 0, 1].mean(0).numpy()
    with rasterio.open(written.probability) as src:
        probability = src.read(1, masked=True)
    assert not probability.mask.any()  # the toy region has terrain everywhere
    np.testing.assert_allclose(probability, expected, atol=1e-5)
    assert np.abs(expected - at_one).max() > 0.02  # the calibration matters for this check


def test_a_uniform_region_maps_uniformly_up_to_its_border(tmp_path, provenance):
    """Inputs equal everywhere: P equal everywhere, in the first and last rows and columns as
    inside and across tile seams. With zero-padded convolutions the border rows and columns
    came out apart (by 0.016): GroupNorm spread the zero border over the whole tile."""
    region = cube_helpers.write_region(tmp_path / "results", "toy", seed=4)
    ensemble = StudentEnsemble.load(write_student_dir(tmp_path / "student", 1.0, []),
                                    device="cpu")
    cube = open_cube(region.cube_path).load()
    for name, variable in cube.data_vars.items():
        if {"y", "x"} <= set(variable.dims):  # every pixel takes the centre pixel's value
            centre = variable.isel(y=cube.sizes["y"] // 2, x=cube.sizes["x"] // 2, drop=True)
            cube[name] = centre.broadcast_like(variable).transpose(*variable.dims)
    t = cube.sizes["time"] - 1
    multiple = 2 ** ensemble.members[0].config.depth
    predictor = student_window_predictor(cube, t, ensemble, {}, 0, multiple)
    written = write_scenario_maps(RegionGrid.from_dataset(cube), predictor, tmp_path / "maps",
                                  provenance, tile_px=32, overlap_px=8, blocksize=64)
    with rasterio.open(written.probability) as src:
        probability = src.read(1, masked=True)
    assert not probability.mask.any()
    assert 0.0 < probability.mean() < 1.0
    np.testing.assert_allclose(probability, probability.mean(), atol=1e-5)
