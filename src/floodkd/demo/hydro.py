"""Water level (tides, surges, trend) and inundation physics on the 10 m grid.

Inundation is an attenuated bathtub: a cell floods when water can reach it from the sea
through cells that are themselves flooded, and it lies below the sea level minus a loss
that grows with the distance travelled (so short surges do not reach far inland). A dike
holds unless the water overtops it. Heavy rain ponds in closed depressions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage
from skimage.graph import MCP_Geometric
from skimage.morphology import reconstruction

__all__ = [
    "CONSTITUENT_SPEED_DEG_PER_HOUR",
    "Constituent",
    "SurgeEvent",
    "WaterLevelModel",
    "water_level_m",
    "daily_rain_mm",
    "rain_before_mm",
    "sea_inundation",
    "rain_ponding",
    "flood_extent",
    "waterlogged_fields",
]

# Angular speeds of the main constituents (degrees per mean solar hour, Doodson/Schureman).
CONSTITUENT_SPEED_DEG_PER_HOUR = {
    "M2": 28.9841042,
    "S2": 30.0000000,
    "N2": 28.4397295,
    "K2": 30.0821373,
    "K1": 15.0410686,
    "O1": 13.9430356,
}
_EPOCH = pd.Timestamp("2000-01-01T00:00:00")
_HOURS_PER_YEAR = 365.25 * 24
_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


@dataclass(frozen=True)
class Constituent:
    """One tidal constituent: name (a key of CONSTITUENT_SPEED_DEG_PER_HOUR), amplitude, phase."""

    name: str
    amplitude_m: float
    phase_deg: float


@dataclass(frozen=True)
class SurgeEvent:
    """A storm surge: a smooth bump of ``peak_m`` at ``peak_time``, ``duration_h`` wide."""

    peak_time: pd.Timestamp
    peak_m: float
    duration_h: float


@dataclass(frozen=True)
class WaterLevelModel:
    """Everything that sets the sea level at one place."""

    constituents: tuple[Constituent, ...]
    surges: tuple[SurgeEvent, ...]
    trend_m_per_year: float


def _hours(times: pd.DatetimeIndex | pd.Timestamp) -> np.ndarray:
    return np.asarray((pd.DatetimeIndex(np.atleast_1d(times)) - _EPOCH) / pd.Timedelta(hours=1))


def water_level_m(model: WaterLevelModel, times: pd.DatetimeIndex) -> np.ndarray:
    """Sea level (m above mean sea level of 2000) at ``times``: tide + surges + trend."""
    hours = _hours(times)
    level = np.zeros(hours.shape)
    for part in model.constituents:
        speed = np.deg2rad(CONSTITUENT_SPEED_DEG_PER_HOUR[part.name])
        level += part.amplitude_m * np.cos(speed * hours - np.deg2rad(part.phase_deg))
    for event in model.surges:
        # a skewed bump: fast rise ahead of landfall, slower set-down afterwards
        lag = hours - _hours(event.peak_time)[0]
        width = np.where(lag < 0, 0.4, 0.6) * event.duration_h
        level += event.peak_m * np.exp(-0.5 * (lag / width) ** 2)
    level += model.trend_m_per_year * hours / _HOURS_PER_YEAR
    return level


def daily_rain_mm(
    days: pd.DatetimeIndex, monthly_mean_mm_day: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Daily rain: wet days more likely in wet months, gamma-distributed amounts.

    ``monthly_mean_mm_day`` holds 12 climatological means (January first).
    """
    mean = monthly_mean_mm_day[days.month - 1]
    wet_probability = np.clip(0.1 + mean / 15.0, 0.1, 0.85)
    wet = rng.random(len(days)) < wet_probability
    shape = 0.7  # skewed: a few storms carry most of the rain
    amount = rng.gamma(shape, (mean / wet_probability) / shape)
    return np.where(wet, amount, 0.0)


def rain_before_mm(days: pd.DatetimeIndex, rain_mm: np.ndarray, time: pd.Timestamp) -> float:
    """Rain of the three days up to and including the day of ``time`` (mm)."""
    day = time.normalize()
    window = (days > day - pd.Timedelta(days=3)) & (days <= day)
    return float(rain_mm[window].sum())


