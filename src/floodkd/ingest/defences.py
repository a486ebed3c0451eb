"""Flood defence ingest: a register of protected areas, each with its defence's crest level.

National registers publish the land a defence protects and the defence's crest: England's
"Areas Benefiting from Defences" with the crest levels of its "Spatial Flood Defences", the
Dutch dike-ring areas with their dikes' heights, the US National Levee Database's leveed
areas with levee crest elevations. The student reads the crest as the level below which the
sea cannot reach that land (floodkd.models.student), which neither the DEM (where a dike
and a canopy ridge look alike) nor past water levels below the crest can tell it.

Output (docs/data-contracts.md, "Ingest"): ``defences.gpkg``, layer ``defences``: valid
polygons in EPSG:4326 with ``crest_m`` (metres, on the datum of the DEM and the gauges).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from floodkd.errors import InputError
from floodkd.ingest.labels import read_vector, repair_polygon
from floodkd.ingest.rasters import check_overlap, input_files
from floodkd.region import region_outline

__all__ = ["ingest", "read_defences", "CREST_RANGE_M"]

log = logging.getLogger(__name__)

# No coastal defence's crest lies outside this (the highest sea dikes stand about 10-15 m
# above their datum): a value outside it is a unit or datum error (feet, centimetres).
CREST_RANGE_M = (-5.0, 30.0)


def read_defences(path: Path, crest_column: str) -> gpd.GeoDataFrame:
    """The protected areas of one vector file with ``crest_m``, in EPSG:4326."""
    frame = read_vector(path, "protected areas", "add the protected areas")
    if crest_column not in frame.columns:
        raise InputError(
            path, f"column '{crest_column}' (config inputs.defences.crest_column) not found; "
            f"columns: {', '.join(map(str, frame.columns.drop('geometry')))}",
            "set inputs.defences.crest_column to the column that holds each defence's crest "
            "level in metres")
    crest = pd.to_numeric(frame[crest_column], errors="coerce").to_numpy(dtype=np.float64)
    low, high = CREST_RANGE_M
    bad = ~np.isfinite(crest) | (crest < low) | (crest > high)
    if bad.any():
        fid = frame.index[bad][0]
        raise InputError(
            path, f"{bad.sum()} feature(s) have a crest level that is missing, not a number or "
            f"outside {low:g} to {high:g} m (feature {fid}: '{frame.loc[fid, crest_column]}')",
            f"give every protected area its defence's crest in metres in '{crest_column}' "
            "(convert feet; leave out areas whose crest is unknown)")
    geometries = [repair_polygon(geometry, f"feature {fid}", path)
                  for fid, geometry in frame.geometry.items()]
    return gpd.GeoDataFrame({"crest_m": crest}, geometry=geometries,
                            crs=frame.crs).to_crs("EPSG:4326")


def ingest(region: dict[str, Any], out_dir: Path) -> None:
    """Read the defence registers of ``region``; write ``defences.gpkg``."""
    options = region["inputs"]["defences"]
    outline = region_outline(region)
    frames = []
    for path in input_files(region, "defences"):
        frame = read_defences(path, options.get("crest_column", "crest_m"))
        check_overlap(path, frame.crs, tuple(frame.total_bounds), outline)
        frames.append(frame)
        log.info("defences: read %d protected area(s) from %s", len(frame), path)
    areas = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry",
                             crs="EPSG:4326")
    areas.to_file(out_dir / "defences.gpkg", layer="defences", driver="GPKG")
