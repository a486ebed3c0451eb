"""Assemble the region datacube lazily from the ingest folders, and write it with the tiles."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from pyproj import Transformer

from floodkd.align import gauges, gcm, inputs, labels, regrid, terrain, tiles
from floodkd.align.times import match_nearest, match_once, time_axis
from floodkd.atomic import atomic_path
from floodkd.cube_store import CHUNK_ENCODING
from floodkd.errors import InputError
from floodkd.grid import CRS_COORD_NAME, RegionGrid

__all__ = ["AlignSettings", "build_cube", "write_outputs", "OPTICAL_BANDS"]

log = logging.getLogger(__name__)

OPTICAL_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12", "NDWI", "MNDWI")
RADAR_BANDS = ("VV", "VH")
NEAREST = "nearest"


@dataclass(frozen=True)
class AlignSettings:
    """The ``align`` config block (defaults as in config/schema.yaml)."""

    time_window_days: float = 3
    chunk_px: int = 512
    tile_px: int = 64
    tile_overlap_px: int = 16
    split_block_tiles: int = 2
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    gauge_history_hours: int = 72

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> AlignSettings:
        block = dict(config.get("align", {}))
        block.pop("dask_scheduler", None)
        return cls(**block)


def _stack(
    matches: np.ndarray, plane: Callable[[int], da.Array], grid: RegionGrid, chunk_px: int,
    fill: float | int, dtype: str,
) -> da.Array:
    """(time, y, x): the plane of the matched source per time, ``fill`` where none matched."""
    cache: dict[int, da.Array] = {}
    planes = []
    for index in matches:
        if index < 0:
            planes.append(regrid.missing_plane(grid, chunk_px, fill, dtype))
            continue
        if index not in cache:
            cache[int(index)] = plane(int(index))
        planes.append(cache[int(index)])
    if not planes:
        return da.empty((0, *grid.shape), dtype=dtype, chunks=(1, chunk_px, chunk_px))
    return da.stack(planes)


def _continuous(
    path: Path, band: str, grid: RegionGrid, chunk_px: int, methods: set[str]
) -> da.Array:
    source = regrid.open_band(path, band)
    method = regrid.continuous_resampling(regrid.native_resolution_m(source), grid.resolution)
    methods.add(method)
    return regrid.regrid_band(source, grid, chunk_px, method, np.nan, "float32")


def _var(data: Any, dims: tuple[str, ...], resampling: str, **attrs: Any) -> xr.DataArray:
    return xr.DataArray(data, dims=dims, attrs={"resampling": resampling, **attrs})


def _radar(folder: Path, times: np.ndarray, grid, s: AlignSettings, scenes) -> dict:
    # every pass is a time of the axis and is used there only, never copied to a nearby time
    matches = match_once(times, scenes.times, 0.0)
    files = scenes.table["file"]
    out: dict[str, xr.DataArray] = {}
    for band in RADAR_BANDS:
        methods: set[str] = set()
        stack = _stack(matches, lambda i, b=band, m=methods: _continuous(
            files[i], b, grid, s.chunk_px, m), grid, s.chunk_px, np.nan, "float32")
        out[f"{band.lower()}_db"] = _var(
            stack, ("time", "y", "x"), "/".join(sorted(methods)) or "bilinear",
            units="dB", long_name=f"Sentinel-1 {band} backscatter (sigma0)")
    out["radar_present"] = _var(matches >= 0, ("time",), "none",
                                long_name="a radar pass lies within the time window")
    out["radar_time"] = _var(_matched_times(scenes.times, matches), ("time",), "none",
                             long_name="time of the radar pass used")
    return out


def _matched_times(source_times: np.ndarray, matches: np.ndarray) -> np.ndarray:
    out = np.full(matches.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    out[matches >= 0] = source_times[matches[matches >= 0]]
    return out


def _optical(scenes, times: np.ndarray, grid, s: AlignSettings) -> dict:
    out: dict[str, xr.DataArray] = {}
    if scenes is None:
        matches = np.full(times.shape, -1)
        files = masks = None
    else:
        matches = match_nearest(times, scenes.times, s.time_window_days)
        files, masks = scenes.table["file"], scenes.table["masks_file"]
        bands_of = {i: regrid.band_names(files[i]) for i in set(matches[matches >= 0])}
    for band in OPTICAL_BANDS:
        methods: set[str] = set()

        def plane(i: int, b: str = band, m: set[str] = methods) -> da.Array:
            if b not in bands_of[i]:  # a scene may lack a band: missing, not 0
                return regrid.missing_plane(grid, s.chunk_px, np.nan, "float32")
            return _continuous(files[i], b, grid, s.chunk_px, m)

        stack = _stack(matches, plane, grid, s.chunk_px, np.nan, "float32")
        is_index = band in ("NDWI", "MNDWI")
        out[band.lower()] = _var(
            stack, ("time", "y", "x"), "/".join(sorted(methods)) or "bilinear",
            units="1", long_name=(f"{band} water index" if is_index
                                  else f"Sentinel-2 {band} surface reflectance"))

    def clear_plane(i: int) -> da.Array:
        warped = regrid.regrid_band(regrid.open_band(masks[i], "clear"), grid, s.chunk_px,
                                    NEAREST, 255, "uint8")
        return da.where(warped == 1, np.uint8(1), np.uint8(0))  # cloud, shadow, nodata -> 0

    out["clear_sky"] = _var(_stack(matches, clear_plane, grid, s.chunk_px, 0, "uint8"),
                            ("time", "y", "x"), NEAREST, units="1",
                            long_name="1 clear sky, 0 cloud, shadow or no scene")
    out["optical_present"] = _var(matches >= 0, ("time",), "none",
                                  long_name="an optical scene lies within the time window")
    return out


def _terrain(folder: Path | None, grid, s: AlignSettings) -> dict:
    chunks = (s.chunk_px, s.chunk_px)
    if folder is None:  # a radar-only region: the variables exist, all missing
        names = ("elevation_m", "hand_m", "coast_distance_m")
        return {name: _var(da.full(grid.shape, np.nan, dtype=np.float32, chunks=chunks),
                           ("y", "x"), "none", units="m", long_name="no terrain input")
                for name in names}
    path = folder / "dem.tif"
    if not path.is_file():
        raise InputError(path, "the DEM is missing", "rerun ingest for terrain")
    methods: set[str] = set()
    elevation = _continuous(path, 1, grid, s.chunk_px, methods).compute()
    if not np.isfinite(elevation).any():
        raise InputError(path, "the DEM does not overlap the region (all missing on the grid)",
                         "ingest a DEM that covers the region's outline")
    method = methods.pop()
    hand = terrain.height_above_nearest_water(elevation)
    coast = terrain.coast_distance(elevation, grid.resolution)
    out = {
        "elevation_m": _var(da.from_array(elevation, chunks=chunks), ("y", "x"), method,
                            units="m", standard_name="height_above_mean_sea_level",
                            long_name="terrain elevation"),
        "hand_m": _var(da.from_array(hand, chunks=chunks), ("y", "x"), method,
                       units="m", long_name="height above the nearest sea cell's surface",
                       sea_level_m=terrain.SEA_LEVEL_M),
        "coast_distance_m": _var(da.from_array(coast, chunks=chunks), ("y", "x"), method,
                                 units="m", long_name="distance to the nearest sea cell",
                                 sea_level_m=terrain.SEA_LEVEL_M),
    }
    return out


def _defences(folder: Path | None, grid, s: AlignSettings) -> dict:
    if folder is None:
        plane = da.full(grid.shape, np.nan, dtype=np.float32, chunks=(s.chunk_px, s.chunk_px))
    else:
        plane = labels.rasterise_values(inputs.read_protected_areas(folder), "crest_m", grid,
                                        s.chunk_px, np.nan, "float32")
    return {"protection_level_m": _var(
        plane, ("y", "x"), "rasterised (the highest crest where protected areas overlap)",
        units="m", long_name="crest level of the defence that protects the pixel; missing "
        "where no registered defence does")}


def _tide(folder: Path | None, times: np.ndarray, grid, s: AlignSettings) -> tuple[dict, dict]:
    hours = s.gauge_history_hours
    if folder is None:
        levels = np.zeros((0, 0), dtype=np.float32)
        flags = np.zeros((0, 0), dtype=np.int8)
        gauge_times = np.array([], dtype="datetime64[ns]")
        ids, lon, lat = np.array([], dtype=str), np.array([]), np.array([])
    else:
        ds = inputs.read_tide(folder)
        levels = ds["water_level_m"].values.astype(np.float32)
        flags = ds["flag"].values
        levels = np.where(flags == gauges.FLAG_MISSING, np.nan, levels)
        gauge_times = ds["time"].values
        ids = ds["station"].values.astype(str)
        lon, lat = ds["lon"].values.astype(float), ds["lat"].values.astype(float)
    idx = gauges.hour_index(gauge_times, times)
    at_time = gauges.levels_at(levels, idx)
    observed = gauges.levels_at(np.where(flags == gauges.FLAG_OBSERVED, 1.0, np.nan), idx)
    to_grid = Transformer.from_crs("EPSG:4326", grid.crs.to_wkt(), always_xy=True)
    gx, gy = to_grid.transform(lon, lat) if lon.size else (np.array([]), np.array([]))
    field = gauges.idw_field(at_time, np.asarray(gx), np.asarray(gy), grid, s.chunk_px)
    out = {
        "water_level_m": _var(field, ("time", "y", "x"), "inverse_distance_weighting",
                              units="m", long_name="gauge water level field",
                              idw_power=gauges.IDW_POWER),
        "gauge_present": _var(np.isfinite(observed).any(axis=1), ("time",), "none",
                              long_name="some gauge observed (not filled) at that hour"),
        "gauge_history_m": _var(gauges.history(levels, idx, hours), ("time", "gauge", "lag"),
                                "none", units="m",
                                long_name="hourly gauge levels before each time; lag 0 oldest, "
                                          "the last lag is the hour of the time"),
    }
    coords = {"gauge": ids, "gauge_lon": ("gauge", lon), "gauge_lat": ("gauge", lat),
              "lag": np.arange(hours),
              "lag_hours_before": ("lag", np.arange(hours - 1, -1, -1))}
    return out, coords


def _gcm(folder: Path | None, times: np.ndarray, grid, s: AlignSettings) -> tuple[dict, dict]:
    names = {"zos": ("zos_m", "m", "GCM sea surface height above geoid"),
             "pr": ("pr_mm_day", "mm day-1", "GCM precipitation")}
    out: dict[str, xr.DataArray] = {}
    if folder is None:
        present = np.zeros(times.shape, dtype=bool)
        used = [None] * times.size
        for name, units, long_name in names.values():
            out[name] = _var(da.full((times.size, *grid.shape), np.nan, dtype=np.float32,
                                     chunks=(1, s.chunk_px, s.chunk_px)),
                             ("time", "y", "x"), gcm.GCM_RESAMPLING, units=units,
                             long_name=long_name)
    else:
        path = folder / "gcm.nc"
        ds = inputs.read_gcm(folder)
        for variable, (name, units, long_name) in names.items():
            field, present_v, used = gcm.month_fields(ds, variable, times, grid, s.chunk_px, path)
            present = present_v if variable == "zos" else present | present_v
            out[name] = _var(field, ("time", "y", "x"), gcm.GCM_RESAMPLING, units=units,
                             long_name=f"{long_name} of the month")
    out["gcm_present"] = _var(present, ("time",), "none",
                              long_name="a GCM month with data matches the time")
    experiment = np.array([u or "" for u in used], dtype=str)
    attrs = {"gcm_historical_experiment": gcm.HISTORICAL,
             "gcm_scenario_experiment": gcm.SCENARIO_EXPERIMENT}
    out["gcm_experiment"] = _var(experiment, ("time",), "none",
                                 long_name="GCM experiment used for the month")
    return out, attrs


def _labels(folder: Path | None, times: np.ndarray, grid, s: AlignSettings) -> dict:
    template: dict[str, Any] = {"units": "1", "flag_values": [0, 1, 255],
                                "flag_meanings": "dry water no_label"}
    if folder is None:
        stack = _stack(np.full(times.shape, -1), lambda i: None, grid, s.chunk_px,
                       labels.NO_LABEL, "uint8")
        return {"label": _var(stack, ("time", "y", "x"), NEAREST, **template)}
    scenes = inputs.read_scenes(folder, ("file",), ("kind",))
    events: list[tuple[np.datetime64, Callable[[], da.Array]]] = []
    polygons_by_file: dict[Path, Any] = {}
    for row in scenes.table.itertuples():
        if row.kind == "raster":
            def plane(path: Path = row.file) -> da.Array:
                return regrid.regrid_band(regrid.open_band(path, 1), grid, s.chunk_px, NEAREST,
                                          labels.NO_LABEL, "uint8")
            events.append((row.time, plane))
        elif row.kind == "vector":
            if row.file not in polygons_by_file:
                polygons_by_file[row.file] = inputs.read_label_polygons(row.file)
                frame = polygons_by_file[row.file]
                for when in np.unique(frame["time"].to_numpy(dtype="datetime64[ns]")):
                    chosen = frame[frame["time"].to_numpy(dtype="datetime64[ns]") == when]
                    events.append((when, lambda f=chosen: labels.rasterise_polygons(
                        f, grid, s.chunk_px)))
        else:
            raise InputError(folder / "labels.csv", f"unknown label kind '{row.kind}'",
                             "use kind 'raster' or 'vector'")
    event_times = np.array([t for t, _ in events], dtype="datetime64[ns]")
    matches = match_once(times, event_times, s.time_window_days)  # a label at one time only
    stack = _stack(matches, lambda i: events[i][1](), grid, s.chunk_px, labels.NO_LABEL, "uint8")
    return {"label": _var(stack, ("time", "y", "x"), NEAREST, **template)}


def build_cube(ingest_dir: Path, grid: RegionGrid, settings: AlignSettings,
               model: str = "student") -> xr.Dataset:
    """The lazy datacube of one region from ``<results>/<region>/ingest/``.

    The modalities the region's ``model`` needs are required (inputs.REQUIRED_BY_MODEL);
    absent others give all-missing variables and false presence flags. Nothing is computed
    except the (y, x) terrain fields.
    """
    folders: dict[str, Path | None] = {}
    required = inputs.REQUIRED_BY_MODEL[model]
    for name in inputs.MODALITIES:
        folder = ingest_dir / name
        if not folder.is_dir():
            if name in required:
                raise InputError(
                    folder, f"the {name} input is missing; the {model} needs it for "
                    f"{inputs.WHAT_IT_ADDS[name]}",
                    f"add inputs.{name} to the region and run `floodkd ingest {name}`"
                    + (", or map the region from radar alone with model: teacher"
                       if model == "student" and name != "sar" else ""))
            log.info("no %s input (it would add %s): its variables are all missing",
                     name, inputs.WHAT_IT_ADDS[name])
            folders[name] = None
        else:
            folders[name] = folder
    radar_scenes = inputs.read_scenes(folders["sar"])
    if radar_scenes.times.size == 0:
        raise InputError(folders["sar"] / "scenes.csv", "lists no radar scene",
                         "ingest at least one radar scene")
    optical_scenes = (inputs.read_scenes(folders["optical"], ("file", "masks_file"))
                      if folders["optical"] else None)
    optical_times = (optical_scenes.times if optical_scenes is not None
                     else np.array([], dtype="datetime64[ns]"))
    times = time_axis(radar_scenes.times, optical_times)

    variables: dict[str, xr.DataArray] = {}
    variables |= _radar(folders["sar"], times, grid, settings, radar_scenes)
    variables |= _optical(optical_scenes, times, grid, settings)
    variables |= _terrain(folders["terrain"], grid, settings)
    variables |= _defences(folders["defences"], grid, settings)
    tide_vars, tide_coords = _tide(folders["tide"], times, grid, settings)
    variables |= tide_vars
    gcm_vars, gcm_attrs = _gcm(folders["gcm"], times, grid, settings)
    variables |= gcm_vars
    variables |= _labels(folders["labels"], times, grid, settings)

    ds = xr.Dataset(variables, coords={"time": times, **tide_coords, **grid.coords()})
    for var in ds.data_vars.values():
        if "x" in var.dims:
            var.attrs["grid_mapping"] = CRS_COORD_NAME
    ds["x"].attrs.update(standard_name="projection_x_coordinate", long_name="easting",
                         units="m", axis="X")
    ds["y"].attrs.update(standard_name="projection_y_coordinate", long_name="northing",
                         units="m", axis="Y")
    ds.attrs.update({
        "Conventions": "CF-1.8",
        "title": "floodkd region datacube",
        "crs": grid.crs.to_wkt(),
        "transform": list(grid.transform)[:6],
        "resolution_m": grid.resolution,
        "time_window_days": settings.time_window_days,
        "gauge_history_hours": settings.gauge_history_hours,
        "modalities_present": [n for n, f in folders.items() if f is not None],
        **gcm_attrs,
    })
    return ds


def _encoding(ds: xr.Dataset, chunk_px: int) -> dict[str, dict[str, Any]]:
    encoding: dict[str, dict[str, Any]] = {}
    for name, var in ds.data_vars.items():
        enc: dict[str, Any] = {}
        if "x" in var.dims:
            enc["chunks"] = tuple(1 if d == "time" else chunk_px for d in var.dims)
        if var.dtype.kind in "iub":
            enc["_FillValue"] = None  # 0 is a real value (dry, cloudy): never masked
        encoding[name] = enc | CHUNK_ENCODING  # no chunk absent, every chunk checksummed
    return encoding


def write_outputs(
    ds: xr.Dataset, grid: RegionGrid, settings: AlignSettings, cube_path: Path, tiles_path: Path
) -> None:
    """Write the cube (computing it chunk by chunk) and then the tile index, both atomically:
    if anything fails, neither appears."""
    with atomic_path(cube_path) as tmp_cube, atomic_path(tiles_path) as tmp_tiles:
        ds.to_zarr(tmp_cube, mode="w", encoding=_encoding(ds, settings.chunk_px),
                   zarr_format=2, consolidated=True, compute=True)
        written = xr.open_zarr(tmp_cube)
        radar_valid = written["vv_db"].notnull().any("time") | written["vh_db"].notnull().any(
            "time")
        valid = (radar_valid | written["elevation_m"].notnull()).values
        labelled = (written["label"] != labels.NO_LABEL).any("time").values
        index = tiles.tile_index(
            grid, valid, labelled, settings.tile_px, settings.tile_overlap_px,
            settings.split_block_tiles, settings.val_fraction, settings.test_fraction)
        index.to_parquet(tmp_tiles)
        log.info("cube %s: %d times, %s pixels; %d tiles", cube_path, ds.sizes["time"],
                 grid.shape, len(index))
