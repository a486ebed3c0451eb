"""Frictions of real files: time tables for every raster modality, bare dates, label
encodings declared in config (Sen1Floods11 masks are int16 -1 no data, 0 dry, 1 water)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import rasterio
from shapely.geometry import box

from floodkd.errors import InputError
from floodkd.ingest import labels, optical, sar
from tests.ingest.test_optical import BANDS, OFFSET_TAGS, WATER, _dn, _scene

SEN1FLOODS11 = {"water": 1, "dry": 0, "nodata": -1}


def _out(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    return out


def test_optical_time_from_the_config_table(tmp_path, write_raster, make_region):
    write_raster(tmp_path / "chip_S2Hand.tif", _scene([_dn(WATER)], scl=[6]), nodata=0,
                 descriptions=BANDS + ["SCL"], tags=OFFSET_TAGS)
    region = make_region("optical", tmp_path / "*.tif",
                         times={"chip_S2Hand.tif": "2019-09-18T10:50:00Z"})
    optical.ingest(region, _out(tmp_path))
    assert pd.read_csv(tmp_path / "out" / "scenes.csv")["time"].tolist() == [
        "2019-09-18T10:50:00"]


def test_optical_without_a_time_points_at_the_table(tmp_path, write_raster, make_region):
    write_raster(tmp_path / "chip_S2Hand.tif", _scene([_dn(WATER)], scl=[6]), nodata=0,
                 descriptions=BANDS + ["SCL"], tags=OFFSET_TAGS)
    with pytest.raises(InputError, match=r"inputs\.optical\.times.*chip_S2Hand\.tif"):
        optical.ingest(make_region("optical", tmp_path / "*.tif"), _out(tmp_path))


def test_label_raster_time_from_the_table_and_sen1floods11_encoding(tmp_path, write_raster,
                                                                     make_region):
    mask = np.array([[-1, 0, 1], [1, 0, -1]], dtype=np.int16)
    write_raster(tmp_path / "chip_LabelHand.tif", mask)  # no nodata declared, as in the set
    region = make_region("labels", tmp_path / "*.tif", values=SEN1FLOODS11,
                         times={"chip_LabelHand.tif": "2019-09-17T06:00:00Z"})
    labels.ingest(region, _out(tmp_path))
    with rasterio.open(tmp_path / "out" / "20190917T060000.tif") as src:
        assert src.read(1).tolist() == [[255, 0, 1], [1, 0, 255]]
        assert src.nodata == 255


def test_minus_one_without_the_config_is_refused_pointing_at_it(tmp_path, write_raster,
                                                                make_region):
    mask = np.array([[-1, 0, 1]], dtype=np.int16)
    write_raster(tmp_path / "chip_LabelHand.tif", mask)
    region = make_region("labels", tmp_path / "*.tif",
                         times={"chip_LabelHand.tif": "2019-09-17T06:00:00Z"})
    with pytest.raises(InputError, match=r"values -1 are not in config inputs\.labels\.values"
                       r".*values: \{water: 1, dry: 0, nodata: -1\}"):
        labels.ingest(region, _out(tmp_path))


def test_label_values_must_be_distinct(tmp_path, write_raster, make_region):
    write_raster(tmp_path / "label_20210304T050607.tif", np.array([[0, 1]], dtype=np.uint8))
    region = make_region("labels", tmp_path / "*.tif", values={"water": 1, "dry": 0,
                                                                 "nodata": 0})
    with pytest.raises(InputError, match="distinct"):
        labels.ingest(region, _out(tmp_path))


def test_a_vector_file_dated_by_the_table_needs_no_date_column(tmp_path, make_region):
    import geopandas as gpd

    gpd.GeoDataFrame({"class": ["water"]}, geometry=[box(3.02, 45.1, 3.03, 45.11)],
                     crs="EPSG:4326").to_file(tmp_path / "survey.gpkg")
    region = make_region("labels", tmp_path / "*.gpkg",
                         times={"survey.gpkg": "2021-03-04T12:00:00Z"})
    labels.ingest(region, _out(tmp_path))
    assert pd.read_csv(tmp_path / "out" / "labels.csv")["time"].tolist() == [
        "2021-03-04T12:00:00"]


@pytest.mark.parametrize("modality", ["sar", "labels"])
def test_a_date_without_a_time_is_taken_as_midnight_with_a_warning(
        tmp_path, write_raster, make_region, caplog, modality):
    if modality == "sar":
        write_raster(tmp_path / "chip_S1Hand.tif",
                     np.full((2, 2, 2), -12.0, dtype=np.float32), descriptions=["VV", "VH"])
    else:
        write_raster(tmp_path / "chip_S1Hand.tif", np.array([[0, 1]], dtype=np.uint8))
    region = make_region(modality, tmp_path / "*.tif", times={"chip_S1Hand.tif": "2019-09-17"})
    with caplog.at_level(logging.WARNING, logger="floodkd.ingest.times"):
        {"sar": sar, "labels": labels}[modality].ingest(region, _out(tmp_path))
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING and r.name == "floodkd.ingest.times"]
    assert len(warnings) == 1
    assert "chip_S1Hand.tif" in warnings[0] and f"inputs.{modality}.times" in warnings[0]
    assert "assuming 00:00 UTC" in warnings[0]
    assert (tmp_path / "out" / "20190917T000000.tif").exists()


def test_a_full_time_gives_no_warning(tmp_path, write_raster, make_region, caplog):
    write_raster(tmp_path / "chip_S1Hand.tif", np.full((2, 2, 2), -12.0, dtype=np.float32),
                 descriptions=["VV", "VH"])
    region = make_region("sar", tmp_path / "*.tif",
                         times={"chip_S1Hand.tif": "2019-09-17T06:00:00Z"})
    with caplog.at_level(logging.WARNING):
        sar.ingest(region, _out(tmp_path))
    # the flat test bands draw the VV-above-VH plausibility warning; no time warning
    assert not [r for r in caplog.records
                if r.levelno >= logging.WARNING and r.name == "floodkd.ingest.times"]
