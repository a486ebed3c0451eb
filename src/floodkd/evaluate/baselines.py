"""Baselines the models must beat: the bathtub model and an Otsu threshold on radar VV."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

__all__ = ["bathtub", "sar_otsu", "otsu_threshold_db"]

# 4-connectivity: water does not leak diagonally between two dike cells that touch at a corner
FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


def bathtub(
    elevation_m: np.ndarray, water_level_m: np.ndarray | float, sea: np.ndarray
) -> np.ndarray:
    """Flooded cells: below the water level and hydraulically connected to the sea.

    ``elevation_m`` (H, W) with NaN missing; ``water_level_m`` a scalar or (H, W) field;
    ``sea`` (H, W) bool marks the open sea the water enters from. A basin below the level
    but walled off (a polder behind a dike) stays dry. Returns (H, W) bool.
    """
    elevation = np.asarray(elevation_m, dtype=np.float64)
    level = np.broadcast_to(np.asarray(water_level_m, dtype=np.float64), elevation.shape)
    with np.errstate(invalid="ignore"):
        below = np.isfinite(elevation) & np.isfinite(level) & (elevation < level)
    below |= np.asarray(sea, dtype=bool)
    parts, _ = ndimage.label(below, structure=FOUR_CONNECTED)
    reached = np.unique(parts[np.asarray(sea, dtype=bool)])
    return np.isin(parts, reached[reached > 0])


def otsu_threshold_db(vv_db: np.ndarray) -> float:
    """Otsu's threshold (dB) between the dark (water) and bright (land) VV modes."""
    values = np.asarray(vv_db, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0 or np.ptp(values) == 0:
        raise ValueError("Otsu needs finite VV values with some spread")
    return float(threshold_otsu(values))


def sar_otsu(vv_db: np.ndarray) -> np.ndarray:
    """Water where VV backscatter is below the scene's Otsu threshold (NaN -> not water)."""
    vv = np.asarray(vv_db, dtype=np.float64)
    threshold = otsu_threshold_db(vv)
    with np.errstate(invalid="ignore"):
        return np.isfinite(vv) & (vv < threshold)
