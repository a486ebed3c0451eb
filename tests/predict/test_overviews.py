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
from PIL import Image
from rio_cogeo.cogeo import cog_validate

from floodkd.grid import RegionGrid
from floodkd.predict import write_scenario_maps
from floodkd.predict.cog import BYTE_NODATA, NODATA
from floodkd.predict.extent import EXTENT_CLASSES, SEA, ExtentInputs, ExtentSettings
from floodkd.predict.style import hex_rgb

SHAPE = (600, 520)  # two overview levels (2, 4) with 128 px blocks
TRANSFORM = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5800000.0)
# band -> (lowest, highest) value it may hold; inputs_used holds sums of the flags 1, 2, 4, 8
VALID_RANGE = {"flood_probability": (0.0, 1.0), "std": (0.0, 0.5),
               "entropy": (0.0, math.log(2)), "mutual_information": (0.0, math.log(2)),
               "inputs_used": (0, 15), "flood_extent": (0, 4), "flood_likelihood": (0, 100)}


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

    elevation = np.full(SHAPE, 5.0, dtype=np.float32)
    elevation[:, :100] = -1.0  # the sea, west
    written = write_scenario_maps(grid, predictor, tmp_path / "maps", provenance,
                                  outline_lonlat=slanted_outline_lonlat, tile_px=128,
                                  overlap_px=16, blocksize=128,
                                  extent=ExtentInputs(elevation, ExtentSettings(0.5, 0.2)))
    with rasterio.open(written.probability) as src:
        inside = ~src.read(1, masked=True).mask
    inside_per_row = inside.sum(axis=1)
    assert np.count_nonzero(inside_per_row % 2) > 100  # the outline cuts at odd columns
    checked = 0
    byte_maps = (written.inputs_used, written.extent.extent, written.extent.likelihood)
    for path in (written.probability, written.uncertainty, *byte_maps):
        is_valid, errors, _ = cog_validate(path, quiet=True)
        assert is_valid, (path.name, errors)
        with rasterio.open(path) as src:
            factors, names = src.overviews(1), src.descriptions
            nodata = src.nodata
        assert factors == [2, 4]
        assert nodata == (BYTE_NODATA if path in byte_maps else NODATA)
        for level, factor in enumerate(factors):
            with rasterio.open(path, overview_level=level) as overview:
                assert overview.shape == (-(-SHAPE[0] // factor), -(-SHAPE[1] // factor))
                for band, name in enumerate(names, start=1):
                    values = overview.read(band)
                    data = values[values != nodata]
                    low, high = VALID_RANGE[name]
                    outside = data[(data < low) | (data > high) | ~np.isfinite(data)]
                    assert outside.size == 0, (path.name, factor, name, outside[:5])
                    if name == "inputs_used":  # nearest: flags never mix into new sums
                        assert set(np.unique(data)) <= {8.0, 10.0}
                    if name == "flood_extent":  # mode: classes never mix into new ones
                        assert set(np.unique(data)) <= set(EXTENT_CLASSES)
                        assert SEA in data
                    # nodata only outside the outline: the overview keeps the inside pixels
                    assert data.size >= inside[::factor, ::factor].sum() * 0.95
                    checked += 1
    assert checked == 2 * (1 + 3 + 1 + 1 + 1)  # every band of the five maps at both levels
    # given the extent, the probability quicklook draws its sea in the sea colour
    with Image.open(written.quicklooks[0]) as image:
        rgb = np.asarray(image.convert("RGB"))
    assert np.all(rgb == hex_rgb(EXTENT_CLASSES[SEA][1]), axis=-1).sum() > 5_000


def test_a_map_larger_than_one_block_gets_overviews_in_every_band(tmp_path, provenance,
                                                                 field_predictor):
    """1100 x 1030 px with the default 512 px blocks: overviews 2 and 4 (the coarsest fits about
    one block, as rio-cogeo does) in every band of every file, band-interleaved valid COGs, and
    the first overview the mean of the full-resolution pixels it covers."""
    shape = (1030, 1100)
    grid = RegionGrid(GeoBox(shape, TRANSFORM, "EPSG:32631"))
    written = write_scenario_maps(grid, field_predictor(shape), tmp_path / "maps", provenance,
                                  tile_px=512, overlap_px=32)
    for path in (written.probability, written.uncertainty, written.inputs_used):
        is_valid, errors, _ = cog_validate(path, quiet=True)
        assert is_valid, (path.name, errors)
        with rasterio.open(path) as src:
            assert (src.height, src.width) == shape
            assert src.block_shapes[0] == (512, 512)
            assert src.interleaving.name == "band"
            assert all(src.overviews(band) == [2, 4] for band in src.indexes)
    with rasterio.open(written.probability) as src:
        full = src.read(1)
    with rasterio.open(written.probability, overview_level=0) as overview:
        coarse = overview.read(1)
    means = full.reshape(515, 2, 550, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(coarse, means, atol=1e-5)
