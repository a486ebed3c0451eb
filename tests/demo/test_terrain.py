"""The DEM the pipeline reads is a degraded view of the true terrain."""

from __future__ import annotations

import numpy as np
import rasterio
from rasterio.warp import transform as warp_transform

from floodkd.demo.fields import stream
from floodkd.demo.generate import radar_geobox
from floodkd.demo.regions import DEMO_REGIONS
from floodkd.demo.terrain import true_terrain


def test_the_dem_smooths_the_sea_dike_away(demo_dir, manifest):
    spec = DEMO_REGIONS[0]
    seed, size_px = manifest["seed"], manifest["size_px"]
    margin = max(8, size_px // 10)
    terrain = true_terrain(size_px + 2 * margin, spec.layout,
                           stream(seed, spec.name, "terrain"))
    grid = radar_geobox(spec, size_px)
    rows, cols = np.nonzero(terrain.sea_dike)
    x, y = grid.affine @ (cols - margin + 0.5, rows - margin + 0.5)
    lon, lat = warp_transform(str(grid.crs), "EPSG:4326", x, y)
    with rasterio.open(demo_dir / spec.name / "dem" / "dem.tif") as src:
        on_dike = np.array([v[0] for v in src.sample(zip(lon, lat, strict=True))])
    crest = terrain.elevation_m[terrain.sea_dike]
    assert crest.min() > spec.layout.high_water_m + 2  # the real dike is well above high water
    assert on_dike.max() < crest.min()  # ...but the DEM never shows its crest


def test_the_polder_lies_below_high_water_behind_the_dike():
    spec = DEMO_REGIONS[0]
    terrain = true_terrain(80, spec.layout, np.random.default_rng(3))
    assert np.median(terrain.elevation_m[terrain.polder]) < spec.layout.high_water_m
    assert terrain.sea_dike.sum() > 0 and not (terrain.dike & terrain.polder).any()
    assert (terrain.sea_dike <= terrain.dike).all()
