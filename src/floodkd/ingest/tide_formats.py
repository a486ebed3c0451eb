"""Readers for the public tide-gauge layouts: GESLA-3 text files and UHSLC hourly CSV.

Both return a :class:`GaugeRecord`: raw rows in file order (times in UTC, levels in metres,
NaN where the file says missing), so the QC in ``tide.py`` sees duplicates and disorder
exactly as the file had them.

GESLA-3 (https://gesla.org, format version 5): ``# KEY value`` header lines (SITE NAME, SITE
CODE, LATITUDE, LONGITUDE, TIME ZONE HOURS, DATUM INFORMATION, NULL VALUE, ...), then rows
``YYYY/MM/DD HH:MM:SS level_m qc_flag use_flag``; qc_flag 5 and the null value (-99.9999)
mean missing; use_flag 0 means "do not use for analysis".

UHSLC hourly CSV (``h<id>[a-z].csv``): no header, rows ``year,month,day,hour,level``, level
in mm, -32767 missing, times in GMT. Station metadata comes from a separate CSV with columns
id, name, lat, lon, datum, units.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from floodkd.errors import InputError

__all__ = ["GaugeRecord", "read_gesla3", "read_uhslc", "read_uhslc_stations"]

GESLA_KEYS = ("SITE NAME", "SITE CODE", "COUNTRY", "LATITUDE", "LONGITUDE", "TIME ZONE HOURS",
              "DATUM INFORMATION", "NULL VALUE", "GAUGE TYPE", "INSTRUMENT", "UNITS")
GESLA_DEFAULT_NULL = -99.9999
GESLA_QC_MISSING = 5
UHSLC_MISSING = -32767
UHSLC_NAME = re.compile(r"^h(?P<id>\d+|[0-9a-z]+?)(?P<version>[a-z]?)\.csv$", re.IGNORECASE)
# Divisors, not factors: 2401 / 1000 is exactly the double nearest 2.401, 2401 * 0.001 is not.
UNITS_PER_M = {"m": 1.0, "metre": 1.0, "metres": 1.0, "meter": 1.0, "meters": 1.0,
               "cm": 100.0, "mm": 1000.0}
STATION_COLUMNS = ("id", "name", "lat", "lon", "datum", "units")


@dataclass
class GaugeRecord:
    """One station's raw rows, in file order."""

    path: Path
    station: str
    name: str
    lat: float
    lon: float
    datum: str
    time_utc: np.ndarray  # datetime64[ns]
    level_m: np.ndarray  # float64, NaN = missing in the file
    use: np.ndarray  # bool, False where the provider says "do not use" (GESLA use_flag 0)
    line: np.ndarray  # 1-based line numbers in the file, for messages
    unit: str = "m"  # the unit the file stores levels in (level_m is converted)
    unit_fix: str = "inputs.tide.unit in the config"  # where that unit is declared


def _per_m(path: Path, unit: str, where: str) -> float:
    per_m = UNITS_PER_M.get(unit.strip().lower())
    if per_m is None:
        raise InputError(path, f"unknown sea-level unit {unit!r} ({where})",
                         f"use one of {sorted(UNITS_PER_M)}")
    return per_m


def _agreed_unit(path: Path, declared: str, where: str, configured: str | None) -> None:
    if configured is not None and _per_m(path, declared, where) != UNITS_PER_M[configured]:
        raise InputError(path, f"{where} says the levels are in {declared!r} but the config "
                         f"says {configured!r}", f"correct whichever is wrong ({where}, or "
                         "inputs.tide.unit)")


def _data_lines(text: str, comment: str | None) -> tuple[list[str], np.ndarray]:
    """Non-blank, non-comment lines and their 1-based line numbers."""
    rows, numbers = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not (comment and stripped.startswith(comment)):
            rows.append(stripped)
            numbers.append(number)
    return rows, np.asarray(numbers, dtype=int)


