"""Every file the demo writes opens with the usual readers and says what it is."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr

from floodkd.demo import hydro
from floodkd.demo.regions import DEMO_REGIONS, PERIOD_END, PERIOD_START

S1_NAME = re.compile(
    r"^S1A_IW_GRDH_1SDV_(\d{8}T\d{6})_(\d{8}T\d{6})_(\d{6})_([0-9A-F]{6})_([0-9A-F]{4})\.tif$"
)
S2_NAME = re.compile(
    r"^S2[AB]_MSIL2A_(\d{8}T\d{6})_N0510_R\d{3}_T\d{2}[A-Z]{3}_\d{8}T\d{6}\.tif$"
)
REGIONS = ("demo-source", "demo-target")


def test_manifest_lists_every_file_and_the_dates(demo_dir: Path, manifest: dict):
    written = sorted(
        str(p.relative_to(demo_dir)) for p in demo_dir.rglob("*")
        if p.is_file() and p.name != "manifest.json"
    )
    assert manifest["files"] == written
    assert manifest["synthetic"] is True
    assert manifest["seed"] == 7 and manifest["size_px"] == 64
    source, target = manifest["regions"]["demo-source"], manifest["regions"]["demo-target"]
    # the target: one pass every 12 days over two years
    assert len(source["radar_dates"]) >= 12 and len(target["radar_dates"]) in (60, 61)
    assert len(target["optical_dates"]) == 10
    for region in (source, target):  # optical days are days without a radar pass
        radar_days = {d[:10] for d in region["radar_dates"]}
        assert not radar_days & {d[:10] for d in region["optical_dates"]}


def test_region_outline_is_the_radar_footprint(demo_dir: Path):
    for region in REGIONS:
        outline = gpd.read_file(demo_dir / region / "region.geojson")
        assert outline.crs.to_epsg() == 4326 and bool(outline["synthetic"].iloc[0])
        s1 = next((demo_dir / region / "s1").glob("*.tif"))
        with rasterio.open(s1) as src:
            footprint = gpd.GeoSeries.from_xy([src.bounds.left, src.bounds.right],
                                             [src.bounds.bottom, src.bounds.top], crs=src.crs)
        corners = footprint.to_crs(4326)
        assert outline.geometry.iloc[0].buffer(1e-6).contains(corners.union_all())


@pytest.mark.parametrize("region,epsg", [("demo-source", 32646), ("demo-target", 32648)])
def test_sentinel1_scenes(demo_dir: Path, manifest: dict, region: str, epsg: int):
    scenes = sorted((demo_dir / region / "s1").glob("*.tif"))
    assert scenes
    for scene in scenes:
        match = S1_NAME.match(scene.name)
        assert match, scene.name
        with rasterio.open(scene) as src:
            assert src.crs.to_epsg() == epsg
            size_px = manifest["size_px"]
            assert (src.res, src.width, src.height) == ((10.0, 10.0), size_px, size_px)
            assert src.descriptions == ("VV", "VH") and src.dtypes == ("float32", "float32")
            assert src.nodata == -9999 and src.units == ("dB", "dB")
            tags = src.tags()
            start = pd.Timestamp(tags["ACQUISITION_START_TIME"])
            assert start.tz is not None
            assert start.tz_localize(None) == pd.Timestamp(match.group(1))
            assert tags["SYNTHETIC"].startswith("true")
            sigma0 = src.read(masked=True)
        truth = _truth(demo_dir, region, match.group(1))
        invalid_columns = np.nonzero(sigma0.mask[0].any(axis=0))[0]
        width = sigma0.shape[2]
        # no-data only in a ragged strip at the left or right swath edge
        assert ((invalid_columns < 8) | (invalid_columns >= width - 8)).all()
        vv = sigma0[0].filled(np.nan)
        water_db, land_db = np.nanmedian(vv[truth == 1]), np.nanmedian(vv[truth == 0])
        wind = float(tags["WIND_SPEED_M_S"])
        if wind < 4:
            assert water_db < land_db - 6  # calm water is a mirror
        else:  # wind-roughened water and speckle make single pixels overlap
            assert np.nanpercentile(vv[truth == 1], 95) > np.nanpercentile(vv[truth == 0], 5)
        if wind < 8:
            assert water_db < land_db  # wind roughens water, yet it stays darker on the whole
        else:  # CMOD5.N: at 10 m/s and 30 deg the sea is as bright as cropland, not brighter
            assert water_db < land_db + 3


def _truth(demo_dir: Path, region: str, stamp: str) -> np.ndarray:
    with rasterio.open(demo_dir / region / "truth" / f"inundation_{stamp}.tif") as src:
        assert src.dtypes == ("uint8",)
        return src.read(1)


@pytest.mark.parametrize("region,epsg", [("demo-source", 32646), ("demo-target", 4326)])
def test_sentinel2_scenes(demo_dir: Path, manifest: dict, region: str, epsg: int):
    scenes = sorted((demo_dir / region / "s2").glob("*.tif"))
    assert len(scenes) == len(manifest["regions"][region]["optical_dates"])
    with rasterio.open(next((demo_dir / region / "s1").glob("*.tif"))) as radar:
        radar_transform = radar.transform
    cloud_fraction = []
    for scene in scenes:
        assert S2_NAME.match(scene.name), scene.name
        with rasterio.open(scene) as src:
            assert src.crs.to_epsg() == epsg and src.nodata == 0
            assert src.descriptions == ("B02", "B03", "B04", "B08", "B11", "B12", "SCL")
            assert set(src.dtypes) == {"uint16"}
            tags = src.tags()
            assert (tags["BOA_ADD_OFFSET"], tags["QUANTIFICATION_VALUE"]) == ("-1000", "10000")
            assert src.transform != radar_transform
            if epsg == 4326:
                assert src.res[0] == pytest.approx(0.00018)
            else:
                assert src.res == (20.0, 20.0)
            data = src.read()
        scl = data[6]
        valid = scl > 0
        assert valid.mean() > 0.8
        assert set(np.unique(scl)) <= {0, 3, 4, 5, 6, 8, 9, 10}
        reflectance = (data[:6].astype(float) - 1000) / 10000
        green, nir = reflectance[1], reflectance[3]
        clear_water = scl == 6
        ndwi = (green - nir) / (green + nir)
        if clear_water.sum() > 5:  # NDWI is positive over the water the SCL sees...
            assert np.median(ndwi[clear_water]) > 0
        if (scl == 4).sum() > 5:  # ...and negative over vegetation
            assert np.median(ndwi[scl == 4]) < -0.3
        cloud_fraction.append(np.isin(scl[valid], (8, 9, 10)).mean())
    mean_cloud = float(np.mean(cloud_fraction))
    if region == "demo-target":
        assert 0.65 <= mean_cloud <= 0.95
    else:
        assert mean_cloud < 0.6


def test_dem(demo_dir: Path):
    for region in REGIONS:
        with rasterio.open(demo_dir / region / "dem" / "dem.tif") as src:
            assert src.crs.to_epsg() == 4326 and src.dtypes == ("float32",)
            assert src.nodata == -9999 and src.units == ("m",)
            assert src.res[0] == pytest.approx(1 / 3600)
            dem = src.read(1, masked=True)
            bounds = src.bounds
        outline = gpd.read_file(demo_dir / region / "region.geojson").total_bounds
        assert bounds.left < outline[0] and bounds.right > outline[2]
        assert bounds.bottom < outline[1] and bounds.top > outline[3]
        assert dem.min() < -2 and dem.max() > 3  # sea floor and land


def test_gcm_files(demo_dir: Path):
    files = sorted((demo_dir / "gcm").glob("*.nc"))
    assert [f.name for f in files] == sorted(
        f"{v}_{t}_SYNTH-ESM_{e}_r1i1p1f1_gn_{p}.nc"
        for v, t in (("zos", "Omon"), ("pr", "Amon"))
        for e, p in (("historical", "199501-201412"), ("ssp245", "201501-210012"),
                     ("ssp585", "201501-210012"))
    )
    trends = {}
    for path in files:
        ds = xr.open_dataset(path, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
        variable = ds.attrs["variable_id"]
        assert ds.attrs["source_id"] == "SYNTH-ESM" and ds.attrs["synthetic"] == "true"
        assert ds[variable].attrs["units"] == {"zos": "m", "pr": "kg m-2 s-1"}[variable]
        assert ds.time.encoding["calendar"] == "noleap"
        assert type(ds.time.values[0]).__name__ == "DatetimeNoLeap"
        assert float(ds.lon.min()) > 80 and float(ds.lon.max()) < 115  # 0..360 east
        if variable == "zos":
            ocean = ds.zos.sel(lon=90.5, lat=21.5).values  # Bay of Bengal next to the source
            assert np.isfinite(ocean).all() and np.isnan(ds.zos.sel(lon=100.5, lat=25.5)).all()
            years = np.array([t.year + (t.month - 0.5) / 12 for t in ds.time.values])
            trends[ds.attrs["experiment_id"]] = np.polyfit(years, ocean, 1)[0]
        else:
            rain_mm_day = ds.pr.sel(lon=90.5, lat=22.5).values * 86400
            months = np.array([t.month for t in ds.time.values])
            assert rain_mm_day[months == 7].mean() > 4 * rain_mm_day[months == 1].mean()
    # 3.5, 4.5 and 6 mm/yr underneath interannual noise
    assert trends["historical"] < trends["ssp585"] and trends["ssp245"] < trends["ssp585"]
    assert trends["ssp585"] == pytest.approx(0.006, abs=0.001)
    assert trends["ssp245"] == pytest.approx(0.0045, abs=0.001)


def test_gesla3_files(demo_dir: Path):
    files = sorted((demo_dir / "demo-source" / "tide").iterdir())
    assert 2 <= len(files) <= 3
    for path in files:
        lines = path.read_text().splitlines()
        header = lines[:41]
        assert all(line.startswith("# ") for line in header) and not lines[41].startswith("#")
        keys = {key for key in ("SITE NAME", "LATITUDE", "LONGITUDE", "NULL VALUE",
                                "DATUM INFORMATION", "TIME ZONE HOURS")
                if any(line.startswith(f"# {key} ") for line in header)}
        assert len(keys) == 6
        assert any("SYNTHETIC" in line for line in header)
        data = pd.read_csv(path, skiprows=41, sep=r"\s+", header=None,
                           names=["date", "time", "level", "qc", "use"])
        assert len(data) == 2 * 365 * 24 + 24  # 2023 and leap 2024, hourly
        null = data.level == -99.9999
        assert null.any() and (data.qc[null] == 5).all() and (data.use[null] == 0).all()
        level = data.level[~null]
        assert 0.8 < level.std() < 1.5 and level.abs().max() < 8


def test_uhslc_files_and_stations(demo_dir: Path):
    tide = demo_dir / "demo-target" / "tide"
    stations = pd.read_csv(tide / "stations.csv")
    assert list(stations.columns[:6]) == ["id", "name", "lat", "lon", "datum", "units"]
    assert stations.synthetic.all()
    outline = gpd.read_file(demo_dir / "demo-target" / "region.geojson").total_bounds
    for row in stations.itertuples():
        assert abs(row.lon - 106.65) < 0.1 and abs(row.lat - 9.95) < 0.1
        assert outline[0] - 0.01 < row.lon < outline[2] + 0.01
        data = pd.read_csv(tide / f"h{row.id:03d}a.csv", header=None,
                           names=["year", "month", "day", "hour", "mm"])
        assert data.shape == (2 * 365 * 24 + 24, 5)
        missing = data.mm == -32767
        longest_gap_h = missing.astype(int).groupby((~missing).cumsum()).sum().max()
        assert longest_gap_h >= 60 * 24  # months-long gaps
        values = data.mm[~missing]
        assert 500 < values.std() < 1500
        flat = (values.diff() == 0).astype(int)
        assert flat.groupby((flat == 0).cumsum()).sum().max() >= 5  # a flat-lined stretch


def test_dense_labels(demo_dir: Path, manifest: dict):
    labels = sorted((demo_dir / "demo-source" / "labels").glob("label_*.tif"))
    assert len(labels) == len(manifest["regions"]["demo-source"]["radar_dates"])
    for path in labels:
        stamp = path.stem.removeprefix("label_")
        with rasterio.open(path) as src:
            assert src.nodata == 255 and src.dtypes == ("uint8",)
            label = src.read(1)
        truth = _truth(demo_dir, "demo-source", stamp)
        labelled = label != 255
        assert labelled.mean() > 0.7
        agreement = (label[labelled] == truth[labelled]).mean()
        assert 0.9 < agreement < 1.0  # mostly right, a little noisy at the edges


def test_half_the_source_passes_are_flood_acquisitions(manifest: dict):
    """A labelled archive is collected where floods are: a surge peaks 6 h before to 3 h
    after every higher-tide pass of the source (half its passes)."""
    source = manifest["regions"]["demo-source"]
    passes = pd.to_datetime(source["radar_dates"])
    peaks = pd.to_datetime([e["peak_time"] for e in source["surge_events"]])
    lag_h = (peaks.values[None, :] - passes.values[:, None]) / np.timedelta64(1, "h")
    near_a_surge = ((lag_h >= -6) & (lag_h <= 3)).any(axis=1)
    assert near_a_surge.sum() >= len(passes) // 2


def test_target_record_is_a_12_day_orbit_with_an_early_labelled_event_and_a_late_extreme(
        manifest: dict):
    target = manifest["regions"]["demo-target"]
    passes = pd.DatetimeIndex(target["radar_dates"])
    gaps = np.diff(passes.values) / np.timedelta64(1, "s")
    assert np.all(np.abs(gaps - 12 * 86400) < 60)  # one relative orbit, seconds apart
    levels = np.array([target["sea_level_m"][d] for d in target["radar_dates"]])
    (labelled,) = target["label_dates"]
    position = target["radar_dates"].index(labelled)
    assert position < 0.4 * len(passes)  # early, far outside the held-out last quarter
    assert levels[position] > np.median(levels) + 0.5  # a flood event, not a calm day
    highest = int(np.argmax(list(target["sea_level_m"].values())))
    highest_time = list(target["sea_level_m"])[highest]
    assert highest_time in target["radar_dates"]  # the record's highest water has a pass
    assert target["radar_dates"].index(highest_time) >= 0.8 * len(passes)
    # its surge tops every other hour of the record (tide, trend and the other five surges)
    events = [hydro.SurgeEvent(pd.Timestamp(e["peak_time"]).tz_localize(None), e["peak_m"],
                               e["duration_h"]) for e in target["surge_events"]]
    assert len(events) == 6
    at = pd.Timestamp(highest_time).tz_localize(None)
    others = [e for e in events if e is not min(events, key=lambda e: abs(e.peak_time - at))]
    spec = next(r for r in DEMO_REGIONS if r.name == "demo-target")
    rest = hydro.WaterLevelModel(spec.constituents, tuple(others), spec.sea_level_trend_m_per_year)
    hours = pd.date_range(PERIOD_START, PERIOD_END, freq="h")
    assert target["sea_level_m"][highest_time] > hydro.water_level_m(rest, hours).max() + 0.19


def test_sparse_labels(demo_dir: Path, manifest: dict):
    labels = gpd.read_file(demo_dir / "demo-target" / "labels" / "labels.gpkg")
    assert labels.crs.to_epsg() == 32648
    assert set(labels["class"]) == {"water", "dry"} and labels.is_valid.all()
    assert labels["synthetic"].all()
    dates = {pd.Timestamp(d).strftime("%Y-%m-%dT%H:%M:%SZ") for d in labels["date"]}
    assert dates == set(manifest["regions"]["demo-target"]["label_dates"])
    assert dates <= set(manifest["regions"]["demo-target"]["radar_dates"])
    outline = gpd.read_file(demo_dir / "demo-target" / "region.geojson").to_crs(32648)
    fraction = labels.union_all().area / outline.area.iloc[0]
    assert 0.02 <= fraction <= 0.08
