"""Sentinel-1 GRD ingest: VV/VH backscatter GeoTIFFs -> per-scene sigma0 in dB.

Output (docs/data-contracts.md, "Ingest"): ``<YYYYmmddTHHMMSS>.tif`` float32 bands VV, VH
in dB with NaN nodata on the scene's native grid, and ``scenes.csv`` (time, file, source)
sorted by time.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from floodkd.errors import InputError
from floodkd.ingest.plausibility import check_cross_polarisation
from floodkd.ingest.rasters import (
    RasterInfo,
    RegionBlocks,
    check_unique_times,
    input_files,
    nodata_mask,
    open_geotiff,
    parse_time,
    region_blocks,
    sample_grid,
    time_from_tags,
    time_iso,
    time_stamp,
    write_csv,
)
from floodkd.ingest.times import listed_time
from floodkd.region import region_outline

__all__ = ["ingest", "to_db", "find_polarisations", "check_unit", "acquisition_time"]

log = logging.getLogger(__name__)

POLARISATIONS = ("VV", "VH")
# Plausible medians of sigma0 over a scene. Land, water and towns all fall well inside
# these; a median outside says the file is in the other unit (or not sigma0 at all).
DB_MEDIAN_RANGE = (-35.0, 5.0)
LINEAR_MEDIAN_RANGE = (0.0003, 3.0)
# ESA product names: S1A_IW_GRDH_1SDV_20210304T050607_20210304T050632_...
_S1_NAME_TIME = re.compile(r"S1[ABCD]_[A-Z0-9]{2}_GRD[HMF_]_1S[A-Z]{2}_(\d{8}T\d{6})_", re.I)
_TIME_TAGS = ("ACQUISITION_START_TIME",)
# TIFF's DateTime is the file's creation time by definition; many exporters stamp it at
# export, so it is trusted only after the name, the acquisition tag and the user's table.
_FALLBACK_TIME_TAGS = ("TIFFTAG_DATETIME",)
_SWAPPED_FIX = ("correct the file's band descriptions (the data labelled VV must be VV), or "
                "if the bands have no descriptions set inputs.sar.bands to their true order, "
                "e.g. bands: [VH, VV]")


def to_db(linear_power: np.ndarray) -> np.ndarray:
    """Linear power to decibels, 10 log10(x); zero or negative power becomes NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        decibels = 10.0 * np.log10(linear_power)
    decibels[~(linear_power > 0)] = np.nan
    return decibels


def find_polarisations(raster: RasterInfo, band_order: list[str] | None) -> dict[str, int]:
    """Band index (0-based) of VV and VH, by band description or else by the config order."""
    by_description: dict[str, int] = {}
    for index, description in enumerate(raster.descriptions):
        tokens = set(re.split(r"[^A-Z0-9]+", (description or "").upper()))
        for polarisation in POLARISATIONS:
            if polarisation in tokens and polarisation not in by_description:
                by_description[polarisation] = index
    if all(p in by_description for p in POLARISATIONS):
        return by_description
    if band_order:
        if len(band_order) > raster.count:
            raise InputError(
                raster.path,
                f"config inputs.sar.bands lists {len(band_order)} bands but the file has "
                f"{raster.count}",
                "list only the bands the file holds, in order",
            )
        by_order = {name: index for index, name in enumerate(band_order)}
        if all(p in by_order for p in POLARISATIONS):
            return by_order
    found = ", ".join(f"{d!r}" for d in raster.descriptions)
    raise InputError(
        raster.path,
        f"cannot find both VV and VH bands (band descriptions: {found})",
        "give the bands descriptions VV and VH, or set inputs.sar.bands to their order, "
        "e.g. bands: [VV, VH]",
    )


def check_unit(path: Path, values: np.ndarray, unit: str) -> None:
    """Refuse sigma0 ``values`` (valid pixels only) that do not look like ``unit``."""
    if values.size == 0:
        raise InputError(path, "VV and VH hold no valid pixels",
                         "check the file's nodata value, or remove the file")
    median = float(np.median(values))
    other = "linear" if unit == "dB" else "dB"
    fix = (f"set inputs.sar.unit: {other} if the file holds {other} values, "
           "or check that it holds calibrated sigma0 backscatter")
    if unit == "dB":
        low, high = DB_MEDIAN_RANGE
        if not low <= median <= high or float(values.min()) >= 0.0:
            raise InputError(
                path,
                f"values do not look like sigma0 in dB (median {median:.4g}, min "
                f"{float(values.min()):.4g}; dB medians lie in [{low}, {high}] and include "
                "negative values)",
                fix,
            )
    else:
        low, high = LINEAR_MEDIAN_RANGE
        if not low <= median <= high or float(values.min()) < 0.0:
            raise InputError(
                path,
                f"values do not look like sigma0 linear power (median {median:.4g}, min "
                f"{float(values.min()):.4g}; linear medians lie in [{low}, {high}] and are "
                "never negative)",
                fix,
            )


