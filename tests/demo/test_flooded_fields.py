"""Flooded fields: parcels, waterlogged bunded fields and their radar (docs/radar-physics.md)."""

from __future__ import annotations

import numpy as np
import pytest

from floodkd.demo.fields import field_parcels
from floodkd.demo.hydro import waterlogged_fields
from floodkd.demo.sensors import radar_sigma0_db
from floodkd.demo.terrain import Cover, fallow_fields


def test_parcels_are_rectangles_of_the_given_span_whose_bands_do_not_line_up():
    parcels = field_parcels((120, 150), (5, 20), np.random.default_rng(0))
    for pid in np.unique(parcels):
        rows, cols = np.nonzero(parcels == pid)
        height, width = np.ptp(rows) + 1, np.ptp(cols) + 1
        assert rows.size == height * width  # a filled rectangle
        cut = rows.max() < 119 and cols.max() < 149  # not clipped by the grid's far edges
        if cut:
            assert 5 <= height < 20 and 5 <= width < 20
    # column cuts differ between bands of rows: the fields are not one regular grid
    edges = [set(np.flatnonzero(np.diff(parcels[r]) != 0)) for r in (0, 119)]
    assert edges[0] != edges[1]


def test_a_bunded_field_holds_the_rain_it_cannot_infiltrate_or_drain():
    parcels = np.repeat(np.arange(4), 5)[None, :].repeat(3, 0)  # four fields side by side
    cropland = parcels != 3  # the fourth is not cropland
    drainage = np.array([0.0, 30.0, 80.0, 0.0])
    assert not waterlogged_fields(parcels, cropland, 10.0, drainage).any()  # all infiltrates
    wet = waterlogged_fields(parcels, cropland, 60.0, drainage)  # 45 mm of runoff
    assert [bool(wet[parcels == p].all()) for p in range(4)] == [True, True, False, False]
    assert not (wet & ~cropland).any()


def _field(share: float | None, wind: float = 5.0) -> np.ndarray:
    shape = (64, 64)
    cover = np.full(shape, Cover.CROPLAND, np.uint8)
    open_share = None if share is None else np.full(shape, share)
    sigma0 = radar_sigma0_db(cover, np.ones(shape, bool), np.zeros(shape, np.float32), 0.0,
                             wind, 38.0, np.random.default_rng(1), open_share)
    return np.median(10.0 ** (sigma0 / 10.0), axis=(1, 2))


def test_a_flooded_field_ranges_from_flooded_crop_to_open_water_by_its_open_share():
    crop, half, open_water = _field(0.0), _field(0.5), _field(1.0)
    assert 10 * np.log10(crop) == pytest.approx(10 * np.log10(_field(None)), abs=0.01)
    assert 10 * np.log10(crop[0]) == pytest.approx(-16.0, abs=1.0)  # Tsyganskaya et al. 2018
    # sheltered flood water at 5 m/s feels 2.5 m/s: a mirror, far under the flooded crop
    assert 10 * np.log10(open_water[0]) < 10 * np.log10(crop[0]) - 6
    # power adds by area: half the field open water is the mean of the two end members
    assert half[0] == pytest.approx((crop[0] + open_water[0]) / 2, rel=0.15)


def test_fallow_fields_are_whole_cropland_fields_and_the_same_ones_go_first():
    parcels = np.repeat(np.arange(10), 4)[None, :].repeat(4, 0)  # ten fields side by side
    cover = np.full(parcels.shape, Cover.CROPLAND, np.uint8)
    cover[:, :4] = Cover.URBAN  # field 0 is a town: never fallow
    rank = np.linspace(0.0, 0.9, 10)
    assert (fallow_fields(cover, parcels, rank, 0.0) == cover).all()
    some, more = (fallow_fields(cover, parcels, rank, share) == Cover.BARE
                  for share in (0.35, 0.75))
    for bare in (some, more):
        for pid in range(10):
            assert bare[parcels == pid].all() or not bare[parcels == pid].any()  # whole fields
    assert not (some & ~more).any() and more.sum() > some.sum()
    assert not more[:, :4].any()
    assert (fallow_fields(cover, parcels, rank, 1.0)[:, 4:] == Cover.BARE).all()
