"""Terrain ingest: DEM GeoTIFF(s) in any CRS -> one float32 ``dem.tif`` in metres, NaN nodata.

Several files (DEM tiles) in one CRS are mosaicked; the output keeps that native CRS
(align regrids it).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.io import MemoryFile
from rasterio.merge import merge

from floodkd.errors import InputError
from floodkd.ingest.rasters import Raster, input_files, nodata_mask, read_raster, write_geotiff
from floodkd.region import region_outline

__all__ = ["ingest", "vertical_unit_factor", "elevation_m", "check_elevation"]

log = logging.getLogger(__name__)

# Lowest and highest land on Earth, with margin (Dead Sea shore -430 m, Everest 8849 m).
ELEVATION_RANGE_M = (-500.0, 9000.0)
_METRE_UNITS = {"", "m", "metre", "meter", "metres", "meters"}
_FOOT_M = 0.3048  # international foot
_US_SURVEY_FOOT_M = 1200.0 / 3937.0
_FOOT_UNITS = {"ft": _FOOT_M, "foot": _FOOT_M, "feet": _FOOT_M, "international foot": _FOOT_M,
               "us survey foot": _US_SURVEY_FOOT_M, "ft_us": _US_SURVEY_FOOT_M,
               "us-ft": _US_SURVEY_FOOT_M, "us_survey_foot": _US_SURVEY_FOOT_M}
_UNIT_TAGS = ("UNITS", "UNIT", "VERTICAL_UNITS", "UNITTYPE")


def vertical_unit_factor(raster: Raster, configured: str | None = None) -> float:
    """Metres per stored unit, from the band's unit type or a units tag, else from the
    config's ``inputs.terrain.unit``; a DEM with neither is refused, since feet read as
    metres pass every other check and make the coast three times higher."""
    band_tags = {key.upper(): value for key, value in raster.band_tags[0].items()}
    candidates = [raster.units[0] or ""] + [band_tags.get(name, "") for name in _UNIT_TAGS]
    candidates.append(raster.tag(*_UNIT_TAGS) or "")
    tagged = [text for text in candidates if text.strip()]
    if not tagged:
        if configured is None:
            raise InputError(raster.path, "the DEM does not say its height unit (no band unit "
                             "and no UNITS tag), and heights in feet would pass for metres",
                             "set inputs.terrain.unit: m (or ft) in the config, or tag the "
                             "file (gdal_edit.py -units m FILE)")
        tagged = [configured]
    factor = _unit_factor(raster.path, tagged[0])
    if configured is not None and _unit_factor(raster.path, configured) != factor:
        raise InputError(raster.path, f"the file says its heights are in '{tagged[0]}' but the "
                         f"config says '{configured}'", "correct whichever is wrong (the "
                         "file's unit tag, or inputs.terrain.unit)")
    return factor


def _unit_factor(path: Path, text: str) -> float:
    unit = text.strip().lower()
    if unit in _METRE_UNITS:
        return 1.0
    if unit in _FOOT_UNITS:
        return _FOOT_UNITS[unit]
    raise InputError(
        path, f"elevation unit '{text}' is not metres or feet",
        "convert the DEM to metres, or set its unit to 'm' or 'ft' (gdal_edit.py -units)",
    )


def elevation_m(raster: Raster, configured_unit: str | None = None) -> np.ndarray:
    """The first band in metres, float32, NaN where the file holds no data."""
    band = raster.data[0].astype(np.float64)
    missing = nodata_mask(raster.data[0], raster.nodata) | ~np.isfinite(band)
    band = band * vertical_unit_factor(raster, configured_unit)
    band[missing] = np.nan
    return band.astype(np.float32)


def check_elevation(path: Path, elevation: np.ndarray) -> None:
    """Refuse a DEM with no data or with heights no place on Earth has."""
    valid = elevation[np.isfinite(elevation)]
    if valid.size == 0:
        raise InputError(path, "the DEM holds no valid pixels",
                         "check its nodata value or use another DEM file")
    low, high = ELEVATION_RANGE_M
    lowest, highest = float(valid.min()), float(valid.max())
    if lowest < low or highest > high:
        raise InputError(
            path,
            f"elevations {lowest:.6g}..{highest:.6g} m fall outside the plausible "
            f"{low:g}..{high:g} m",
            "declare the DEM's nodata value if these are fill values (gdal_edit.py -a_nodata "
            "VALUE FILE), or convert it to metres (a unit tag 'ft' is converted automatically)",
        )


def _mosaic(tiles: list[tuple[Raster, np.ndarray]]) -> tuple[np.ndarray, Affine]:
    """Merge DEM tiles (all in one CRS) onto the first tile's resolution; NaN fills gaps."""
    crs = tiles[0][0].crs
    files = []
    try:
        datasets = []
        for raster, elevation in tiles:
            if raster.crs != crs:
                raise InputError(
                    raster.path, f"its CRS ({raster.crs}) differs from {tiles[0][0].path} ({crs})",
                    "reproject the DEM tiles to one CRS (gdalwarp -t_srs) before ingesting",
                )
            memory = MemoryFile()
            files.append(memory)
            dataset = memory.open(driver="GTiff", width=raster.width, height=raster.height,
                                  count=1, dtype="float32", crs=raster.crs,
                                  transform=raster.transform, nodata=np.nan)
            dataset.write(elevation[np.newaxis])
            datasets.append(dataset)
        mosaic, transform = merge(datasets, nodata=np.nan)
        for dataset in datasets:
            dataset.close()
    finally:
        for memory in files:
            memory.close()
    return mosaic[0], transform


def ingest(region: dict[str, Any], out_dir: Path) -> None:
    """Read the DEM file(s) of ``region`` and write ``dem.tif`` (float32 metres, NaN nodata)."""
    outline = region_outline(region)
    tiles = []
    for path in input_files(region, "terrain"):
        raster = read_raster(path, outline)
        elevation = elevation_m(raster, region["inputs"]["terrain"].get("unit"))
        check_elevation(path, elevation)
        tiles.append((raster, elevation))
    crs: CRS = tiles[0][0].crs
    if len(tiles) == 1:
        elevation, transform = tiles[0][1], tiles[0][0].transform
    else:
        elevation, transform = _mosaic(tiles)
    sources = ";".join(str(raster.path) for raster, _ in tiles)
    write_geotiff(out_dir / "dem.tif", elevation[np.newaxis].astype(np.float32), crs, transform,
                  ["elevation"], nodata=np.nan, units=["m"], tags={"SOURCE_FILES": sources})
    log.info("terrain: %d file(s) -> dem.tif (%d x %d)", len(tiles), *elevation.shape)
