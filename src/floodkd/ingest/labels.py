"""Label ingest: water/dry polygons (any OGR vector) or 0/1/no-label raster masks.

Output (docs/data-contracts.md, "Ingest"): ``labels.csv`` (time, file, kind) plus
``<YYYYmmddTHHMMSS>.tif`` per raster mask (uint8 0 dry, 1 water, 255 no label) and/or one
``labels.gpkg`` of valid polygons with columns ``label`` (0|1) and ``time``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import make_valid
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from floodkd.errors import InputError
from floodkd.ingest.rasters import (
    Raster,
    check_overlap,
    check_unique_times,
    input_files,
    nodata_mask,
    parse_time,
    read_raster,
    time_from_tags,
    time_iso,
    time_stamp,
    write_csv,
    write_geotiff,
)
from floodkd.ingest.times import is_date_only, listed_time, parse_logged_time
from floodkd.region import region_outline

__all__ = ["ingest", "class_label", "read_vector", "repair_polygon", "label_mask", "LabelValues",
           "NO_LABEL"]

log = logging.getLogger(__name__)

DRY, WATER, NO_LABEL = 0, 1, 255
RASTER_SUFFIXES = {".tif", ".tiff"}
_WATER_NAMES = {"water", "wet", "flooded", "flood", "inundated", "1", "1.0", "true", "yes"}
_DRY_NAMES = {"dry", "land", "not flooded", "non-flooded", "nonflooded", "unflooded",
              "0", "0.0", "false", "no"}
_NAME_TIME = re.compile(r"_(\d{8}T\d{6})")
_TIME_TAGS = ("ACQUISITION_START_TIME",)
_FALLBACK_TIME_TAGS = ("TIFFTAG_DATETIME",)  # the file's creation time by definition


def class_label(value: Any) -> int | None:
    """1 for water (wet, flooded, 1, ...), 0 for dry (land, 0, ...), None if unknown."""
    text = str(value).strip().lower()
    if text in _WATER_NAMES:
        return WATER
    if text in _DRY_NAMES:
        return DRY
    return None


def read_vector(path: Path, what: str, empty_fix: str) -> gpd.GeoDataFrame:
    """The features of a vector file (fids as index); refuse an unreadable file, a layer
    without CRS and one without features (``what`` names them in the messages)."""
    try:
        frame = gpd.read_file(path, fid_as_index=True)
    except Exception as error:  # pyogrio/GDAL raise several types for unreadable files
        raise InputError(path, f"cannot read it as a vector file ({error})",
                         f"export the {what} again as GeoPackage") from error
    if frame.crs is None:
        raise InputError(path, f"the {what} have no CRS",
                         "save the layer with its CRS (e.g. EPSG:4326)")
    if frame.empty:
        raise InputError(path, "the layer has no features", empty_fix)
    return frame


def repair_polygon(geometry: BaseGeometry | None, where: str, path: Path) -> BaseGeometry:
    """``geometry`` made valid, keeping its polygonal parts; refuse what cannot be repaired.

    ``where`` names the feature (its id) in the error message.
    """
    fix = f"redraw or delete {where} in a GIS (e.g. QGIS 'Fix geometries')"
    if geometry is None or geometry.is_empty:
        raise InputError(path, f"{where} has an empty geometry", fix)
    if not isinstance(geometry, Polygon | MultiPolygon):
        raise InputError(path, f"{where} is a {geometry.geom_type}, not a polygon", fix)
    if geometry.is_valid:
        return geometry
    # make_valid may return a collection holding polygons, lines and points; flatten it
    # twice (a collection may hold multipolygons) and keep only the polygons
    parts = shapely.get_parts(shapely.get_parts(make_valid(geometry)))
    result = MultiPolygon([part for part in parts if isinstance(part, Polygon)])
    if result.is_empty or result.area == 0:
        raise InputError(path, f"{where} is an invalid polygon with no area left after repair",
                         fix)
    # a repair of a self-intersection (a bow tie) can drop or split a lobe: say what is left
    log.warning("%s: %s is an invalid polygon (%s); repaired, it keeps %d part(s) with %.6g "
                "square units of area (in the file's CRS): check it in a GIS", path, where,
                shapely.is_valid_reason(geometry), len(result.geoms), result.area)
    return result if len(result.geoms) > 1 else result.geoms[0]


def _read_vector(
    path: Path, outline: BaseGeometry, class_column: str, date_column: str,
    listed: datetime | None,
) -> gpd.GeoDataFrame:
    """Polygons of one vector file with ``label`` and ``time``, in the file's CRS. ``listed``
    (the file's entry in inputs.labels.times) dates every feature; without it the
    ``date_column`` does."""
    frame = read_vector(path, "labels", "add labelled polygons")
    needed = [("class_column", class_column)]
    if listed is None:
        needed.append(("date_column", date_column))
    for key, column in needed:
        if column not in frame.columns:
            raise InputError(
                path, f"column '{column}' (config inputs.labels.{key}) not found; columns: "
                f"{', '.join(map(str, frame.columns.drop('geometry')))}",
                f"set inputs.labels.{key} to the column that holds it"
                + ("" if key == "class_column" else
                   f", or date the whole file in inputs.labels.times: {{{path.name}: "
                   "'2021-03-04T05:06:07Z'}"),
            )
    labels, times, geometries = [], [], []
    bare_dates = []
    for fid, row in frame.iterrows():
        where = f"feature {fid}"
        label = class_label(row[class_column])
        if label is None:
            raise InputError(path, f"{where} has class '{row[class_column]}' in '{class_column}'",
                             "use water/dry (or wet/flooded, 1/0)")
        try:
            time = listed if listed is not None else parse_time(str(row[date_column]))
        except ValueError as error:
            raise InputError(
                path, f"{where} has date '{row[date_column]}' in '{date_column}', not a date",
                "write dates as ISO 8601, e.g. 2021-03-04 or 2021-03-04T05:06:07Z",
            ) from error
        if listed is None and is_date_only(str(row[date_column])):
            bare_dates.append(str(row[date_column]))
        labels.append(label)
        times.append(time)
        geometries.append(repair_polygon(row.geometry, where, path))
    if bare_dates:  # once per file, not once per polygon
        parse_logged_time(bare_dates[0], path, f"column '{date_column}' ({len(bare_dates)} "
                          "features)")
    check_overlap(path, frame.crs, tuple(gpd.GeoSeries(geometries).total_bounds), outline)
    return gpd.GeoDataFrame(
        {"label": np.array(labels, dtype=np.uint8), "time": pd.to_datetime(times)},
        geometry=geometries, crs=frame.crs,
    )


@dataclass(frozen=True)
class LabelValues:
    """How a label raster encodes its classes (config ``inputs.labels.values``)."""

    water: int = WATER
    dry: int = DRY
    nodata: int = NO_LABEL

    @classmethod
    def from_config(cls, options: dict[str, Any]) -> LabelValues:
        values = cls(**options.get("values", {}))
        if len({values.water, values.dry, values.nodata}) < 3:
            raise InputError("config", f"inputs.labels.values {options['values']} gives two "
                             "classes the same value", "give water, dry and nodata distinct values")
        return values


def label_mask(raster: Raster, values: LabelValues = LabelValues()) -> np.ndarray:
    """uint8 0 dry, 1 water, 255 no label from a label raster encoded as ``values``; refuse
    any other value, naming the config key that declares the encoding."""
    encoding = (f"config inputs.labels.values (now water {values.water}, dry {values.dry}, "
                f"nodata {values.nodata})")
    if raster.nodata is not None and raster.nodata in (values.dry, values.water):
        raise InputError(
            raster.path,
            f"its declared nodata value {raster.nodata:g} is also a label in {encoding}",
            "set inputs.labels.values to the file's encoding, or declare the file's real "
            "nodata value (gdal_edit.py -a_nodata N)",
        )
    band = raster.data[0]
    no_label = nodata_mask(band, raster.nodata) | (band == values.nodata)
    present = band[~no_label]
    unknown = np.setdiff1d(np.unique(present), [values.dry, values.water])
    if unknown.size:
        raise InputError(
            raster.path,
            f"values {', '.join(f'{v:g}' for v in unknown[:5])} are not in {encoding}",
            "set inputs.labels.values to the file's encoding, e.g. values: {water: 1, dry: 0, "
            "nodata: -1} for Sen1Floods11 masks",
        )
    mask = np.full(band.shape, NO_LABEL, dtype=np.uint8)
    mask[band == values.water] = WATER
    mask[(band == values.dry) & ~no_label] = DRY
    mask[no_label] = NO_LABEL
    return mask


def _raster_time(raster: Raster, times: dict[str, str]) -> datetime:
    match = _NAME_TIME.search(raster.path.stem)
    if match:
        return parse_time(match[1])
    tagged = time_from_tags(raster, _TIME_TAGS)
    if tagged is None:
        tagged = listed_time(raster.path, times, "labels")
    if tagged is None:
        tagged = time_from_tags(raster, _FALLBACK_TIME_TAGS)
    if tagged is None:
        raise InputError(
            raster.path, "cannot tell the time of the labels: no _YYYYmmddTHHMMSS in the name "
            "and no ACQUISITION_START_TIME tag",
            f"add it to config inputs.labels.times, e.g. times: {{{raster.path.name}: "
            "'2021-03-04T05:06:07Z'}, or rename it e.g. label_20210304T050607.tif",
        )
    return tagged


def ingest(region: dict[str, Any], out_dir: Path) -> None:
    """Read the label files of ``region``; write label rasters and/or labels.gpkg + labels.csv."""
    options = region["inputs"]["labels"]
    values = LabelValues.from_config(options)
    outline = region_outline(region)
    rows: list[dict[str, Any]] = []
    times: dict[Path, datetime] = {}
    frames: list[gpd.GeoDataFrame] = []
    for path in input_files(region, "labels"):
        if path.suffix.lower() in RASTER_SUFFIXES:
            raster = read_raster(path, outline)
            time = _raster_time(raster, options.get("times", {}))
            times[path] = time
            check_unique_times(times)
            mask = label_mask(raster, values)
            if not (mask != NO_LABEL).any():
                log.warning("labels: %s has no labelled pixels", path)
            name = f"{time_stamp(time)}.tif"
            write_geotiff(out_dir / name, mask[np.newaxis], raster.crs, raster.transform,
                          ["label"], nodata=NO_LABEL,
                          tags={"ACQUISITION_START_TIME": f"{time_iso(time)}Z",
                                "SOURCE_FILE": str(path), "VALUES": "0 dry, 1 water, 255 no label"})
            rows.append({"time": time_iso(time), "file": name, "kind": "raster"})
        else:
            frames.append(_read_vector(path, outline, options.get("class_column", "class"),
                                       options.get("date_column", "date"),
                                       listed_time(path, options.get("times", {}), "labels")))
        log.info("labels: read %s", path)
    if frames:
        crs = frames[0].crs
        polygons = pd.concat([frame.to_crs(crs) for frame in frames], ignore_index=True)
        polygons = gpd.GeoDataFrame(polygons, geometry="geometry", crs=crs)
        polygons.to_file(out_dir / "labels.gpkg", layer="labels", driver="GPKG")
        for time in sorted(set(polygons["time"])):
            rows.append({"time": time_iso(time.to_pydatetime()), "file": "labels.gpkg",
                         "kind": "vector"})
    write_csv(out_dir / "labels.csv", rows, ["time", "file", "kind"])
