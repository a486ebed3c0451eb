"""Hand-made ingest outputs (following docs/data-contracts.md) with known answers."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import xarray as xr
import yaml
from affine import Affine
from pyproj import Transformer
from shapely.geometry import box

REGION = "coast"
BBOX = [3.000, 51.000, 3.010, 51.006]  # lon/lat: UTM zone 31 north, ~70 x 67 px at 10 m
UTM = "EPSG:32631"
FEATURE_LONLAT = (3.0050, 51.0030)  # a bright radar target
SEA_LON = 3.0030  # DEM below 0 m west of this longitude
RADAR_TIMES = ["2024-01-10T06:00:00Z", "2024-01-20T06:00:00Z"]
OPTICAL_TIME = "2024-01-11T10:30:00Z"
BACKGROUND_DB, FEATURE_DB = -10.0, 10.0

to_utm = Transformer.from_crs("EPSG:4326", UTM, always_xy=True)
to_lonlat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)


def write_tif(path: Path, data: np.ndarray, crs: str, transform: Affine,
              descriptions: list[str], nodata: float | int | None) -> None:
    data = data if data.ndim == 3 else data[None]
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                   dtype=data.dtype, crs=crs, transform=transform, nodata=nodata)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, name in enumerate(descriptions, start=1):
            dst.set_band_description(i, name)


def _radar_utm(path: Path) -> None:
    """10 m UTM raster, origin off the 10 m grid lattice; NaN in 12 west columns."""
    fx, fy = to_utm.transform(*FEATURE_LONLAT)
    x0, _ = to_utm.transform(BBOX[0] - 0.001, BBOX[3])
    left = np.floor((x0 - 3.0) / 10) * 10 + 3.0
    _, y1 = to_utm.transform(BBOX[2], BBOX[3] + 0.001)
    top = np.ceil((y1 - 7.0) / 10) * 10 + 7.0
    transform = Affine(10, 0, left, 0, -10, top)
    vv = np.full((100, 100), BACKGROUND_DB, dtype=np.float32)
    col, row = ~transform @ (fx, fy)
    # a 1-pixel target centred exactly on the feature: shift the raster so it is
    transform = transform @ Affine.translation(col - int(col) - 0.5, row - int(row) - 0.5)
    vv[int(row), int(col)] = FEATURE_DB
    vv[:, :12] = np.nan
    write_tif(path, np.stack([vv, vv - 7]), UTM, transform, ["VV", "VH"], np.nan)


def _radar_lonlat(path: Path) -> None:
    """EPSG:4326 raster (0.0001 deg) with the same target at the same lon/lat."""
    res = 0.0001
    transform = Affine(res, 0, BBOX[0] - 0.002, 0, -res, BBOX[3] + 0.002)
    vv = np.full((120, 160), BACKGROUND_DB, dtype=np.float32)
    col, row = ~transform @ FEATURE_LONLAT
    transform = transform @ Affine.translation(col - int(col) - 0.5, row - int(row) - 0.5)
    vv[int(row), int(col)] = FEATURE_DB
    write_tif(path, np.stack([vv, vv - 7]), "EPSG:4326", transform, ["VV", "VH"], np.nan)


def _optical(folder: Path) -> None:
    """20 m UTM scene lacking B11/B12; clear in the north half, cloud south, nodata strip."""
    x0, y0 = to_utm.transform(BBOX[0] - 0.001, BBOX[3] + 0.001)
    transform = Affine(20, 0, np.floor(x0 / 20) * 20, 0, -20, np.ceil(y0 / 20) * 20)
    bands = ["B02", "B03", "B04", "B08", "NDWI", "MNDWI"]
    refl = np.stack([np.full((50, 50), 0.1 * (i + 1), dtype=np.float32)
                     for i in range(len(bands))])
    write_tif(folder / "20240111T103000_reflectance.tif", refl, UTM, transform, bands, np.nan)
    clear = np.zeros((50, 50), dtype=np.uint8)
    clear[:25] = 1
    clear[:, -3:] = 255
    masks = np.stack([clear, np.where(clear == 1, 0, 1).astype(np.uint8),
                      np.zeros_like(clear)])
    write_tif(folder / "20240111T103000_masks.tif", masks, UTM, transform,
              ["clear", "cloud", "shadow"], 255)
    pd.DataFrame({"time": [OPTICAL_TIME], "file": ["20240111T103000_reflectance.tif"],
                  "masks_file": ["20240111T103000_masks.tif"], "clear_fraction": [0.5],
                  "source": ["S2"], "cloud_test": ["SCL"]}).to_csv(folder / "scenes.csv",
                                                                  index=False)


def _dem(path: Path) -> None:
    """~30 m EPSG:4326 DEM rising eastwards 1 m per 0.0001 deg lon, 0 m at SEA_LON."""
    res = 0.0003
    transform = Affine(res, 0, BBOX[0] - 0.003, 0, -res, BBOX[3] + 0.003)
    lon = transform.c + (np.arange(60) + 0.5) * res
    dem = np.tile(((lon - SEA_LON) / 0.0001).astype(np.float32), (40, 1))
    write_tif(path, dem, "EPSG:4326", transform, ["elevation"], np.nan)


GAUGE_START = np.datetime64("2024-01-01T00:00", "ns")
N_HOURS = 24 * 25


def gauge_level(station: int, hour: np.ndarray) -> np.ndarray:
    """Known level: station offset plus a ramp of 1 mm an hour."""
    return np.float32(station + 0.001 * np.asarray(hour))


def gauge_positions() -> tuple[np.ndarray, np.ndarray]:
    """Two gauges inside the region, each exactly on a grid pixel centre (lon, lat)."""
    from shapely.geometry import box as _box

    from floodkd.grid import RegionGrid

    grid = RegionGrid.from_outline(_box(*BBOX), 10.0)
    xs, ys = grid.x[[10, 50]], grid.y[[20, 40]]
    lon, lat = to_lonlat.transform(xs, ys)
    return np.asarray(lon), np.asarray(lat)


def _tide(path: Path) -> None:
    hours = np.arange(N_HOURS)
    levels = np.stack([gauge_level(0, hours), gauge_level(1, hours)])
    flags = np.zeros_like(levels, dtype=np.int8)
    flags[1, :] = 1  # station 1 always filled by prediction
    t20 = int((np.datetime64("2024-01-20T06:00", "ns") - GAUGE_START) / np.timedelta64(1, "h"))
    flags[0, t20] = 4  # station 0 missing at the second radar pass
    levels[0, t20] = np.nan
    lon, lat = gauge_positions()
    ds = xr.Dataset(
        {"water_level_m": (("station", "time"), levels),
         "tide_prediction_m": (("station", "time"), levels),
         "flag": (("station", "time"), flags)},
        coords={"station": ["g0", "g1"], "time": GAUGE_START + hours * np.timedelta64(1, "h"),
                "lat": ("station", lat), "lon": ("station", lon),
                "station_name": ("station", ["Zero", "One"]), "datum": ("station", ["MSL"] * 2)},
    )
    ds.to_netcdf(path, engine="h5netcdf")


def gcm_value(lon, lat, month_index, experiment: str):
    """Known GCM field: linear in lon/lat (bilinear is exact), a step per month and scenario."""
    return 0.01 * lon + 0.001 * lat + month_index + (100.0 if experiment == "ssp245" else 0.0)


def _gcm(path: Path, lon_360: bool = False) -> None:
    months = np.arange("2023-01", "2025-01", dtype="datetime64[M]")
    lat = np.arange(48.5, 54.0, 1.0)
    lon = np.arange(-2.5, 8.0, 1.0)
    zos = np.full((2, months.size, lat.size, lon.size), np.nan, dtype=np.float32)
    for e, exp in enumerate(["historical", "ssp245"]):
        for m in range(months.size):
            historical_month = m < 12
            if (exp == "historical") == historical_month:
                zos[e, m] = gcm_value(lon[None, :], lat[:, None], m, exp)
    ds = xr.Dataset(
        {"zos": (("experiment", "time", "lat", "lon"), zos),
         "pr": (("experiment", "time", "lat", "lon"), zos * 2)},
        coords={"experiment": ["historical", "ssp245"],
                "time": months.astype("datetime64[ns]"), "lat": lat,
                "lon": (lon % 360) if lon_360 else lon},
        attrs={"model": "SYNTH-ESM", "source_files": "synthetic"},
    )
    ds.to_netcdf(path, engine="h5netcdf")


def _labels(folder: Path) -> None:
    """A raster label at the first pass (water west half) and polygons at the second."""
    x0, y1 = to_utm.transform(BBOX[0] - 0.001, BBOX[3] + 0.001)
    transform = Affine(10, 0, np.floor(x0 / 10) * 10 + 5, 0, -10, np.ceil(y1 / 10) * 10 + 5)
    lab = np.full((90, 90), 255, dtype=np.uint8)
    lab[10:60, 10:40] = 1
    lab[10:60, 40:70] = 0
    write_tif(folder / "20240110T060000.tif", lab, UTM, transform, ["label"], 255)
    water = box(3.001, 51.001, 3.004, 51.004)
    dry = box(3.004, 51.001, 3.008, 51.004)
    gpd.GeoDataFrame({"label": [1, 0], "time": ["2024-01-19T12:00:00Z"] * 2},
                     geometry=[water, dry], crs="EPSG:4326").to_file(folder / "labels.gpkg")
    pd.DataFrame({"time": ["2024-01-10T06:00:00Z", "2024-01-19T12:00:00Z"],
                  "file": ["20240110T060000.tif", "labels.gpkg"],
                  "kind": ["raster", "vector"]}).to_csv(folder / "labels.csv", index=False)


def defences(folder: Path) -> None:
    """Two protected areas: a polder (crest 3 m) and, overlapping its east part, a ring
    inside it (crest 4.5 m)."""
    areas = [box(3.001, 51.001, 3.006, 51.004), box(3.004, 51.001, 3.006, 51.004)]
    gpd.GeoDataFrame({"crest_m": [3.0, 4.5]}, geometry=areas, crs="EPSG:4326").to_file(
        folder / "defences.gpkg", layer="defences")


def make_region(root: Path, modalities: tuple[str, ...] = ("optical", "tide", "gcm", "labels"),
                align: dict | None = None) -> Path:
    """Write ``root/results/coast/ingest/...`` and ``root/config.yaml``; return the config."""
    ingest = root / "results" / REGION / "ingest"
    sar = ingest / "sar"
    sar.mkdir(parents=True)
    _radar_utm(sar / "20240110T060000.tif")
    _radar_lonlat(sar / "20240120T060000.tif")
    pd.DataFrame({"time": RADAR_TIMES, "file": ["20240110T060000.tif", "20240120T060000.tif"],
                  "source": ["S1A", "S1A"]}).to_csv(sar / "scenes.csv", index=False)
    (ingest / "terrain").mkdir()
    _dem(ingest / "terrain" / "dem.tif")
    builders = {"optical": _optical, "tide": lambda f: _tide(f / "tide.nc"),
                "gcm": lambda f: _gcm(f / "gcm.nc"), "labels": _labels,
                "defences": defences}
    for name in modalities:
        (ingest / name).mkdir()
        builders[name](ingest / name)
    config = {
        "results_dir": str(root / "results"),
        "regions": {REGION: {"role": "target", "bbox": BBOX,
                             "inputs": {"sar": {"glob": "x/*.tif"},
                                        "terrain": {"glob": "y/*.tif"}}}},
        "grid": {"resolution_m": 10},
        "align": {"chunk_px": 32, "tile_px": 16, "tile_overlap_px": 4, "split_block_tiles": 1,
                  **(align or {})},
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path
