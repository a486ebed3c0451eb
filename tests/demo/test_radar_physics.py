"""The demo's radar follows the published C-band models it cites (docs/radar-physics.md)."""

from __future__ import annotations

import numpy as np
import pytest

from floodkd.demo.sensors import c2po_vh, cmod5n_vv, radar_sigma0_db
from floodkd.demo.terrain import Cover


def _db(power):
    return 10.0 * np.log10(power)


def test_cmod5n_brightens_with_wind_and_darkens_with_incidence():
    winds = np.arange(2.0, 20.5, 0.5)
    for incidence in (30.0, 38.0, 45.0):
        vv = _db(cmod5n_vv(winds, 0.0, incidence))
        assert (np.diff(vv) > 0).all()
    for wind in (3.0, 5.0, 10.0):
        by_angle = _db(cmod5n_vv(np.full(16, wind), 0.0, 30.0 + np.arange(16)))
        assert (np.diff(by_angle) < 0).all()


def test_cmod5n_is_brightest_upwind_and_darkest_crosswind():
    up, cross, down = (_db(cmod5n_vv(np.array(8.0), phi, 38.0)) for phi in (0.0, 90.0, 180.0))
    assert up > down > cross
    assert up - cross == pytest.approx(3.2, abs=1.0)  # the ~3 dB modulation of scatterometry


def test_c2po_is_linear_in_wind_in_db():
    assert _db(c2po_vh(np.array([0.0, 10.0, 20.0]))) == pytest.approx([-35.652, -29.852, -24.052])


def _scene(cover: int, water: bool, wind: float, incidence: float, seed: int = 0):
    shape = (64, 64)
    covers = np.full(shape, cover, np.uint8)
    wet = np.full(shape, water)
    texture = np.zeros(shape, np.float32)
    sigma0 = radar_sigma0_db(covers, wet, texture, 0.0, wind, incidence,
                             np.random.default_rng(seed))
    return np.median(sigma0, axis=(1, 2))


def test_calm_water_is_a_mirror_and_strong_wind_makes_the_sea_look_like_land():
    crops = _scene(Cover.CROPLAND, False, 2.0, 38.0)
    calm = _scene(Cover.SEA, True, 1.0, 38.0)
    assert calm[0] < crops[0] - 10
    assert calm[1] < -30  # VH of calm water: the noise residue after noise removal
    windy = _scene(Cover.SEA, True, 12.0, 30.0)
    assert abs(windy[0] - _scene(Cover.CROPLAND, False, 12.0, 30.0)[0]) < 3


def test_flooded_trees_and_towns_brighten_by_double_bounce():
    for cover in (Cover.VEGETATION, Cover.URBAN):
        dry, flooded = _scene(cover, False, 5.0, 38.0), _scene(cover, True, 5.0, 38.0)
        assert flooded[0] > dry[0] + 1.5
        assert abs(flooded[1] - dry[1]) < 1.5


def test_surfaces_darken_with_incidence_by_their_slope():
    for cover, slope in ((Cover.BARE, -0.22), (Cover.VEGETATION, -0.06)):
        steep, shallow = _scene(cover, False, 5.0, 30.0), _scene(cover, False, 5.0, 45.0)
        assert shallow[0] - steep[0] == pytest.approx(15 * slope, abs=0.6)
