"""Tiny scenario maps (real COGs, as predict writes them) for the exposure and plan tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from affine import Affine

from floodkd.predict.cog import cog_band_writer
from floodkd.predict.tiled import PROBABILITY_BANDS, UNCERTAINTY_BANDS

CRS = "EPSG:32648"
PIXEL_M = 10.0
# 8 x 8 px of 10 m, the top-left corner at (600000, 1100080)
TRANSFORM = Affine(PIXEL_M, 0, 600000.0, 0, -PIXEL_M, 1100080.0)
SHAPE = (8, 8)


def known_probability() -> np.ndarray:
    """P(flood) = (row * 8 + col) / 100: every pixel's value tells where it is."""
    rows, cols = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    return ((rows * 8 + cols) / 100.0).astype(np.float32)


def pixel_centre(row: int, col: int) -> tuple[float, float]:
    return TRANSFORM * (col + 0.5, row + 0.5)


def write_maps(folder: Path, scenario: str, probability: np.ndarray,
               std: np.ndarray | None = None) -> tuple[Path, Path]:
    """flood_probability_<scenario>.tif and flood_uncertainty_<scenario>.tif in ``folder``
    (NaN = nodata); std defaults to P / 10."""
    std = probability / 10 if std is None else std
    paths = (folder / f"flood_probability_{scenario}.tif",
             folder / f"flood_uncertainty_{scenario}.tif")
    common = {"crs": CRS, "transform": TRANSFORM, "shape": probability.shape, "blocksize": 16,
              "tags": {"SCENARIO": scenario}}
    with (cog_band_writer(paths[0], PROBABILITY_BANDS, **common) as prob,
          cog_band_writer(paths[1], UNCERTAINTY_BANDS, **common) as unc):
        prob.write_rows(0, {"flood_probability": probability})
        zeros = np.zeros_like(probability)
        unc.write_rows(0, {"std": std, "entropy": zeros, "mutual_information": zeros,
                           "inputs_used": zeros + 8})
    return paths
