"""Orchestration: simulate both demo regions and write every file, manifest last."""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import shapely
from affine import Affine
from odc.geo.geobox import GeoBox
from pyproj import Transformer
from rasterio.warp import Resampling, reproject, transform_bounds
from scipy import ndimage
from scipy.signal import lfilter
from shapely.geometry import Polygon, shape

from floodkd import __version__
from floodkd.atomic import atomic_dir
from floodkd.demo import gcm, hydro, sensors
from floodkd.demo.assets import write_assets, write_defences
from floodkd.demo.fields import fbm, field_parcels, stream
from floodkd.demo.regions import DEMO_REGIONS, PERIOD_END, PERIOD_START, RegionSpec
from floodkd.demo.terrain import (
    DEM_NODATA,
    Cover,
    Terrain,
    degrade_to_dem,
    fallow_fields,
    true_terrain,
)
from floodkd.demo.writers import (
    GaugeStation,
    write_geotiff,
    write_gesla3,
    write_labels_gpkg,
    write_manifest,
    write_netcdf,
    write_region_geojson,
    write_uhslc_hourly,
    write_uhslc_stations,
)
from floodkd.errors import InputError
from floodkd.outputs import check_outputs

__all__ = ["generate_demo", "region_terrain", "radar_geobox", "MIN_SIZE_PX", "PIXEL_M"]

log = logging.getLogger(__name__)

MIN_SIZE_PX = 32
PIXEL_M = 10.0
OPTICAL_PIXEL_M = 20.0
OPTICAL_PIXEL_DEG = 0.00018  # ~20 m at the target's latitude
TIME_FORMAT = "%Y%m%dT%H%M%S"
LABEL_NODATA = 255
TARGET_LABEL_FRACTION = 0.05
# Field parcels are 50-200 m a side; a bunded field drains 0-100 mm of standing rain in
# three days (an assumption of the demo, not a measurement: it spreads the share of
# waterlogged fields over the range of the source's monsoon rains, 0-90 mm in 3 days).
FIELD_SPAN_PX = (5, 20)
FIELD_DRAINAGE_MM = (0.0, 100.0)


def generate_demo(out: str | Path, seed: int = 42, size_px: int = 192) -> dict[str, Any]:
    """Write the demo coast under ``out`` (replacing it atomically) and return the manifest.

    ``size_px`` is the side of each region's radar grid in 10 m pixels; everything scales
    with it. The same ``seed`` and size always give the same arrays.
    """
    out = Path(out)
    if size_px < MIN_SIZE_PX:
        raise InputError("--size", f"{size_px} px is too small for a coast with a polder",
                         f"use --size {MIN_SIZE_PX} or more (default 192)")
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a folder", "pass --out a folder path")
    check_outputs({}, None, replaced=[out])
    with atomic_dir(out) as tmp:
        files: list[Path] = []
        for variable in gcm.VARIABLES:
            for experiment in gcm.EXPERIMENTS:
                path = tmp / "gcm" / gcm.gcm_file_name(variable, experiment)
                path.parent.mkdir(parents=True, exist_ok=True)
                write_netcdf(path, gcm.gcm_dataset(variable, experiment, seed))
                files.append(path)
        regions = {}
        for spec in DEMO_REGIONS:
            log.info("demo: simulating %s (%d x %d px)", spec.name, size_px, size_px)
            regions[spec.name] = _write_region(tmp, spec, seed, size_px, files)
        manifest = {
            "synthetic": True,
            "generator": f"floodkd {__version__} demo",
            "seed": seed,
            "size_px": size_px,
            "pixel_m": PIXEL_M,
            "period": {"start": PERIOD_START + "Z", "end": PERIOD_END + "Z"},
            "regions": regions,
            "files": sorted(str(p.relative_to(tmp)) for p in files),
        }
        write_manifest(tmp / "manifest.json", manifest)  # last: its presence means complete
    return manifest


@dataclass(frozen=True)
class _Moment:
    """The state of the coast at one simulated time."""

    time: pd.Timestamp
    kind: str  # "radar" or "optical"
    sea_level_m: float
    rain_3day_mm: float
    water: np.ndarray


