"""Pure pieces of align with known answers: time matching, tiles, terrain, gauges, GCM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from pyproj import Transformer
from shapely.geometry import box

from floodkd.align import gauges, gcm, terrain, tiles
from floodkd.align.times import match_nearest, time_axis, to_utc_naive
from floodkd.grid import RegionGrid
from tests.align import fakes


def test_match_nearest_within_window():
    targets = to_utc_naive(["2024-01-01T00:00Z", "2024-01-05T00:00Z", "2024-01-10T00:00+02:00"])
    sources = to_utc_naive(["2024-01-09T20:00Z", "2024-01-02T00:00Z"])
    np.testing.assert_array_equal(match_nearest(targets, sources, 3), [1, 1, 0])
    np.testing.assert_array_equal(match_nearest(targets, sources, 1), [1, -1, 0])
    np.testing.assert_array_equal(match_nearest(targets, sources[:0], 3), [-1, -1, -1])
    axis = time_axis(sources, targets[:1], sources)
    assert axis.tolist() == sorted(set(axis.tolist())) and axis.size == 3


@pytest.mark.parametrize(("length", "tile", "overlap"), [(100, 16, 4), (64, 16, 0), (10, 16, 4),
                                                         (200, 64, 16)])
def test_tiles_cover_the_axis_with_the_overlap(length, tile, overlap):
    starts = tiles.tile_starts(length, tile, overlap)
    covered = np.zeros(length, dtype=int)
    for s in starts:
        covered[s:s + tile] += 1
    assert (covered >= 1).all()
    assert starts[0] == 0 and min(starts[-1] + tile, length) == length
    if len(starts) > 2:
        assert set(np.diff(starts[:-1])) == {tile - overlap}
        assert starts[-1] - starts[-2] <= tile - overlap  # last one flush with the edge


def test_splits_are_blocked_deterministic_disjoint_and_cover_the_grid():
    shape = (500, 400)
    table = tiles.tile_windows(shape, 64, 16, block_tiles=2)
    splits = tiles.assign_splits(table[:, 0], table[:, 1], 0.2, 0.2)
    again = tiles.assign_splits(table[:, 0], table[:, 1], 0.2, 0.2)
    np.testing.assert_array_equal(splits, again)
    assert set(splits) == {"train", "val", "test"}
    owner = np.full(shape, "", dtype=object)
    for (_, _, _, _, r, c, h, w), split in zip(table, splits, strict=True):
        assert h <= 64 and w <= 64
        window = owner[r:r + h, c:c + w]
        assert not ((window != "") & (window != split)).any()  # splits share no pixel
        window[:] = split
    assert (owner != "").all()  # every pixel lies in some tile
    first_block = (table[:, 0] == 0) & (table[:, 1] == 0)  # overlapping tiles inside a block
    block_rows = tiles.block_edges(shape[0], 128)[1]
    np.testing.assert_array_equal(np.unique(table[first_block, 4]),
                                  tiles.tile_starts(block_rows, 64, 16))


def test_split_blocks_have_no_slivers():
    np.testing.assert_array_equal(tiles.block_edges(194, 128), [0, 97, 194])
    np.testing.assert_array_equal(tiles.block_edges(40, 128), [0, 40])


def test_window_fractions():
    mask = np.zeros((4, 6), dtype=bool)
    mask[:2, :3] = True
    windows = np.array([[0, 0, 2, 3], [0, 0, 4, 6], [2, 3, 2, 3]])
    np.testing.assert_allclose(tiles.window_fractions(mask, windows), [1, 0.25, 0])


def test_hand_and_coast_distance():
    elevation = np.array([[-1.0, 0.0, 2.0, 5.0, np.nan]], dtype=np.float32)
    hand = terrain.height_above_nearest_water(elevation)
    np.testing.assert_allclose(hand[0, :4], [0, 0, 2, 5])
    assert np.isnan(hand[0, 4])
    distance = terrain.coast_distance(elevation, 10.0)
    np.testing.assert_allclose(distance[0, :4], [0, 0, 10, 20])
    assert np.isnan(distance[0, 4])
    dry = np.ones((2, 2), dtype=np.float32)
    assert np.isnan(terrain.coast_distance(dry, 10.0)).all()
    np.testing.assert_allclose(terrain.height_above_nearest_water(dry), 1.0)


def test_spill_level_is_the_lowest_crest_between_a_cell_and_the_sea():
    # sea | shore rising to 1 m | dike 3 m (a lower 2.5 m notch in it) | polder at 0.5 m
    elevation = np.array([
        [-1.0, 0.5, 1.0, 3.0, 0.5, 0.8],
        [-1.0, 0.5, 1.0, 2.5, 0.5, np.nan],
        [-1.0, 0.5, 1.0, 3.0, 0.5, 0.5],
    ], dtype=np.float32)
    spill = terrain.spill_level(elevation)
    np.testing.assert_allclose(spill[:, :4], [[-1, 0.5, 1, 3], [-1, 0.5, 1, 2.5],
                                              [-1, 0.5, 1, 3]])
    # the whole polder fills through the notch, the lowest way in, its 0.8 m cell too
    np.testing.assert_allclose(spill[:, 4], 2.5)
    assert spill[0, 5] == 2.5 and spill[2, 5] == 2.5 and np.isnan(spill[1, 5])
    # two dike cells touching at a corner leave no gap: water moves between 4-neighbours only
    corner = np.array([[-1.0, 3.0, 0.2], [3.0, 0.2, 0.2]], dtype=np.float32)
    assert terrain.spill_level(corner)[1, 1] == 3.0
    # no sea in the region: the ground is the only bound
    dry = np.array([[1.0, 2.0]], dtype=np.float32)
    np.testing.assert_allclose(terrain.spill_level(dry), dry)


def test_history_order_and_gaps():
    levels = np.arange(10, dtype=np.float32)[None, :]
    idx = gauges.hour_index(np.arange("2024-01-01T00", "2024-01-01T10", dtype="datetime64[h]"),
                            np.array(["2024-01-01T05:40", "2024-01-01T01:00", "2024-01-02"],
                                     dtype="datetime64[ns]"))
    np.testing.assert_array_equal(idx, [5, 1, -1])
    hist = gauges.history(levels, idx, 4)
    np.testing.assert_array_equal(hist[0, 0], [2, 3, 4, 5])
    np.testing.assert_array_equal(hist[1, 0, 2:], [0, 1])
    assert np.isnan(hist[1, 0, :2]).all() and np.isnan(hist[2]).all()


def test_gcm_longitudes_0_360_west_of_greenwich(caplog):
    """A region at 1.5 deg W read from a 0..360 GCM gets the value of its own longitude."""
    grid = RegionGrid.from_outline(box(-1.51, 50.0, -1.50, 50.01), 10.0)
    lon360 = np.arange(0.5, 360, 1.0)
    lat = np.arange(48.5, 52.0, 1.0)
    lon = ((lon360 + 180) % 360) - 180
    months = np.array(["2014-11", "2014-12", "2015-01"], dtype="datetime64[M]")
    field = np.stack([fakes.gcm_value(lon[None, :], lat[:, None], m, "historical")
                      for m in range(3)]).astype(np.float32)
    ds = xr.Dataset({"zos": (("experiment", "time", "lat", "lon"), field[None])},
                    coords={"experiment": ["historical"], "lat": lat, "lon": lon360,
                            "time": months.astype("datetime64[ns]")})
    times = np.array(["2014-12-31T23:00", "2015-01-01T01:00", "2015-02-10"],
                     dtype="datetime64[ns]")
    stack, present, used = gcm.month_fields(ds, "zos", times, grid, 16, Path("gcm.nc"))
    assert present.tolist() == [True, True, False]
    assert used == ["historical", "historical", None]  # no ssp245 in this file
    # the month without climate forcing is logged, naming the file and the consequence
    assert ("gcm.nc: no zos for 1 of 3 cube times (months 2015-02; experiments in the file: "
            "historical); the student maps those times without the climate model"
            in caplog.text)
    values = stack.compute()
    to_lonlat = Transformer.from_crs(grid.crs.to_wkt(), "EPSG:4326", always_xy=True)
    plon, plat = to_lonlat.transform(grid.x[0], grid.y[0])
    assert values[0, 0, 0] == pytest.approx(fakes.gcm_value(plon, plat, 1, "historical"),
                                            abs=1e-4)
    assert values[1, 0, 0] == pytest.approx(fakes.gcm_value(plon, plat, 2, "historical"),
                                            abs=1e-4)
    assert np.isnan(values[2]).all()
