"""Shared boundary checks and I/O for the raster ingest readers.

Every reader goes through :func:`read_raster`, which opens the file, reads all of its
pixels (GDAL may only notice a truncated file when it decodes a block), and checks that
it has a CRS and that its footprint overlaps the region outline. Problems become an
:class:`~floodkd.errors.InputError` naming the file, the problem and the fix.
"""

from __future__ import annotations

import glob
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from floodkd.errors import InputError

__all__ = [
    "Raster",
    "input_files",
    "read_raster",
    "check_overlap",
    "nodata_mask",
    "write_geotiff",
    "parse_time",
    "time_from_tags",
    "time_stamp",
    "time_iso",
    "check_unique_times",
    "write_csv",
]

# Tiles must be multiples of 16 for GeoTIFF; 256 is GDAL's and QGIS's usual block size.
_BLOCK_PX = 256
# Pixels kept around the region when reading a larger scene, so align's resampling has
# neighbours at the region's edge.
REGION_MARGIN_PX = 8


@dataclass(frozen=True)
class Raster:
    """All pixels and the georeferencing of one raster file, as read from disk."""

    path: Path
    data: np.ndarray  # (band, y, x), the file's own dtype
    crs: CRS
    transform: Affine
    nodata: float | None
    descriptions: tuple[str | None, ...]
    units: tuple[str | None, ...]
    tags: dict[str, str]
    band_tags: tuple[dict[str, str], ...]
    scales: tuple[float, ...]
    offsets: tuple[float, ...]

    @property
    def height(self) -> int:
        return self.data.shape[1]

    @property
    def width(self) -> int:
        return self.data.shape[2]

    def tag(self, *names: str) -> str | None:
        """The first dataset tag found among ``names`` (case-insensitive), else None."""
        upper = {key.upper(): value for key, value in self.tags.items()}
        for name in names:
            if upper.get(name.upper()):
                return upper[name.upper()]
        return None


def input_files(region: dict[str, Any], modality: str) -> list[Path]:
    """The files matched by ``region["inputs"][modality]["glob"]``, sorted; refuse none."""
    pattern = region["inputs"][modality]["glob"]
    files = sorted(Path(name) for name in glob.glob(pattern, recursive=True))
    files = [path for path in files if path.is_file()]
    if not files:
        raise InputError(
            pattern,
            f"the glob of config key 'inputs.{modality}.glob' matches no files "
            f"(relative globs are read from {Path.cwd()})",
            f"point inputs.{modality}.glob at the {modality} files of this region",
        )
    return files


def read_raster(path: Path, outline: BaseGeometry) -> Raster:
    """Open ``path``, check CRS and overlap with ``outline`` (lon/lat), and read the window
    that covers the region plus a margin of ``REGION_MARGIN_PX`` pixels.

    A whole Sentinel-1 GRD scene is ~25000 x 17000 pixels; reading only the region keeps
    memory to what the stage needs. Every block of that window is decoded, so a truncated or
    corrupt file fails here and not later in a stage that trusts the file.
    """
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                _refuse_without_crs(path, has_gcps=bool(src.gcps[0]))
            check_overlap(path, src.crs, tuple(src.bounds), outline)
            window = _region_window(src, outline)
            raster = Raster(
                path=Path(path),
                data=src.read(window=window),
                crs=src.crs,
                transform=src.window_transform(window),
                nodata=src.nodata,
                descriptions=tuple(src.descriptions),
                units=tuple(src.units),
                tags=src.tags(),
                band_tags=tuple(src.tags(band) for band in range(1, src.count + 1)),
                scales=tuple(src.scales),
                offsets=tuple(src.offsets),
            )
    except (RasterioError, OSError) as error:
        raise InputError(
            path,
            f"cannot read it as a raster ({error})",
            "the file is truncated, corrupt or not a raster; download or export it again",
        ) from error
    return raster


def _refuse_without_crs(path: Path, has_gcps: bool) -> None:
    if has_gcps:
        raise InputError(
            path,
            "the raster is georeferenced only by ground control points (radar geometry)",
            "terrain-correct it or warp it onto a map grid, e.g. gdalwarp -t_srs EPSG:32631 "
            "IN.tif OUT.tif",
        )
    raise InputError(
        path,
        "the raster has no CRS (coordinate reference system)",
        "assign the CRS it was made in, e.g. gdal_edit.py -a_srs EPSG:32631 FILE",
    )


def _region_window(src: rasterio.io.DatasetReader, outline: BaseGeometry) -> Window:
    """The pixel window of ``src`` covering ``outline`` plus a margin, clipped to the raster."""
    left, bottom, right, top = transform_bounds("EPSG:4326", src.crs, *outline.bounds,
                                                densify_pts=21)
    region = from_bounds(left, bottom, right, top, transform=src.transform)
    col0 = max(math.floor(region.col_off) - REGION_MARGIN_PX, 0)
    row0 = max(math.floor(region.row_off) - REGION_MARGIN_PX, 0)
    col1 = min(math.ceil(region.col_off + region.width) + REGION_MARGIN_PX, src.width)
    row1 = min(math.ceil(region.row_off + region.height) + REGION_MARGIN_PX, src.height)
    if col1 <= col0 or row1 <= row0:
        raise InputError(src.name, "no pixel of it lies inside the region",
                         "remove the file from this region's inputs, or check its CRS")
    return Window(col0, row0, col1 - col0, row1 - row0)


