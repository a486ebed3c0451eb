"""Reading a region's assets layer (GeoPackage or GeoParquet), with errors a user can act on."""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import pyogrio
import shapely

from floodkd.errors import InputError

__all__ = ["ASSET_SUFFIXES", "CLASS_COLUMN", "read_assets", "read_polygons"]

log = logging.getLogger(__name__)

ASSET_SUFFIXES = (".gpkg", ".parquet", ".geoparquet")
CLASS_COLUMN = "class"  # what the exposure summary groups by: building, road, hospital, ...
_FORMATS = "a GeoPackage (.gpkg) or GeoParquet (.parquet) file"


def read_assets(path: str | Path, key: str = "regions.<region>.assets") -> gpd.GeoDataFrame:
    """The assets of ``path``: one layer of points, lines or polygons with a CRS and a
    ``class`` column. ``key`` is the config key that named the file (for the messages)."""
    frame = _read_layer(Path(path), key)
    if CLASS_COLUMN not in frame.columns:
        raise InputError(path, f"has no '{CLASS_COLUMN}' column (columns: "
                         f"{', '.join(map(str, frame.columns.drop('geometry')))})",
                         f"add a '{CLASS_COLUMN}' column naming each asset's kind (building, "
                         "road, hospital, pumping_station, ...), e.g. from its OSM tags")
    missing_class = frame[CLASS_COLUMN].isna()
    if missing_class.any():
        rows = ", ".join(map(str, frame.index[missing_class][:5]))
        raise InputError(path, f"{int(missing_class.sum())} asset(s) have no '{CLASS_COLUMN}' "
                         f"(rows {rows})", f"give every asset a '{CLASS_COLUMN}'")
    frame[CLASS_COLUMN] = frame[CLASS_COLUMN].astype(str)
    return frame


def read_polygons(path: str | Path, key: str) -> gpd.GeoDataFrame:
    """One layer of polygons (zones) with a CRS."""
    frame = _read_layer(Path(path), key)
    kinds = set(frame.geom_type)
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise InputError(path, f"holds {', '.join(sorted(kinds))} geometries, not only polygons",
                         f"give {key} a layer of (multi)polygons")
    return frame


def _read_layer(path: Path, key: str) -> gpd.GeoDataFrame:
    if not path.is_file():
        raise InputError(path, "file not found", f"set {key} to an existing file: {_FORMATS}")
    suffix = path.suffix.lower()
    if suffix not in ASSET_SUFFIXES:
        raise InputError(path, f"'{suffix}' is not a supported format",
                         f"convert it to {_FORMATS}, e.g. with "
                         f"`ogr2ogr -f GPKG {path.with_suffix('.gpkg').name} {path.name}`")
    try:
        if suffix == ".gpkg":
            layers = [name for name, _ in pyogrio.list_layers(path)]
            if len(layers) != 1:
                raise InputError(path, f"holds {len(layers)} layers ({', '.join(layers)}), "
                                 "so it is not clear which one to read",
                                 "keep one layer in the file (e.g. `ogr2ogr -f GPKG out.gpkg "
                                 f"{path.name} <layer>`)")
            frame = gpd.read_file(path, layer=layers[0])
        else:
            frame = gpd.read_parquet(path)
    except InputError:
        raise
    except Exception as error:  # GDAL or Arrow could not parse it: say so, with the cause
        raise InputError(path, f"could not be read as {_FORMATS} ({error})",
                         "check the file opens in QGIS; rewrite it with ogr2ogr") from error
    if frame.empty:
        raise InputError(path, "holds no features", f"point {key} at a file with features")
    if frame.crs is None:
        raise InputError(path, "has no coordinate reference system",
                         f"assign one, e.g. `ogr2ogr -a_srs EPSG:4326 fixed{suffix} "
                         f"{path.name}`")
    empty = frame.geometry.isna() | frame.geometry.is_empty
    if empty.any():
        rows = ", ".join(map(str, frame.index[empty][:5]))
        raise InputError(path, f"{int(empty.sum())} feature(s) have no geometry (rows {rows})",
                         "remove them or give them a geometry")
    invalid = ~frame.geometry.is_valid
    if invalid.any():  # e.g. a self-touching ring digitised by hand: repair, do not refuse
        log.warning("%s: repairing %d invalid geometries (shapely.make_valid)", path,
                    int(invalid.sum()))
        frame.loc[invalid, "geometry"] = shapely.make_valid(frame.geometry[invalid].values)
    return frame