def _first_bad(path: Path, bad: np.ndarray, lines: np.ndarray, rows: list[str],
               problem: str, fix: str) -> None:
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise InputError(path, f"line {lines[index]}: {problem} ({rows[index]!r}; "
                         f"{int(bad.sum())} such lines)", fix)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise InputError(path, f"cannot read ({error})", "check the file exists and is readable") \
            from error


def _gesla_header(path: Path, text: str) -> dict[str, str]:
    header: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            if line.strip():
                break
            continue
        body = line.lstrip("#").strip()
        for key in GESLA_KEYS:
            if body.upper().startswith(key + " ") or body.upper() == key:
                header[key] = body[len(key):].strip()
                break
    return header


def _header_float(path: Path, header: dict[str, str], key: str, default: float | None) -> float:
    raw = header.get(key)
    if raw is None or raw.lower() in ("", "unspecified", "unknown"):
        if default is None:
            raise InputError(path, f"the GESLA header has no {key}",
                             f"add a '# {key} <value>' header line")
        return default
    try:
        return float(raw.split()[0])
    except ValueError:
        raise InputError(path, f"GESLA header {key} is not a number ({raw!r})",
                         f"write '# {key}' as a number") from None


def read_gesla3(path: Path, configured_unit: str | None = None) -> GaugeRecord:
    """Parse one GESLA-3 file; times shifted to UTC by its TIME ZONE HOURS, levels converted
    from its ``# UNITS`` header (which must agree with ``configured_unit`` when both are
    given), else from ``configured_unit``, else metres (the GESLA standard)."""
    path = Path(path)
    text = _read_text(path)
    header = _gesla_header(path, text)
    unit = header.get("UNITS") or configured_unit or "m"
    if header.get("UNITS"):
        _agreed_unit(path, unit, "the '# UNITS' header", configured_unit)
        unit_fix = "the file's '# UNITS' header line"
    else:
        unit_fix = "a '# UNITS' header line, or inputs.tide.unit in the config"
    per_m = _per_m(path, unit, "the '# UNITS' header")
    lat = _header_float(path, header, "LATITUDE", None)
    lon = _header_float(path, header, "LONGITUDE", None)
    zone_hours = _header_float(path, header, "TIME ZONE HOURS", 0.0)
    null_value = _header_float(path, header, "NULL VALUE", GESLA_DEFAULT_NULL)
    rows, lines = _data_lines(text, "#")
    if not rows:
        raise InputError(path, "has no data rows", "give a GESLA-3 file with observations")
    fields = [row.split() for row in rows]
    _first_bad(path, np.array([len(f) < 3 for f in fields]), lines, rows,
               "expected 'YYYY/MM/DD HH:MM:SS level qc use'", "repair or remove that line")
    stamps = pd.Series([f"{f[0]} {f[1]}" for f in fields])
    times = pd.to_datetime(stamps, format="%Y/%m/%d %H:%M:%S", errors="coerce")
    _first_bad(path, times.isna().to_numpy(), lines, rows,
               "unparseable timestamp, expected YYYY/MM/DD HH:MM:SS", "repair that line")
    level = pd.to_numeric(pd.Series([f[2] for f in fields]),
                          errors="coerce").to_numpy(float, copy=True)
    _first_bad(path, np.isnan(level), lines, rows, "the sea level is not a number",
               f"write missing values as {null_value}")
    qc = pd.to_numeric(pd.Series([f[3] if len(f) > 3 else "1" for f in fields]),
                       errors="coerce").to_numpy()
    use = pd.to_numeric(pd.Series([f[4] if len(f) > 4 else "1" for f in fields]),
                        errors="coerce").to_numpy()
    missing = np.isclose(level, null_value) | (qc == GESLA_QC_MISSING)
    level[missing] = np.nan
    time_utc = (times - pd.Timedelta(hours=zone_hours)).to_numpy("datetime64[ns]")
    return GaugeRecord(
        path=path, station=header.get("SITE CODE") or path.name,
        name=header.get("SITE NAME") or path.name, lat=lat, lon=lon,
        datum=header.get("DATUM INFORMATION") or "unspecified",
        time_utc=time_utc, level_m=level / per_m, use=use != 0, line=lines, unit=unit,
        unit_fix=unit_fix,
    )


