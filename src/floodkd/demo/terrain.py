"""True coastal terrain at 10 m and the degraded global-style DEM derived from it.

The true terrain drives the physics. The DEM a user downloads is not the truth: it sees the
tops of trees and roofs, it is noisy, and at ~30 m it averages a 10 m dike crest away. The
demo keeps that gap so that a plain bathtub on the DEM is misled.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import Resampling, reproject, transform_bounds

from floodkd.demo.fields import fbm, fbm_1d

__all__ = [
    "Cover",
    "CoastLayout",
    "Terrain",
    "true_terrain",
    "surface_bias_m",
    "degrade_to_dem",
    "fallow_fields",
    "DEM_NODATA",
]

DEM_NODATA = -9999.0
ARCSECOND_DEG = 1.0 / 3600.0


class Cover(IntEnum):
    """Land cover of the true surface (drives radar, optical and DEM bias)."""

    SEA = 0
    MUDFLAT = 1
    CROPLAND = 2
    VEGETATION = 3  # trees, homestead groves, mangrove
    URBAN = 4
    BARE = 5


# How far a global DEM's surface sits above the ground for each cover (m): radar/photogrammetric
# DEMs measure the canopy and the roofs, not the terrain.
_SURFACE_BIAS_M = {
    Cover.SEA: 0.0,
    Cover.MUDFLAT: 0.2,
    Cover.CROPLAND: 0.5,
    Cover.VEGETATION: 4.0,
    Cover.URBAN: 5.0,
    Cover.BARE: 0.3,
}


@dataclass(frozen=True)
class CoastLayout:
    """The shape of one synthetic coast (vertical values in metres above mean sea level)."""

    landward_azimuth_deg: float  # direction from sea to land, clockwise from grid north
    high_water_m: float  # mean high water springs
    dike_crest_m: float  # crest of the polder's ring dike
    mangrove_fringe: bool  # mangrove on the upper flats and along creeks


@dataclass(frozen=True)
class Terrain:
    """The true terrain on a 10 m grid, with the features the physics and tests need."""

    elevation_m: np.ndarray  # float32, metres above mean sea level
    cover: np.ndarray  # uint8 Cover codes
    dike: np.ndarray  # bool: dike crest cells (the whole ring)
    sea_dike: np.ndarray  # bool: the crest of the ring's seaward side, facing the flats
    polder: np.ndarray  # bool: the protected land inside the ring dike
    coast_points_px: np.ndarray  # (k, 2) row, col of points on the shoreline, for tide gauges


def true_terrain(size_px: int, layout: CoastLayout, rng: np.random.Generator) -> Terrain:
    """Build a square coast of ``size_px`` 10 m cells.

    Offshore sea, intertidal flats, meandering tidal creeks, land rising inland, a ring dike
    around a polder lying below high water, closed depressions and an urban patch. Feature
    sizes scale with ``size_px``; heights are in metres.
    """
    n = size_px
    rows, cols = np.mgrid[0:n, 0:n].astype(np.float32)
    azimuth = np.deg2rad(layout.landward_azimuth_deg)
    east, north = cols - n / 2, (n / 2) - rows
    landward = east * np.sin(azimuth) + north * np.cos(azimuth)  # px towards land
    along = east * np.cos(azimuth) - north * np.sin(azimuth)  # px along the coast

    # the shoreline wiggles; its mean lies a quarter of the grid seaward of the centre
    wiggle = fbm_1d(4 * n, 2.5, rng)
    along_index = np.clip((along + 2 * n).astype(int), 0, 4 * n - 1)
    shoreline = -0.22 * n + 0.04 * n * wiggle[along_index]
    from_shore = landward - shoreline  # px landward of the shoreline (negative at sea)

    flats_px = 0.12 * n
    low_water_m = -2.2
    sea = from_shore < 0
    elevation = np.empty((n, n), np.float32)
    elevation[sea] = np.maximum(low_water_m + from_shore[sea] * (6.0 / (0.25 * n)), -12.0)
    on_flats = (~sea) & (from_shore < flats_px)
    elevation[on_flats] = low_water_m + (from_shore[on_flats] / flats_px) * (
        layout.high_water_m + 0.1 - low_water_m
    )
    land = from_shore >= flats_px
    relief = fbm((n, n), 3.0, rng)
    elevation[land] = (
        layout.high_water_m
        + 0.35
        + 1.6 * (1 - np.exp(-(from_shore[land] - flats_px) / (0.3 * n)))
        + 0.35 * relief[land]
    )
    elevation += 0.05 * fbm((n, n), 2.0, rng)  # micro-relief everywhere

    # ring dike around a polder whose floor lies below high water
    polder_shore = 0.20 * n  # px from the mean shoreline to the seaward dike
    polder_s0 = -0.22 * n + polder_shore
    polder_s1 = polder_s0 + 0.32 * n
    polder_u0, polder_u1 = -0.12 * n, 0.22 * n
    distance_out = np.maximum.reduce(
        [polder_s0 - landward, landward - polder_s1, polder_u0 - along, along - polder_u1]
    )  # signed distance (px) to the ring, negative inside
    polder = distance_out < -1.0
    dike = np.abs(distance_out) < 0.5
    shoulder = (np.abs(distance_out) < 1.5) & ~dike
    sea_dike = dike & (np.abs(landward - polder_s0) < 0.5) & (along > polder_u0) & (
        along < polder_u1
    )
    elevation[polder] = layout.high_water_m - 0.9 + 0.3 * relief[polder]

    # tidal creeks: meandering channels from the sea into the unprotected land
    ring_box = distance_out < 3.0
    n_creeks = 2 + n // 96
    for _ in range(n_creeks):
        start = rng.uniform(-0.5 * n, 0.5 * n)
        reach_px = rng.uniform(0.35, 0.6) * n
        amplitude, wavelength = rng.uniform(2, 0.05 * n + 3), rng.uniform(0.15, 0.3) * n
        phase = rng.uniform(0, 2 * np.pi)
        centre = start + amplitude * np.sin(2 * np.pi * from_shore / wavelength + phase)
        progress = np.clip(from_shore / reach_px, 0, 1)
        half_width = 1.6 - 0.9 * progress  # px: wide at the mouth, narrow at the head
        channel = (np.abs(along - centre) < half_width) & (from_shore > -3) & (
            from_shore < reach_px
        ) & ~ring_box
        bed = low_water_m + 0.1 + progress * (layout.high_water_m - 0.4 - low_water_m)
        elevation[channel] = np.minimum(elevation[channel], bed[channel])

    # closed depressions where heavy rain ponds
    inland = land & ~ring_box
    n_pits = max(2, (n * n) // 3000)
    candidates = np.flatnonzero(inland & (from_shore > flats_px + 0.1 * n))
    for index in rng.choice(candidates, size=min(n_pits, candidates.size), replace=False):
        r, c = divmod(int(index), n)
        sigma = rng.uniform(2, 2 + 0.03 * n)
        depth = rng.uniform(0.6, 1.3)
        elevation -= depth * np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * sigma**2))

    # dike body on top of everything: a 10 m crest with 1:2 slopes down to the land
    elevation[shoulder] = 0.35 * layout.dike_crest_m + 0.65 * np.maximum(elevation[shoulder], 0)
    elevation[dike] = layout.dike_crest_m + 0.1 * relief[dike]

    near_dike = np.abs(distance_out) < 5.0  # embankment and its kept-clear berm (50 m)
    cover = _land_cover(n, from_shore, flats_px, land, polder, near_dike, layout, rng)
    urban = cover == Cover.URBAN
    elevation[urban] += 0.4  # built-up ground is raised

    shore_rows, shore_cols = np.nonzero(np.abs(from_shore) < 0.5)
    pick = rng.choice(shore_rows.size, size=min(8, shore_rows.size), replace=False)
    return Terrain(
        elevation_m=elevation.astype(np.float32),
        cover=cover,
        dike=dike,
        sea_dike=sea_dike,
        polder=polder,
        coast_points_px=np.stack([shore_rows[pick], shore_cols[pick]], axis=1),
    )


def _land_cover(
    n: int,
    from_shore: np.ndarray,
    flats_px: float,
    land: np.ndarray,
    polder: np.ndarray,
    near_dike: np.ndarray,
    layout: CoastLayout,
    rng: np.random.Generator,
) -> np.ndarray:
    """Cover classes from position and fractal fields (cropland, groves, bare, one town)."""
    cover = np.full((n, n), Cover.CROPLAND, np.uint8)
    cover[from_shore < flats_px] = Cover.MUDFLAT
    cover[from_shore < 0] = Cover.SEA
    groves = fbm((n, n), 3.0, rng)
    bare = fbm((n, n), 3.0, rng)
    cover[land & (groves > 0.9)] = Cover.VEGETATION
    cover[land & (bare > 1.3)] = Cover.BARE
    if layout.mangrove_fringe:
        fringe = (from_shore > 0.55 * flats_px) & (from_shore < flats_px + 0.04 * n)
        cover[fringe & (groves > -0.6)] = Cover.VEGETATION
    cover[polder] = np.where(groves[polder] > 1.2, Cover.VEGETATION, Cover.CROPLAND)
    cover[near_dike] = Cover.BARE  # grassed embankment and berm: no trees, no houses
    # one town on high ground inland of the polder's flank
    rows, cols = np.mgrid[0:n, 0:n]
    centre = np.argwhere(land & ~polder & (from_shore > flats_px + 0.35 * n))
    if centre.size:
        r, c = centre[rng.integers(len(centre))]
        radius = 0.07 * n + 2
        town = ((rows - r) ** 2 + (cols - c) ** 2) < (radius * (1 + 0.3 * bare)) ** 2
        cover[town & land & ~polder & ~near_dike] = Cover.URBAN
    return cover


def fallow_fields(cover: np.ndarray, parcels: np.ndarray, fallow_rank: np.ndarray,
                  share: float) -> np.ndarray:
    """The cover of one date: cropland fields (``parcels`` ids) whose rank (0..1, indexed by
    id) is under ``share`` lie fallow, bare soil to radar and optical alike. The same
    fields go fallow first each season, as a farm's calendar repeats."""
    fallow = (cover == Cover.CROPLAND) & (np.asarray(fallow_rank)[parcels] < share)
    return np.where(fallow, np.uint8(Cover.BARE), cover).astype(cover.dtype)


