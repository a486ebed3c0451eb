"""Label ingest: class synonyms, polygon repair, label rasters with a distinct no-label value."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from shapely.geometry import Polygon, box

from floodkd.errors import InputError
from floodkd.ingest import labels

# A bow-tie: its edges cross at (3.005, 45.105); make_valid splits it into two triangles.
BOW_TIE = Polygon([(3.0, 45.1), (3.01, 45.11), (3.01, 45.1), (3.0, 45.11)])
SQUARE = box(3.02, 45.1, 3.03, 45.11)


def _write_gpkg(path: Path, classes, dates, geometries, crs="EPSG:4326") -> Path:
    frame = gpd.GeoDataFrame({"class": classes, "date": dates}, geometry=geometries, crs=crs)
    frame.to_file(path, driver="GPKG")
    return path


def _ingest(tmp_path, make_region, pattern="*.gpkg"):
    out = tmp_path / "out"
    out.mkdir()
    labels.ingest(make_region("labels", tmp_path / pattern), out)
    return out


def test_polygons_classes_and_bow_tie_repair(tmp_path, make_region, caplog):
    _write_gpkg(tmp_path / "labels.gpkg", ["Water", "dry", "flooded", "0"],
                ["2021-03-04", "2021-03-04", "2021-03-05T06:00:00Z", "2021-03-05T06:00:00Z"],
                [SQUARE, BOW_TIE, box(3.04, 45.1, 3.05, 45.11), box(3.06, 45.1, 3.07, 45.11)])
    assert not BOW_TIE.is_valid
    out = _ingest(tmp_path, make_region)

    polygons = gpd.read_file(out / "labels.gpkg")
    assert polygons.crs.to_epsg() == 4326
    assert polygons["label"].tolist() == [1, 0, 1, 0]
    assert polygons.is_valid.all()
    assert polygons.geometry[1].geom_type == "MultiPolygon"
    assert polygons.geometry[1].area == pytest.approx(2 * 0.5 * 0.01 * 0.005)
    # the repair is logged, naming the file, the feature and what is left of it
    [repair] = [r.getMessage() for r in caplog.records if "repaired" in r.getMessage()]
    assert repair.startswith(f"{tmp_path / 'labels.gpkg'}: feature 2 is an invalid polygon "
                             "(Self-intersection[3.005 45.105]); repaired, it keeps 2 part(s) "
                             "with 5e-05 square units")
    assert pd.to_datetime(polygons["time"]).dt.strftime("%Y-%m-%dT%H").tolist() == [
        "2021-03-04T00", "2021-03-04T00", "2021-03-05T06", "2021-03-05T06"]
    table = pd.read_csv(out / "labels.csv")
    assert table.to_dict("list") == {
        "time": ["2021-03-04T00:00:00", "2021-03-05T06:00:00"],
        "file": ["labels.gpkg", "labels.gpkg"], "kind": ["vector", "vector"]}


def test_unrepairable_polygon_is_refused_with_its_feature_id(tmp_path, make_region):
    flat = Polygon([(3.0, 45.1), (3.01, 45.1), (3.02, 45.1), (3.0, 45.1)])  # no area
    _write_gpkg(tmp_path / "labels.gpkg", ["water", "water"], ["2021-03-04"] * 2, [SQUARE, flat])
    with pytest.raises(InputError, match="feature 2 is an invalid polygon"):
        _ingest(tmp_path, make_region)


def test_empty_geometry_is_refused_with_its_feature_id(tmp_path, make_region):
    _write_gpkg(tmp_path / "labels.gpkg", ["water", "dry"], ["2021-03-04"] * 2,
                [SQUARE, Polygon()])
    with pytest.raises(InputError, match="feature 2 has an empty geometry"):
        _ingest(tmp_path, make_region)


@pytest.mark.parametrize(
    ("classes", "dates", "message"),
    [(["water", "cloud"], ["2021-03-04"] * 2, "feature 2 has class 'cloud'"),
     (["water", "dry"], ["2021-03-04", "soon"], "feature 2 has date 'soon'")],
)
def test_bad_class_or_date_is_refused(tmp_path, make_region, classes, dates, message):
    _write_gpkg(tmp_path / "labels.gpkg", classes, dates, [SQUARE, SQUARE])
    with pytest.raises(InputError, match=message):
        _ingest(tmp_path, make_region)


def test_vector_without_crs_or_class_column_is_refused(tmp_path, make_region):
    _write_gpkg(tmp_path / "labels.gpkg", ["water"], ["2021-03-04"], [SQUARE], crs=None)
    with pytest.raises(InputError, match="no CRS"):
        _ingest(tmp_path, make_region)
    out = tmp_path / "other"
    out.mkdir()
    region = make_region("labels", tmp_path / "*.gpkg", class_column="kind")
    _write_gpkg(tmp_path / "labels.gpkg", ["water"], ["2021-03-04"], [SQUARE])
    with pytest.raises(InputError, match="inputs.labels.class_column"):
        labels.ingest(region, out)


def test_label_raster_keeps_no_label_distinct_from_dry(tmp_path, write_raster, make_region):
    mask = np.array([[0, 1, 255], [7, 1, 0]], dtype=np.uint8)  # 7: declared nodata
    write_raster(tmp_path / "label_20210304T050607.tif", mask, nodata=7)
    out = _ingest(tmp_path, make_region, "*.tif")
    with rasterio.open(out / "20210304T050607.tif") as src:
        assert src.read(1).tolist() == [[0, 1, 255], [255, 1, 0]]
        assert src.nodata == 255 and src.dtypes[0] == "uint8"
        assert src.crs.to_epsg() == 32631 and src.descriptions == ("label",)
    assert pd.read_csv(out / "labels.csv").to_dict("list") == {
        "time": ["2021-03-04T05:06:07"], "file": ["20210304T050607.tif"], "kind": ["raster"]}


def test_label_raster_time_from_tag(tmp_path, write_raster, make_region):
    write_raster(tmp_path / "mask.tif", np.array([[0, 1]], dtype=np.uint8),
                 tags={"ACQUISITION_START_TIME": "2021-03-04T05:06:07Z"})
    out = _ingest(tmp_path, make_region, "*.tif")
    assert (out / "20210304T050607.tif").exists()


@pytest.mark.parametrize(
    ("values", "nodata", "message"),
    [([[0, 1]], 0, "nodata value 0 is also a label"),
     ([[0, 2]], 255, "values 2 are not in config inputs.labels.values")],
)
def test_label_raster_with_ambiguous_values_is_refused(tmp_path, write_raster, make_region,
                                                       values, nodata, message):
    write_raster(tmp_path / "label_20210304T050607.tif", np.array(values, dtype=np.uint8),
                 nodata=nodata)
    with pytest.raises(InputError, match=message):
        _ingest(tmp_path, make_region, "*.tif")
