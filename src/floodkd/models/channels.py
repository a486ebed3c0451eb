"""Model input channels: which cube variables each model reads, in what order, and how scaled.

Normalisation uses fixed physical constants, not statistics of one region, so a model trained
on one coast applies unchanged to another.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from skimage.filters import threshold_otsu

__all__ = [
    "TEACHER_CHANNELS",
    "BACKSCATTER_FLOOR_DB",
    "pass_land_level_db",
    "STUDENT_CHANNELS",
    "MODALITIES",
    "MODALITY_CHANNELS",
    "TERRAIN_CHANNELS",
    "DEFENCE_CHANNELS",
    "WATERLINE_CHANNELS",
    "NORMALISATION",
    "normalise",
    "teacher_image",
    "student_image",
    "presence_vector",
]

# Absolute backscatter, and backscatter against the pass's own land level (see
# pass_land_level_db): what calibration, incidence angle and soil moisture shift in a whole
# pass cancels in the second pair, which is how far below its surroundings water lies.
TEACHER_CHANNELS: tuple[str, ...] = (
    "vv_db", "vh_db", "vv_minus_vh_db", "vv_minus_land_db", "vh_minus_land_db")

OPTICAL_CHANNELS = ("b02", "b03", "b04", "b08", "b11", "b12", "ndwi", "mndwi", "clear_sky")
TERRAIN_CHANNELS: tuple[str, ...] = ("elevation_m", "hand_m", "coast_distance_m")
# the crest of the registered defence protecting each pixel, and whether one does: static
# like the terrain, but optional (a region without a register is unprotected everywhere)
DEFENCE_CHANNELS = ("protection_level_m", "protected")
# the level at which the region's radar archive sees the pixel flood (floodkd waterline),
# whether the archive tells it, and whether that level is only a floor (never seen wet):
# static and optional like the defences (a region without an archive reads the DEM alone)
WATERLINE_CHANNELS = ("waterline_m", "waterline_known", "waterline_above")
GAUGE_CHANNELS = ("water_level_m", "water_depth_m")
GCM_CHANNELS = ("zos_m", "pr_mm_day")

STUDENT_CHANNELS: tuple[str, ...] = (
    OPTICAL_CHANNELS + TERRAIN_CHANNELS + DEFENCE_CHANNELS + WATERLINE_CHANNELS
    + GAUGE_CHANNELS + GCM_CHANNELS
)

# Terrain is always present and radar is never a student input, so neither is a modality.
MODALITIES: tuple[str, ...] = ("optical", "gauge", "gcm")
MODALITY_CHANNELS: dict[str, tuple[str, ...]] = {
    "optical": OPTICAL_CHANNELS,
    "gauge": GAUGE_CHANNELS,
    "gcm": GCM_CHANNELS,
}

# Sentinel-1 IW's noise-equivalent sigma0 is -26 to -22 dB (Torres et al. 2012; spec <= -22).
# A pixel 4 dB or more under the lowest of it has a signal-to-noise ratio under 0.4: its dB
# value says how the product's noise removal treated it (floored at -40 dB, clipped to zero,
# left as residue, not removed at all), not what the surface is. The teacher sees every
# backscatter below this floor as the floor, so it learns "below the noise", which holds
# in every product, and not one processing chain's numbers.
BACKSCATTER_FLOOR_DB = -30.0

# channel -> (offset, scale): normalised = (value - offset) / scale. Offsets sit near the
# typical value and scales span the usual physical range, so inputs are O(1).
NORMALISATION: dict[str, tuple[float, float]] = {
    "vv_db": (-15.0, 10.0),  # water ~ -25 dB, land ~ -8 dB
    "vh_db": (-22.0, 10.0),
    "vv_minus_vh_db": (7.0, 5.0),
    "vv_minus_land_db": (-5.0, 5.0),  # land ~ 0 dB, water ~ -8 to -12 dB
    "vh_minus_land_db": (-5.0, 5.0),
    "b02": (0.15, 0.15),  # surface reflectance, 0..1
    "b03": (0.15, 0.15),
    "b04": (0.15, 0.15),
    "b08": (0.2, 0.2),
    "b11": (0.2, 0.2),
    "b12": (0.15, 0.15),
    "ndwi": (0.0, 0.5),  # index, -1..1
    "mndwi": (0.0, 0.5),
    "clear_sky": (0.0, 1.0),  # already 0/1
    "elevation_m": (2.0, 5.0),  # coastal lowland
    "hand_m": (2.0, 5.0),
    "coast_distance_m": (0.0, 2000.0),
    "protection_level_m": (2.0, 5.0),  # as the elevation: a crest is a height of the land
    "protected": (0.0, 1.0),
    "waterline_m": (0.0, 2.0),  # as the water level it is read against
    "waterline_known": (0.0, 1.0),
    "waterline_above": (0.0, 1.0),
    "water_level_m": (0.0, 2.0),  # tide + surge about mean sea level
    "water_depth_m": (0.0, 2.0),
    "zos_m": (0.0, 0.5),
    "pr_mm_day": (3.0, 5.0),
}


def normalise(name: str, array: np.ndarray) -> np.ndarray:
    """Scale one channel by its fixed constants; NaN stays NaN. Returns float32."""
    if name not in NORMALISATION:
        raise ValueError(f"no normalisation constants for channel {name!r}")
    offset, scale = NORMALISATION[name]
    return ((np.asarray(array, dtype=np.float32) - offset) / scale).astype(np.float32)


def pass_land_level_db(vv_db: np.ndarray, vh_db: np.ndarray) -> tuple[float, float]:
    """The land level (VV, VH dB) of one radar pass: the median VV and VH of its pixels that
    are brighter in VV than Otsu's threshold, over pixels with both (held at the floor first,
    as the teacher sees them). NaN, NaN for a pass without valid pixels.

    Give it the whole pass over the region (or a regular subsample of it), never a tile:
    a tile can be all water. Why this statistic: water is a specular reflector, 6-12 dB darker
    in VV than any land around it, so a pass's VV histogram is a dark water mode and a bright
    land mode; Otsu's split separates them and the bright mode's median is the land level
    whatever share of the pass is water (a percentile of the whole pass drifts with that share:
    a pass that is mostly sea has sea as its median). A pass with no water puts the split
    inside the land and the level about 2 dB above the land's median; a pass whose sea is as
    bright as its land (strong wind) has no water mode to split off at all.
    """
    vv = np.maximum(np.asarray(vv_db, dtype=np.float64), BACKSCATTER_FLOOR_DB)
    vh = np.maximum(np.asarray(vh_db, dtype=np.float64), BACKSCATTER_FLOOR_DB)
    if vv.shape != vh.shape:
        raise ValueError(f"vv_db {vv.shape} and vh_db {vh.shape} must have the same shape")
    valid = np.isfinite(vv) & np.isfinite(vh)
    vv, vh = vv[valid], vh[valid]
    if vv.size == 0:
        return float("nan"), float("nan")
    land = vv > threshold_otsu(vv) if np.ptp(vv) > 0 else np.ones(vv.shape, bool)
    return float(np.median(vv[land])), float(np.median(vh[land]))


def teacher_image(vv_db: np.ndarray, vh_db: np.ndarray,
                  land_level_db: tuple[float, float]) -> np.ndarray:
    """The teacher's input (len(TEACHER_CHANNELS), H, W) float32: normalised VV, VH, VV-VH and
    VV, VH minus ``land_level_db`` (the pass's pass_land_level_db), VV and VH held at
    BACKSCATTER_FLOOR_DB from below; NaN -> 0."""
    vv = np.asarray(vv_db, dtype=np.float32)
    vh = np.asarray(vh_db, dtype=np.float32)
    if vv.shape != vh.shape or vv.ndim != 2:
        raise ValueError(f"vv_db {vv.shape} and vh_db {vh.shape} must be equal (H, W) arrays")
    vv, vh = np.maximum(vv, BACKSCATTER_FLOOR_DB), np.maximum(vh, BACKSCATTER_FLOOR_DB)  # NaN stays
    land_vv, land_vh = (np.float32(level) for level in land_level_db)
    raw = {"vv_db": vv, "vh_db": vh, "vv_minus_vh_db": vv - vh,
           "vv_minus_land_db": vv - land_vv, "vh_minus_land_db": vh - land_vh}
    stacked = np.stack([normalise(name, raw[name]) for name in TEACHER_CHANNELS])
    return np.nan_to_num(stacked, nan=0.0, posinf=0.0, neginf=0.0)


def student_image(
    arrays: Mapping[str, np.ndarray], presence: Mapping[str, bool]
) -> np.ndarray:
    """The student's input (len(STUDENT_CHANNELS), H, W) float32.

    ``arrays`` maps cube variable names to (H, W) arrays; terrain channels are required,
    channels of an absent modality may be missing, ``protection_level_m`` and
    ``waterline_m``/``waterline_above`` too (unprotected, no archive).
    ``water_depth_m`` is derived as ``water_level_m - elevation_m`` when not given,
    ``protected`` as where ``protection_level_m`` is not NaN and ``waterline_known`` as where
    ``waterline_m`` is not. ``presence`` maps each modality to whether it is present; absent
    modalities are zeroed, as are optical channels where ``clear_sky`` is not 1, and NaN
    everywhere (zero = the channel's typical value).
    """
    missing_terrain = [name for name in TERRAIN_CHANNELS if name not in arrays]
    if missing_terrain:
        raise ValueError(f"terrain channels {missing_terrain} are required for the student")
    shape = np.shape(arrays["elevation_m"])
    if len(shape) != 2:
        raise ValueError(f"elevation_m must be (H, W), got shape {shape}")
    channels = dict(arrays)
    protection = np.asarray(channels.get("protection_level_m", np.full(shape, np.nan)),
                            np.float32)
    channels["protection_level_m"] = protection
    channels["protected"] = np.isfinite(protection).astype(np.float32)
    waterline = np.asarray(channels.get("waterline_m", np.full(shape, np.nan)), np.float32)
    channels["waterline_m"] = waterline
    channels["waterline_known"] = np.isfinite(waterline).astype(np.float32)
    above = np.asarray(channels.get("waterline_above", np.zeros(shape)), np.float32)
    channels["waterline_above"] = ((np.nan_to_num(above) == 1) & np.isfinite(waterline)
                                   ).astype(np.float32)
    if "water_depth_m" not in channels and "water_level_m" in channels:
        channels["water_depth_m"] = np.asarray(channels["water_level_m"], np.float32) - np.asarray(
            channels["elevation_m"], np.float32
        )

    out = np.zeros((len(STUDENT_CHANNELS), *shape), dtype=np.float32)
    absent = {name for m, names in MODALITY_CHANNELS.items() if not presence.get(m, False)
              for name in names}
    for index, name in enumerate(STUDENT_CHANNELS):
        if name in absent:
            continue
        if name not in channels:
            raise ValueError(f"channel {name!r} is missing although its modality is present")
        values = np.asarray(channels[name], dtype=np.float32)
        if values.shape != shape:
            raise ValueError(f"channel {name!r} has shape {values.shape}, expected {shape}")
        out[index] = normalise(name, values)
    out = np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)

    if presence.get("optical", False):
        # Cloudy, shadowed or unobserved pixels carry no optical information: zero them all.
        clear = np.nan_to_num(np.asarray(channels["clear_sky"], np.float32), nan=0.0) == 1.0
        for name in OPTICAL_CHANNELS:
            out[STUDENT_CHANNELS.index(name)][~clear] = 0.0
    return out


def presence_vector(presence: Mapping[str, bool]) -> np.ndarray:
    """Presence flags (len(MODALITIES),) float32 in MODALITIES order, as the student takes them."""
    return np.array([1.0 if presence.get(m, False) else 0.0 for m in MODALITIES], np.float32)
