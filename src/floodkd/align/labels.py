"""Sparse labels on the grid: raster labels by nearest neighbour, vector labels rasterised."""

from __future__ import annotations

import dask.array as da
import geopandas as gpd
import numpy as np
from rasterio.features import rasterize

from floodkd.grid import RegionGrid

__all__ = ["NO_LABEL", "DRY", "WATER", "rasterise_polygons", "rasterise_values"]

DRY, WATER, NO_LABEL = 0, 1, 255


def _rasterise_block(
    _: np.ndarray, shapes: list, grid: RegionGrid, fill: float, out_dtype: str,
    block_info=None
) -> np.ndarray:
    (r0, r1), (c0, c1) = block_info[None]["array-location"]
    window = grid.window_geobox(r0, c0, r1 - r0, c1 - c0)
    if not shapes:
        return np.full((r1 - r0, c1 - c0), fill, dtype=out_dtype)
    return rasterize(shapes, out_shape=(r1 - r0, c1 - c0), transform=window.transform,
                     fill=fill, dtype=out_dtype)


def rasterise_values(polygons: gpd.GeoDataFrame, column: str, grid: RegionGrid, chunk_px: int,
                     fill: float, dtype: str) -> da.Array:
    """Lazy (y, x) plane of ``column``: pixels whose centre lies in a polygon take its value,
    the highest where polygons overlap; ``fill`` elsewhere."""
    frame = polygons.to_crs(grid.crs.to_wkt()).sort_values(column, kind="stable")
    shapes = list(zip(frame.geometry, frame[column].tolist(), strict=True))  # last burnt wins
    template = da.empty(grid.shape, dtype=dtype, chunks=(chunk_px, chunk_px))
    return da.map_blocks(_rasterise_block, template, shapes=shapes, grid=grid, fill=fill,
                         out_dtype=dtype, dtype=dtype, meta=np.empty((0, 0), dtype))


def rasterise_polygons(polygons: gpd.GeoDataFrame, grid: RegionGrid, chunk_px: int) -> da.Array:
    """Lazy (y, x) uint8 label plane from polygons with a ``label`` column (0 dry, 1 water).

    Pixels whose centre lies in a polygon take its label; water is burnt last, so where
    a water and a dry polygon overlap the pixel is water. Elsewhere 255 (no label).
    """
    return rasterise_values(polygons, "label", grid, chunk_px, NO_LABEL, "uint8")
