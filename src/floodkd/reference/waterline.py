"""The waterline layer: per pixel, the water level at which the region's radar archive sees
it flood.

This is the waterline method of intertidal mapping (Sagar et al. 2017; Bishop-Taylor et al.
2019, Digital Earth Australia's Intertidal Elevation): each image of the archive is taken at
a known tide, so the level at which a pixel turns from dry to wet is the level that best
splits the images that see it wet from those that see it dry. Here the images are the
radar passes before the held-out start as the teacher maps them, and the level is the
gauge's at each pass (the cube's ``water_level_m``). Where a global DEM reads a mangrove
canopy or a building 4 m above the ground, the archive still sees the tide come in.

A pixel always seen wet gets its lowest observed level - ``BEYOND_M``. One never seen wet
gets its highest observed level + ``BEYOND_M`` and is flagged ``above``: the archive only
says its level lies above that, so the student takes the higher of it and the DEM there,
and a surge above any level of the record floods the land by the terrain, not by the
archive's ceiling. Under ``min_passes`` valid passes a pixel gets no level (NaN), and the
student reads the DEM alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio

from floodkd.errors import InputError
from floodkd.grid import RegionGrid

__all__ = ["BEYOND_M", "WaterlineArchive", "waterline_level", "read_waterline"]

# how far past its observed levels a never (always) wet pixel's level is put: the archive
# says only "not at these levels", and a quarter metre (a few times the level spacing of the
# demo target's 45 passes over 4 m of tide and surge) claims little more
BEYOND_M = 0.25
ROW_BLOCK = 256  # rows judged at once: passes x 256 x width levels in memory


def waterline_level(levels: np.ndarray, water: np.ndarray, valid: np.ndarray,
                    min_passes: int) -> tuple[np.ndarray, np.ndarray]:
    """(level, above), each (H, W): ``level`` float32, the level that best splits each
    pixel's water passes from its dry ones, halfway between the levels on either side of the
    lowest cut with the fewest passes on the wrong side (NaN under ``min_passes`` valid
    passes); ``above`` bool, where that cut lies above every pass, so the pixel's level is
    only known to lie above ``level`` (see the module docstring). ``levels`` float,
    ``water`` and ``valid`` bool, all (passes, H, W); levels where not ``valid`` are
    ignored."""
    if not levels.shape == water.shape == valid.shape or levels.ndim != 3:
        raise ValueError(f"levels {levels.shape}, water {water.shape} and valid {valid.shape} "
                         "must be equal (passes, H, W) arrays")
    valid = valid & np.isfinite(levels)
    # invalid passes sort last (+inf) and count neither way
    order = np.argsort(np.where(valid, levels, np.inf), axis=0, kind="stable")
    level = np.take_along_axis(levels, order, 0)
    wet = np.take_along_axis(water & valid, order, 0).astype(np.int32)
    dry = np.take_along_axis(~water & valid, order, 0).astype(np.int32)
    zero = np.zeros_like(wet[:1])
    # a cut before sorted pass k: the wet passes under it and the dry ones from k up are wrong
    wrong = (np.concatenate([zero, np.cumsum(wet, 0)])
             + np.concatenate([np.cumsum(dry[::-1], 0)[::-1], zero]))
    count = valid.sum(0)
    # cuts past a pixel's valid passes are the same cut as the one right after its last
    cut = np.minimum(np.argmin(wrong, axis=0), count)
    first = level[0]
    last = np.take_along_axis(level, np.maximum(count - 1, 0)[None], 0)[0]
    lower = np.take_along_axis(level, np.maximum(cut - 1, 0)[None], 0)[0]
    upper = np.take_along_axis(level, np.minimum(cut, len(level) - 1)[None], 0)[0]
    out = np.where(cut == 0, first - BEYOND_M,
                   np.where(cut == count, last + BEYOND_M, 0.5 * (lower + upper)))
    unknown = count < max(min_passes, 1)
    out[unknown] = np.nan
    return out.astype(np.float32), (cut == count) & ~unknown


class WaterlineArchive:
    """The teacher's water and validity per pass of one region, kept as bits (an eighth of
    bool arrays) until ``level`` judges them, row block by row block."""

    def __init__(self, shape: tuple[int, int]):
        self.shape = shape
        self.times: list[int] = []
        self._water: list[np.ndarray] = []
        self._valid: list[np.ndarray] = []

    def add(self, t: int, probability: np.ndarray, water_probability: float) -> None:
        """One pass at cube time ``t``: P(water) on the whole grid, NaN where not observed."""
        if probability.shape != self.shape:
            raise ValueError(f"pass map {probability.shape} is not the grid {self.shape}")
        valid = np.isfinite(probability)
        with np.errstate(invalid="ignore"):
            water = valid & (probability >= water_probability)
        self.times.append(t)
        self._water.append(np.packbits(water, axis=1))
        self._valid.append(np.packbits(valid, axis=1))

    def level(self, levels_at, min_passes: int) -> tuple[np.ndarray, np.ndarray]:
        """waterline_level over the archive; ``levels_at(times, rows)`` gives the water level
        (len(times), len(rows), W) of the passes at those cube times."""
        out = np.full(self.shape, np.nan, np.float32)
        above = np.zeros(self.shape, bool)
        if not self.times:
            return out, above
        width = self.shape[1]
        for start in range(0, self.shape[0], ROW_BLOCK):
            rows = slice(start, min(start + ROW_BLOCK, self.shape[0]))
            water, valid = ([np.unpackbits(b[rows], axis=1, count=width).astype(bool)
                             for b in bits] for bits in (self._water, self._valid))
            levels = np.asarray(levels_at(self.times, rows), np.float64)
            out[rows], above[rows] = waterline_level(levels, np.stack(water), np.stack(valid),
                                                     min_passes)
        return out, above


def read_waterline(path: str | Path, grid: RegionGrid) -> tuple[np.ndarray, np.ndarray]:
    """``floodkd waterline``'s layer on the region grid: (level, above) as waterline_level
    gives them (float32 metres, NaN where unknown; bool). Raises InputError when it is
    unreadable or not on the grid."""
    path = Path(path)
    try:
        with rasterio.open(path) as src:
            if not grid.holds(src):
                raise InputError(path, f"the waterline layer is not on the region grid (it has "
                                 f"{src.height} x {src.width} px, the grid {grid.shape[0]} x "
                                 f"{grid.shape[1]})", "rerun `floodkd waterline` for this "
                                 "region with this config")
            level = src.read(1, masked=True).astype(np.float32).filled(np.nan)
            above = src.read(2, masked=True).filled(0) == 1
            return level, above
    except rasterio.errors.RasterioIOError as error:
        raise InputError(path, f"cannot read the waterline layer ({error})",
                         "rerun `floodkd waterline` for this region") from error