def read_uhslc_stations(path: Path) -> pd.DataFrame:
    """The station metadata CSV (id, name, lat, lon, datum, units), indexed by id."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype={"id": str, "name": str, "datum": str, "units": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputError(path, f"cannot read the station table ({error})",
                         "give a CSV with columns " + ", ".join(STATION_COLUMNS)) from error
    missing = [c for c in STATION_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(path, f"the station table lacks columns {missing}",
                         "give a CSV with columns " + ", ".join(STATION_COLUMNS))
    for column in ("lat", "lon"):
        values = pd.to_numeric(table[column], errors="coerce")
        if values.isna().any():
            bad = table.loc[values.isna(), "id"].tolist()
            raise InputError(path, f"stations {bad} have no valid {column}",
                             f"fill in {column} in decimal degrees")
        table[column] = values
    table["key"] = table["id"].map(_station_key)
    repeated = table.loc[table["key"].duplicated(), "id"].tolist()
    if repeated:
        raise InputError(path, f"station ids {repeated} appear more than once",
                         "keep one row per station")
    return table.set_index("key")


def _station_key(station_id: str) -> str:
    """Ids compare without leading zeros when numeric ('057' matches '57')."""
    text = str(station_id).strip().lower()
    return str(int(text)) if text.isdigit() else text


def read_uhslc(path: Path, stations: pd.DataFrame, stations_path: Path,
               configured_unit: str | None = None) -> GaugeRecord:
    """Parse one UHSLC hourly CSV; metadata (units included, which must agree with
    ``configured_unit`` when given) from ``stations`` by the id in the file name."""
    path = Path(path)
    match = UHSLC_NAME.match(path.name)
    if match is None:
        raise InputError(path, "the name is not a UHSLC hourly file name h<id>[a-z].csv",
                         "keep the UHSLC file names so the station can be looked up")
    key = _station_key(match["id"])
    if key not in stations.index:
        raise InputError(stations_path, f"no station with id {match['id']} (for {path.name}); "
                         f"ids present: {sorted(stations['id'])}", "add the station's row")
    meta = stations.loc[key]
    where = f"{stations_path} (station {meta['id']})"
    per_m = _per_m(stations_path, str(meta["units"]), where)
    _agreed_unit(path, str(meta["units"]), where, configured_unit)
    rows, lines = _data_lines(_read_text(path), None)
    if not rows:
        raise InputError(path, "has no data rows", "give a UHSLC hourly CSV with observations")
    fields = [[part.strip() for part in row.split(",")] for row in rows]
    _first_bad(path, np.array([len(f) != 5 for f in fields]), lines, rows,
               "expected 5 fields 'year,month,day,hour,sea_level'", "repair that line")
    parts = pd.DataFrame(fields, columns=["year", "month", "day", "hour", "level"])
    numbers = parts.apply(pd.to_numeric, errors="coerce")
    stamp_parts = numbers[["year", "month", "day", "hour"]]
    integral = (stamp_parts.notna() & (stamp_parts % 1 == 0)).all(axis=1)
    times = pd.to_datetime(stamp_parts.where(integral), errors="coerce")
    _first_bad(path, times.isna().to_numpy(), lines, rows,
               "unparseable timestamp (year,month,day,hour)", "repair that line")
    level = numbers["level"].to_numpy(float, copy=True)
    _first_bad(path, np.isnan(level), lines, rows, "the sea level is not a number",
               f"write missing values as {UHSLC_MISSING}")
    level[level == UHSLC_MISSING] = np.nan
    version = match["version"].lower()
    return GaugeRecord(
        path=path, station=f"{meta['id']}{version}", name=str(meta["name"]),
        lat=float(meta["lat"]), lon=float(meta["lon"]), datum=str(meta["datum"]),
        time_utc=times.to_numpy("datetime64[ns]"), level_m=level / per_m,
        use=np.ones(len(level), dtype=bool), line=lines, unit=str(meta["units"]),
        unit_fix=f"the units column of station {meta['id']} in {stations_path}",
    )