def radar_geobox(spec: RegionSpec, size_px: int) -> GeoBox:
    """The region's radar grid: ``size_px`` square, 10 m, UTM, centred on the region."""
    to_utm = Transformer.from_crs("EPSG:4326", f"EPSG:{spec.utm_epsg}", always_xy=True)
    x, y = to_utm.transform(spec.centre_lon, spec.centre_lat)
    half = size_px * PIXEL_M / 2
    left = np.round((x - half) / PIXEL_M) * PIXEL_M
    top = np.round((y + half) / PIXEL_M) * PIXEL_M
    transform = Affine(PIXEL_M, 0, left, 0, -PIXEL_M, top)
    return GeoBox((size_px, size_px), transform, f"EPSG:{spec.utm_epsg}")


def region_terrain(spec: RegionSpec, seed: int, size_px: int
                   ) -> tuple[Terrain, tuple[slice, slice]]:
    """The region's true terrain, on a grid a margin wider than the radar grid (so dikes and
    creeks run on past its edge, and the DEM's resampling has context), and the radar grid's
    (rows, cols) slice of it."""
    margin = max(8, size_px // 10)
    terrain = true_terrain(size_px + 2 * margin, spec.layout, stream(seed, spec.name, "terrain"))
    return terrain, (slice(margin, margin + size_px), slice(margin, margin + size_px))


def _write_region(
    root: Path, spec: RegionSpec, seed: int, size_px: int, files: list[Path]
) -> dict[str, Any]:
    folder = root / spec.name
    grid = radar_geobox(spec, size_px)
    crs = f"EPSG:{spec.utm_epsg}"
    terrain, inner = region_terrain(spec, seed, size_px)
    margin = inner[0].start
    ext_transform = grid.affine @ Affine.translation(-margin, -margin)
    elevation, cover = terrain.elevation_m[inner], terrain.cover[inner]
    sea = cover == Cover.SEA

    def add(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        files.append(path)
        return path

    write_region_geojson(add(folder / "region.geojson"), _outline_lonlat(grid), spec.name)
    dem, dem_transform = degrade_to_dem(terrain.elevation_m, terrain.cover, ext_transform, crs,
                                        stream(seed, spec.name, "dem"))
    write_geotiff(add(folder / "dem" / "dem.tif"), dem[None], dem_transform, "EPSG:4326",
                  DEM_NODATA, ["elevation"], {
                      "VERTICAL_DATUM": "mean sea level 2000 (synthetic stand-in for EGM2008)",
                      "PRODUCT": "GLO-30 style surface model (synthetic)", "UNITS": "m"},
                  units=["m"])

    radar_times = _radar_times(spec, stream(seed, spec.name, "radar-dates"))
    optical_times = _optical_times(spec, radar_times, stream(seed, spec.name, "optical-dates"))
    model, labelled_pass = _water_level_model(spec, radar_times, optical_times,
                                              stream(seed, spec.name, "surges"))
    days = pd.date_range(PERIOD_START, PERIOD_END, freq="D")
    climatology = gcm.monsoon_mm_day(np.arange(1, 13), spec.centre_lon, spec.centre_lat)
    rain = hydro.daily_rain_mm(days, climatology, stream(seed, spec.name, "rain"))

    parcels = field_parcels(cover.shape, FIELD_SPAN_PX, stream(seed, spec.name, "parcels"))
    drainage_mm = stream(seed, spec.name, "field-drainage").uniform(
        *FIELD_DRAINAGE_MM, int(parcels.max()) + 1)
    moments = []
    for kind, times in (("radar", radar_times), ("optical", optical_times)):
        for time in times:
            level = float(hydro.water_level_m(model, pd.DatetimeIndex([time]))[0])
            rain_mm = hydro.rain_before_mm(days, rain, time)
            water = hydro.flood_extent(elevation, sea, level, rain_mm,
                                       spec.attenuation_m_per_km, PIXEL_M)
            if spec.bunded_fields:
                water |= hydro.waterlogged_fields(parcels, cover == Cover.CROPLAND, rain_mm,
                                                  drainage_mm)
            moments.append(_Moment(time, kind, level, rain_mm, water))
    for moment in moments:
        write_geotiff(add(folder / "truth" / f"inundation_{moment.time:{TIME_FORMAT}}.tif"),
                      moment.water[None].astype(np.uint8), grid.affine, crs, None, ["inundation"],
                      {"TIME": _iso(moment.time), "KIND": moment.kind,
                       "SEA_LEVEL_M": f"{moment.sea_level_m:.3f}",
                       "RAIN_3DAY_MM": f"{moment.rain_3day_mm:.1f}",
                       "MEANING": "1 water, 0 dry; evaluation only, never training"})

    radar = [m for m in moments if m.kind == "radar"]
    fallow_rank = stream(seed, spec.name, "fallow").random(int(parcels.max()) + 1)

    def cover_on(time: pd.Timestamp) -> np.ndarray:
        share = spec.dry_season_fallow * (1.0 - _crop_growth(time)) / 2.0
        return fallow_fields(cover, parcels, fallow_rank, share)

    radar_nodata = _write_radar(folder, spec, seed, grid, cover_on, parcels, radar, add)
    _write_optical(folder, spec, seed, grid, cover_on,
                   [m for m in moments if m.kind == "optical"], add)
    if spec.role == "source":
        label_times = _write_dense_labels(folder, spec, seed, grid, radar, radar_nodata, add)
    else:
        event = next(m for m in radar if m.time == labelled_pass)
        label_times = _write_sparse_labels(folder, spec, seed, grid, event, add)
    stations = _write_gauges(folder, spec, seed, terrain, ext_transform, model, add)
    write_defences(folder, terrain, inner, grid, stream(seed, spec.name, "defences"), add)
    if spec.role == "target":  # what a planning office maps its exposure and plan on
        write_assets(folder, terrain, inner, grid, stream(seed, spec.name, "assets"), add)

    return {
        "role": spec.role,
        "crs": crs,
        "centre_lon_lat": [spec.centre_lon, spec.centre_lat],
        "radar_dates": [_iso(t) for t in radar_times],
        "optical_dates": [_iso(t) for t in optical_times],
        "label_dates": [_iso(t) for t in label_times],
        "sea_level_m": {_iso(m.time): round(m.sea_level_m, 3) for m in moments},
        "surge_events": [{"peak_time": _iso(e.peak_time), "peak_m": round(e.peak_m, 3),
                          "duration_h": round(e.duration_h, 1)} for e in model.surges],
        "gauges": stations,
    }


def _crop_growth(time: pd.Timestamp) -> float:
    """The crop calendar, -1 (bare low, late February) to 1 (rice at its peak, late August)."""
    return float(np.sin(2 * np.pi * (time.day_of_year - 150) / 365.0))


def _outline_lonlat(grid: GeoBox) -> Polygon:
    """The radar grid's footprint in lon/lat, its edges densified so they stay straight in UTM."""
    left, bottom, right, top = grid.boundingbox
    ring = shapely.segmentize(shapely.box(left, bottom, right, top), grid.width * PIXEL_M / 8)
    to_lonlat = Transformer.from_crs(grid.crs.to_wkt(), "EPSG:4326", always_xy=True)
    x, y = np.asarray(ring.exterior.coords).T
    return Polygon(np.column_stack(to_lonlat.transform(x, y)))


def _iso(time: pd.Timestamp) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ")


def _radar_times(spec: RegionSpec, rng: np.random.Generator) -> list[pd.Timestamp]:
    """The orbit's passes at its local time: every ``radar_revisit_days`` from a random first
    day of the record, or one per listed month on a random day. Orbit control keeps the
    same relative orbit's acquisitions within seconds of each other."""
    seconds = int(spec.radar_hour_utc * 3600)
    times = []
    if spec.radar_revisit_days:
        first = pd.Timestamp(PERIOD_START) + pd.Timedelta(
            days=int(rng.integers(0, spec.radar_revisit_days)))
        for day in pd.date_range(first, PERIOD_END, freq=f"{spec.radar_revisit_days}D"):
            times.append(day + pd.Timedelta(seconds=seconds + int(rng.integers(0, 40))))
        return times
    for year, month in spec.radar_months:
        day = pd.Timestamp(year=year, month=month, day=int(rng.integers(1, 29)))
        times.append(day + pd.Timedelta(seconds=seconds + int(rng.integers(0, 40))))
    return sorted(times)


def _optical_times(
    spec: RegionSpec, radar_times: list[pd.Timestamp], rng: np.random.Generator
) -> list[pd.Timestamp]:
    """Optical dates spread over the period, never within a day of a radar pass."""
    days = pd.date_range(PERIOD_START, PERIOD_END, freq="D")
    radar_days = {t.normalize() for t in radar_times}
    allowed = [d for d in days if all(abs((d - r).days) > 1 for r in radar_days)]
    # spread: one date per equal slice of the period
    slices = np.array_split(np.arange(len(allowed)), spec.optical_count)
    picked = [allowed[int(rng.choice(s))] for s in slices]
    seconds = int(spec.optical_hour_utc * 3600)
    return [d + pd.Timedelta(seconds=seconds + int(rng.integers(0, 60))) for d in picked]


def _water_level_model(
    spec: RegionSpec,
    radar_times: list[pd.Timestamp],
    optical_times: list[pd.Timestamp],
    rng: np.random.Generator,
) -> tuple[hydro.WaterLevelModel, pd.Timestamp | None]:
    """The region's tides and surges, and (target only) the pass its labels are drawn on.

    Source: surges near half its radar passes (drawn from the higher-tide half; a labelled
    archive is collected where floods are, as mapping programmes label the passes that saw
    one) and near two optical dates, so that the teacher's labelled passes show land
    flooded, plus random ones. Target: what the record of a data-sparse coast holds
    (``_target_surges``).
    """
    if spec.role == "target":
        events, labelled_pass = _target_surges(spec, radar_times, rng)
        return hydro.WaterLevelModel(spec.constituents, events,
                                     spec.sea_level_trend_m_per_year), labelled_pass
    tide_only = hydro.WaterLevelModel(spec.constituents, (), 0.0)
    tide_at_pass = hydro.water_level_m(tide_only, pd.DatetimeIndex(radar_times))
    higher_tide = [radar_times[i] for i in np.argsort(tide_at_pass)[len(radar_times) // 2:]]
    anchors = list(rng.choice(higher_tide, size=max(1, len(radar_times) // 2), replace=False))
    anchors += list(rng.choice(optical_times, size=2, replace=False))
    anchors += _random_times(2, rng)
    events = tuple(_surge_near(pd.Timestamp(a), rng) for a in sorted(anchors))
    return hydro.WaterLevelModel(spec.constituents, events,
                                 spec.sea_level_trend_m_per_year), None


def _surge_near(anchor: pd.Timestamp, rng: np.random.Generator) -> hydro.SurgeEvent:
    """A surge of random size and length peaking a few hours around ``anchor``."""
    return hydro.SurgeEvent(peak_time=anchor + pd.Timedelta(hours=float(rng.uniform(-6, 3))),
                            peak_m=float(rng.uniform(1.2, 3.0)),
                            duration_h=float(rng.uniform(30, 72)))


def _random_times(count: int, rng: np.random.Generator) -> list[pd.Timestamp]:
    start = pd.Timestamp(PERIOD_START)
    return [start + pd.Timedelta(hours=float(h)) for h in rng.uniform(0, 2 * 8760, count)]


def _target_surges(
    spec: RegionSpec, radar_times: list[pd.Timestamp], rng: np.random.Generator
) -> tuple[tuple[hydro.SurgeEvent, ...], pd.Timestamp]:
    """The target's surges: one past flood event early in the record that a rapid-mapping
    service labelled, four at random times (about two a year, as the northeast monsoon and
    the odd typhoon give the Mekong coast), and the record's highest water in its last part.

    The labelled event peaks near a pass at higher tide in the first 40% of the record, as
    an activation maps a flood a pass saw. The record's highest water is a surge on spring
    high tide (how most record coastal floods happen) near a pass in the last 20% of the
    passes, so the held-out period (the last quarter) holds an extreme that no training
    phase saw; its size is set to top every other hour of the record by 0.2-0.5 m.
    """
    tide_only = hydro.WaterLevelModel(spec.constituents, (), 0.0)
    passes = pd.DatetimeIndex(radar_times)
    tide_at_pass = hydro.water_level_m(tide_only, passes)
    early = np.flatnonzero(np.arange(len(passes)) < 0.4 * len(passes))
    higher_early = early[np.argsort(tide_at_pass[early])[len(early) // 2:]]
    labelled_pass = passes[int(rng.choice(higher_early))]
    events = [_surge_near(labelled_pass, rng)]
    events += [_surge_near(peak, rng) for peak in _random_times(4, rng)]
    late = np.flatnonzero(np.arange(len(passes)) >= 0.8 * len(passes))
    extreme_pass = passes[int(late[np.argmax(tide_at_pass[late])])]
    shape = _surge_near(extreme_pass, rng)
    hours = pd.date_range(PERIOD_START, PERIOD_END, freq="h")
    so_far = hydro.WaterLevelModel(spec.constituents, tuple(events),
                                   spec.sea_level_trend_m_per_year)
    record_max = float(hydro.water_level_m(so_far, hours).max())
    unit = hydro.WaterLevelModel((), (dataclasses.replace(shape, peak_m=1.0),), 0.0)
    at_pass = float(hydro.water_level_m(so_far, pd.DatetimeIndex([extreme_pass]))[0])
    bump = float(hydro.water_level_m(unit, pd.DatetimeIndex([extreme_pass]))[0])
    peak_m = (record_max + float(rng.uniform(0.2, 0.5)) - at_pass) / bump
    events.append(dataclasses.replace(shape, peak_m=peak_m))
    return tuple(sorted(events, key=lambda e: e.peak_time)), labelled_pass


def _s1_name(time: pd.Timestamp, rng: np.random.Generator) -> str:
    """S1A_IW_GRDH_1SDV_<start>_<stop>_<abs orbit>_<datatake>_<id> for a 25 s slice."""
    stop = time + pd.Timedelta(seconds=25)
    # Sentinel-1A: 175 orbits per 12-day cycle, orbit 1 began on 2014-04-03
    orbit = int((time - pd.Timestamp("2014-04-03")) / pd.Timedelta(days=12) * 175) + 1
    datatake = int(rng.integers(0, 16**6))
    product = int(rng.integers(0, 16**4))
    return (f"S1A_IW_GRDH_1SDV_{time:{TIME_FORMAT}}_{stop:{TIME_FORMAT}}_{orbit:06d}_"
            f"{datatake:06X}_{product:04X}.tif")


def _write_radar(folder, spec, seed, grid, cover_on, parcels, radar, add) -> list[np.ndarray]:
    """One Sentinel-1 GRD GeoTIFF per pass; returns each pass's no-data mask. ``cover_on``
    gives the cover of a date; a flooded field's open-water share is drawn per field and
    pass (``parcels`` gives the fields)."""
    texture = fbm(parcels.shape, 2.2, stream(seed, spec.name, "radar-texture"))
    masks = []
    for index, moment in enumerate(radar):
        rng = stream(seed, spec.name, "s1", index)
        cover = cover_on(moment.time)
        crop_offset_db = 2.0 * _crop_growth(moment.time)  # rice growth
        wind_m_s = float(rng.weibull(2.0) * spec.mean_wind_m_s / 0.886)
        # passes from several relative orbits see the coast at different angles
        incidence_deg = float(rng.uniform(*sensors.IW_INCIDENCE_DEG))
        share = stream(seed, spec.name, "field-water", index).uniform(
            0.0, 1.0, int(parcels.max()) + 1)[parcels]
        sigma0_db = sensors.radar_sigma0_db(cover, moment.water, texture, crop_offset_db,
                                            wind_m_s, incidence_deg, rng, share)
        nodata = (sensors.swath_edge_nodata(cover.shape, rng) if rng.random() < 0.5
                  else np.zeros(cover.shape, bool))
        sigma0_db[:, nodata] = sensors.RADAR_NODATA
        masks.append(nodata)
        start = moment.time
        write_geotiff(add(folder / "s1" / _s1_name(start, rng)), sigma0_db, grid.affine,
                      str(grid.crs), sensors.RADAR_NODATA, ["VV", "VH"], {
                          "ACQUISITION_START_TIME": start.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
                          "ACQUISITION_STOP_TIME": (start + pd.Timedelta(seconds=25)).strftime(
                              "%Y-%m-%dT%H:%M:%S.000000Z"),
                          "MISSION": "SENTINEL-1A", "MODE": "IW", "PRODUCT_TYPE": "GRD",
                          "POLARISATIONS": "VV VH", "UNITS": "dB",
                          "QUANTITY": "sigma0 backscatter coefficient",
                          "ORBIT_DIRECTION": "ASCENDING" if spec.radar_hour_utc < 18
                          else "DESCENDING",
                          "WIND_SPEED_M_S": f"{wind_m_s:.1f}",
                          "INCIDENCE_ANGLE_DEG": f"{incidence_deg:.1f}",
                      }, units=["dB", "dB"])
    return masks


def _optical_grid(spec: RegionSpec, grid: GeoBox) -> tuple[Affine, str, int, int]:
    """A 20 m grid that does not line up with the radar grid (transform, crs, height, width)."""
    left, bottom, right, top = grid.boundingbox
    if spec.optical_crs == "utm":
        left, top = left + 7.0, top - 13.0  # shifted origin, as a real tile would be
        width = int((right - left) // OPTICAL_PIXEL_M)
        height = int((top - bottom) // OPTICAL_PIXEL_M)
        return (Affine(OPTICAL_PIXEL_M, 0, left, 0, -OPTICAL_PIXEL_M, top), str(grid.crs),
                height, width)
    west, south, east, north = transform_bounds(grid.crs.to_wkt(), "EPSG:4326",
                                                left, bottom, right, top)
    width = int((east - west) // OPTICAL_PIXEL_DEG)
    height = int((north - south) // OPTICAL_PIXEL_DEG)
    return (Affine(OPTICAL_PIXEL_DEG, 0, west, 0, -OPTICAL_PIXEL_DEG, north), "EPSG:4326",
            height, width)


def _cloud_fractions(count: int, mean: float, rng: np.random.Generator) -> np.ndarray:
    """Per-date cloud cover with a chosen mean: a few clear days, many overcast ones."""
    concentration = 5.0
    draws = rng.beta(mean * concentration, (1 - mean) * concentration, size=count)
    return np.clip(draws + (mean - draws.mean()), 0.0, 1.0)


def _write_optical(folder, spec, seed, grid, cover_on, optical, add) -> None:
    """One Sentinel-2 L2A style GeoTIFF per date: six bands as DN plus SCL; ``cover_on``
    gives the cover of a date."""
    transform, crs, height, width = _optical_grid(spec, grid)
    shape = tuple(grid.shape)
    texture = fbm(shape, 2.5, stream(seed, spec.name, "optical-texture"))
    fractions = _cloud_fractions(len(optical), spec.mean_cloud_fraction,
                                 stream(seed, spec.name, "cloud-fractions"))
    size_px = shape[0]
    for index, moment in enumerate(optical):
        rng = stream(seed, spec.name, "s2", index)
        distance = rng.uniform(0.05, 0.15) * size_px  # cloud height x tan(sun zenith)
        shadow_offset = (int(round(-0.8 * distance)), int(round(-0.6 * distance)))
        clouds = sensors.cloud_scene(shape, float(fractions[index]), shadow_offset,
                                     cirrus=bool(rng.random() < 0.3), rng=rng)
        cover = cover_on(moment.time)
        surface = sensors.surface_reflectance(cover, moment.water, texture)
        observed = sensors.observed_reflectance(surface, clouds)
        scl = sensors.scene_classification(cover, moment.water, clouds)

        reflectance = np.full((len(sensors.OPTICAL_BANDS), height, width), np.nan, np.float32)
        reproject(observed, reflectance, src_transform=grid.affine, src_crs=str(grid.crs),
                  dst_transform=transform, dst_crs=crs, resampling=Resampling.average,
                  src_nodata=None, dst_nodata=np.nan)
        scl_out = np.zeros((height, width), np.uint8)
        reproject(scl, scl_out, src_transform=grid.affine, src_crs=str(grid.crs),
                  dst_transform=transform, dst_crs=crs, resampling=Resampling.mode,
                  src_nodata=None, dst_nodata=0)
        valid = np.isfinite(reflectance).all(axis=0) & (scl_out > 0)
        dn = sensors.reflectance_to_dn(np.nan_to_num(reflectance))
        dn[:, ~valid] = 0
        scl_out[~valid] = 0
        bands = np.concatenate([dn, scl_out[None].astype(np.uint16)])
        cloudy = np.isin(scl_out, (8, 9, 10))
        cloud_percent = 100.0 * cloudy.sum() / max(valid.sum(), 1)
        platform = "S2A" if rng.random() < 0.5 else "S2B"
        processed = moment.time + pd.Timedelta(minutes=int(rng.integers(100, 200)))
        name = (f"{platform}_MSIL2A_{moment.time:{TIME_FORMAT}}_N0510_"
                f"R{spec.s2_relative_orbit:03d}_T{spec.s2_tile}_{processed:{TIME_FORMAT}}.tif")
        write_geotiff(add(folder / "s2" / name), bands, transform, crs, 0,
                      [*sensors.OPTICAL_BANDS, "SCL"], {
                          "SENSING_TIME": moment.time.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
                          "SPACECRAFT_NAME": "Sentinel-2" + platform[-1],
                          "PRODUCT_TYPE": "S2MSI2A", "PROCESSING_BASELINE": "05.10",
                          "BOA_ADD_OFFSET": "-1000", "QUANTIFICATION_VALUE": "10000",
                          "REFLECTANCE": "(DN + BOA_ADD_OFFSET) / QUANTIFICATION_VALUE",
                          "CLOUDY_PIXEL_PERCENTAGE": f"{cloud_percent:.2f}",
                          "SCL_CLASSES": "0 no data, 3 cloud shadow, 4 vegetation, "
                                         "5 not vegetated, 6 water, 8 cloud medium, "
                                         "9 cloud high, 10 thin cirrus",
                      }, units=["DN"] * 6 + ["class"])


def _edge_noise(water: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flip a quarter of the pixels on water edges, as a hurried labeller would."""
    edge = ndimage.binary_dilation(water) & ~ndimage.binary_erosion(water)
    flip = edge & (rng.random(water.shape) < 0.25)
    return water ^ flip


def _write_dense_labels(folder, spec, seed, grid, radar, radar_nodata, add):
    """One label raster per radar pass: ~80% labelled, noisy at the water's edge."""
    for index, (moment, nodata) in enumerate(zip(radar, radar_nodata, strict=True)):
        rng = stream(seed, spec.name, "labels", index)
        label = _edge_noise(moment.water, rng).astype(np.uint8)
        skipped = fbm(label.shape, 3.0, rng)
        label[(skipped > np.quantile(skipped, 0.82)) | nodata] = LABEL_NODATA
        write_geotiff(add(folder / "labels" / f"label_{moment.time:{TIME_FORMAT}}.tif"),
                      label[None], grid.affine, str(grid.crs), LABEL_NODATA, ["label"],
                      {"TIME": _iso(moment.time), "CLASSES": "0 dry, 1 water, 255 no label"})
    return [m.time for m in radar]


def _write_sparse_labels(folder, spec, seed, grid, event: _Moment, add):
    """Polygons of water and dry land on ~5% of the area for one flood event's pass, as a
    rapid-mapping service delivers them: squares where the flood's edge runs are likelier."""
    rng = stream(seed, spec.name, "labels")
    size_px = event.water.shape[0]
    block = max(4, size_px // 10)
    n_side = size_px // block
    n_blocks = max(2, round(TARGET_LABEL_FRACTION * size_px * size_px / block**2))
    share = event.water[:n_side * block, :n_side * block].reshape(
        n_side, block, n_side, block).mean((1, 3)).reshape(-1)
    weights = 0.2 + share * (1 - share)
    picks = rng.choice(weights.size, size=n_blocks, replace=False, p=weights / weights.sum())
    rows = []
    for pick in picks:
        r, c = divmod(int(pick), n_side)
        window = event.water[r * block:(r + 1) * block, c * block:(c + 1) * block]
        transform = grid.affine @ Affine.translation(c * block, r * block)
        for geometry, value in rasterio.features.shapes(window.astype(np.uint8),
                                                        transform=transform):
            rows.append({"class": "water" if value == 1 else "dry",
                         "date": event.time.tz_localize("UTC"), "synthetic": True,
                         "geometry": shape(geometry)})
    labels = gpd.GeoDataFrame(rows, geometry="geometry", crs=str(grid.crs))
    write_labels_gpkg(add(folder / "labels" / "labels.gpkg"), labels)
    return [event.time]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def _write_gauges(folder, spec, seed, terrain: Terrain, ext_transform, model, add):
    """Hourly records at 2-3 gauges on the shore, with gaps, spikes and a flat line."""
    times = pd.date_range(PERIOD_START, PERIOD_END, freq="h")
    to_lonlat = Transformer.from_crs(f"EPSG:{spec.utm_epsg}", "EPSG:4326", always_xy=True)
    stations, uhslc = [], []
    for k, name in enumerate(spec.gauge_names):
        rng = stream(seed, spec.name, "gauge", k)
        row, col = terrain.coast_points_px[k]
        lon, lat = to_lonlat.transform(*(ext_transform @ (col + 0.5, row + 0.5)))
        station = GaugeStation(code=f"SYN{k + 1:02d}", name=name, country=spec.country,
                               lat=lat, lon=lon,
                               datum="mean sea level 2000 (same datum as the demo DEM)")
        local = hydro.WaterLevelModel(
            tuple(hydro.Constituent(c.name, c.amplitude_m * rng.uniform(0.95, 1.05),
                                    c.phase_deg + rng.uniform(-6, 6))
                  for c in model.constituents),
            model.surges, model.trend_m_per_year)
        level = hydro.water_level_m(local, times) + _red_noise(len(times), 0.03, rng)
        level = _damage_record(level, spec, rng)
        if spec.gauge_format == "gesla3":
            slug = f"{_slug(name)}-{station.code.lower()}-{spec.country.lower()}-floodkd"
            write_gesla3(add(folder / "tide" / slug), station, times, level, seed)
        else:
            uhslc_id = f"{801 + k:03d}"
            write_uhslc_hourly(add(folder / "tide" / f"h{uhslc_id}a.csv"), times, level * 1000)
            uhslc.append((uhslc_id, station))
        stations.append({"code": station.code, "name": name, "lat": round(lat, 5),
                         "lon": round(lon, 5)})
    if uhslc:
        write_uhslc_stations(add(folder / "tide" / "stations.csv"), uhslc)
    return stations


def _red_noise(n: int, sigma_m: float, rng: np.random.Generator) -> np.ndarray:
    """AR(1) noise with hourly correlation 0.8: seiches and meteorological wiggles."""
    shocks = rng.normal(0, sigma_m * np.sqrt(1 - 0.8**2), n)
    return lfilter([1.0], [1.0, -0.8], shocks)  # x[t] = 0.8 x[t-1] + shock[t]


def _damage_record(level: np.ndarray, spec: RegionSpec, rng: np.random.Generator) -> np.ndarray:
    """Real-record faults: gaps (NaN), isolated spikes and one flat-lined stretch."""
    level = level.copy()
    n = level.size
    for _ in range(int(rng.integers(1, 3))):
        length = int(rng.integers(*spec.gauge_gap_days)) * 24
        start = int(rng.integers(0, n - length))
        level[start:start + length] = np.nan
    for at in rng.choice(n, size=4, replace=False):
        if np.isfinite(level[at]):
            level[at] += rng.choice([-1, 1]) * rng.uniform(0.8, 2.5)
    start, length = int(rng.integers(0, n - 48)), int(rng.integers(6, 30))
    if np.isfinite(level[start]):
        level[start:start + length] = level[start]
    return level
