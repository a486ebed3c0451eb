"""Reading the ingest folders of a region (the edge of the align stage): scene tables, the
tide and GCM NetCDFs and label polygons, checked against the data contract."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from floodkd.align.times import to_utc_naive
from floodkd.errors import InputError

__all__ = ["Scenes", "read_scenes", "read_tide", "read_gcm", "read_label_polygons",
           "read_protected_areas",
           "MODALITIES", "REQUIRED_BY_MODEL", "WHAT_IT_ADDS"]

MODALITIES = ("sar", "terrain", "optical", "tide", "gcm", "labels", "defences")
# what the model that maps a region (config regions.<name>.model) cannot do without
REQUIRED_BY_MODEL = {"student": ("sar", "terrain"), "teacher": ("sar",)}
# what each modality adds, for the message when it is missing
WHAT_IT_ADDS = {
    "sar": "the radar passes the teacher maps from and the student learns from",
    "terrain": "elevation, height above the sea and distance to the coast: the student's "
               "base layers, without which it cannot map (the radar teacher does not need them)",
    "optical": "clear-sky reflectance and water indices for the student on dates without radar",
    "tide": "the gauge water-level field and histories for the student and its scenarios",
    "gcm": "climate-model sea level and rain for the student",
    "labels": "labels to train the teacher (source regions), or to fine-tune, calibrate and "
              "evaluate the student (target regions)",
    "defences": "the protected areas and their defences' crests, below which the student "
                "keeps the sea out of them",
}


@dataclass(frozen=True)
class Scenes:
    """A scene table: sorted times and the resolved file paths (plus any extra columns)."""

    times: np.ndarray
    table: pd.DataFrame


def _resolve(folder: Path, name: str, csv: Path) -> Path:
    path = Path(name)
    path = path if path.is_absolute() else folder / path
    if not path.is_file():
        raise InputError(csv, f"lists '{name}', which does not exist in {folder}",
                         f"rerun ingest for {folder.name}")
    return path


def read_scenes(folder: Path, file_columns: tuple[str, ...] = ("file",),
                extra_columns: tuple[str, ...] = ()) -> Scenes:
    """``<folder>/<table>.csv`` (scenes.csv or labels.csv): times parsed to UTC, files resolved."""
    csv = folder / ("labels.csv" if folder.name == "labels" else "scenes.csv")
    if not csv.is_file():
        raise InputError(csv, "the scene table is missing", f"rerun ingest for {folder.name}")
    try:
        table = pd.read_csv(csv, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputError(csv, f"not a readable CSV ({error})",
                         f"rerun ingest for {folder.name}") from error
    missing = [c for c in ("time", *file_columns, *extra_columns) if c not in table.columns]
    if missing:
        raise InputError(csv, f"missing columns {missing}",
                         f"rerun ingest for {folder.name}; see docs/data-contracts.md")
    try:
        times = to_utc_naive(table["time"])
    except (ValueError, TypeError) as error:
        raise InputError(csv, f"unparseable time ({error})",
                         "write times as ISO 8601 UTC") from error
    for column in file_columns:
        table[column] = [_resolve(folder, str(n), csv) for n in table[column]]
    table = table.assign(time=times).sort_values("time", kind="stable").reset_index(drop=True)
    return Scenes(table["time"].to_numpy(dtype="datetime64[ns]"), table)


def _open_netcdf(path: Path, variables: tuple[str, ...], dims: tuple[str, ...]) -> xr.Dataset:
    if not path.is_file():
        raise InputError(path, "the file is missing", f"rerun ingest for {path.parent.name}")
    try:
        ds = xr.load_dataset(path)
    except (OSError, ValueError) as error:
        raise InputError(path, f"cannot read the NetCDF ({error})",
                         f"rerun ingest for {path.parent.name}") from error
    for name in variables:
        if name not in ds or tuple(ds[name].dims) != dims:
            raise InputError(path, f"needs variable '{name}' with dims {dims}",
                             f"rerun ingest for {path.parent.name}; see docs/data-contracts.md")
    return ds


def read_tide(folder: Path) -> xr.Dataset:
    """``tide/tide.nc``: hourly ``water_level_m`` and ``flag`` per station, with lat/lon."""
    path = folder / "tide.nc"
    ds = _open_netcdf(path, ("water_level_m", "flag"), ("station", "time"))
    for coord in ("lat", "lon"):
        if coord not in ds.coords and coord not in ds:
            raise InputError(path, f"station coordinate '{coord}' is missing",
                             "rerun ingest for tide")
    return ds


def read_gcm(folder: Path) -> xr.Dataset:
    """``gcm/gcm.nc``: monthly ``zos`` and ``pr`` per experiment on a lat/lon grid."""
    return _open_netcdf(folder / "gcm.nc", ("zos", "pr"), ("experiment", "time", "lat", "lon"))


def _read_ingested_polygons(path: Path, what: str, modality: str,
                            columns: tuple[str, ...]) -> gpd.GeoDataFrame:
    """An ingest stage's GeoPackage of ``what``, with its CRS and ``columns``."""
    fix = f"rerun ingest for {modality}"
    try:
        frame = gpd.read_file(path)
    except Exception as error:  # pyogrio raises several types for unreadable files
        raise InputError(path, f"cannot read the {what} ({error})", fix) from error
    if frame.crs is None:
        raise InputError(path, f"the {what} have no CRS", fix)
    for column in columns:
        if column not in frame.columns:
            raise InputError(path, f"column '{column}' is missing", fix)
    return frame


def read_label_polygons(path: Path) -> gpd.GeoDataFrame:
    """``labels/labels.gpkg``: polygons with ``label`` 0|1 and ``time`` (parsed to UTC)."""
    frame = _read_ingested_polygons(path, "label polygons", "labels", ("label", "time"))
    if not frame["label"].isin([0, 1]).all():
        raise InputError(path, "labels other than 0 (dry) and 1 (water)",
                         "rerun ingest for labels")
    frame["time"] = to_utc_naive(frame["time"].astype(str))
    return frame


def read_protected_areas(folder: Path) -> gpd.GeoDataFrame:
    """``defences/defences.gpkg``: protected-area polygons with ``crest_m``."""
    return _read_ingested_polygons(folder / "defences.gpkg", "protected areas", "defences",
                                   ("crest_m",))
