"""STAC Items (core + projection + raster + floodkd extensions) describing each map, and the
region's Collection that links them, for catalogues.

Every file of a region's maps folder refers to the others by relative href (``./name``), so
the folder can be moved or served as it is: each Item links ``self`` (its own file),
``parent`` and ``collection`` (``./collection.json``, written by ``write_region_collection``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import pystac
from affine import Affine
from pyproj import CRS as ProjCRS
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import RasterBand, RasterExtension
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from floodkd import __version__
from floodkd.atomic import atomic_path
from floodkd.errors import InputError
from floodkd.predict.cog import BYTE_NODATA, NODATA, BandSpec

__all__ = [
    "FLOODKD_EXTENSION",
    "CLASSIFICATION_EXTENSION",
    "LICENSE",
    "COLLECTION_FILE",
    "ITEM_SUFFIX",
    "collection_id",
    "providers",
    "floodkd_extension_schema",
    "map_item",
    "write_item",
    "region_collection",
    "write_region_collection",
]

# the floodkd extension's schema ships in the package (floodkd_extension_schema() reads it);
# the host .invalid says that the id is a name, not a place to fetch the schema from
FLOODKD_EXTENSION = "https://floodkd.invalid/stac-extensions/floodkd/v1.0.0/schema.json"
CLASSIFICATION_EXTENSION = "https://stac-extensions.github.io/classification/v2.0.0/schema.json"
LICENSE = "MIT"  # the project's licence (pyproject.toml); the maps are its output
COLLECTION_FILE = "collection.json"
ITEM_SUFFIX = ".stac.json"
EXTENSION_SCHEMA_FILE = "floodkd-stac-extension.json"


def collection_id(region: str) -> str:
    """The id of a region's Collection, which its Items name in ``collection``."""
    return f"floodkd-{region}"


def providers() -> list[pystac.Provider]:
    """Who made the maps: floodkd, as producer and processor."""
    return [pystac.Provider(
        name="floodkd", roles=[pystac.ProviderRole.PRODUCER, pystac.ProviderRole.PROCESSOR],
        description=f"floodkd {__version__}: flood probability maps by cross-modal knowledge "
                    "distillation (open source, MIT)",
    )]


def floodkd_extension_schema() -> dict[str, Any]:
    """The JSON schema of the ``floodkd:`` fields, as shipped in the package."""
    return json.loads((files("floodkd.predict") / EXTENSION_SCHEMA_FILE).read_text("utf-8"))


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
    inputs_window: tuple[datetime, datetime],
    created: datetime,
    region: str,
    properties: Mapping[str, Any],
    data_type: str = "float32",
    asset_fields: Mapping[str, Any] = {},  # noqa: B006 (read only)
    extra_assets: Mapping[str, tuple[str, str, list[str]]] = {},  # noqa: B006 (read only)
) -> pystac.Item:
    """A STAC Item for one COG of ``region``.

    ``footprint_lonlat`` is the mapped area in EPSG:4326; ``crs``, ``transform`` and ``shape``
    are the region grid's. ``inputs_window`` is (first, last) time of the inputs the map rests
    on. ``properties`` are the ``floodkd:`` fields (JSON values, checked against the shipped
    extension schema by the tests). ``data_type`` is the COG's (float32: nodata -9999, uint8:
    nodata 255); ``asset_fields`` are added to the data asset (e.g.
    ``classification:bitfields``). ``extra_assets`` maps key -> (file name, media type, roles)
    for the style files and the quicklook beside the COG. Hrefs are relative to the Item's
    folder.
    """
    rows, cols = shape
    left, top = transform @ (0, 0)
    right, bottom = transform @ (cols, rows)
    start, end = inputs_window
    if start > end:
        raise ValueError(f"inputs window starts {start.isoformat()} after it ends "
                         f"{end.isoformat()}")
    epsg = ProjCRS.from_user_input(crs).to_epsg()
    item = pystac.Item(
        id=item_id,
        geometry=mapping(footprint_lonlat),
        bbox=list(footprint_lonlat.bounds),
        datetime=map_datetime,
        properties=dict(properties),
        start_datetime=start,
        end_datetime=end,
        collection=collection_id(region),
    )
    item.common_metadata.created = created
    item.common_metadata.license = LICENSE
    item.common_metadata.providers = providers()
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
    nodata = NODATA if data_type == "float32" else BYTE_NODATA
    RasterExtension.ext(asset, add_if_missing=True).bands = [
        RasterBand.create(nodata=nodata, data_type=data_type, unit=band.unit,
                          scale=band.scale, offset=band.offset)
        for band in bands
    ]
    # STAC 1.1 common band names, so catalogues show what each band is
    asset.extra_fields["bands"] = [
        {"name": band.name, "description": band.description} for band in bands
    ]
    asset.extra_fields.update(asset_fields)
    if "classification:bitfields" in asset_fields:
        item.stac_extensions.append(CLASSIFICATION_EXTENSION)
    item.stac_extensions.append(FLOODKD_EXTENSION)
    for key, (name, media_type, roles) in extra_assets.items():
        item.add_asset(key, pystac.Asset(href=f"./{name}", media_type=media_type, roles=roles))
    return item


