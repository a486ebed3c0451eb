"""File writers for the demo coast: the formats real downloads come in.

Every writer marks its file as synthetic in the format's own metadata.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import xarray as xr
from affine import Affine
from shapely.geometry.base import BaseGeometry

__all__ = [
    "SYNTHETIC_NOTE",
    "write_geotiff",
    "write_region_geojson",
    "GaugeStation",
    "write_gesla3",
    "write_uhslc_hourly",
    "write_uhslc_stations",
    "write_netcdf",
    "write_labels_gpkg",
    "write_manifest",
    "GESLA_NULL",
    "UHSLC_MISSING",
]

SYNTHETIC_NOTE = "true: floodkd demo coast, synthetic data, not an observation"
GESLA_NULL = -99.9999
UHSLC_MISSING = -32767


def write_geotiff(
    path: Path,
    bands: np.ndarray,
    transform: Affine,
    crs: str,
    nodata: float | int | None,
    descriptions: Sequence[str],
    tags: dict[str, str],
    units: Sequence[str] | None = None,
) -> None:
    """A DEFLATE GeoTIFF of ``bands`` (band, y, x) with names, units and dataset tags."""
    count, height, width = bands.shape
    profile = {
        "driver": "GTiff", "width": width, "height": height, "count": count,
        "dtype": bands.dtype.name, "crs": crs, "transform": transform, "nodata": nodata,
        "compress": "deflate", "tiled": True, "blockxsize": 256, "blockysize": 256,
    }
    if width < 256 or height < 256:  # GDAL wants tiles no larger than needed; strips are fine
        profile.update(tiled=False, blockxsize=None, blockysize=None)
        profile = {k: v for k, v in profile.items() if v is not None}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(bands)
        dst.descriptions = tuple(descriptions)
        if units is not None:
            dst.units = tuple(units)
        dst.update_tags(SYNTHETIC=SYNTHETIC_NOTE, **tags)


def write_region_geojson(path: Path, outline_lonlat: BaseGeometry, region: str) -> None:
    """The region outline as a one-feature GeoJSON in EPSG:4326."""
    frame = gpd.GeoDataFrame(
        {"region": [region], "synthetic": [True]}, geometry=[outline_lonlat], crs="EPSG:4326"
    )
    frame.to_file(path, driver="GeoJSON")


@dataclass(frozen=True)
class GaugeStation:
    """A tide gauge's metadata."""

    code: str
    name: str
    country: str
    lat: float
    lon: float
    datum: str


