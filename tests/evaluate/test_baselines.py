"""Baselines: the bathtub respects connectivity; Otsu splits bimodal radar."""

from __future__ import annotations

import numpy as np
import pytest

from floodkd.evaluate.baselines import bathtub, otsu_threshold_db, sar_otsu


def _coast() -> tuple[np.ndarray, np.ndarray]:
    """Sea in column 0, land at 2 m, a connected low channel (row 1) and a walled basin."""
    elevation = np.full((7, 9), 2.0)
    elevation[:, 0] = -1.0  # sea
    elevation[1, 1:5] = 0.2  # a creek from the sea inland
    elevation[4:6, 5:8] = 0.1  # a basin lower than the creek, surrounded by 2 m land
    sea = elevation < 0
    return elevation, sea


def test_bathtub_floods_connected_basin_only():
    elevation, sea = _coast()
    flooded = bathtub(elevation, 1.0, sea)
    assert flooded[1, 1:5].all()  # connected creek below the level
    assert not flooded[4:6, 5:8].any()  # below the level, but disconnected
    assert flooded[:, 0].all() and not flooded[0, 3]
    # above the land everything floods, the basin included
    assert bathtub(elevation, 2.5, sea).all()


def test_bathtub_no_diagonal_leak_and_level_field():
    elevation = np.full((4, 4), 3.0)
    elevation[:, 0] = -1.0
    elevation[1, 1] = 0.0  # touches the sea edge-on
    elevation[2, 2] = 0.0  # touches (1, 1) only at a corner
    flooded = bathtub(elevation, 1.0, elevation < 0)
    assert flooded[1, 1] and not flooded[2, 2]
    # a level field: high in the west, low in the east, so the eastern cell stays dry
    elevation = np.array([[-1.0, 0.5, 0.5]])
    level = np.array([[1.0, 1.0, 0.4]])
    assert bathtub(elevation, level, elevation < 0).tolist() == [[True, True, False]]


def test_bathtub_nan_elevation_is_a_wall():
    elevation = np.array([[-1.0, np.nan, 0.0]])
    assert bathtub(elevation, 1.0, elevation < 0).tolist() == [[True, False, False]]


def test_otsu_splits_bimodal_vv():
    rng = np.random.default_rng(0)
    water = np.zeros((40, 40), bool)
    water[:, :15] = True
    vv = np.where(water, rng.normal(-22, 1.0, water.shape), rng.normal(-8, 1.0, water.shape))
    vv[0, 0] = np.nan
    threshold = otsu_threshold_db(vv)
    assert -20 < threshold < -10  # in the gap between the modes (3 sigma from each)
    predicted = sar_otsu(vv)
    assert not predicted[0, 0]
    agreement = (predicted == water)[1:, :].mean()
    assert agreement > 0.99


def test_otsu_rejects_flat_input():
    with pytest.raises(ValueError, match="spread"):
        otsu_threshold_db(np.full((3, 3), -10.0))
