"""Monotonicity in the water level: the share of pixels measured on toy models with known
answers, and the sweep run through the cube's inputs as the maps see them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from floodkd.evaluate.monotone import level_sweep, monotone_fraction, sweep_levels
from floodkd.models.channels import NORMALISATION, STUDENT_CHANNELS
from tests.distill import conftest as cube_helpers

LEVEL = STUDENT_CHANNELS.index("water_level_m")
ELEVATION = STUDENT_CHANNELS.index("elevation_m")


def test_sweep_levels_span_the_record_plus_headroom():
    levels = sweep_levels(np.array([[0.4, np.nan], [-0.6, 1.5]]), headroom_m=1.0, steps=5)
    np.testing.assert_allclose(levels, [-0.6, 0.175, 0.95, 1.725, 2.5])
    assert sweep_levels(np.full(3, np.nan), 1.0, 5) is None


def test_monotone_fraction_counts_pixels_that_ever_fall():
    levels = np.linspace(0.0, 2.0, 9)[:, None, None]
    rising = 1 / (1 + np.exp(-(levels - np.array([[0.5, 1.0, 1.5]]))))  # (9, 1, 3)
    assert monotone_fraction([((0, 0, 1, 3), rising)], (1, 3)) == 1.0
    bumpy = rising.copy()
    bumpy[5, 0, 1] = bumpy[4, 0, 1] - 0.01  # one pixel falls once
    assert monotone_fraction([((0, 0, 1, 3), bumpy)], (1, 3)) == pytest.approx(2 / 3)
    rounding = rising.copy()
    rounding[5, 0, 1] = rounding[4, 0, 1] - 1e-8  # float32 rounding, not the model
    assert monotone_fraction([((0, 0, 1, 3), rounding)], (1, 3)) == 1.0
    # overlapping tiles: a pixel falls in one tile only; NaN pixels are not counted
    other = rising.copy()
    other[:, 0, 0] = np.nan
    assert monotone_fraction([((0, 0, 1, 3), other), ((0, 1, 1, 2), bumpy[:, :, 1:])],
                             (1, 4)) == pytest.approx(1 / 2)
    assert monotone_fraction([((0, 0, 1, 1), np.full((3, 1, 1), np.nan))], (1, 1)) is None


class ToyEnsemble:
    """A stand-in for StudentEnsemble: P(flood) from the level and elevation channels alone."""

    def __init__(self, probability):
        self.probability = probability

    def predict_probabilities(self, batch, mc_samples=0):
        image = torch.as_tensor(batch["student_image"])
        level = image[:, LEVEL] * NORMALISATION["water_level_m"][1]
        elevation = image[:, ELEVATION] * NORMALISATION["elevation_m"][1] + (
            NORMALISATION["elevation_m"][0])
        return self.probability(level, elevation)[None].numpy()  # (S=1, B, H, W)


def _sweep(toy_region, probability):
    windows = [(0, 0, 16, 16), (0, 8, 16, 16), (16, 0, 32, 48)]
    levels = np.linspace(-1.0, 3.0, 11)
    shape = (cube_helpers.SIZE_PX,) * 2
    return monotone_fraction(level_sweep(toy_region.cube_path, 3, windows,
                                         ToyEnsemble(probability), levels, 16), shape)


def test_a_monotone_model_sweeps_to_one_and_a_wavy_one_below(toy_region):
    assert _sweep(toy_region, lambda level, z: torch.sigmoid(4 * (level - z))) == 1.0

    def wavy(level, z):  # rises and falls with the level on ground above 1 m
        return torch.where(z < 1, torch.sigmoid(4 * (level - z)),
                           torch.sigmoid(4 * torch.sin(2 * level)))

    # the windows cover rows 0-15 of columns 0-23 and rows 16-47 of all 48 columns; ground
    # below 1 m: columns 0-21 (-2 + 0.14 col) and the 8 x 8 basin at 0.5 m
    expected = (16 * 22 + 32 * 22 + 64) / (16 * 24 + 32 * 48)
    assert _sweep(toy_region, wavy) == pytest.approx(expected)


@pytest.fixture(scope="module")
def toy_region(tmp_path_factory):
    return cube_helpers.write_region(tmp_path_factory.mktemp("results"), "toy", seed=1)