def surface_bias_m(cover: np.ndarray) -> np.ndarray:
    """How far a global DEM reads above the ground for each cell (canopy, roofs)."""
    lookup = np.zeros(max(Cover) + 1, np.float32)
    for klass, bias in _SURFACE_BIAS_M.items():
        lookup[klass] = bias
    return lookup[cover]


def degrade_to_dem(
    elevation_m: np.ndarray,
    cover: np.ndarray,
    transform: Affine,
    crs: CRS,
    rng: np.random.Generator,
) -> tuple[np.ndarray, Affine]:
    """The DEM a user would download: surface bias, noise, averaged onto a 1 arcsecond grid.

    Returns the float32 DEM in EPSG:4326 and its transform. The 30 m average smooths the 10 m
    dike crest away; canopy and roofs add metres; noise adds a few decimetres.
    """
    n_rows, n_cols = elevation_m.shape
    surface = elevation_m + surface_bias_m(cover) + 0.3 * fbm(elevation_m.shape, 2.5, rng)
    west, south, east, north = transform_bounds(
        crs, "EPSG:4326", *_bounds(transform, n_rows, n_cols)
    )
    # snap to whole arcseconds, shrunk one cell so every DEM cell has terrain under it
    west = np.ceil(west / ARCSECOND_DEG) * ARCSECOND_DEG + ARCSECOND_DEG
    north = np.floor(north / ARCSECOND_DEG) * ARCSECOND_DEG - ARCSECOND_DEG
    width = int((east - west) / ARCSECOND_DEG) - 1
    height = int((north - south) / ARCSECOND_DEG) - 1
    dem_transform = Affine(ARCSECOND_DEG, 0, west, 0, -ARCSECOND_DEG, north)
    dem = np.full((height, width), DEM_NODATA, np.float32)
    reproject(
        surface.astype(np.float32),
        dem,
        src_transform=transform,
        src_crs=crs,
        dst_transform=dem_transform,
        dst_crs="EPSG:4326",
        resampling=Resampling.average,
        src_nodata=None,
        dst_nodata=DEM_NODATA,
    )
    valid = dem != DEM_NODATA
    dem[valid] += 0.15 * rng.standard_normal(int(valid.sum())).astype(np.float32)
    return dem, dem_transform


def _bounds(transform: Affine, n_rows: int, n_cols: int) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of a north-up grid."""
    left, top = transform.c, transform.f
    return left, top + n_rows * transform.e, left + n_cols * transform.a, top
