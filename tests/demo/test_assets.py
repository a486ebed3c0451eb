"""The demo's assets, zones and defence register: real formats, placed where such things stand."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.features

from floodkd.risk.exposure_assets import read_assets, read_polygons
from tests.demo.conftest import DEMO_SEED, DEMO_SIZE_PX


def _truth_grid(demo_dir: Path):
    truth = next((demo_dir / "demo-target" / "truth").glob("*.tif"))
    return rasterio.open(truth)


def test_assets_are_an_osm_style_geopackage_of_every_kind(demo_dir: Path):
    path = demo_dir / "demo-target" / "assets" / "assets.gpkg"
    assets = read_assets(path)  # the reader floodkd exposure uses
    assert assets.crs.to_epsg() == 4326
    assert {"pumping_station", "hospital", "road", "building"} <= set(assets["class"])
    kinds = dict(zip(assets["class"], assets.geom_type, strict=False))
    assert kinds["pumping_station"] == "Point" and kinds["road"] == "LineString"
    assert kinds["hospital"] == "Polygon"
    hospital = assets[assets["class"] == "hospital"].iloc[0]
    assert hospital["amenity"] == "hospital" and hospital["building"] == "hospital"
    assert assets.loc[assets["class"] == "pumping_station", "man_made"].item() == \
        "pumping_station"
    assert set(assets.loc[assets["class"] == "building", "building"]) <= {"house", "farm"}
    assert not (demo_dir / "demo-source" / "assets").exists()  # only target regions get them


def test_pumping_station_is_in_the_polder_and_below_the_hospital(demo_dir: Path):
    assets = gpd.read_file(demo_dir / "demo-target" / "assets" / "assets.gpkg")
    zones = read_polygons(demo_dir / "demo-target" / "zones" / "zones.gpkg", "zones")
    polder = zones[zones["name"] == "Polder and dike ring"].geometry.item()
    with _truth_grid(demo_dir) as grid:
        on_grid = assets.to_crs(grid.crs)
        pump = on_grid[on_grid["class"] == "pumping_station"].geometry.item()
        hospital = on_grid[on_grid["class"] == "hospital"].geometry.item().centroid
        dem = rasterio.open(demo_dir / "demo-target" / "dem" / "dem.tif")
        lonlat = gpd.GeoSeries([pump, hospital], crs=grid.crs).to_crs(4326)
        heights = [v[0] for v in dem.sample([(p.x, p.y) for p in lonlat])]
    assert polder.contains(pump)
    assert heights[0] < heights[1]  # the polder's low point lies below the town


def test_zones_cover_the_region_without_overlap(demo_dir: Path):
    zones = gpd.read_file(demo_dir / "demo-target" / "zones" / "zones.gpkg")
    with _truth_grid(demo_dir) as grid:
        area = grid.width * grid.height * abs(grid.transform.a * grid.transform.e)
        assert zones.crs == grid.crs
    assert np.isclose(zones.area.sum(), area)
    assert np.isclose(zones.union_all().area, area)


def test_the_defence_register_holds_the_polder_and_its_ring_s_lowest_crest(demo_dir: Path):
    """Every region's register: the ring dike's protected land, its crest within a survey's
    error of the ring's lowest crest cell (where water would first overtop it)."""
    from floodkd.demo.generate import radar_geobox, region_terrain
    from floodkd.demo.regions import DEMO_REGIONS
    from floodkd.ingest.defences import read_defences

    for spec in DEMO_REGIONS:
        register = read_defences(demo_dir / spec.name / "defences" / "defences.gpkg", "crest_m")
        terrain, inner = region_terrain(spec, DEMO_SEED, DEMO_SIZE_PX)
        lowest = float(terrain.elevation_m[terrain.dike].min())
        assert len(register) == 1
        assert abs(float(register["crest_m"].item()) - lowest) < 0.4  # 4 survey errors
        grid = radar_geobox(spec, DEMO_SIZE_PX)
        burnt = rasterio.features.rasterize(register.to_crs(grid.crs.to_wkt()).geometry,
                                            out_shape=grid.shape, transform=grid.affine)
        np.testing.assert_array_equal(burnt == 1, terrain.polder[inner])
