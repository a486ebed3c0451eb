"""Sentinel-1 ingest: units, band lookup, acquisition time, output GeoTIFF and scenes.csv."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.control import GroundControlPoint
from rasterio.transform import from_origin

from floodkd.errors import InputError
from floodkd.ingest import sar

S1_NAME = "S1A_IW_GRDH_1SDV_20210304T050607_20210304T050632_036852_045486_1A2B.tif"


def _db_scene(vv: float = -10.0, vh: float = -17.0) -> np.ndarray:
    data = np.empty((2, 3, 4), dtype=np.float32)
    data[0], data[1] = vv, vh
    return data


def test_linear_power_becomes_db_with_zero_as_nodata(tmp_path, write_raster, make_region):
    data = np.full((2, 3, 4), 0.01, dtype=np.float32)
    data[1] = 0.001
    data[:, 0, 0] = 0.0  # swath edge
    write_raster(tmp_path / S1_NAME, data, descriptions=["VV", "VH"])
    out = tmp_path / "out"
    out.mkdir()
    sar.ingest(make_region("sar", tmp_path / "S1*.tif", unit="linear"), out)

    with rasterio.open(out / "20210304T050607.tif") as src:
        db = src.read()
        assert src.descriptions == ("VV", "VH")
        assert src.units == ("dB", "dB")
        assert src.dtypes == ("float32", "float32")
        assert np.isnan(src.nodata)
        assert src.crs.to_epsg() == 32631
        assert src.transform == from_origin(500000.0, 5000000.0, 10.0, 10.0)
        assert src.profile["tiled"] and src.compression.name.lower() == "deflate"
        assert src.tags()["ACQUISITION_START_TIME"] == "2021-03-04T05:06:07Z"
    assert np.isnan(db[:, 0, 0]).all()
    np.testing.assert_allclose(db[0].ravel()[1:], -20.0, atol=1e-5)
    np.testing.assert_allclose(db[1].ravel()[1:], -30.0, atol=1e-5)


def test_to_db_values():
    np.testing.assert_allclose(sar.to_db(np.array([1.0, 0.1, 0.01])), [0.0, -10.0, -20.0])
    assert np.isnan(sar.to_db(np.array([0.0, -1.0]))).all()


def test_db_file_keeps_values_and_declared_nodata_becomes_nan(tmp_path, write_raster,
                                                             make_region):
    data = _db_scene()
    data[:, 2, 3] = -9999.0
    write_raster(tmp_path / S1_NAME, data, nodata=-9999.0, descriptions=["VV", "VH"])
    out = tmp_path / "out"
    out.mkdir()
    sar.ingest(make_region("sar", tmp_path / "*.tif"), out)
    with rasterio.open(out / "20210304T050607.tif") as src:
        db = src.read()
    assert np.isnan(db[:, 2, 3]).all()
    assert db[0, 0, 0] == -10.0 and db[1, 0, 0] == -17.0


@pytest.mark.parametrize(
    ("name", "tags", "times", "expected"),
    [
        (S1_NAME, {}, {}, "2021-03-04T05:06:07"),
        ("scene.tif", {"ACQUISITION_START_TIME": "2021-05-06T07:08:09+02:00"}, {},
         "2021-05-06T05:08:09"),
        ("scene.tif", {}, {"scene.tif": "2022-01-02T03:04:05Z"}, "2022-01-02T03:04:05"),
        ("scene.tif", {"TIFFTAG_DATETIME": "2020:12:31 23:59:58"}, {}, "2020-12-31T23:59:58"),
    ],
    ids=["file-name", "tag", "config-table", "tiff-datetime"],
)
def test_acquisition_time_sources(tmp_path, write_raster, make_region, name, tags, times,
                                  expected):
    write_raster(tmp_path / name, _db_scene(), descriptions=["VV", "VH"], tags=tags)
    out = tmp_path / "out"
    out.mkdir()
    sar.ingest(make_region("sar", tmp_path / "*.tif", times=times), out)
    scenes = pd.read_csv(out / "scenes.csv")
    assert scenes["time"].tolist() == [expected]
    assert scenes["file"].tolist() == [expected.replace("-", "").replace(":", "") + ".tif"]
    assert scenes["source"].tolist() == [str(tmp_path / name)]


def test_config_table_beats_tiff_datetime(tmp_path, write_raster, make_region):
    write_raster(tmp_path / "scene.tif", _db_scene(), descriptions=["VV", "VH"],
                 tags={"TIFFTAG_DATETIME": "2024:01:01 00:00:00"})
    out = tmp_path / "out"
    out.mkdir()
    region = make_region("sar", tmp_path / "*.tif", times={"scene.tif": "2022-01-02T03:04:05"})
    sar.ingest(region, out)
    assert pd.read_csv(out / "scenes.csv")["time"].tolist() == ["2022-01-02T03:04:05"]


def test_missing_time_says_how_to_provide_it(tmp_path, write_raster, make_region):
    write_raster(tmp_path / "scene.tif", _db_scene(), descriptions=["VV", "VH"])
    with pytest.raises(InputError, match="inputs.sar.times") as error:
        sar.ingest(make_region("sar", tmp_path / "*.tif"), tmp_path)
    assert "scene.tif" in str(error.value)


def test_bands_found_by_description_case_insensitive_in_any_order(tmp_path, write_raster,
                                                                  make_region):
    write_raster(tmp_path / S1_NAME, _db_scene(vv=-17.0, vh=-10.0),
                 descriptions=["Sigma0_vh_db", "sigma0_VV_db"])
    out = tmp_path / "out"
    out.mkdir()
    sar.ingest(make_region("sar", tmp_path / "*.tif"), out)
    with rasterio.open(out / "20210304T050607.tif") as src:
        assert src.read(1)[0, 0] == -10.0  # VV came from the second input band
        assert src.read(2)[0, 0] == -17.0


def test_bands_by_config_order_when_undescribed(tmp_path, write_raster, make_region):
    write_raster(tmp_path / S1_NAME, _db_scene(vv=-17.0, vh=-10.0))
    out = tmp_path / "out"
    out.mkdir()
    sar.ingest(make_region("sar", tmp_path / "*.tif", bands=["VH", "VV"]), out)
    with rasterio.open(out / "20210304T050607.tif") as src:
        assert src.read(1)[0, 0] == -10.0


def test_undescribed_bands_without_config_order_are_refused(tmp_path, write_raster,
                                                            make_region):
    write_raster(tmp_path / S1_NAME, _db_scene())
    with pytest.raises(InputError, match="inputs.sar.bands"):
        sar.ingest(make_region("sar", tmp_path / "*.tif"), tmp_path)


@pytest.mark.parametrize(
    ("values", "unit", "advice"),
    [(0.05, "dB", "inputs.sar.unit: linear"), (-12.0, "linear", "inputs.sar.unit: dB"),
     (-80.0, "dB", "inputs.sar.unit: linear")],
)
def test_values_that_do_not_fit_the_unit_are_refused(values, unit, advice):
    with pytest.raises(InputError, match=advice):
        sar.check_unit(Path("x.tif"), np.full(10, values), unit)


def test_scenes_sorted_by_time_and_duplicates_refused(tmp_path, write_raster, make_region):
    late = "S1B_IW_GRDH_1SDV_20210310T050607_20210310T050632_036852_045486_AAAA.tif"
    early = "S1A_IW_GRDH_1SDV_20210304T050607_20210304T050632_036852_045486_BBBB.tif"
    # sorted by name, the later scene comes first
    write_raster(tmp_path / late.replace("S1B", "S1A"), _db_scene(), descriptions=["VV", "VH"])
    write_raster(tmp_path / early.replace("S1A", "S1B"), _db_scene(), descriptions=["VV", "VH"])
    out = tmp_path / "out"
    out.mkdir()
    sar.ingest(make_region("sar", tmp_path / "*.tif"), out)
    assert pd.read_csv(out / "scenes.csv")["time"].tolist() == [
        "2021-03-04T05:06:07", "2021-03-10T05:06:07"]

    write_raster(tmp_path / "copy.tif", _db_scene(), descriptions=["VV", "VH"],
                 tags={"ACQUISITION_START_TIME": "2021-03-04T05:06:07Z"})
    with pytest.raises(InputError, match="same time"):
        sar.ingest(make_region("sar", tmp_path / "*.tif"), tmp_path / "out")


def test_radar_geometry_file_is_refused_with_a_warp_hint(tmp_path, make_region):
    """A GRD measurement TIFF from a SAFE folder has GCPs but no map grid."""
    path = tmp_path / S1_NAME
    gcps = [GroundControlPoint(row, col, 3.0 + col * 1e-4, 45.1 - row * 1e-4)
            for row in (0, 3) for col in (0, 4)]
    with rasterio.open(path, "w", driver="GTiff", width=4, height=3, count=2,
                       dtype="float32") as dst:
        dst.write(_db_scene())
        dst.gcps = (gcps, "EPSG:4326")
    with pytest.raises(InputError, match="ground control points") as error:
        sar.ingest(make_region("sar", tmp_path / "*.tif"), tmp_path)
    assert "gdalwarp" in error.value.fix
