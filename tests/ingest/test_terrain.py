"""Terrain ingest: metres, feet conversion, nodata, implausible heights, tile mosaics."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from floodkd.errors import InputError
from floodkd.ingest import terrain

# 0.001 degree pixels at lon 3.0 E, lat 45.1 N, inside the test region
LONLAT = from_origin(3.0, 45.1, 0.001, 0.001)


def _ingest(tmp_path, make_region, **options):
    out = tmp_path / "out"
    out.mkdir()
    terrain.ingest(make_region("terrain", tmp_path / "*.tif", **options), out)
    return out / "dem.tif"


def test_metres_kept_nodata_becomes_nan_native_crs(tmp_path, write_raster, make_region):
    heights = np.array([[-2.5, 0.0, 3.25], [12.0, -9999.0, 1.0]], dtype=np.float32)
    write_raster(tmp_path / "dem.tif", heights, crs="EPSG:4326", transform=LONLAT,
                 nodata=-9999.0)
    with rasterio.open(_ingest(tmp_path, make_region, unit="m")) as src:
        dem = src.read(1)
        assert src.crs.to_epsg() == 4326 and src.transform == LONLAT
        assert src.dtypes[0] == "float32" and np.isnan(src.nodata)
        assert src.descriptions == ("elevation",) and src.units == ("m",)
    assert np.isnan(dem[1, 1])
    np.testing.assert_array_equal(np.delete(dem.ravel(), 4), [-2.5, 0.0, 3.25, 12.0, 1.0])


def test_feet_are_converted_to_metres(tmp_path, write_raster, make_region):
    write_raster(tmp_path / "dem.tif", np.array([[10, 100]], dtype=np.int16),
                 crs="EPSG:4326", transform=LONLAT, units=["ft"])
    with rasterio.open(_ingest(tmp_path, make_region)) as src:
        np.testing.assert_allclose(src.read(1)[0], [3.048, 30.48], rtol=1e-6)


def test_unknown_unit_is_refused(tmp_path, write_raster, make_region):
    write_raster(tmp_path / "dem.tif", np.array([[10, 100]], dtype=np.int16),
                 crs="EPSG:4326", transform=LONLAT, units=["cm"])
    with pytest.raises(InputError, match="'cm' is not metres or feet"):
        _ingest(tmp_path, make_region)


def test_undeclared_fill_value_is_refused_naming_the_file(tmp_path, write_raster, make_region):
    write_raster(tmp_path / "glo30.tif", np.array([[5, -32768]], dtype=np.int16),
                 crs="EPSG:4326", transform=LONLAT)
    with pytest.raises(InputError, match="-32768") as error:
        _ingest(tmp_path, make_region, unit="m")
    assert "glo30.tif" in str(error.value) and "nodata" in error.value.fix


def test_tiles_are_mosaicked(tmp_path, write_raster, make_region):
    write_raster(tmp_path / "a.tif", np.full((2, 2), 1.0, np.float32), crs="EPSG:4326",
                 transform=LONLAT)
    write_raster(tmp_path / "b.tif", np.full((2, 2), 2.0, np.float32), crs="EPSG:4326",
                 transform=from_origin(3.002, 45.1, 0.001, 0.001))
    with rasterio.open(_ingest(tmp_path, make_region, unit="m")) as src:
        assert src.shape == (2, 4) and src.transform == LONLAT
        np.testing.assert_array_equal(src.read(1), [[1, 1, 2, 2], [1, 1, 2, 2]])


def test_tiles_in_different_crs_are_refused(tmp_path, write_raster, make_region):
    write_raster(tmp_path / "a.tif", np.full((2, 2), 1.0, np.float32), crs="EPSG:4326",
                 transform=LONLAT)
    write_raster(tmp_path / "b.tif", np.full((2, 2), 2.0, np.float32))  # UTM 31N
    with pytest.raises(InputError, match="reproject"):
        _ingest(tmp_path, make_region, unit="m")


def test_a_scene_larger_than_the_region_is_cropped_to_it_plus_a_margin(
        tmp_path, write_raster, make_region):
    from floodkd.ingest.rasters import REGION_MARGIN_PX, read_raster
    from floodkd.region import region_outline

    region = make_region("terrain", tmp_path / "*.tif")
    lon_min, lat_min, lon_max, lat_max = region["bbox"]
    # a 0.001 degree DEM reaching 0.5 degree beyond the region on every side
    origin = from_origin(lon_min - 0.5, lat_max + 0.5, 0.001, 0.001)
    rows = round((lat_max - lat_min + 1.0) / 0.001)
    cols = round((lon_max - lon_min + 1.0) / 0.001)
    heights = np.arange(rows * cols, dtype=np.float32).reshape(rows, cols) % 1000
    write_raster(tmp_path / "big.tif", heights, crs="EPSG:4326", transform=origin)
    raster = read_raster(tmp_path / "big.tif", region_outline(region))
    region_rows = round((lat_max - lat_min) / 0.001)
    assert raster.data.shape[1] <= region_rows + 2 * REGION_MARGIN_PX + 2 < rows
    # the crop keeps georeferencing: its first pixel is the big raster's pixel at that spot
    col, row = ~origin @ (raster.transform.c, raster.transform.f)
    assert raster.data[0, 0, 0] == heights[round(row), round(col)]
    west, north = raster.transform.c, raster.transform.f
    assert west <= lon_min and north >= lat_max  # the region is inside the crop
