"""Optical ingest: DN offsets, SCL masks, the spectral cloud test, water indices, outputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rasterio

from floodkd.errors import InputError
from floodkd.ingest import optical
from floodkd.ingest.rasters import read_raster
from floodkd.region import region_outline

L2A_NAME = "S2B_MSIL2A_20210304T103019_N0510_R108_T31TEJ_20210304T134448.tif"
BANDS = ["B02", "B03", "B04", "B08", "B11", "B12"]
OFFSET_TAGS = {"BOA_ADD_OFFSET": "-1000", "QUANTIFICATION_VALUE": "10000"}

# Reflectances of typical surfaces (B02 B03 B04 B08 B11 B12)
WATER = [0.06, 0.07, 0.04, 0.02, 0.01, 0.005]
VEGETATION = [0.03, 0.06, 0.04, 0.40, 0.20, 0.10]
CLOUD = [0.45, 0.45, 0.44, 0.48, 0.32, 0.22]


def _dn(reflectance: list[float], offset: float = 1000.0) -> list[int]:
    return [round(r * 10000 + offset) for r in reflectance]


def _scene(pixels: list[list[int]], scl: list[int] | None = None) -> np.ndarray:
    """A 1 x N scene from N pixels of DN, plus an SCL band if given."""
    bands = np.array(pixels, dtype=np.uint16).T[:, np.newaxis, :]
    if scl is not None:
        bands = np.concatenate([bands, np.array(scl, dtype=np.uint16)[np.newaxis, np.newaxis]])
    return bands


def _ingest(tmp_path, make_region, **options):
    out = tmp_path / "out"
    out.mkdir()
    optical.ingest(make_region("optical", tmp_path / "*.tif", **options), out)
    return out, pd.read_csv(out / "scenes.csv")


def test_l2a_offset_from_tags(tmp_path, write_raster, make_region):
    data = _scene([[1500] * 6, [1500] * 6], scl=[4, 4])
    write_raster(tmp_path / L2A_NAME, data, nodata=0, descriptions=BANDS + ["SCL"],
                 tags=OFFSET_TAGS)
    out, scenes = _ingest(tmp_path, make_region)
    with rasterio.open(out / scenes["file"][0]) as src:
        assert src.descriptions == tuple(BANDS + ["NDWI", "MNDWI"])
        np.testing.assert_allclose(src.read(1), 0.05, rtol=1e-6)
        assert src.crs.to_epsg() == 32631 and np.isnan(src.nodata)
    assert scenes["time"][0] == "2021-03-04T10:30:19"
    assert scenes["file"][0] == "20210304T103019_reflectance.tif"


@pytest.mark.parametrize(("baseline", "reflectance"), [("N0510", 0.05), ("N0300", 0.15)])
def test_offset_from_baseline_in_name(tmp_path, write_raster, make_region, baseline,
                                      reflectance):
    name = L2A_NAME.replace("N0510", baseline)
    write_raster(tmp_path / name, _scene([[1500] * 6], scl=[4]), nodata=0,
                 descriptions=BANDS + ["SCL"])
    out, scenes = _ingest(tmp_path, make_region)
    with rasterio.open(out / scenes["file"][0]) as src:
        np.testing.assert_allclose(src.read(1), reflectance, rtol=1e-6)


def test_scl_classes_become_masks_and_nodata(tmp_path, write_raster, make_region):
    scl = [4, 6, 8, 9, 10, 3, 2, 0]
    pixels = [_dn(VEGETATION)] * len(scl)
    write_raster(tmp_path / L2A_NAME, _scene(pixels, scl=scl), nodata=0,
                 descriptions=BANDS + ["SCL"], tags=OFFSET_TAGS)
    out, scenes = _ingest(tmp_path, make_region)
    with rasterio.open(out / scenes["masks_file"][0]) as src:
        assert src.descriptions == ("clear", "cloud", "shadow")
        assert src.nodata == 255 and src.dtypes[0] == "uint8"
        clear, cloud, shadow = src.read()[:, 0, :]
    assert clear.tolist() == [1, 1, 0, 0, 0, 0, 1, 255]
    assert cloud.tolist() == [0, 0, 1, 1, 1, 0, 0, 255]
    assert shadow.tolist() == [0, 0, 0, 0, 0, 1, 0, 255]
    with rasterio.open(out / scenes["file"][0]) as src:
        reflectance = src.read()[:, 0, :]
    assert np.isnan(reflectance[:, -1]).all()  # SCL 0: no data
    assert np.isfinite(reflectance[:, :-1]).all()  # clouds keep their reflectance
    assert scenes["clear_fraction"][0] == pytest.approx(3 / 7)
    assert scenes["cloud_test"][0] == "SCL"


def test_dn_zero_is_nodata(tmp_path, write_raster, make_region):
    pixels = [_dn(WATER), [0] * 6]
    write_raster(tmp_path / L2A_NAME, _scene(pixels, scl=[6, 6]), nodata=0,
                 descriptions=BANDS + ["SCL"], tags=OFFSET_TAGS)
    out, scenes = _ingest(tmp_path, make_region)
    with rasterio.open(out / scenes["masks_file"][0]) as src:
        assert src.read(1)[0].tolist() == [1, 255]
    assert scenes["clear_fraction"][0] == 1.0


def test_spectral_test_flags_cloud_not_water_or_vegetation(tmp_path, write_raster,
                                                           make_region):
    name = L2A_NAME.replace("MSIL2A", "MSIL1C")
    pixels = [_dn(CLOUD), _dn(WATER), _dn(VEGETATION)]
    write_raster(tmp_path / name, _scene(pixels), nodata=0, descriptions=BANDS,
                 tags={"RADIO_ADD_OFFSET": "-1000"})
    out, scenes = _ingest(tmp_path, make_region, product="L1C")
    with rasterio.open(out / scenes["masks_file"][0]) as src:
        clear, cloud, shadow = src.read()[:, 0, :]
    assert cloud.tolist() == [1, 0, 0]
    assert clear.tolist() == [0, 1, 1]
    assert scenes["cloud_test"][0] == "spectral"


def test_spectral_test_leaves_snow_and_bright_sand_clear():
    snow = [0.80, 0.78, 0.76, 0.70, 0.05, 0.04]
    sand = [0.22, 0.30, 0.38, 0.45, 0.55, 0.45]
    reflectance = {b: np.array([s, d]) for b, s, d in zip(BANDS, snow, sand, strict=True)}
    assert optical.spectral_cloud(reflectance).tolist() == [False, False]


def test_water_indices(tmp_path, write_raster, make_region):
    pixels = [_dn(WATER), _dn(VEGETATION)]
    write_raster(tmp_path / L2A_NAME, _scene(pixels, scl=[6, 4]), nodata=0,
                 descriptions=BANDS + ["SCL"], tags=OFFSET_TAGS)
    out, scenes = _ingest(tmp_path, make_region)
    with rasterio.open(out / scenes["file"][0]) as src:
        ndwi, mndwi = src.read(7)[0], src.read(8)[0]
    np.testing.assert_allclose(ndwi, [(0.07 - 0.02) / 0.09, (0.06 - 0.40) / 0.46], rtol=1e-5)
    np.testing.assert_allclose(mndwi, [(0.07 - 0.01) / 0.08, (0.06 - 0.20) / 0.26], rtol=1e-5)
    assert ndwi[0] > 0 > ndwi[1]


def test_missing_bands_are_refused(tmp_path, write_raster, make_region):
    write_raster(tmp_path / L2A_NAME, _scene([[1500] * 3]), descriptions=["B02", "B03", "B04"])
    with pytest.raises(InputError, match="B08 not found"):
        _ingest(tmp_path, make_region)


def test_time_from_tag_and_refusal_without_one(tmp_path, write_raster, make_region):
    tags = {**OFFSET_TAGS, "ACQUISITION_START_TIME": "2022-07-08T09:10:11Z"}
    write_raster(tmp_path / "scene.tif", _scene([_dn(WATER)], scl=[6]), nodata=0,
                 descriptions=BANDS + ["SCL"], tags=tags)
    _, scenes = _ingest(tmp_path, make_region)
    assert scenes["time"][0] == "2022-07-08T09:10:11"

    write_raster(tmp_path / "scene.tif", _scene([_dn(WATER)], scl=[6]), nodata=0,
                 descriptions=BANDS + ["SCL"], tags=OFFSET_TAGS)
    with pytest.raises(InputError, match="sensing time"):
        optical.ingest(make_region("optical", tmp_path / "*.tif"), tmp_path / "out")


def test_implausible_scaling_is_refused(tmp_path, write_raster, make_region):
    # float reflectance mislabelled with an integer quantification: far too dark
    data = np.full((6, 1, 2), 0.05, dtype=np.float32)
    write_raster(tmp_path / L2A_NAME, data, descriptions=BANDS,
                 tags={"QUANTIFICATION_VALUE": "10000"})
    with pytest.raises(InputError, match="median"):
        _ingest(tmp_path, make_region)


def test_band_names_in_common_spellings(tmp_path, write_raster):
    names = ["b2", "B03_10m", "B4 (665 nm)", "B8A", "B08", "SCL_20m"]
    path = write_raster(tmp_path / L2A_NAME, np.ones((6, 1, 1), np.uint16), descriptions=names)
    raster = read_raster(path, region_outline({"bbox": [2.9, 45.0, 3.1, 45.2]}))
    assert optical.find_bands(raster) == {"B02": 0, "B03": 1, "B04": 2, "B8A": 3, "B08": 4,
                                          "SCL": 5}