def write_gesla3(
    path: Path, station: GaugeStation, times: pd.DatetimeIndex, level_m: np.ndarray, seed: int
) -> None:
    """A GESLA-3 file: 41 ``# KEY value`` header lines, then ``date time value qc use``.

    Missing hours carry the null value -99.9999 with QC flag 5 and use flag 0; the rest are
    flagged 1 (no problem found), as contributors often leave spikes unflagged.
    """
    header = {
        "SITE NAME": station.name,
        "SITE CODE": station.code,
        "COUNTRY": station.country,
        "CONTRIBUTOR (ABBREVIATED)": "FLOODKD",
        "CONTRIBUTOR (FULL)": "floodkd demo coast generator (synthetic)",
        "CONTRIBUTOR WEBSITE": "none",
        "CONTRIBUTOR CONTACT": "none",
        "ORIGINATOR": "floodkd demo coast generator (synthetic)",
        "ORIGINATOR WEBSITE": "none",
        "ORIGINATOR CONTACT": "none",
        "ORIGINATOR TIME SERIES ID": station.code,
        "LATITUDE": f"{station.lat:.4f}",
        "LONGITUDE": f"{station.lon:.4f}",
        "COORDINATE SYSTEM": "WGS84",
        "START DATE/TIME": times[0].strftime("%Y/%m/%d %H:%M:%S"),
        "END DATE/TIME": times[-1].strftime("%Y/%m/%d %H:%M:%S"),
        "NUMBER OF YEARS": str(times[-1].year - times[0].year + 1),
        "TIME ZONE HOURS": "0",
        "DATUM INFORMATION": station.datum,
        "INSTRUMENT": "Synthetic radar gauge",
        "PRECISION": "Unspecified",
        "NULL VALUE": f"{GESLA_NULL}",
        "GAUGE TYPE": "Coastal",
        "OVERALL RECORD QUALITY": "Synthetic record with gaps, spikes and a flat line",
        "GAUGE TYPE NOTE": "SYNTHETIC: made by floodkd demo, not a real tide gauge",
        "SYNTHETIC": f"true (floodkd demo coast, seed {seed})",
        "UNITS": "m",
        "SAMPLING INTERVAL": "60 minutes",
        "QC FLAG 0": "no quality control",
        "QC FLAG 1": "correct value",
        "QC FLAG 2": "interpolated value",
        "QC FLAG 3": "doubtful value",
        "QC FLAG 4": "isolated spike or wrong value",
        "QC FLAG 5": "missing value",
        "USE FLAG 0": "do not use",
        "USE FLAG 1": "use",
        "COLUMN 1": "date (YYYY/MM/DD)",
        "COLUMN 2": "time (HH:MM:SS)",
        "COLUMN 3": "sea level (m)",
        "COLUMN 4": "QC flag",
        "COLUMN 5": "use flag",
    }
    assert len(header) == 41, "GESLA-3 headers have 41 lines"
    missing = np.isnan(level_m)
    value = np.where(missing, GESLA_NULL, level_m)
    qc = np.where(missing, 5, 1)
    use = np.where(missing, 0, 1)
    stamps = times.strftime("%Y/%m/%d %H:%M:%S")
    lines = [f"# {key} {text}" for key, text in header.items()]
    lines += [f"{s} {v:9.4f} {q} {u}" for s, v, q, u in zip(stamps, value, qc, use, strict=True)]
    path.write_text("\n".join(lines) + "\n")


def write_uhslc_hourly(path: Path, times: pd.DatetimeIndex, level_mm: np.ndarray) -> None:
    """A UHSLC hourly CSV: no header, rows ``year,month,day,hour,sea_level_mm``."""
    value = np.where(np.isnan(level_mm), UHSLC_MISSING, np.round(level_mm)).astype(int)
    frame = pd.DataFrame({
        "year": times.year, "month": times.month, "day": times.day, "hour": times.hour,
        "sea_level_mm": value,
    })
    frame.to_csv(path, header=False, index=False)


def write_uhslc_stations(path: Path, stations: Sequence[tuple[str, GaugeStation]]) -> None:
    """``stations.csv`` (id, name, lat, lon, datum, units, synthetic): UHSLC CSVs carry none."""
    frame = pd.DataFrame([
        {"id": uhslc_id, "name": s.name, "lat": round(s.lat, 4), "lon": round(s.lon, 4),
         "datum": s.datum, "units": "mm", "synthetic": True}
        for uhslc_id, s in stations
    ])
    frame.to_csv(path, index=False)


def write_netcdf(path: Path, dataset: xr.Dataset) -> None:
    """A NetCDF-4 file, written without re-encoding the (already CF-encoded) time axis."""
    encoding = {name: {"zlib": True, "complevel": 4} for name in dataset.data_vars}
    for name in dataset.variables:
        encoding.setdefault(name, {})
        if "_FillValue" not in dataset[name].attrs:
            encoding[name]["_FillValue"] = None
    dataset.to_netcdf(path, engine="netcdf4", encoding=encoding)


def write_labels_gpkg(path: Path, labels: gpd.GeoDataFrame) -> None:
    """Hand-label polygons (class, date, synthetic) as a GeoPackage layer ``labels``."""
    labels.to_file(path, driver="GPKG", layer="labels")


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """``manifest.json``, pretty and key-sorted so identical runs give identical files."""
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