def acquisition_time(raster: RasterInfo, times: dict[str, str]) -> datetime:
    """Acquisition start: from an S1 file name, a tag, or the config table ``times``."""
    match = _S1_NAME_TIME.search(raster.path.name)
    if match:
        return parse_time(match[1])
    tagged = time_from_tags(raster, _TIME_TAGS)
    if tagged is not None:
        return tagged
    listed = listed_time(raster.path, times, "sar")
    if listed is not None:
        return listed
    tagged = time_from_tags(raster, _FALLBACK_TIME_TAGS)
    if tagged is not None:
        return tagged
    raise InputError(
        raster.path,
        "cannot tell its acquisition time: the name is not an S1 product name and there is no "
        "ACQUISITION_START_TIME or TIFFTAG_DATETIME tag",
        f"add it to config inputs.sar.times, e.g. times: {{{raster.path.name}: "
        "'2021-03-04T05:06:07Z'}, or keep the ESA product name",
    )


def masked_backscatter(data: np.ndarray, nodata: float | None, bands: dict[str, int],
                       unit: str) -> np.ndarray:
    """(VV, VH) of a block of the file (band, y, x) as float32 in the file's unit, NaN where
    it holds no data."""
    stack = np.empty((len(POLARISATIONS),) + data.shape[1:], dtype=np.float32)
    for out_index, polarisation in enumerate(POLARISATIONS):
        band = data[bands[polarisation]]
        missing = nodata_mask(band, nodata) | ~np.isfinite(band)
        if unit == "linear":
            missing |= band == 0  # zero power is how GRD products mark the swath edge
        stack[out_index] = np.where(missing, np.nan, band)
    return stack


def write_scene_db(scene: RegionBlocks, bands: dict[str, int], unit: str, path: Path,
                   tags: dict[str, str]) -> np.ndarray:
    """Write the scene's (VV, VH) sigma0 in dB to ``path`` block by block; returns the
    regular sample of the masked values, in the file's unit (2, n), for the checks."""
    info = scene.info
    samples = []
    with open_geotiff(path, len(POLARISATIONS), info.height, info.width, np.float32, info.crs,
                      info.transform, list(POLARISATIONS), nodata=np.nan, units=["dB", "dB"],
                      tags=tags) as dst:
        for window, block in scene.blocks():
            stack = masked_backscatter(block, info.nodata, bands, unit)
            rows, cols = sample_grid(window, info.height, info.width)
            samples.append(stack[:, rows, cols].reshape(len(POLARISATIONS), -1))
            dst.write(to_db(stack) if unit == "linear" else stack, window=window)
    return np.concatenate(samples, axis=1)


def ingest(region: dict[str, Any], out_dir: Path) -> None:
    """Read every SAR file of ``region`` and write per-scene dB GeoTIFFs + scenes.csv.

    Each scene is converted block by block (``region_blocks``), so memory stays bounded for
    a region as large as a whole scene; the unit and polarisation checks read a regular
    sample of its pixels (all of them for a region under ``SAMPLE_PX``), and a scene that
    fails them leaves nothing behind (the CLI's output folder is atomic).
    """
    options = region["inputs"]["sar"]
    unit = options.get("unit", "dB")
    outline = region_outline(region)
    scenes: list[dict[str, Any]] = []
    times: dict[Path, datetime] = {}
    for path in input_files(region, "sar"):
        with region_blocks(path, outline) as scene:
            bands = find_polarisations(scene.info, options.get("bands"))
            time = acquisition_time(scene.info, options.get("times", {}))
            times[path] = time
            check_unique_times(times)
            name = f"{time_stamp(time)}.tif"
            sample = write_scene_db(
                scene, bands, unit, out_dir / name,
                tags={"ACQUISITION_START_TIME": f"{time_iso(time)}Z", "QUANTITY": "sigma0",
                      "SOURCE_FILE": str(path), "SOURCE_UNIT": unit})
        check_unit(path, sample[np.isfinite(sample)], unit)
        sample_db = to_db(sample) if unit == "linear" else sample
        check_cross_polarisation(path, sample_db[0], sample_db[1], _SWAPPED_FIX)
        scenes.append({"time": time_iso(time), "file": name, "source": str(path)})
        log.info("sar: %s -> %s", path, name)
    write_csv(out_dir / "scenes.csv", scenes, ["time", "file", "source"])