def _relative_link(rel: str, name: str, media_type: str) -> dict[str, str]:
    return {"rel": rel, "href": f"./{name}", "type": media_type}


def write_item(item: pystac.Item, path: str | Path) -> Path:
    """Write the Item as JSON atomically, with relative asset hrefs and relative links to
    itself and to the Collection (``./collection.json``) of its folder."""
    path = Path(path)
    document = item.to_dict(include_self_link=False, transform_hrefs=False)
    document["links"] = [
        _relative_link("self", path.name, pystac.MediaType.GEOJSON),
        _relative_link("parent", COLLECTION_FILE, pystac.MediaType.JSON),
        _relative_link("collection", COLLECTION_FILE, pystac.MediaType.JSON),
    ]
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def region_collection(
    items: Mapping[str, Mapping[str, Any]], region: str, description: str
) -> dict[str, Any]:
    """The Collection document of ``region`` for its Items ({file name: Item document}):
    spatial and temporal extent are the union of the Items', links relative."""
    if not items:
        raise ValueError(f"no STAC Items for region {region}: a Collection needs at least one")
    boxes = [item["bbox"] for item in items.values()]
    union = [min(b[0] for b in boxes), min(b[1] for b in boxes),
             max(b[2] for b in boxes), max(b[3] for b in boxes)]
    starts, ends = [], []
    for item in items.values():
        props = item["properties"]
        starts.append(pystac.utils.str_to_datetime(props.get("start_datetime")
                                                   or props["datetime"]))
        ends.append(pystac.utils.str_to_datetime(props.get("end_datetime")
                                                 or props["datetime"]))
    collection = pystac.Collection(
        id=collection_id(region),
        title=f"floodkd maps of {region}",
        description=description,
        extent=pystac.Extent(pystac.SpatialExtent([union]),
                             pystac.TemporalExtent([[min(starts), max(ends)]])),
        license=LICENSE,
        providers=providers(),
    )
    document = collection.to_dict(include_self_link=False, transform_hrefs=False)
    document["links"] = [
        _relative_link("self", COLLECTION_FILE, pystac.MediaType.JSON),
        _relative_link("root", COLLECTION_FILE, pystac.MediaType.JSON),
        *(_relative_link("item", name, pystac.MediaType.GEOJSON) for name in sorted(items)),
    ]
    return document


def write_region_collection(maps_dir: Path, region: str, description: str) -> Path:
    """Read every ``*.stac.json`` Item in ``maps_dir`` and write ``maps_dir/collection.json``
    (atomically), the region's Collection linking them."""
    maps_dir = Path(maps_dir)
    items: dict[str, dict[str, Any]] = {}
    for path in sorted(maps_dir.glob(f"*{ITEM_SUFFIX}")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise InputError(path, f"is not valid JSON ({error})",
                             "rerun `floodkd predict` for its scenario") from error
        expected = collection_id(region)
        if document.get("type") != "Feature" or document.get("collection") != expected:
            raise InputError(path, f"is not a STAC Item of collection {expected}",
                             f"remove it from {maps_dir} or rerun `floodkd predict` for "
                             f"region {region}")
        items[path.name] = document
    if not items:
        raise InputError(maps_dir, f"holds no *{ITEM_SUFFIX} Items",
                         f"run `floodkd predict` for region {region} first")
    path = maps_dir / COLLECTION_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(region_collection(items, region, description), indent=2)
                       + "\n", encoding="utf-8")
    return path
