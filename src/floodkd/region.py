"""A region's outline in lon/lat, from the config's ``bbox`` or ``area_file``."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from floodkd.errors import InputError

__all__ = ["region_outline"]


def region_outline(region: dict[str, Any]) -> BaseGeometry:
    """The region as one geometry in EPSG:4326 (lon/lat degrees)."""
    if "bbox" in region:
        lon_min, lat_min, lon_max, lat_max = region["bbox"]
        if not (lon_min < lon_max and lat_min < lat_max and -90 <= lat_min and lat_max <= 90):
            raise InputError(
                "config", f"bbox {region['bbox']} is empty or out of range",
                "give [lon_min, lat_min, lon_max, lat_max] in degrees",
            )
        return box(lon_min, lat_min, lon_max, lat_max)
    path = region["area_file"]
    try:
        frame = gpd.read_file(path)
    except Exception as error:  # fiona/pyogrio raise many types for unreadable files
        raise InputError(path, f"cannot read the region outline ({error})",
                         "point area_file at a GeoJSON or GeoPackage file") from error
    if frame.crs is None:
        raise InputError(path, "the region outline has no CRS",
                         "save it with a CRS (e.g. EPSG:4326)")
    if frame.empty:
        raise InputError(path, "the region outline has no features", "add the region's polygon")
    return frame.to_crs("EPSG:4326").geometry.union_all()
