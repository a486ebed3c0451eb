"""Overview pixels, read level by level: each is nodata or a value the band can hold, also
where the region outline cuts a 2 x 2 block of full-resolution pixels in half."""

from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox
from odc.geo.geom import polygon

from floodkd.grid import RegionGrid
from floodkd.predict import write_scenario_maps
from floodkd.predict.cog import NODATA

SHAPE = (600, 520)  # two overview levels (2, 4) with 128 px blocks
TRANSFORM = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5800000.0)
# band -> (lowest, highest) value it may hold; inputs_used holds sums of the flags 1, 2, 4, 8
VALID_RANGE = {"flood_probability": (0.0, 1.0), "std": (0.0, 0.5),
               "entropy": (0.0, math.log(2)), "mutual_information": (0.0, math.log(2)),
               "inputs_used": (0, 15)}


@pytest.fixture
def slanted_outline_lonlat():
    """An outline whose east edge runs slanted from column 211 (top) to column 351 (bottom),
    so it leaves odd numbers of pixels inside on most rows."""
    x0, y0 = TRANSFORM.c, TRANSFORM.f
    corners = [(x0, y0), (x0 + 2110, y0), (x0 + 3510, y0 - 6000), (x0, y0 - 6000), (x0, y0)]
    return polygon(corners, "EPSG:32631").to_crs("EPSG:4326").geom


def test_every_overview_pixel_is_nodata_or_in_range(tmp_path, provenance, field_predictor,
                                                    slanted_outline_lonlat):
    grid = RegionGrid(GeoBox(SHAPE, TRANSFORM, "EPSG:32631"))
    field = field_predictor(SHAPE)

    def predictor(row_off, col_off, height, width):
        """The field, with gauges on odd columns only: flags 8 and 10 side by side."""
        samples, _ = field(row_off, col_off, height, width)
        odd = np.arange(col_off, col_off + width) % 2 == 1
        return samples, np.broadcast_to(np.where(odd, 8 | 2, 8), (height, width)).astype(np.uint16)

    written = write_scenario_maps(grid, predictor, tmp_path / "maps", provenance,
                                  outline_lonlat=slanted_outline_lonlat, tile_px=128,
                                  overlap_px=16, blocksize=128)
    with rasterio.open(written.probability) as src:
        inside = ~src.read(1, masked=True).mask
    inside_per_row = inside.sum(axis=1)
    assert np.count_nonzero(inside_per_row % 2) > 100  # the outline cuts at odd columns
    checked = 0
    for path in (written.probability, written.uncertainty):
        with rasterio.open(path) as src:
            factors, names = src.overviews(1), src.descriptions
        assert factors == [2, 4]
        for level, factor in enumerate(factors):
            with rasterio.open(path, overview_level=level) as overview:
                assert overview.shape == (-(-SHAPE[0] // factor), -(-SHAPE[1] // factor))
                for band, name in enumerate(names, start=1):
                    values = overview.read(band)
                    data = values[values != NODATA]
                    low, high = VALID_RANGE[name]
                    outside = data[(data < low) | (data > high) | ~np.isfinite(data)]
                    assert outside.size == 0, (path.name, factor, name, outside[:5])
                    if name == "inputs_used":  # nearest: flags never mix into new sums
                        assert set(np.unique(data)) <= {8.0, 10.0}
                    # nodata only outside the outline: the overview keeps the inside pixels
                    assert data.size >= inside[::factor, ::factor].sum() * 0.95
                    checked += 1
    assert checked == 2 * (1 + 4)  # every band of both maps at both levels
