"""Lazy regridding of native-grid rasters onto the region grid (odc-geo on dask, GDAL inside).

Every band is opened lazily with rioxarray and reprojected with ``odc.geo.xr.xr_reproject``,
which builds one dask task per output chunk that warps only the source blocks it overlaps,
so memory is bounded by the chunk size, never by the region size.
"""

from __future__ import annotations

import math
from pathlib import Path

import dask.array as da
import numpy as np
import rasterio
import rioxarray
import xarray as xr
from odc.geo.xr import xr_reproject
from pyproj import Transformer

from floodkd.errors import InputError
from floodkd.grid import RegionGrid

__all__ = [
    "band_names",
    "open_band",
    "regrid_band",
    "continuous_resampling",
    "native_resolution_m",
    "missing_plane",
]

# Source blocks read per task: large enough to amortise GDAL calls, small for memory.
SOURCE_CHUNK_PX = 768


def band_names(path: Path) -> list[str]:
    """The band descriptions of a GeoTIFF (raises InputError if unreadable or not georeferenced)."""
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise InputError(path, "the raster has no CRS",
                                 "rerun ingest for this modality so it writes a georeferenced file")
            return [d or "" for d in src.descriptions]
    except rasterio.errors.RasterioIOError as error:
        raise InputError(path, f"cannot open the raster ({error})",
                         "rerun ingest for this modality") from error


def open_band(path: Path, band: str | int) -> xr.DataArray:
    """One band of a GeoTIFF as a lazy 2-D (y, x) DataArray, by description or 1-based number."""
    if isinstance(band, str):
        names = band_names(path)
        if band not in names:
            raise InputError(path, f"band '{band}' not found (bands: {names})",
                             "rerun ingest; the contract fixes the band descriptions")
        number = names.index(band) + 1
    else:
        band_names(path)
        number = band
    array = rioxarray.open_rasterio(
        path, chunks={"band": 1, "y": SOURCE_CHUNK_PX, "x": SOURCE_CHUNK_PX}, lock=False
    )
    return array.sel(band=number, drop=True)


def native_resolution_m(array: xr.DataArray) -> float:
    """The source pixel side in metres, measured at the raster's centre (degrees converted)."""
    geobox = array.odc.geobox
    res_x, res_y = abs(geobox.resolution.x), abs(geobox.resolution.y)
    if not geobox.crs.geographic:
        return math.sqrt(res_x * res_y)
    centre = geobox.extent.centroid.coords[0]
    to_metres = Transformer.from_crs(geobox.crs.to_wkt(), "EPSG:3857", always_xy=True)
    (x0, x1), (y0, y1) = to_metres.transform(
        [centre[0], centre[0] + res_x], [centre[1], centre[1] + res_y]
    )
    # Web Mercator scales both axes by 1/cos(lat); undo it to get ground metres
    scale = math.cos(math.radians(centre[1]))
    return math.sqrt(abs(x1 - x0) * abs(y1 - y0)) * scale


def continuous_resampling(source_res_m: float, grid_res_m: float) -> str:
    """Bilinear when refining or keeping the resolution, average when coarsening."""
    return "average" if source_res_m < grid_res_m * 0.999 else "bilinear"


def regrid_band(
    array: xr.DataArray,
    grid: RegionGrid,
    chunk_px: int,
    resampling: str,
    nodata: float | int,
    dtype: str | np.dtype,
) -> da.Array:
    """Warp a lazy 2-D band onto ``grid``; returns a dask array chunked ``chunk_px`` square.

    ``nodata`` marks missing values both in the source and the output (NaN for floats), so
    missing pixels and pixels outside the source footprint stay missing, never 0.
    """
    source = array.astype(dtype) if array.dtype != np.dtype(dtype) else array
    warped = xr_reproject(
        source,
        grid.geobox,
        resampling=resampling,
        src_nodata=nodata,
        dst_nodata=nodata,
        dtype=dtype,
        chunks=(chunk_px, chunk_px),
    )
    return warped.data


def missing_plane(grid: RegionGrid, chunk_px: int, fill: float | int, dtype) -> da.Array:
    """A lazy (y, x) plane of ``fill`` for times with no matching scene."""
    return da.full(grid.shape, fill, dtype=dtype, chunks=(chunk_px, chunk_px))
