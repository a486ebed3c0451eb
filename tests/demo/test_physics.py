"""Physical invariants of the inundation model on tiny hand-made terrain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from floodkd.demo.hydro import (
    Constituent,
    SurgeEvent,
    WaterLevelModel,
    flood_extent,
    rain_ponding,
    sea_inundation,
    water_level_m,
)

PIXEL_M = 10.0


def _coast_with_polder(crest_m: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """12 x 12: sea in the bottom two rows, land at 1.0 m, a ring dike around a polder at
    -0.5 m (below the sea level used in the tests)."""
    elevation = np.full((12, 12), 1.0)
    elevation[10:, :] = -2.0
    elevation[2:8, 3:9] = crest_m  # ring dike...
    elevation[3:7, 4:8] = -0.5  # ...around the polder floor
    sea = np.zeros_like(elevation, bool)
    sea[10:, :] = True
    return elevation, sea


def test_land_below_the_sea_level_floods_and_the_polder_stays_dry():
    elevation, sea = _coast_with_polder()
    flooded = sea_inundation(elevation, sea, 1.5, 0.0, PIXEL_M)
    assert flooded[0:2, :].all() and flooded[8:10, :].all()  # the open land went under
    assert not flooded[3:7, 4:8].any()  # the polder is below the sea but behind the dike
    assert not flooded[2, 3:9].any()  # the dike crest itself stays dry


def test_polder_floods_only_when_the_dike_is_overtopped():
    elevation, sea = _coast_with_polder(crest_m=3.0)
    assert not sea_inundation(elevation, sea, 2.9, 0.0, PIXEL_M)[3:7, 4:8].any()
    assert sea_inundation(elevation, sea, 3.1, 0.0, PIXEL_M)[3:7, 4:8].all()


def test_a_diagonal_one_cell_dike_does_not_leak():
    elevation = np.full((8, 8), -1.0)
    np.fill_diagonal(elevation, 5.0)  # one-cell-wide dike along the diagonal
    sea = np.zeros_like(elevation, bool)
    sea[7, 0] = True  # sea in the lower-left triangle
    flooded = sea_inundation(elevation, sea, 0.0, 0.0, PIXEL_M)
    assert flooded[np.tril_indices(8, -1)].all()
    assert not flooded[np.triu_indices(8, 0)].any()


def test_attenuation_keeps_water_near_the_sea():
    elevation = np.zeros((3, 40))  # a flat strip 400 m long, 0 m
    sea = np.zeros_like(elevation, bool)
    sea[:, 0] = True
    # 1.0 m of water above the land, losing 5 m per km: reaches 200 m, not further
    flooded = sea_inundation(elevation, sea, 1.0, 5.0, PIXEL_M)
    reach_px = flooded[1].sum() - 1
    assert 18 <= reach_px <= 20
    assert sea_inundation(elevation, sea, 1.0, 0.0, PIXEL_M).all()


def test_higher_water_never_floods_less():
    rng = np.random.default_rng(0)
    elevation = ndimage.gaussian_filter(rng.normal(0, 2, (40, 40)), 2) * 3 + np.linspace(
        -2, 3, 40
    )[:, None]
    sea = np.zeros_like(elevation, bool)
    sea[:3] = True
    previous = np.zeros_like(sea)
    for level in np.linspace(-1, 3, 9):
        flooded = sea_inundation(elevation, sea, level, 1.5, PIXEL_M)
        assert (flooded | previous).sum() == flooded.sum(), f"lost cells at level {level}"
        previous = flooded


def test_every_flooded_cell_is_connected_to_the_sea_or_a_rain_pond():
    rng = np.random.default_rng(1)
    elevation = ndimage.gaussian_filter(rng.normal(0, 1, (50, 50)), 3) * 8 + np.linspace(
        -2, 4, 50
    )[:, None]
    sea = np.zeros_like(elevation, bool)
    sea[:2] = True
    water = flood_extent(elevation, sea, 1.0, 120.0, 1.0, PIXEL_M)
    ponds = rain_ponding(elevation, 120.0)
    labels, _ = ndimage.label(water, structure=ndimage.generate_binary_structure(2, 1))
    from_sea = np.isin(labels, np.unique(labels[sea]))
    assert ponds.any() and (water & ~from_sea).any()  # the case is not trivial
    assert np.array_equal(water, from_sea | ponds)


def test_rain_ponds_in_a_closed_depression_up_to_its_spill_level():
    elevation = np.full((9, 9), 2.0)
    elevation[3:6, 3:6] = 1.0  # a 1 m deep pit
    elevation[4, 4] = 0.5
    assert not rain_ponding(elevation, 10.0).any()  # light rain soaks in
    some = rain_ponding(elevation, 15.0 + 30.0)  # 30 mm runoff x 10 concentration = 0.3 m
    assert some[4, 4] and not some[3, 3]
    full = rain_ponding(elevation, 500.0)
    assert full[3:6, 3:6].all() and full.sum() == 9


def test_water_level_is_tide_plus_surge_plus_trend():
    times = pd.date_range("2023-01-01", periods=24 * 30, freq="h")
    m2 = WaterLevelModel((Constituent("M2", 1.0, 0.0),), (), 0.0)
    level = water_level_m(m2, times)
    assert level.max() == pytest.approx(1.0, abs=0.01)
    assert level.min() == pytest.approx(-1.0, abs=0.01)
    peak = pd.Timestamp("2023-01-15T12:00")
    surge = WaterLevelModel((), (SurgeEvent(peak, 2.0, 48.0),), 0.01)
    with_surge = water_level_m(surge, pd.DatetimeIndex([peak, peak + pd.Timedelta(days=10)]))
    years_since_2000 = (peak - pd.Timestamp("2000-01-01")).days / 365.25
    assert with_surge[0] == pytest.approx(2.0 + 0.01 * years_since_2000, abs=1e-3)
    assert with_surge[1] == pytest.approx(0.01 * (years_since_2000 + 10 / 365.25), abs=1e-3)
