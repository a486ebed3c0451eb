"""The region grid: one CRS, transform and shape that every stage after ingest shares.

The grid is a north-up raster in a projected CRS (the UTM zone of the region's centre unless
the config names one) whose pixel edges sit on multiples of the resolution, so two runs over
the same region, or two overlapping regions, use identical pixel boundaries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
import xarray as xr
from affine import Affine
from odc.geo.crs import CRS
from odc.geo.geobox import GeoBox
from odc.geo.geom import BoundingBox
from odc.geo.xr import xr_coords
from pyproj import Transformer
from rasterio.crs import CRS as RasterioCRS
from shapely.geometry.base import BaseGeometry

from floodkd.config import region_config
from floodkd.errors import InputError
from floodkd.region import region_outline

__all__ = ["RegionGrid", "utm_crs_for", "CRS_COORD_NAME"]

CRS_COORD_NAME = "spatial_ref"  # the CF grid-mapping coordinate rioxarray and odc-geo look for
OUTLINE_SEGMENT_DEG = 0.001  # densify outline edges to ~100 m before projecting them
MAX_PIXELS = 100_000_000  # the schema's grid.max_pixels default: 100 km x 100 km at 10 m


def utm_crs_for(lon: float, lat: float) -> str:
    """The WGS 84 UTM zone CRS (``EPSG:326zz`` north, ``EPSG:327zz`` south) holding a point."""
    lon = ((lon + 180.0) % 360.0) - 180.0
    zone = min(int(math.floor((lon + 180.0) / 6.0)) + 1, 60)
    return f"EPSG:{32600 + zone if lat >= 0 else 32700 + zone}"


@dataclass(frozen=True)
class RegionGrid:
    """A region's pixel grid; wraps an odc-geo ``GeoBox`` (pixel centres at ``x``, ``y``)."""

    geobox: GeoBox

    @classmethod
    def from_outline(
        cls, outline: BaseGeometry, resolution_m: float, crs: str | None = None,
        max_pixels: int | None = None,
    ) -> RegionGrid:
        """The grid covering ``outline`` (lon/lat) at ``resolution_m`` metres.

        ``crs`` None picks the UTM zone of the outline's centre. The bounds are widened
        outwards to multiples of the resolution, so the origin is snapped. A grid of more
        than ``max_pixels`` (None: no limit) raises InputError before anything is built.
        """
        if resolution_m <= 0:
            raise ValueError(f"resolution_m must be positive, got {resolution_m}")
        centre = outline.centroid
        crs = crs or utm_crs_for(centre.x, centre.y)
        target = CRS(crs)
        if target.geographic:
            raise InputError("config", f"grid CRS {crs} is geographic (degrees)",
                             "name a projected CRS in metres, e.g. a UTM zone, or leave crs null")
        # densify first: straight lon/lat edges become curves in the grid CRS
        to_grid = Transformer.from_crs("EPSG:4326", target.to_wkt(), always_xy=True)
        projected = shapely.transform(outline.segmentize(OUTLINE_SEGMENT_DEG),
                                      to_grid.transform, interleaved=False)
        left, bottom, right, top = projected.bounds
        left = math.floor(left / resolution_m) * resolution_m
        bottom = math.floor(bottom / resolution_m) * resolution_m
        right = math.ceil(right / resolution_m) * resolution_m
        top = math.ceil(top / resolution_m) * resolution_m
        width = max(int(round((right - left) / resolution_m)), 1)
        height = max(int(round((top - bottom) / resolution_m)), 1)
        if max_pixels is not None and width * height > max_pixels:
            # a mistyped resolution would otherwise build a graph of billions of chunks
            raise InputError(
                "config", f"grid.resolution_m {resolution_m:g} gives a {height:,} x {width:,} px "
                f"grid ({width * height:,} pixels), above grid.max_pixels ({max_pixels:,})",
                "check grid.resolution_m (metres) and the region outline, or raise "
                "grid.max_pixels if the machine can hold a grid that large")
        transform = Affine(resolution_m, 0.0, left, 0.0, -resolution_m, top)
        return cls(GeoBox((height, width), transform, target))

    @classmethod
    def from_config(cls, config: dict[str, Any], region_name: str) -> RegionGrid:
        """The grid of a configured region (``grid.resolution_m``, the region's ``crs``),
        refused above ``grid.max_pixels``."""
        region = region_config(config, region_name)
        settings = config.get("grid", {})
        resolution_m = float(settings.get("resolution_m", 10))
        return cls.from_outline(region_outline(region), resolution_m, region.get("crs"),
                                int(settings.get("max_pixels", MAX_PIXELS)))

    @classmethod
    def from_dataset(cls, ds: xr.Dataset | xr.DataArray) -> RegionGrid:
        """The grid a georeferenced xarray object (e.g. a reopened cube) lies on."""
        geobox = ds.odc.geobox
        if geobox is None:
            raise ValueError("the dataset carries no CRS/transform")
        return cls(geobox)

    @property
    def crs(self) -> CRS:
        return self.geobox.crs

    @property
    def transform(self) -> Affine:
        return self.geobox.transform

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns)."""
        return (int(self.geobox.shape.y), int(self.geobox.shape.x))

    @property
    def bounds(self) -> BoundingBox:
        """(left, bottom, right, top) in grid CRS metres."""
        return self.geobox.boundingbox

    @property
    def resolution(self) -> float:
        """Pixel side in metres."""
        return float(self.transform.a)

    @property
    def x(self) -> np.ndarray:
        """Pixel-centre eastings (metres), west to east."""
        return self.transform.c + (np.arange(self.shape[1]) + 0.5) * self.transform.a

    @property
    def y(self) -> np.ndarray:
        """Pixel-centre northings (metres), north to south."""
        return self.transform.f + (np.arange(self.shape[0]) + 0.5) * self.transform.e

    def coords(self) -> dict[str, xr.DataArray]:
        """``y``, ``x`` and the ``spatial_ref`` grid-mapping coordinate for an xarray object."""
        return dict(xr_coords(self.geobox, crs_coord_name=CRS_COORD_NAME))

    def window_geobox(self, row_off: int, col_off: int, height: int, width: int) -> GeoBox:
        """The sub-grid of a pixel window."""
        return self.geobox[row_off : row_off + height, col_off : col_off + width]

    def holds(self, raster: Any) -> bool:
        """Whether an open rasterio dataset lies on this grid: same CRS, size and transform."""
        return (raster.crs is not None
                and raster.crs == RasterioCRS.from_wkt(self.crs.to_wkt())
                and (raster.height, raster.width) == self.shape
                and raster.transform.almost_equals(self.transform, precision=1e-6))

    def same_as(self, other: RegionGrid, tol: float = 1e-6) -> bool:
        """Same CRS, shape and transform (to ``tol`` metres)."""
        return (
            self.crs == other.crs
            and self.shape == other.shape
            and self.transform.almost_equals(other.transform, precision=tol)
        )