def check_overlap(
    path: Path, crs: CRS | str, bounds: tuple[float, float, float, float], outline: BaseGeometry
) -> None:
    """Refuse a file whose footprint (``bounds`` in ``crs``) misses the region ``outline``."""
    try:
        west, south, east, north = transform_bounds(crs, "EPSG:4326", *bounds, densify_pts=21)
    except Exception as error:  # pyproj/GDAL raise several types for untransformable bounds
        raise InputError(
            path, f"its footprint cannot be transformed to lon/lat ({error})",
            "check that the file's CRS is the one its coordinates are in",
        ) from error
    if west > east:  # the footprint crosses the antimeridian
        footprint = box(west, south, 180.0, north).union(box(-180.0, south, east, north))
    else:
        footprint = box(west, south, east, north)
    if not footprint.intersects(outline):
        lon_min, lat_min, lon_max, lat_max = outline.bounds
        raise InputError(
            path,
            f"its footprint (lon {west:.4f}..{east:.4f}, lat {south:.4f}..{north:.4f}) does not "
            f"overlap the region (lon {lon_min:.4f}..{lon_max:.4f}, "
            f"lat {lat_min:.4f}..{lat_max:.4f})",
            "remove the file from this region's inputs, or check its CRS and the region outline",
        )


def nodata_mask(band: np.ndarray, nodata: float | None) -> np.ndarray:
    """True where ``band`` holds no data: NaN or the declared nodata value."""
    if np.issubdtype(band.dtype, np.floating):
        missing = np.isnan(band)
    else:
        missing = np.zeros(band.shape, dtype=bool)
    if nodata is not None and not np.isnan(nodata):
        missing |= band == nodata
    return missing


def write_geotiff(
    path: Path,
    data: np.ndarray,
    crs: CRS,
    transform: Affine,
    descriptions: list[str],
    nodata: float,
    units: list[str] | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    """Write ``data`` (band, y, x) as a tiled DEFLATE GeoTIFF with band names and units."""
    count, height, width = data.shape
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": data.dtype,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": _BLOCK_PX,
        "blockysize": _BLOCK_PX,
        "compress": "deflate",
        # floating-point predictor suits smooth float fields; horizontal suits integers
        "predictor": 3 if np.issubdtype(data.dtype, np.floating) else 2,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = tuple(descriptions)
        if units is not None:
            dst.units = tuple(units)
        if tags:
            dst.update_tags(**tags)


_TIFF_DATETIME = re.compile(r"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}:\d{2}:\d{2})$")


def parse_time(text: str) -> datetime:
    """An ISO 8601 (or TIFF ``YYYY:MM:DD HH:MM:SS``) time as a naive UTC datetime.

    Raises ValueError when the text is not a time; callers turn that into an InputError.
    """
    text = text.strip()
    match = _TIFF_DATETIME.match(text)
    if match:
        text = f"{match[1]}-{match[2]}-{match[3]}T{match[4]}"
    stamp = pd.Timestamp(text)
    if pd.isna(stamp):
        raise ValueError(f"'{text}' is not a time")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime()


def time_from_tags(raster: Raster, names: tuple[str, ...]) -> datetime | None:
    """The time in the first present tag of ``names``; a malformed value is refused."""
    for name in names:
        value = raster.tag(name)
        if value is None:
            continue
        try:
            return parse_time(value)
        except ValueError as error:
            raise InputError(
                raster.path, f"tag {name}='{value}' is not a time",
                f"write {name} as ISO 8601 UTC, e.g. 2021-03-04T05:06:07Z",
            ) from error
    return None


def time_stamp(time: datetime) -> str:
    """The compact ``YYYYmmddTHHMMSS`` form used in output file names."""
    return time.strftime("%Y%m%dT%H%M%S")


def time_iso(time: datetime) -> str:
    """ISO 8601 to the second, UTC (no offset written), as in the CSV ``time`` columns."""
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def check_unique_times(times: dict[Path, datetime]) -> None:
    """Refuse two inputs with the same time: their outputs would share one file name."""
    seen: dict[str, Path] = {}
    for path, time in times.items():
        stamp = time_stamp(time)
        if stamp in seen:
            raise InputError(
                path,
                f"it has the same time ({time_iso(time)}) as {seen[stamp]}",
                "mosaic files of the same pass into one file (e.g. gdalbuildvrt + "
                "gdal_translate) or remove the duplicate",
            )
        seen[stamp] = path


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Write ``rows`` with exactly ``columns``, sorted by the first column."""
    frame = pd.DataFrame(rows, columns=columns).sort_values(columns[0], kind="stable")
    frame.to_csv(path, index=False)
