"""A tiny synthetic region following the Align contract: cube.zarr + tiles.parquet (+ truth).

The coast is a west-east ramp (sea in the west) with a ring dike around a basin, and a water
level that rises over time; truth is "below the level and connected to the sea". Radar is
dark on water, bright on land, so a model can learn it in a few epochs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox
from scipy import ndimage
from shapely.geometry import box

from floodkd.cube_store import CHUNK_ENCODING
from floodkd.grid import RegionGrid

SIZE_PX = 48
TILE_PX = 16
RES_M = 10.0
CRS = "EPSG:32631"
ORIGIN = (500000.0, 5800000.0)  # west, north edges
RADAR = np.array([1, 1, 0, 1, 0, 1, 1, 0], bool)
OPTICAL = np.array([0, 1, 1, 0, 1, 1, 0, 1], bool)
TIMES = pd.date_range("2024-01-01T06:00", periods=RADAR.size, freq="D").to_numpy()
# tile rows x cols = 3 x 3; the split of each, row by row
SPLITS = ["train", "train", "val", "train", "train", "test", "val", "train", "test"]
GAUGES, LAGS = 2, 6


@dataclass
class SyntheticRegion:
    results_dir: Path
    name: str
    cube_path: Path
    tiles_path: Path
    truth: np.ndarray  # (time, y, x) uint8
    truth_dir: Path
    times: np.ndarray


def elevation_m() -> np.ndarray:
    """A ramp from -2 m (west, sea) to +4.6 m (east) with a diked basin at 0.5 m."""
    cols = np.arange(SIZE_PX, dtype=np.float32)
    elevation = np.tile(-2.0 + 0.14 * cols, (SIZE_PX, 1)).astype(np.float32)
    elevation[30:42, 30:42] = 6.0  # dike ring
    elevation[32:40, 32:40] = 0.5  # the basin behind it, below most water levels
    return elevation


def water_levels_m() -> np.ndarray:
    return (0.3 + 0.35 * np.arange(TIMES.size)).astype(np.float32)


def truth_maps(elevation: np.ndarray, levels: np.ndarray) -> np.ndarray:
    sea = elevation <= 0
    out = np.zeros((levels.size, *elevation.shape), np.uint8)
    for t, level in enumerate(levels):
        parts, _ = ndimage.label(elevation < level)
        connected = np.setdiff1d(np.unique(parts[sea]), [0])
        out[t] = np.isin(parts, connected)
    return out


def build_cube(truth: np.ndarray, elevation: np.ndarray, levels: np.ndarray,
               seed: int) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    shape = truth.shape
    water = truth.astype(bool)
    vv = np.where(water, -20.0, -8.0) + rng.normal(0, 1.0, shape)
    vv[~RADAR] = np.nan
    vh = vv - 6.0
    clear = np.zeros(shape, np.uint8)
    clear[OPTICAL] = 1
    clear[:, :8, :8] = 0  # a cloud
    reflect = np.where(water, 0.04, 0.25).astype(np.float32)
    reflect[~OPTICAL] = np.nan
    ndwi = np.where(water, 0.5, -0.4).astype(np.float32)
    ndwi[~OPTICAL] = np.nan
    labels = np.full(shape, 255, np.uint8)
    labels[RADAR] = truth[RADAR]
    labels[:, ::5, ::7] = 255  # some unlabelled pixels among the labelled
    history = np.repeat(levels[:, None, None], GAUGES, 1) + np.zeros((1, 1, LAGS), np.float32)
    history[:, 1, :2] = np.nan  # a gauge gap
    grid = RegionGrid(GeoBox((SIZE_PX, SIZE_PX), Affine(RES_M, 0, ORIGIN[0], 0, -RES_M, ORIGIN[1]),
                             CRS))
    txy = ("time", "y", "x")
    data = {
        "vv_db": (txy, vv.astype(np.float32)),
        "vh_db": (txy, vh.astype(np.float32)),
        "radar_present": ("time", RADAR),
        **{b: (txy, reflect) for b in ("b02", "b03", "b04", "b08", "b11", "b12")},
        "ndwi": (txy, ndwi),
        "mndwi": (txy, ndwi),
        "clear_sky": (txy, clear),
        "optical_present": ("time", OPTICAL),
        "elevation_m": (("y", "x"), elevation),
        "hand_m": (("y", "x"), np.maximum(elevation, 0)),
        "coast_distance_m": (("y", "x"), np.maximum(elevation, 0) * 70.0),
        "water_level_m": (txy, np.broadcast_to(levels[:, None, None], shape).astype(np.float32)),
        "gauge_present": ("time", np.ones(TIMES.size, bool)),
        "gauge_history_m": (("time", "gauge", "lag"), history.astype(np.float32)),
        "zos_m": (txy, np.full(shape, 0.1, np.float32)),
        "pr_mm_day": (txy, np.full(shape, 3.0, np.float32)),
        "gcm_present": ("time", np.ones(TIMES.size, bool)),
        "label": (txy, labels),
    }
    cube = xr.Dataset(data, coords={"time": TIMES, **grid.coords()})
    for name in cube.data_vars:
        cube[name].attrs["resampling"] = "nearest"
        if {"y", "x"} <= set(cube[name].dims):
            cube[name].attrs["grid_mapping"] = "spatial_ref"
    return cube


def tile_index() -> gpd.GeoDataFrame:
    rows = []
    for i, split in enumerate(SPLITS):
        row_off, col_off = (i // 3) * TILE_PX, (i % 3) * TILE_PX
        west, north = ORIGIN[0] + col_off * RES_M, ORIGIN[1] - row_off * RES_M
        rows.append({"tile_id": i, "row_off": row_off, "col_off": col_off, "height": TILE_PX,
                     "width": TILE_PX, "valid_fraction": 1.0, "labelled_fraction": 0.5,
                     "split": split,
                     "geometry": box(west, north - TILE_PX * RES_M, west + TILE_PX * RES_M, north)})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=CRS)


def write_truth(truth: np.ndarray, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    transform = Affine(RES_M, 0, ORIGIN[0], 0, -RES_M, ORIGIN[1])
    for t, time in enumerate(TIMES):
        stamp = pd.Timestamp(time).strftime("%Y%m%dT%H%M%S")
        with rasterio.open(folder / f"inundation_{stamp}.tif", "w", driver="GTiff",
                           width=SIZE_PX, height=SIZE_PX, count=1, dtype="uint8", crs=CRS,
                           transform=transform) as dst:
            dst.write(truth[t], 1)


def write_region(results_dir: Path, name: str, seed: int = 0,
                 truth_dir: Path | None = None) -> SyntheticRegion:
    """Write ``results_dir/<name>/cube.zarr`` and ``tiles.parquet`` (and truth GeoTIFFs)."""
    elevation, levels = elevation_m(), water_levels_m()
    truth = truth_maps(elevation, levels)
    base = results_dir / name
    base.mkdir(parents=True, exist_ok=True)
    cube = build_cube(truth, elevation, levels, seed)
    chunks = {"time": 1, "y": TILE_PX, "x": TILE_PX, "gauge": GAUGES, "lag": LAGS}
    # as align writes it: every chunk, checksummed (readers refuse a cube with chunks absent)
    cube.chunk(chunks).to_zarr(base / "cube.zarr", mode="w", zarr_format=2,
                               encoding={name: CHUNK_ENCODING for name in cube.data_vars})
    tile_index().to_parquet(base / "tiles.parquet")
    truth_dir = truth_dir or base / "truth"
    write_truth(truth, truth_dir)
    return SyntheticRegion(results_dir, name, base / "cube.zarr", base / "tiles.parquet", truth,
                           truth_dir, TIMES)


@pytest.fixture(scope="session")
def synthetic_region(tmp_path_factory: pytest.TempPathFactory) -> SyntheticRegion:
    """One read-only toy region for the whole session (writing a cube takes seconds)."""
    return write_region(tmp_path_factory.mktemp("results"), "toy", seed=1)
