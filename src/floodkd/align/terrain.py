"""Terrain derivatives on the region grid: height above nearest water, distance to the sea
and the spill level (the sea level at which water first reaches a cell).

All need the sea cells of the whole region, a whole-region question, so they work on the
(y, x) elevation in memory (4 bytes a pixel, once), unlike the lazy (time, y, x) variables.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["SEA_LEVEL_M", "sea_mask", "height_above_nearest_water", "coast_distance",
           "spill_level"]

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


def spill_level(elevation_m: np.ndarray, sea_level_m: float = SEA_LEVEL_M) -> np.ndarray:
    """The lowest sea level (metres) at which water from the sea reaches each cell over land:
    its ground where the way from the sea runs downhill to it, or behind a dike the lowest
    crest on the way in (the height of the path from the sea whose highest cell is lowest).

    A priority flood from the sea cells, computed as a morphological reconstruction by
    erosion; water moves between 4-connected cells, so it does not leak diagonally between
    two dike cells that touch at a corner (as ``floodkd.evaluate.baselines.bathtub``).
    Missing elevations are walls (water is not routed through the unknown) and stay NaN.
    With no sea cell in the region the cell's ground is the only bound known.
    """
    from skimage.morphology import reconstruction  # lazy: evaluate imports this module too

    elevation = np.asarray(elevation_m, dtype=np.float64)
    known = np.isfinite(elevation)
    sea = sea_mask(elevation, sea_level_m)
    if not sea.any():
        return elevation.astype(np.float32)
    wall = np.nanmax(elevation) + 1.0
    ground = np.where(known, elevation, wall)
    seed = np.where(sea, ground, wall)
    footprint = ndimage.generate_binary_structure(2, 1)
    spill = reconstruction(seed, ground, method="erosion", footprint=footprint)
    spill[~known] = np.nan
    return spill.astype(np.float32)
