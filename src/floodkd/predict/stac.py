"""STAC Items (core + projection + raster extensions) describing each map, for catalogues."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pystac
from affine import Affine
from pyproj import CRS as ProjCRS
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from floodkd.atomic import atomic_path
from floodkd.predict.cog import NODATA, BandSpec

__all__ = ["map_item", "write_item"]


def map_item(
    item_id: str,
    *,
    cog_name: str,
    bands: Sequence[BandSpec],
    footprint_lonlat: BaseGeometry,
    crs: str,
    transform: Affine,
    shape: tuple[int, int],
    map_datetime: datetime,
    created: datetime,
    properties: Mapping[str, Any],
    extra_assets: Mapping[str, tuple[str, str, list[str]]] = {},  # noqa: B006 (read only)
) -> pystac.Item:
    """A STAC Item for one COG.

    ``footprint_lonlat`` is the mapped area in EPSG:4326; ``crs``, ``transform`` and ``shape``
    are the region grid's. ``extra_assets`` maps key -> (file name, media type, roles) for the
    style file and the quicklook beside the COG. Hrefs are relative to the item's folder.
    """
    rows, cols = shape
    left, top = transform @ (0, 0)
    right, bottom = transform @ (cols, rows)
    epsg = ProjCRS.from_user_input(crs).to_epsg()
    item = pystac.Item(
        id=item_id,
        geometry=mapping(footprint_lonlat),
        bbox=list(footprint_lonlat.bounds),
        datetime=map_datetime,
        properties=dict(properties),
    )
    item.common_metadata.created = created
    projection = ProjectionExtension.ext(item, add_if_missing=True)
    if epsg is not None:
        projection.code = f"EPSG:{epsg}"
    else:
        projection.code = None
        projection.wkt2 = ProjCRS.from_user_input(crs).to_wkt()
    projection.shape = [rows, cols]
    projection.transform = [transform.a, transform.b, transform.c,
                            transform.d, transform.e, transform.f]
    projection.bbox = [min(left, right), min(bottom, top), max(left, right), max(bottom, top)]
    asset = pystac.Asset(href=f"./{cog_name}", media_type=pystac.MediaType.COG,
                         roles=["data"], title=item_id)
    item.add_asset("data", asset)
    RasterExtension.ext(asset, add_if_missing=True).bands = [
        RasterBand.create(nodata=NODATA, data_type=DataType.FLOAT32, unit=band.unit,
                          scale=band.scale, offset=band.offset)
        for band in bands
    ]
    # STAC 1.1 common band names, so catalogues show what each band is
    asset.extra_fields["bands"] = [
        {"name": band.name, "description": band.description} for band in bands
    ]
    for key, (name, media_type, roles) in extra_assets.items():
        item.add_asset(key, pystac.Asset(href=f"./{name}", media_type=media_type, roles=roles))
    return item


def write_item(item: pystac.Item, path: str | Path) -> Path:
    """Write the Item as JSON (relative asset hrefs, no self link) atomically."""
    path = Path(path)
    document = item.to_dict(include_self_link=False, transform_hrefs=False)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path
