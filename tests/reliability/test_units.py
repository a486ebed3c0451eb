"""Numbers in the wrong unit or bands in the wrong order are refused at the reader with the
file, the problem and the fix, and nothing is written (issue 14, items 2 and 3)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
import yaml

from floodkd.demo.gcm import gcm_file_name
from tests.reliability.conftest import SOURCE, TARGET, changes, snapshot

DEMO = Path("data/demo")


def _ingest(floodkd_cli, modality: str, region: str) -> tuple[int, str]:
    return floodkd_cli("ingest", modality, "--config", "config.yaml", "--region", region,
                       "--out", f"results/{region}/ingest/{modality}")


def _refused(workdir, floodkd_cli, modality, region, *messages) -> str:
    before = snapshot(workdir)
    code, err = _ingest(floodkd_cli, modality, region)
    assert code == 2, err
    for message in messages:
        assert message in err, err
    assert "Fix:" in err
    assert changes(before, snapshot(workdir)) == []
    return err


def _set_config(workdir, region: str, modality: str, **options) -> None:
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["regions"][region]["inputs"][modality].update(options)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


def _rewrite_raster(path: Path, data=None, descriptions=None, units=None, tags=None) -> None:
    """The raster at ``path`` written again with the given data, names, units and tags only."""
    with rasterio.open(path) as src:
        profile, old = src.profile, src.read()
    data = old if data is None else data
    tmp = path.with_name("rewritten.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data)
        if descriptions:
            dst.descriptions = tuple(descriptions)
        if units:
            dst.units = tuple(units)
        dst.update_tags(**(tags or {}))
    os.replace(tmp, path)


def _first(pattern: str) -> Path:
    return sorted(DEMO.glob(pattern))[0]


# ------------------------------------------------------------------ tide gauges


def test_uhslc_in_mm_declared_as_metres_is_refused(workdir, floodkd_cli):
    stations = DEMO / TARGET / "tide" / "stations.csv"
    table = pd.read_csv(stations)
    table["units"] = "m"
    table.to_csv(stations, index=False)
    _refused(workdir, floodkd_cli, "tide", TARGET, "h801a.csv: station 801",
             "read as m", "probably in mm", "the units column of station 801")


def test_uhslc_in_metres_declared_as_mm_is_refused(workdir, floodkd_cli):
    for path in sorted((DEMO / TARGET / "tide").glob("h*.csv")):
        rows = pd.read_csv(path, header=None)
        rows[4] = np.where(rows[4] == -32767, -32767, rows[4] / 1000.0)
        rows.to_csv(path, header=False, index=False)
    _refused(workdir, floodkd_cli, "tide", TARGET, "metres declared as a smaller unit")


def test_uhslc_units_disagreeing_with_the_config_are_refused(workdir, floodkd_cli):
    _set_config(workdir, TARGET, "tide", unit="m")
    _refused(workdir, floodkd_cli, "tide", TARGET, "says the levels are in 'mm' but the config "
             "says 'm'")


def _scale_gesla(path: Path, factor: float, units: str | None) -> None:
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("# UNITS"):
            if units is None:
                continue
            line = f"# UNITS {units}"
        elif not line.startswith("#") and line.strip():
            date, clock, level, *rest = line.split()
            if level != "-99.9999":
                level = f"{float(level) * factor:.4f}"
            line = " ".join([date, clock, level, *rest])
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")


def test_gesla_units_header_is_honoured(workdir, floodkd_cli):
    for path in sorted((DEMO / SOURCE / "tide").iterdir()):
        _scale_gesla(path, 1000.0, "mm")
    code, err = _ingest(floodkd_cli, "tide", SOURCE)
    assert code == 0, err
    with xr.open_dataset(workdir / "results" / SOURCE / "ingest" / "tide" / "tide.nc") as tide:
        span = float(tide["water_level_m"].max() - tide["water_level_m"].min())
    assert 0.5 < span < 10  # metres again, not thousands


def test_gesla_in_mm_under_a_metres_header_is_refused(workdir, floodkd_cli):
    _scale_gesla(_first(f"{SOURCE}/tide/*"), 1000.0, "m")
    _refused(workdir, floodkd_cli, "tide", SOURCE, "read as m", "probably in mm",
             "the file's '# UNITS' header line")


def test_gesla_in_mm_without_a_header_is_refused(workdir, floodkd_cli):
    _scale_gesla(_first(f"{SOURCE}/tide/*"), 1000.0, None)
    _refused(workdir, floodkd_cli, "tide", SOURCE, "probably in mm",
             "a '# UNITS' header line, or inputs.tide.unit")


def test_gesla_header_disagreeing_with_the_config_is_refused(workdir, floodkd_cli):
    _set_config(workdir, SOURCE, "tide", unit="mm")
    _refused(workdir, floodkd_cli, "tide", SOURCE, "the '# UNITS' header says the levels are "
             "in 'm' but the config says 'mm'")


def test_unknown_gesla_unit_is_refused(workdir, floodkd_cli):
    _scale_gesla(_first(f"{SOURCE}/tide/*"), 1.0, "fathoms")
    _refused(workdir, floodkd_cli, "tide", SOURCE, "unknown sea-level unit 'fathoms'")


def test_a_datum_far_from_sea_level_is_a_warning(workdir, floodkd_cli, caplog):
    for path in sorted((DEMO / SOURCE / "tide").iterdir()):
        lines = [line if line.startswith("#") or not line.strip() else
                 " ".join([*line.split()[:2], f"{float(line.split()[2]) + 40:.4f}",
                           *line.split()[3:]])
                 for line in path.read_text().splitlines()]
        path.write_text("\n".join(lines) + "\n")
    code, err = _ingest(floodkd_cli, "tide", SOURCE)
    assert code == 0, err
    assert "the datum is not mean sea level" in caplog.text


# ------------------------------------------------------------------ terrain


def test_dem_without_a_unit_is_refused(workdir, floodkd_cli):
    _rewrite_raster(DEMO / TARGET / "dem" / "dem.tif")
    _refused(workdir, floodkd_cli, "terrain", TARGET, "dem.tif: the DEM does not say its "
             "height unit", "set inputs.terrain.unit: m (or ft)")


def test_dem_unit_from_the_config_converts_feet(workdir, floodkd_cli):
    dem = DEMO / TARGET / "dem" / "dem.tif"
    with rasterio.open(dem) as src:
        feet = src.read(1, masked=True)
    _rewrite_raster(dem)
    _set_config(workdir, TARGET, "terrain", unit="ft")
    code, err = _ingest(floodkd_cli, "terrain", TARGET)
    assert code == 0, err
    with rasterio.open(workdir / "results" / TARGET / "ingest" / "terrain" / "dem.tif") as out:
        metres = out.read(1)
    assert np.nanmax(metres) == pytest.approx(float(feet.max()) * 0.3048, rel=1e-5)


def test_dem_tag_disagreeing_with_the_config_is_refused(workdir, floodkd_cli):
    _set_config(workdir, TARGET, "terrain", unit="ft")
    _refused(workdir, floodkd_cli, "terrain", TARGET, "the file says its heights are in 'm' "
             "but the config says 'ft'")


def test_dem_in_centimetres_is_refused(workdir, floodkd_cli):
    dem = DEMO / TARGET / "dem" / "dem.tif"
    with rasterio.open(dem) as src:
        data = src.read()
    _rewrite_raster(dem, data=data, units=["cm"])
    _refused(workdir, floodkd_cli, "terrain", TARGET, "elevation unit 'cm' is not metres or feet")


# ------------------------------------------------------------------ radar


def test_vv_and_vh_swapped_under_correct_descriptions_are_refused(workdir, floodkd_cli):
    scene = _first(f"{TARGET}/s1/*.tif")
    with rasterio.open(scene) as src:
        data, tags = src.read(), src.tags()
    _rewrite_raster(scene, data=data[::-1], descriptions=["VV", "VH"], tags=tags)
    _refused(workdir, floodkd_cli, "sar", TARGET, f"{scene.name}: the band read as VH is",
             "dB above VV in median", "the bands are swapped", "band descriptions")


def test_a_wrong_bands_order_is_refused(workdir, floodkd_cli):
    for scene in sorted((DEMO / TARGET / "s1").glob("*.tif")):
        with rasterio.open(scene) as src:
            tags = src.tags()
        _rewrite_raster(scene, tags=tags)  # no band descriptions: the config gives the order
    _set_config(workdir, TARGET, "sar", bands=["VH", "VV"])
    _refused(workdir, floodkd_cli, "sar", TARGET, "the bands are swapped", "bands: [VH, VV]")


# ------------------------------------------------------------------ climate model


def _scale_netcdf(path: Path, variable: str, factor: float) -> None:
    with xr.open_dataset(path, decode_times=False) as ds:
        ds = ds.load()
    ds[variable] = ds[variable] * factor
    ds[variable].attrs = dict(ds[variable].attrs)
    tmp = path.with_name("scaled.nc")
    ds.to_netcdf(tmp)
    os.replace(tmp, path)


@pytest.mark.parametrize(
    ("variable", "factor", "message"),
    [("zos", 100.0, "dynamic sea level lies within 10 m of the geoid"),
     ("pr", 86400.0, "no climate has means outside -1..100 mm/day")],
    ids=["zos-cm-as-m", "pr-mm-day-as-flux"],
)
def test_gcm_fields_in_the_wrong_unit_are_refused(workdir, floodkd_cli, variable, factor,
                                                  message):
    path = DEMO / "gcm" / gcm_file_name(variable, "historical")
    units = xr.open_dataset(path, decode_times=False)[variable].attrs["units"]
    _scale_netcdf(path, variable, factor)
    assert xr.open_dataset(path, decode_times=False)[variable].attrs["units"] == units
    _refused(workdir, floodkd_cli, "gcm", TARGET, path.name, message, "units attribute")
