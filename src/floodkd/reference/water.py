"""Reference (permanent) water from a series of radar passes, as the Copernicus Global Flood
Monitoring service derives its reference water mask from a long Sentinel-1 series: a pixel is
reference water when the teacher maps it as water in at least ``min_water_fraction`` of the
passes that observed it, and it was observed in at least ``min_valid_passes`` passes. Fewer
passes leave it unknown: with under 10 passes, a 90% rule allows no missed pass, so one dry
pass (wind-roughened water, a low tide) could no longer be told from a flood. Every pass of
the cube counts, held-out ones too: reference water is a property of the place, not of a
date, and one pass moves a pixel's share by only 1/n.

Values of the layer: ``NOT_REFERENCE`` 0, ``REFERENCE`` 1, ``UNKNOWN`` 255 (too few passes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from floodkd.errors import InputError
from floodkd.grid import RegionGrid

__all__ = ["NOT_REFERENCE", "REFERENCE", "UNKNOWN", "ReferenceSettings", "WaterCounts",
           "reference_water_mask", "read_reference_raster"]

NOT_REFERENCE, REFERENCE, UNKNOWN = 0, 1, 255


@dataclass(frozen=True)
class ReferenceSettings:
    """The ``reference_water`` block of the config (defaults in the schema)."""

    water_probability: float  # the teacher's P(water) from which a pixel is water in a pass
    min_water_fraction: float  # share of a pixel's valid passes that must be water
    min_valid_passes: int  # passes a pixel needs before it is judged at all

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ReferenceSettings:
        block = config["reference_water"]
        return cls(float(block["water_probability"]), float(block["min_water_fraction"]),
                   int(block["min_valid_passes"]))

    def rule(self) -> str:
        """The rule in words (written into the layer's tags)."""
        return (f"reference water where the teacher's P(water) >= {self.water_probability:g} in "
                f">= {self.min_water_fraction:.0%} of the pixel's valid radar passes; unknown "
                f"(255) with fewer than {self.min_valid_passes} valid passes")


@dataclass
class WaterCounts:
    """Per pixel of a grid: radar passes with a prediction (``valid``) and, of those, passes
    mapped as water (``water``)."""

    water: np.ndarray  # (rows, cols) uint16
    valid: np.ndarray  # (rows, cols) uint16

    @classmethod
    def zeros(cls, shape: tuple[int, int]) -> WaterCounts:
        return cls(np.zeros(shape, np.uint16), np.zeros(shape, np.uint16))

    def add(self, row_off: int, probability: np.ndarray, water_probability: float) -> None:
        """Count one pass's P(water) for rows ``row_off ..`` (NaN: not observed)."""
        rows = slice(row_off, row_off + probability.shape[0])
        observed = np.isfinite(probability)
        with np.errstate(invalid="ignore"):
            self.water[rows] += observed & (probability >= water_probability)
        self.valid[rows] += observed

    @property
    def passes(self) -> int:
        """The most passes any pixel has (0 before the first)."""
        return int(self.valid.max(initial=0))


def reference_water_mask(counts: WaterCounts, settings: ReferenceSettings) -> np.ndarray:
    """uint8 layer of the counts: REFERENCE, NOT_REFERENCE or UNKNOWN (see module docstring)."""
    judged = counts.valid >= settings.min_valid_passes
    with np.errstate(invalid="ignore", divide="ignore"):
        share = counts.water / np.maximum(counts.valid, 1)
    mask = np.where(share >= settings.min_water_fraction, REFERENCE, NOT_REFERENCE)
    return np.where(judged, mask, UNKNOWN).astype(np.uint8)


def read_reference_raster(path: str | Path, grid: RegionGrid) -> np.ndarray:
    """A user-supplied reference water raster on the region grid: band 1, 1 reference water,
    0 not, its nodata -> UNKNOWN. Raises InputError when it is not on the grid or holds
    other values."""
    path = Path(path)
    left, bottom, right, top = (grid.bounds.left, grid.bounds.bottom, grid.bounds.right,
                                grid.bounds.top)
    fix_grid = (f"warp it onto the region grid ({grid.shape[0]} x {grid.shape[1]} px), e.g. "
                f"gdalwarp -t_srs {grid.crs} -te {left:.15g} {bottom:.15g} {right:.15g} "
                f"{top:.15g} -tr {grid.resolution:g} {grid.resolution:g} -r mode {path.name} "
                "on_grid.tif")
    try:
        with rasterio.open(path) as src:
            if not grid.holds(src):
                raise InputError(path, f"the reference water raster is not on the region grid "
                                 f"(it has CRS {src.crs}, {src.height} x {src.width} px, "
                                 f"transform {tuple(src.transform)[:6]})", fix_grid)
            band = src.read(1, masked=True)
    except rasterio.errors.RasterioIOError as error:
        raise InputError(path, f"cannot read the reference water raster ({error})",
                         "name a GeoTIFF in regions.<name>.reference_water") from error
    values = np.ma.compressed(band)
    other = np.setdiff1d(np.unique(values), [NOT_REFERENCE, REFERENCE])
    if other.size:
        raise InputError(path, f"holds values {other[:5].tolist()} besides 0 (not reference "
                         "water) and 1 (reference water)",
                         "write 1 for reference water, 0 elsewhere and nodata where unknown")
    return np.ma.filled(band.astype(np.int32), UNKNOWN).astype(np.uint8)
