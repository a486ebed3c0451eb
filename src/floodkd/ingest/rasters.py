"""Shared boundary checks and I/O for the raster ingest readers.

Every reader goes through :func:`read_raster` (the region's window in memory) or
:func:`region_blocks` (the same window block by block, for scenes too large to hold), which
open the file, check that it has a CRS and that its footprint overlaps the region outline,
and decode every block of the window (GDAL may only notice a truncated file when it decodes
a block). Problems become an :class:`~floodkd.errors.InputError` naming the file, the problem
and the fix.
"""

from __future__ import annotations

import glob
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
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
    "RasterInfo",
    "RegionBlocks",
    "input_files",
    "read_raster",
    "region_blocks",
    "open_geotiff",
    "sample_grid",
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
# Side of the blocks the block-wise readers convert at once: a Sentinel-1 GRD scene is
# ~25000 x 17000 px (1.7 GB per float32 band), so a whole window is never in memory; a
# multiple of the 256 px output tiles, so every block write fills whole tiles.
BLOCK_PX = 2048
# Pixels per band kept for a scene's plausibility statistics (medians): a larger window is
# sampled on a regular grid of rows and columns; a smaller one is used whole.
SAMPLE_PX = 1 << 22


@dataclass(frozen=True)
class RasterInfo:
    """The georeferencing and metadata of the region's window of one raster file."""

    path: Path
    crs: CRS
    transform: Affine  # of the window
    nodata: float | None
    descriptions: tuple[str | None, ...]
    units: tuple[str | None, ...]
    tags: dict[str, str]
    band_tags: tuple[dict[str, str], ...]
    scales: tuple[float, ...]
    offsets: tuple[float, ...]
    count: int
    height: int
    width: int

    def tag(self, *names: str) -> str | None:
        """The first dataset tag found among ``names`` (case-insensitive), else None."""
        upper = {key.upper(): value for key, value in self.tags.items()}
        for name in names:
            if upper.get(name.upper()):
                return upper[name.upper()]
        return None


@dataclass(frozen=True)
class Raster(RasterInfo):
    """All pixels of the region's window of one raster file, with its georeferencing."""

    data: np.ndarray  # (band, y, x), the file's own dtype


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

    Reading only the region keeps memory to what the stage needs; a reader of whole
    Sentinel-1 or Sentinel-2 scenes uses :func:`region_blocks` instead. Every block of the
    window is decoded, so a truncated or corrupt file fails here and not later in a stage
    that trusts the file.
    """
    with region_blocks(path, outline) as scene:
        # one block: the whole window
        ((_, data),) = scene.blocks(block_px=max(scene.info.height, scene.info.width))
    info = {field.name: getattr(scene.info, field.name) for field in fields(RasterInfo)}
    return Raster(**info, data=data)


class RegionBlocks:
    """The region's window of an open raster, read block by block (see region_blocks)."""

    def __init__(self, src: rasterio.io.DatasetReader, window: Window, info: RasterInfo):
        self._src, self.window, self.info = src, window, info

    def blocks(self, block_px: int | None = None) -> Iterator[tuple[Window, np.ndarray]]:
        """(window within the region's window, data (band, h, w)) for every block of
        ``block_px`` (default ``BLOCK_PX``) in row order; a block that cannot be decoded is
        refused with the file's name."""
        block_px = block_px or BLOCK_PX
        for row in range(0, self.info.height, block_px):
            for col in range(0, self.info.width, block_px):
                inner = Window(col, row, min(block_px, self.info.width - col),
                               min(block_px, self.info.height - row))
                source = Window(self.window.col_off + col, self.window.row_off + row,
                                inner.width, inner.height)
                try:
                    data = self._src.read(window=source)
                except (RasterioError, OSError) as error:
                    raise _unreadable(self.info.path, error) from error
                yield inner, data


@contextmanager
def region_blocks(path: Path, outline: BaseGeometry) -> Iterator[RegionBlocks]:
    """Open ``path``, check its CRS and overlap with ``outline`` (lon/lat), and give the
    window covering the region plus ``REGION_MARGIN_PX`` pixels, to be read block by block."""
    try:
        src = rasterio.open(path)
    except (RasterioError, OSError) as error:
        raise _unreadable(path, error) from error
    with src:
        try:
            if src.crs is None:
                _refuse_without_crs(path, has_gcps=bool(src.gcps[0]))
            check_overlap(path, src.crs, tuple(src.bounds), outline)
            window = _region_window(src, outline)
            info = RasterInfo(
                path=Path(path), crs=src.crs, transform=src.window_transform(window),
                nodata=src.nodata, descriptions=tuple(src.descriptions),
                units=tuple(src.units), tags=src.tags(),
                band_tags=tuple(src.tags(band) for band in range(1, src.count + 1)),
                scales=tuple(src.scales), offsets=tuple(src.offsets), count=src.count,
                height=int(window.height), width=int(window.width),
            )
        except (RasterioError, OSError) as error:
            raise _unreadable(path, error) from error
        yield RegionBlocks(src, window, info)


def _unreadable(path: Path, error: Exception) -> InputError:
    return InputError(
        path,
        f"cannot read it as a raster ({error})",
        "the file is truncated, corrupt or not a raster; download or export it again",
    )


def sample_grid(window: Window, height: int, width: int) -> tuple[slice, slice]:
    """Rows and columns of a block (at ``window`` in a ``height`` x ``width`` window) that
    belong to the regular sample of at most ``SAMPLE_PX`` pixels: all of them when the
    window is small, so its statistics are exact."""
    step = max(1, math.ceil(math.sqrt(height * width / SAMPLE_PX)))
    return (slice((-window.row_off) % step, None, step),
            slice((-window.col_off) % step, None, step))


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
    with open_geotiff(path, count, height, width, data.dtype, crs, transform, descriptions,
                      nodata, units, tags) as dst:
        dst.write(data)


@contextmanager
def open_geotiff(
    path: Path,
    count: int,
    height: int,
    width: int,
    dtype: Any,
    crs: CRS,
    transform: Affine,
    descriptions: list[str],
    nodata: float,
    units: list[str] | None = None,
    tags: dict[str, str] | None = None,
) -> Iterator[rasterio.io.DatasetWriter]:
    """A tiled DEFLATE GeoTIFF open for writing (by windows), with band names and units."""
    dtype = np.dtype(dtype)
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": dtype,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": _BLOCK_PX,
        "blockysize": _BLOCK_PX,
        "compress": "deflate",
        # floating-point predictor suits smooth float fields; horizontal suits integers
        "predictor": 3 if np.issubdtype(dtype, np.floating) else 2,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.descriptions = tuple(descriptions)
        if units is not None:
            dst.units = tuple(units)
        if tags:
            dst.update_tags(**tags)
        yield dst


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


def time_from_tags(raster: RasterInfo, names: tuple[str, ...]) -> datetime | None:
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
