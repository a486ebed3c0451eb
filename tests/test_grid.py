"""The region grid: UTM choice, snapped origin, coordinates, config entry point."""

import numpy as np
import pytest
from shapely.geometry import box

from floodkd.errors import InputError
from floodkd.grid import RegionGrid, utm_crs_for


@pytest.mark.parametrize(("lon", "lat", "epsg"), [
    (3.0001, 51.0, "EPSG:32631"), (-0.5, 50.0, "EPSG:32630"), (90.4, 22.3, "EPSG:32646"),
    (151.2, -33.9, "EPSG:32756"), (179.99, 0.0, "EPSG:32660"), (-179.99, -1.0, "EPSG:32701"),
])
def test_utm_zone_of_a_point(lon, lat, epsg):
    assert utm_crs_for(lon, lat) == epsg


def test_grid_is_snapped_and_covers_the_outline():
    outline = box(90.40, 22.30, 90.43, 22.32)
    grid = RegionGrid.from_outline(outline, 10.0)
    assert grid.crs.epsg == 32646
    t = grid.transform
    assert t.a == 10 and t.e == -10 and t.b == 0 and t.d == 0
    assert t.c % 10 == 0 and t.f % 10 == 0  # origin on a multiple of the resolution
    left, bottom, right, top = grid.bounds
    assert (right - left, top - bottom) == (grid.shape[1] * 10, grid.shape[0] * 10)
    corners = grid.geobox.extent.to_crs("EPSG:4326").boundingbox
    assert corners.left <= 90.40 and corners.right >= 90.43
    assert corners.bottom <= 22.30 and corners.top >= 22.32
    # pixel centres: half a pixel inside the edges, x east-, y southwards
    assert grid.x[0] == left + 5 and grid.y[0] == top - 5
    assert np.all(np.diff(grid.x) == 10) and np.all(np.diff(grid.y) == -10)
    coords = grid.coords()
    np.testing.assert_array_equal(coords["x"].values, grid.x)
    assert "spatial_ref" in coords


def test_named_crs_and_resolution_from_config():
    config = {"regions": {"r": {"role": "target", "bbox": [3.0, 51.0, 3.01, 51.01],
                                "crs": "EPSG:3035", "inputs": {}}},
              "grid": {"resolution_m": 30}}
    grid = RegionGrid.from_config(config, "r")
    assert grid.crs.epsg == 3035 and grid.resolution == 30
    assert grid.transform.c % 30 == 0
    same = RegionGrid.from_config(config, "r")
    assert grid.same_as(same)


def test_geographic_crs_is_refused():
    with pytest.raises(InputError, match="geographic"):
        RegionGrid.from_outline(box(3.0, 51.0, 3.01, 51.01), 10.0, "EPSG:4326")


def test_a_grid_above_max_pixels_is_refused_with_its_size():
    config = {"regions": {"r": {"role": "target", "bbox": [3.0, 51.0, 3.01, 51.01],
                                "crs": "EPSG:3035", "inputs": {}}},
              "grid": {"resolution_m": 10, "max_pixels": 10_000}}
    rows, cols = RegionGrid.from_outline(box(3.0, 51.0, 3.01, 51.01), 10, "EPSG:3035").shape
    assert RegionGrid.from_config(config, "r").shape == (rows, cols)  # the limit itself: fine
    config["grid"]["max_pixels"] = rows * cols - 1
    with pytest.raises(InputError, match=f"config: grid.resolution_m 10 gives a {rows} x {cols} "
                       f"px grid \\({rows * cols:,} pixels\\), above grid.max_pixels "
                       f"\\({rows * cols - 1:,}\\). Fix: check grid.resolution_m"):
        RegionGrid.from_config(config, "r")
    # the default limit: a resolution typed as 0.001 m never builds its 10^10 px grid
    del config["grid"]["max_pixels"]
    config["grid"]["resolution_m"] = 0.001
    with pytest.raises(InputError, match="above grid.max_pixels \\(100,000,000\\)"):
        RegionGrid.from_config(config, "r")