def sea_inundation(
    elevation_m: np.ndarray,
    sea: np.ndarray,
    sea_level_m: float,
    attenuation_m_per_km: float,
    pixel_m: float,
) -> np.ndarray:
    """Cells flooded from the sea by an attenuated bathtub.

    A cell floods when it connects (4-neighbour, so water never slips diagonally through a
    dike) to ``sea`` through flooded cells and lies below ``sea_level_m`` minus
    ``attenuation_m_per_km`` times its flow distance from the sea. Solved as the largest set
    that satisfies that rule: start from the plain connected bathtub and peel away cells
    until nothing changes. A higher sea level never floods less.
    """
    rate_m_per_px = attenuation_m_per_km * pixel_m / 1000.0
    flooded = _connected_to(sea | (elevation_m < sea_level_m), sea)
    # distances start at the sea's edge: seeding only those cells keeps the solver fast
    shore = sea & ndimage.binary_dilation(~sea, structure=_FOUR_CONNECTED)
    sea_cells = [tuple(cell) for cell in np.argwhere(shore)]
    while True:
        costs = np.where(flooded, 1.0, np.inf)
        distance_px, _ = MCP_Geometric(costs, fully_connected=False).find_costs(sea_cells)
        distance_px[sea | ~np.isfinite(distance_px)] = 0.0  # unreached cells are not kept
        below = elevation_m < sea_level_m - rate_m_per_px * distance_px
        kept = _connected_to(sea | (flooded & below), sea)
        if np.array_equal(kept, flooded):
            return flooded
        flooded = kept


def _connected_to(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Cells of ``mask`` in a 4-connected component that contains a seed."""
    labels, _ = ndimage.label(mask, structure=_FOUR_CONNECTED)
    touching = np.unique(labels[seeds & mask])
    return np.isin(labels, touching[touching > 0])


def rain_ponding(
    elevation_m: np.ndarray,
    rain_mm: float,
    infiltration_mm: float = 15.0,
    concentration: float = 10.0,
    min_depth_m: float = 0.2,
) -> np.ndarray:
    """Cells under ponded rain in closed depressions.

    Rain beyond ``infiltration_mm`` runs off into the depressions; each depression's pond
    rises by the runoff depth times ``concentration`` (its catchment over its own area),
    never above the spill level where it would overflow.
    """
    runoff_m = max(rain_mm - infiltration_mm, 0.0) / 1000.0
    if runoff_m <= 0:
        return np.zeros(elevation_m.shape, bool)
    seed = elevation_m.copy()
    seed[1:-1, 1:-1] = elevation_m.max()
    spill_m = reconstruction(seed, elevation_m, method="erosion")  # fill every pit
    in_pit = (spill_m - elevation_m) > min_depth_m
    labels, count = ndimage.label(spill_m - elevation_m > 0, structure=_FOUR_CONNECTED)
    if count == 0:
        return np.zeros(elevation_m.shape, bool)
    index = np.arange(1, count + 1)
    bottom = np.asarray(ndimage.minimum(elevation_m, labels, index))
    spill = np.asarray(ndimage.maximum(spill_m, labels, index))
    depth = np.minimum(spill - bottom, runoff_m * concentration)
    pond_level = np.concatenate([[-np.inf], bottom + depth])  # label 0 is not a depression
    return in_pit & (elevation_m < pond_level[labels])


def flood_extent(
    elevation_m: np.ndarray,
    sea: np.ndarray,
    sea_level_m: float,
    rain_mm: float,
    attenuation_m_per_km: float,
    pixel_m: float,
) -> np.ndarray:
    """Water at one moment: the sea, what the sea floods, and rain ponds."""
    flooded = sea_inundation(elevation_m, sea, sea_level_m, attenuation_m_per_km, pixel_m)
    return flooded | rain_ponding(elevation_m, rain_mm)


def waterlogged_fields(
    parcels: np.ndarray,
    cropland: np.ndarray,
    rain_mm: float,
    drainage_mm: np.ndarray,
    infiltration_mm: float = 15.0,
) -> np.ndarray:
    """Bunded fields under standing rain water.

    A field's bunds keep the rain that does not infiltrate (beyond ``infiltration_mm``, as
    in ``rain_ponding``); it stands as water on the field unless the field drains it off
    over the three days: ``drainage_mm`` per parcel id (``parcels`` indexes it).
    """
    runoff_mm = max(rain_mm - infiltration_mm, 0.0)
    return cropland & (np.asarray(drainage_mm)[parcels] < runoff_mm)
