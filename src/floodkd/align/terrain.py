"""Terrain derivatives on the region grid: height above nearest water and distance to the sea.

Both need the nearest sea cell of every pixel, a whole-region question, so they work on the
(y, x) elevation in memory (4 bytes a pixel, once), unlike the lazy (time, y, x) variables.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["SEA_LEVEL_M", "sea_mask", "height_above_nearest_water", "coast_distance"]

# Cells at or below the DEM's vertical datum (mean sea level for GLO-30 style DEMs) are sea.
SEA_LEVEL_M = 0.0


def sea_mask(elevation_m: np.ndarray, sea_level_m: float = SEA_LEVEL_M) -> np.ndarray:
    """True where the DEM is at or below sea level (missing elevations are not sea)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(elevation_m) & (elevation_m <= sea_level_m)


def height_above_nearest_water(
    elevation_m: np.ndarray, sea_level_m: float = SEA_LEVEL_M
) -> np.ndarray:
    """Elevation minus the elevation of the nearest sea cell (HAND, metres; 0 on the sea).

    With no sea cell in the region the surface is the sea level itself. Missing elevation
    stays NaN.
    """
    sea = sea_mask(elevation_m, sea_level_m)
    if not sea.any():
        return (elevation_m - sea_level_m).astype(np.float32)
    # indices of the nearest zero (= sea) cell for every cell
    _, (rows, cols) = ndimage.distance_transform_edt(~sea, return_indices=True)
    return (elevation_m - elevation_m[rows, cols]).astype(np.float32)


def coast_distance(
    elevation_m: np.ndarray, resolution_m: float, sea_level_m: float = SEA_LEVEL_M
) -> np.ndarray:
    """Straight-line distance (metres) from each cell centre to the nearest sea cell centre.

    NaN everywhere when the region holds no sea cell (the distance is unknown, not zero),
    and where the elevation is missing.
    """
    sea = sea_mask(elevation_m, sea_level_m)
    if not sea.any():
        return np.full(elevation_m.shape, np.nan, dtype=np.float32)
    distance = ndimage.distance_transform_edt(~sea, sampling=resolution_m).astype(np.float32)
    distance[~np.isfinite(elevation_m)] = np.nan
    return distance
