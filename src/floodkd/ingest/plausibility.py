"""Plausibility of unit-bearing quantities, checked by each reader before anything is written.

A number in the wrong unit is the one bad input that passes every format check: a gauge in
mm declared as metres still parses, and then floods the whole map. Each check compares what
was read with what the physical quantity can be anywhere on Earth, refuses what no place has
(naming the unit that would fit) and warns where an odd value may still be real.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from floodkd.errors import InputError

__all__ = ["check_water_levels", "check_cross_polarisation", "check_gcm_field",
           "MAX_WATER_LEVEL_SPAN_M", "MIN_WATER_LEVEL_SPAN_M", "MAX_DATUM_OFFSET_M"]

log = logging.getLogger(__name__)

# The largest tidal range on Earth (Bay of Fundy, ~16 m) plus the largest storm surges
# (~8 m) stays under this between the 0.5th and 99.5th percentile of a record.
MAX_WATER_LEVEL_SPAN_M = 30.0
# The most sheltered microtidal seas (Baltic, Mediterranean) still move tens of centimetres
# over the 15 days a harmonic fit needs; a few centimetres is a unit error (metres as mm).
MIN_WATER_LEVEL_SPAN_M = 0.05
# Gauge datums (chart datum, station zero) sit metres, not hundreds of metres, from the sea.
MAX_DATUM_OFFSET_M = 100.0
# A mean level this far from 0 (beyond the record's own range) is a datum that is not mean
# sea level; legitimate for station zero or chart datum, so only a warning.
DATUM_WARN_M = 2.0
_UNIT_FACTORS = {"cm": 100.0, "mm": 1000.0}
# Cross-polarised backscatter (VH) sits 5-10 dB below co-polarised (VV) over land, water and
# towns alike; a scene whose median VV - VH is negative has its bands swapped.
MIN_MEDIAN_VV_MINUS_VH_DB = 0.0
WARN_MEDIAN_VV_MINUS_VH_DB = 1.5
# GCM fields in the output units: dynamic sea level is within a few metres of the geoid;
# monthly mean precipitation over 100 mm/day (3 m a month) or below -1 mm/day is no climate.
ZOS_MAX_ABS_M = 10.0
PR_RANGE_MM_DAY = (-1.0, 100.0)
PR_WARN_MAX_MM_DAY = 0.01  # the driest deserts reach this in some month of a record


def check_water_levels(path: str | Path, station: str, level_m: np.ndarray, unit: str,
                       unit_fix: str) -> None:
    """Refuse a gauge record whose levels (already converted from ``unit`` to metres) no sea
    has; ``unit_fix`` says where the unit is declared (the fix names it)."""
    valid = level_m[np.isfinite(level_m)]
    if valid.size == 0:
        return
    low, median, high = np.percentile(valid, [0.5, 50, 99.5])
    span = float(high - low)
    seen = f"station {station}: levels {low:.4g}..{high:.4g} m (median {median:.4g} m)"
    if span > MAX_WATER_LEVEL_SPAN_M or abs(median) > MAX_DATUM_OFFSET_M:
        smaller = next((u for u, f in _UNIT_FACTORS.items()
                        if span / f <= MAX_WATER_LEVEL_SPAN_M
                        and abs(median) / f <= MAX_DATUM_OFFSET_M), "mm")
        raise InputError(path, f"{seen} read as {unit}: no sea spans more than "
                         f"{MAX_WATER_LEVEL_SPAN_M:g} m or sits {MAX_DATUM_OFFSET_M:g} m from "
                         f"its datum, so the file is probably in {smaller}",
                         f"declare the unit the file is in ({unit_fix})")
    if span < MIN_WATER_LEVEL_SPAN_M:
        raise InputError(path, f"{seen} read as {unit}: a sea gauge moves more than "
                         f"{MIN_WATER_LEVEL_SPAN_M * 100:g} cm over a record, so the values "
                         "are probably metres declared as a smaller unit",
                         f"declare the unit the file is in ({unit_fix})")
    if abs(median) > max(DATUM_WARN_M, span):
        log.warning("%s: %s; the datum is not mean sea level, so the water levels are %+.2f m "
                    "off the DEM's heights unless the DEM uses the same datum", path, seen,
                    median)


def check_cross_polarisation(path: str | Path, vv_db: np.ndarray, vh_db: np.ndarray,
                             fix: str) -> None:
    """Refuse a scene whose VH is not below VV (bands swapped); ``fix`` says how to map them."""
    both = np.isfinite(vv_db) & np.isfinite(vh_db)
    if not both.any():
        return
    difference = float(np.median(vv_db[both] - vh_db[both]))
    if difference < MIN_MEDIAN_VV_MINUS_VH_DB:
        raise InputError(path, f"the band read as VH is {-difference:.1f} dB above VV in median; "
                         "cross-polarised VH is almost always 5-10 dB below VV, so the bands "
                         "are swapped", fix)
    if difference < WARN_MEDIAN_VV_MINUS_VH_DB:
        log.warning("%s: VV is only %.1f dB above VH in median (usually 5-10 dB); check that "
                    "the bands are VV and VH sigma0", path, difference)


def check_gcm_field(path: str | Path, variable: str, values: np.ndarray) -> None:
    """Refuse a GCM field (in output units: zos m, pr mm/day) that no climate has."""
    valid = values[np.isfinite(values)]
    if valid.size == 0:
        return
    lowest, highest = float(valid.min()), float(valid.max())
    seen = f"{variable} spans {lowest:.4g}..{highest:.4g}"
    if variable == "zos" and max(abs(lowest), abs(highest)) > ZOS_MAX_ABS_M:
        raise InputError(path, f"{seen} m; dynamic sea level lies within "
                         f"{ZOS_MAX_ABS_M:g} m of the geoid, so the units attribute is wrong "
                         "(cm or mm given as m?)", "set the variable's units attribute to the "
                         "unit the values are in (ncatted -a units,zos,o,c,cm FILE)")
    if variable == "pr":
        low, high = PR_RANGE_MM_DAY
        if lowest < low or highest > high:
            raise InputError(path, f"{seen} mm/day as monthly means; no climate has means "
                             f"outside {low:g}..{high:g} mm/day, so the units attribute is "
                             "wrong (mm/day given as kg m-2 s-1?)", "set pr's units attribute "
                             "to the unit the values are in (ncatted -a units,pr,o,c,'mm day-1' "
                             "FILE)")
        if highest < PR_WARN_MAX_MM_DAY:
            log.warning("%s: %s mm/day: hardly any rain in any month; if the file holds "
                        "kg m-2 s-1 under a mm/day units attribute, fix the attribute", path,
                        seen)
