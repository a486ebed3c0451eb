"""Tiny scenario maps (real COGs, as predict writes them) for the exposure and plan tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from affine import Affine
from pyproj import Transformer

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
               std: np.ndarray | None = None, when: str = "2024-12-02T03:20:00+00:00",
               ) -> tuple[Path, Path]:
    """flood_probability_<scenario>.tif and flood_uncertainty_<scenario>.tif in ``folder``
    (NaN = nodata); std defaults to P / 10."""
    std = probability / 10 if std is None else std
    paths = (folder / f"flood_probability_{scenario}.tif",
             folder / f"flood_uncertainty_{scenario}.tif")
    common = {"crs": CRS, "transform": TRANSFORM, "shape": probability.shape, "blocksize": 128,
              "tags": {"SCENARIO": scenario, "SCENARIO_DATETIME": when}}
    with (cog_band_writer(paths[0], PROBABILITY_BANDS, **common) as prob,
          cog_band_writer(paths[1], UNCERTAINTY_BANDS, **common) as unc):
        prob.write_rows(0, {"flood_probability": probability})
        zeros = np.zeros_like(probability)
        unc.write_rows(0, {"std": std, "entropy": zeros, "mutual_information": zeros})
    return paths


def fake_cube(radar_at_latest: bool, water_level_m: float = 1.2,
              gauge_observed: bool = True) -> xr.Dataset:
    """A cube with two times on the test grid: the latest is a radar pass or an optical
    scene; land everywhere but the left column (sea); gauges ``g1`` at the top left and
    ``g0`` at the bottom right."""
    times = np.array(["2024-11-20T22:53:00", "2024-12-02T03:20:00"], dtype="datetime64[ns]")
    rows, cols = SHAPE
    elevation = np.full(SHAPE, 1.5, np.float32)
    elevation[:, 0] = -1.0
    x = TRANSFORM.c + PIXEL_M * (np.arange(cols) + 0.5)
    y = TRANSFORM.f - PIXEL_M * (np.arange(rows) + 0.5)
    lon, lat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform(
        [x[0], x[-1]], [y[0], y[-1]])
    plane = np.ones((2, rows, cols), np.float32)
    return xr.Dataset(
        {"radar_present": ("time", np.array([True, radar_at_latest])),
         "optical_present": ("time", np.array([False, not radar_at_latest])),
         "gauge_present": ("time", np.array([True, gauge_observed])),
         "gcm_present": ("time", np.array([True, True])),
         "clear_sky": (("time", "y", "x"), (plane * [[[0]], [[1]]]).astype(np.uint8)),
         "elevation_m": (("y", "x"), elevation),
         "water_level_m": (("time", "y", "x"), plane * water_level_m),
         "vv_db": (("time", "y", "x"), plane * -18), "vh_db": (("time", "y", "x"), plane * -25)},
        coords={"time": times, "x": x, "y": y, "gauge": ["g1", "g0"],
                "gauge_lon": ("gauge", list(lon)), "gauge_lat": ("gauge", list(lat))},
    )
