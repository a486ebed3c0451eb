"""The demo's speckle is a GRDH pixel's: ENL 4.4 looks, shared with its neighbours."""

from __future__ import annotations

import numpy as np
import pytest

from floodkd.demo.sensors import ENL, grdh_speckle, radar_sigma0_db
from floodkd.demo.terrain import Cover


def _lag1(field: np.ndarray, axis: int) -> float:
    ahead = np.take(field, np.arange(1, field.shape[axis]), axis=axis)
    behind = np.take(field, np.arange(field.shape[axis] - 1), axis=axis)
    return float(np.corrcoef(ahead.ravel(), behind.ravel())[0, 1])


def test_grdh_speckle_has_the_product_looks_and_is_shared_by_neighbours():
    speckle = grdh_speckle((2, 384, 384), np.random.default_rng(0))
    assert speckle.shape == (2, 384, 384) and (speckle > 0).all()
    assert speckle.mean() == pytest.approx(1.0, abs=0.01)
    assert 1.0 / speckle.var() == pytest.approx(ENL, rel=0.05)
    for axis in (0, 1):  # a 20-22 m resolution cell on 10 m pixels
        assert 0.4 < _lag1(speckle[0], axis) < 0.6
    assert abs(_lag1(speckle[0][:, ::3], 1)) < 0.05  # three pixels apart: independent
    assert abs(np.corrcoef(speckle[0].ravel(), speckle[1].ravel())[0, 1]) < 0.02


def test_a_uniform_field_in_a_pass_shows_correlated_speckle():
    shape = (96, 96)
    sigma0 = radar_sigma0_db(np.full(shape, Cover.CROPLAND, np.uint8), np.zeros(shape, bool),
                             np.zeros(shape, np.float32), 0.0, 5.0, 38.0,
                             np.random.default_rng(1))
    assert _lag1(sigma0[0], 1) > 0.35 and _lag1(sigma0[0], 0) > 0.35
