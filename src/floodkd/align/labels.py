"""Sparse labels on the grid: raster labels by nearest neighbour, vector labels rasterised."""

from __future__ import annotations

import dask.array as da
import geopandas as gpd
import numpy as np
from rasterio.features import rasterize

from floodkd.grid import RegionGrid

__all__ = ["NO_LABEL", "DRY", "WATER", "rasterise_polygons"]

DRY, WATER, NO_LABEL = 0, 1, 255


def _rasterise_block(
    _: np.ndarray, shapes: list, grid: RegionGrid, block_info=None
) -> np.ndarray:
    (r0, r1), (c0, c1) = block_info[None]["array-location"]
    window = grid.window_geobox(r0, c0, r1 - r0, c1 - c0)
    if not shapes:
        return np.full((r1 - r0, c1 - c0), NO_LABEL, dtype=np.uint8)
    return rasterize(
        shapes, out_shape=(r1 - r0, c1 - c0), transform=window.transform,
        fill=NO_LABEL, dtype="uint8",
    )


def rasterise_polygons(polygons: gpd.GeoDataFrame, grid: RegionGrid, chunk_px: int) -> da.Array:
    """Lazy (y, x) uint8 label plane from polygons with a ``label`` column (0 dry, 1 water).

    Pixels whose centre lies in a polygon take its label; water is burnt last, so where
    a water and a dry polygon overlap the pixel is water. Elsewhere 255 (no label).
    """
    frame = polygons.to_crs(grid.crs.to_wkt())
    frame = frame.sort_values("label", kind="stable")  # dry first, water overwrites
    shapes = [(geom, int(value)) for geom, value in zip(frame.geometry, frame["label"],
                                                          strict=True)]
    template = da.empty(grid.shape, dtype=np.uint8, chunks=(chunk_px, chunk_px))
    return da.map_blocks(_rasterise_block, template, shapes=shapes, grid=grid, dtype=np.uint8)
