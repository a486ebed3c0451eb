"""Tide-gauge ingest on synthetic records with a known tide, in GESLA-3 and UHSLC layouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from floodkd.errors import InputError
from floodkd.ingest import tide
from floodkd.ingest.tide_formats import read_gesla3

LAT, LON = 10.4, 106.6
BBOX = [106.5, 10.3, 106.7, 10.45]
START = np.datetime64("2020-01-01T00:00", "ns")
HOURS = 45 * 24
M2_AMP, K1_AMP, MEAN = 0.8, 0.3, 1.5
M2_CPD, K1_CPD = 1.9322736, 1.0027379  # cycles per day
SPIKE_HOUR, FLAT_HOURS, GAP_HOURS = 300, slice(500, 508), slice(600, 672)


def true_tide(hours: np.ndarray) -> np.ndarray:
    days = np.asarray(hours, float) / 24
    return (MEAN + M2_AMP * np.cos(2 * np.pi * M2_CPD * days - 0.3)
            + K1_AMP * np.cos(2 * np.pi * K1_CPD * days - 1.1))


def synthetic_mm(hours: int = HOURS) -> np.ndarray:
    """Tide + 5 mm noise, rounded to whole millimetres (the UHSLC resolution)."""
    noise = np.random.default_rng(0).normal(0, 0.005, hours)
    return np.round((true_tide(np.arange(hours)) + noise) * 1000)


def write_gesla(path: Path, times: np.ndarray, levels_m: np.ndarray, *, zone_hours: float = 0,
                use: np.ndarray | None = None, lat: float = LAT) -> Path:
    """A GESLA-3 file: header of '# KEY value' lines, then 'date time level qc use'."""
    use = np.ones(len(times), int) if use is None else use
    header = [
        "# FORMAT VERSION 5.0 Web: https://gesla.org Email: gesla.help@gmail.com",
        "# SITE NAME Test Harbour", "# SITE CODE 999A", "# COUNTRY VNM",
        "# CONTRIBUTOR Test", f"# LATITUDE      {lat:.8f}", f"# LONGITUDE     {LON:.8f}",
        "# COORDINATE SYSTEM Unspecified", "# START DATE/TIME 2020/01/01 00:00:00",
        f"# TIME ZONE HOURS {zone_hours:g}", "# DATUM INFORMATION Chart datum",
        "# INSTRUMENT Unspecified", "# PRECISION Unspecified", "# NULL VALUE -99.9999",
        "# GAUGE TYPE Coastal", "#" * 60,
    ]
    local = pd.DatetimeIndex(times) + pd.Timedelta(hours=zone_hours)
    rows = []
    for stamp, level, flag in zip(local, levels_m, use, strict=True):
        missing = np.isnan(level)
        value = -99.9999 if missing else level
        rows.append(f"{stamp:%Y/%m/%d %H:%M:%S} {value:10.4f} {5 if missing else 1} {flag}")
    path.write_text("\n".join(header + rows) + "\n")
    return path


def write_uhslc(folder: Path, station_id: str, times: np.ndarray, levels_mm: np.ndarray) -> Path:
    stamps = pd.DatetimeIndex(times)
    values = np.where(np.isnan(levels_mm), -32767, levels_mm).astype(int)
    lines = [f"{t.year},{t.month},{t.day},{t.hour},{v}" for t, v in zip(stamps, values,
                                                                         strict=True)]
    path = folder / f"h{station_id}a.csv"
    path.write_text("\n".join(lines) + "\n")
    (folder / "stations.csv").write_text(
        f"id,name,lat,lon,datum,units\n{station_id},Test Harbour,{LAT},{LON},Chart datum,mm\n")
    return path


def region(folder: Path, fmt: str, pattern: str) -> dict:
    settings = {"glob": str(folder / pattern), "format": fmt}
    if fmt == "uhslc":
        settings["stations"] = str(folder / "stations.csv")
    return {"bbox": BBOX, "inputs": {"tide": settings}}


def run_ingest(folder: Path, fmt: str, pattern: str) -> tuple[xr.Dataset, pd.DataFrame]:
    out = folder / "out"
    out.mkdir()
    tide.ingest(region(folder, fmt, pattern), out)
    with xr.open_dataset(out / "tide.nc") as dataset:
        return dataset.load(), pd.read_csv(out / "constituents.csv", dtype={"station": str})


def hourly_times(hours: int = HOURS) -> np.ndarray:
    return START + np.arange(hours) * np.timedelta64(1, "h")


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> tuple[xr.Dataset, pd.DataFrame,
                                                                 np.ndarray]:
    """A UHSLC record with one spike, one stuck stretch and a 3-day gap."""
    folder = tmp_path_factory.mktemp("damaged")
    levels = synthetic_mm()
    levels[SPIKE_HOUR] += 1500
    levels[FLAT_HOURS] = levels[FLAT_HOURS.start]
    levels[GAP_HOURS] = np.nan
    write_uhslc(folder, "057", hourly_times(), levels)
    dataset, constituents = run_ingest(folder, "uhslc", "h*.csv")
    return dataset, constituents, levels


def test_spike_removed_and_flagged(damaged) -> None:
    dataset, _, _ = damaged
    station = dataset.sel(station="057a")
    assert int(station.flag[SPIKE_HOUR]) == tide.FLAG_SPIKE
    assert abs(float(station.water_level_m[SPIKE_HOUR]) - true_tide(SPIKE_HOUR)) < 0.03
    assert (station.flag.values == tide.FLAG_SPIKE).sum() == 1


def test_flat_line_removed_and_flagged(damaged) -> None:
    dataset, _, _ = damaged
    flags = dataset.sel(station="057a").flag.values
    assert (flags[FLAT_HOURS] == tide.FLAG_FLAT).all()
    assert flags[FLAT_HOURS.start - 1] == tide.FLAG_OBSERVED
    assert flags[FLAT_HOURS.stop] == tide.FLAG_OBSERVED


def test_gap_filled_by_prediction_and_observations_kept_exactly(damaged) -> None:
    dataset, _, levels = damaged
    station = dataset.sel(station="057a")
    flags, water = station.flag.values, station.water_level_m.values
    assert (flags[GAP_HOURS] == tide.FLAG_FILLED).all()
    truth = true_tide(np.arange(GAP_HOURS.start, GAP_HOURS.stop))
    assert np.abs(water[GAP_HOURS] - truth).max() < 0.03
    np.testing.assert_array_equal(water[GAP_HOURS], station.tide_prediction_m.values[GAP_HOURS])
    observed = flags == tide.FLAG_OBSERVED
    assert observed.sum() == HOURS - 1 - 8 - 72
    np.testing.assert_array_equal(water[observed], levels[observed] / 1000)
    counts = json.loads(dataset.attrs["qc_counts"])["057a"]
    assert counts["spike_hours"] == 1 and counts["flat_line_hours"] == 8
    assert counts["gap_hours"] == 72


def test_m2_amplitude_matches(damaged) -> None:
    _, constituents, _ = damaged
    m2 = constituents[(constituents.station == "057a") & (constituents.name == "M2")]
    assert abs(float(m2.amplitude_m.iloc[0]) / M2_AMP - 1) < 0.02
    k1 = constituents[constituents.name == "K1"]
    assert abs(float(k1.amplitude_m.iloc[0]) / K1_AMP - 1) < 0.05


def test_output_layout(damaged) -> None:
    dataset, _, _ = damaged
    assert dataset.water_level_m.dims == ("station", "time")
    assert dataset.flag.dtype == np.int8
    assert dataset.time.values[0] == START
    assert (np.diff(dataset.time.values) == np.timedelta64(1, "h")).all()
    assert dataset.station_name.values[0] == "Test Harbour"
    assert dataset.datum.values[0] == "Chart datum"
    assert float(dataset.lat[0]) == LAT and float(dataset.lon[0]) == LON


def test_gesla_and_uhslc_parse_to_same_values(tmp_path: Path) -> None:
    levels_mm = synthetic_mm(40 * 24)
    levels_mm[100:110] = np.nan
    times = hourly_times(40 * 24)
    (tmp_path / "g").mkdir()
    (tmp_path / "u").mkdir()
    # GESLA in local time UTC+7: the reader must shift it back
    write_gesla(tmp_path / "g" / "test_harbour-999a-vnm-test", times, levels_mm / 1000,
                zone_hours=7)
    write_uhslc(tmp_path / "u", "12", times, levels_mm)
    gesla, _ = run_ingest(tmp_path / "g", "gesla3", "*-test")
    uhslc, _ = run_ingest(tmp_path / "u", "uhslc", "h*.csv")
    np.testing.assert_array_equal(gesla.time.values, uhslc.time.values)
    np.testing.assert_allclose(gesla.water_level_m.values, uhslc.water_level_m.values,
                               atol=5e-4)
    np.testing.assert_array_equal(gesla.flag.values, uhslc.flag.values)
    assert (gesla.flag.values[0, 100:110] == tide.FLAG_FILLED).all()
    assert gesla.station.values[0] == "999A" and uhslc.station.values[0] == "12a"


def test_gesla_use_flag_zero_is_missing_and_sub_hourly_resampled(tmp_path: Path) -> None:
    times = START + np.arange(20 * 24 * 4) * np.timedelta64(15, "m")
    levels = true_tide((times - START) / np.timedelta64(1, "h"))
    use = np.ones(len(times), int)
    use[400:404] = 0  # hour 100 and its quarter hours
    path = write_gesla(tmp_path / "quarter-1-xx-test", times, levels, use=use)
    series = tide.process_station(read_gesla3(path))
    # 15-min samples 00:00 .. 23:45 of day 20: the last full hour with a sample is 23:00
    assert len(series.time) == 20 * 24 and series.counts["spike_hours"] == 0
    assert np.isnan(series.observed_m[100])
    np.testing.assert_allclose(series.observed_m[99], true_tide(99), atol=1e-4)
    assert series.counts["use_flag_rejected"] == 4


def test_unparseable_timestamp_refused_with_file_and_line(tmp_path: Path) -> None:
    times = hourly_times(20 * 24)
    path = write_uhslc(tmp_path, "7", times, synthetic_mm(20 * 24))
    lines = path.read_text().splitlines()
    lines[41] = "2020,13,2,17,1234"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as caught:
        tide.ingest(region(tmp_path, "uhslc", "h*.csv"), tmp_path)
    assert str(path) in str(caught.value) and "line 42" in str(caught.value)
    assert "timestamp" in str(caught.value)

    gesla = write_gesla(tmp_path / "bad-1-xx-test", times, synthetic_mm(20 * 24) / 1000)
    text = gesla.read_text().replace("2020/01/03 05:00:00", "2020/01/03 5h", 1)
    gesla.write_text(text)
    bad_line = text.splitlines().index(next(li for li in text.splitlines() if "5h" in li)) + 1
    with pytest.raises(InputError, match=f"line {bad_line}: unparseable timestamp"):
        read_gesla3(gesla)


def test_duplicates_identical_dropped_conflicting_refused(tmp_path: Path) -> None:
    times = hourly_times(20 * 24)
    levels = synthetic_mm(20 * 24)
    path = write_uhslc(tmp_path, "7", times, levels)
    lines = path.read_text().splitlines()
    # an identical repeat, and the whole record shuffled out of order at one place
    shuffled = lines[:50] + [lines[30]] + lines[200:] + lines[50:200]
    path.write_text("\n".join(shuffled) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    tide.ingest(region(tmp_path, "uhslc", "h*.csv"), out)
    with xr.open_dataset(out / "tide.nc") as dataset:
        np.testing.assert_array_equal(dataset.water_level_m.values[0], levels / 1000)
        counts = json.loads(dataset.attrs["qc_counts"])["7a"]
    assert counts["duplicates_dropped"] == 1 and counts["unsorted_steps"] >= 1

    conflicting = lines + [lines[30].rsplit(",", 1)[0] + ",9999"]
    path.write_text("\n".join(conflicting) + "\n")
    with pytest.raises(InputError) as caught:
        tide.ingest(region(tmp_path, "uhslc", "h*.csv"), tmp_path / "out2")
    message = str(caught.value)
    assert str(path) in message and "2020-01-02 06:00" in message and "different" in message


def test_short_record_and_distant_station_refused(tmp_path: Path) -> None:
    write_gesla(tmp_path / "short-1-xx-test", hourly_times(10 * 24),
                synthetic_mm(10 * 24) / 1000)
    with pytest.raises(InputError, match="only 10.0 days of valid hourly data"):
        tide.ingest(region(tmp_path, "gesla3", "*-test"), tmp_path / "o1")
    far = tmp_path / "far"
    far.mkdir()
    write_gesla(far / "far-1-xx-test", hourly_times(20 * 24), synthetic_mm(20 * 24) / 1000,
                lat=12.0)
    with pytest.raises(InputError, match="km from the region"):
        tide.ingest(region(far, "gesla3", "*-test"), far / "o2")


def test_missing_files_and_missing_position_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no tide-gauge files match"):
        tide.ingest(region(tmp_path, "gesla3", "*-none"), tmp_path)
    path = tmp_path / "nopos-1-xx-test"
    path.write_text("# SITE NAME Nowhere\n# SITE CODE 1\n2020/01/01 00:00:00 1.0 1 1\n")
    with pytest.raises(InputError, match="no LATITUDE"):
        read_gesla3(path)


def test_flat_line_and_spike_helpers() -> None:
    level = np.array([1.0, 2, 2, 2, 2, 2, 2, 3, np.nan, 4, 4, 4, 4, 4])
    np.testing.assert_array_equal(np.flatnonzero(tide.find_flat_lines(level)), np.arange(1, 7))
    tide_m = np.sin(np.arange(200) / 3.0)
    noisy = tide_m + np.random.default_rng(1).normal(0, 0.02, 200)
    noisy[50] += 0.5
    surge = noisy.copy()
    surge[120:150] += np.hanning(30) * 1.0  # a smooth surge is not a spike
    assert np.flatnonzero(tide.find_spikes(surge, tide_m)).tolist() == [50]
