"""Flood extent, its polygons and the likelihood, from hand-made maps with known answers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree as ET

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
import yaml
from affine import Affine
from odc.geo.geobox import GeoBox
from rasterio.features import rasterize
from rio_cogeo.cogeo import cog_validate

from floodkd.config import validate_config
from floodkd.errors import InputError
from floodkd.grid import RegionGrid
from floodkd.predict import MapProvenance
from floodkd.predict.cog import cog_band_writer
from floodkd.predict.extent import (
    DRY,
    EXTENT_CLASSES,
    FLOOD,
    LOW_CONFIDENCE,
    NODATA,
    REFERENCE_WATER,
    SEA,
    ExtentSettings,
    write_extent_maps,
)
from floodkd.predict.tiled import PROBABILITY_BANDS, UNCERTAINTY_BANDS, provenance_tags
from floodkd.reference.cli import write_reference_water

CONFIG = Path(__file__).parents[2] / "config" / "config.yaml"
SHAPE = (40, 48)  # three 16-row blocks, so patches cross block borders
BLOCK = 16
PIXEL_M = 10.0
TRANSFORM = Affine(PIXEL_M, 0.0, 500000.0, 0.0, -PIXEL_M, 5800000.0)
SETTINGS = ExtentSettings(threshold=0.5, low_confidence_std=0.2)


def known_layers() -> dict[str, np.ndarray]:
    """P, std and elevation with every class in known places, and the expected classes."""
    probability = np.full(SHAPE, 0.1, dtype=np.float32)
    std = np.full(SHAPE, 0.05, dtype=np.float32)
    elevation = np.full(SHAPE, 5.0, dtype=np.float32)
    probability[2:6, 2:7] = 0.8  # patch A: 20 px
    probability[3, 4] = 0.95  # its maximum
    probability[6, 7] = 0.7  # touches A only at a corner: a patch of its own
    probability[12:36, 30:34] = 0.6  # patch B, across the block rows 16 and 32
    probability[20, 31] = 0.5  # exactly the threshold: flood
    probability[25, 31] = 0.49  # just below: dry, a hole in B
    probability[8:11, 10:13] = 0.9  # would be flood, but the models disagree:
    std[8:11, 10:13] = 0.3  # low confidence
    std[15, 15] = 0.2  # exactly the low-confidence std
    elevation[:, 44:] = -1.0  # the sea, east
    probability[:, 44:] = 0.9  # predicted wet there: still sea
    std[:, 46:] = 0.4  # uncertain sea: still sea
    elevation[0, 0] = np.nan  # no DEM: not sea
    probability[38:, :] = np.nan  # no prediction: nodata, also over the sea
    classes = np.full(SHAPE, DRY, dtype=np.uint8)
    classes[2:6, 2:7] = FLOOD
    classes[6, 7] = FLOOD
    classes[12:36, 30:34] = FLOOD
    classes[25, 31] = DRY
    classes[8:11, 10:13] = LOW_CONFIDENCE
    classes[15, 15] = LOW_CONFIDENCE
    classes[:, 44:] = SEA
    classes[38:, :] = NODATA
    return {"probability": probability, "std": std, "elevation": elevation, "classes": classes}


def write_maps(out_dir: Path, probability: np.ndarray, std: np.ndarray) -> tuple[Path, Path]:
    """The probability and uncertainty COGs as write_scenario_maps writes them."""
    provenance = MapProvenance(
        region="demo-target", scenario="surge_1m",
        scenario_datetime=datetime(2024, 1, 5, 6, tzinfo=UTC), model_sha256="ab" * 32,
        input_files=["results/demo-target/cube.zarr"], synthetic=True,
    )
    tags = provenance_tags(provenance, datetime(2024, 2, 1, tzinfo=UTC))
    common = {"crs": "EPSG:32631", "transform": TRANSFORM, "shape": SHAPE, "tags": tags,
              "blocksize": BLOCK}
    paths = out_dir / "flood_probability_surge_1m.tif", out_dir / "flood_uncertainty_surge_1m.tif"
    zeros = np.zeros(SHAPE, dtype=np.float32)
    with (
        cog_band_writer(paths[0], PROBABILITY_BANDS, **common) as prob,
        cog_band_writer(paths[1], UNCERTAINTY_BANDS, **common) as unc,
    ):
        prob.write_rows(0, {"flood_probability": probability})
        unc.write_rows(0, {"std": std, "entropy": zeros, "mutual_information": zeros})
    return paths


@pytest.fixture(scope="module")
def extent(tmp_path_factory) -> dict:
    layers = known_layers()
    maps = tmp_path_factory.mktemp("maps")
    probability_path, uncertainty_path = write_maps(maps, layers["probability"], layers["std"])
    written = write_extent_maps(probability_path, uncertainty_path, layers["elevation"], SETTINGS)
    return {"written": written, "maps": maps, **layers}


def test_extent_classes_colours_and_tags_read_back(extent):
    written = extent["written"]
    assert written.extent == extent["maps"] / "flood_extent_surge_1m.tif"
    is_valid, errors, _ = cog_validate(written.extent, quiet=True)
    assert is_valid, errors
    with rasterio.open(written.extent) as src:
        classes = src.read(1)
        assert src.dtypes[0] == "uint8" and src.nodata == NODATA
        assert src.crs.to_epsg() == 32631 and src.transform.almost_equals(TRANSFORM)
        assert src.descriptions == ("flood_extent",) and src.units == ("class",)
        assert src.tags(1)["overview_resampling"] == "mode"  # classes stay classes
        colours = src.colormap(1)
        tags = src.tags()
    np.testing.assert_array_equal(classes, extent["classes"])
    assert colours[FLOOD] == (5, 112, 176, 255) and colours[NODATA][3] == 0
    assert colours[SEA] == (128, 205, 193, 255)
    assert [tags[f"CLASS_{value}"] for value in (0, 1, 2, 3, 4, 255)] == [
        "dry", "flood", "reference water", "sea", "low confidence", "nodata"]
    assert tags["THRESHOLD"] == "0.5" and tags["LOW_CONFIDENCE_STD"] == "0.2"
    assert tags["SCENARIO"] == "surge_1m" and tags["MODEL_SHA256"] == "ab" * 32
    palette = ET.parse(written.style).getroot().find("pipe/rasterrenderer")
    assert palette.get("type") == "paletted"
    assert [entry.get("label") for entry in palette.iter("paletteEntry")] == [
        name for name, _ in EXTENT_CLASSES.values()]


def test_polygons_cover_exactly_the_flood_pixels(extent):
    written = extent["written"]
    assert pyogrio.list_layers(written.polygons)[:, 0].tolist() == ["flood"]
    polygons = gpd.read_file(written.polygons, layer="flood")
    assert polygons.crs.to_epsg() == 32631
    assert len(polygons) == 3  # A, the corner pixel, B (with its hole)
    burnt = rasterize(((geometry, 1) for geometry in polygons.geometry), out_shape=SHAPE,
                      transform=TRANSFORM, fill=0, dtype="uint8")
    np.testing.assert_array_equal(burnt == 1, extent["classes"] == FLOOD)
    by_area = polygons.sort_values("area_m2").reset_index(drop=True)
    pixel = PIXEL_M * PIXEL_M
    np.testing.assert_allclose(by_area["area_m2"], [1 * pixel, 20 * pixel, 95 * pixel])
    np.testing.assert_allclose(by_area.geometry.area, by_area["area_m2"])
    np.testing.assert_allclose(by_area["p_max"], [0.7, 0.95, 0.6], rtol=1e-6)
    np.testing.assert_allclose(by_area["p_mean"], [0.7, (19 * 0.8 + 0.95) / 20,
                                                   (94 * 0.6 + 0.5) / 95], rtol=1e-6)
    assert set(polygons["scenario"]) == {"surge_1m"}
    assert (polygons["datetime"] == datetime(2024, 1, 5, 6, tzinfo=UTC)).all()


def test_likelihood_is_percent_with_nodata(extent):
    written = extent["written"]
    is_valid, errors, _ = cog_validate(written.likelihood, quiet=True)
    assert is_valid, errors
    with rasterio.open(written.likelihood) as src:
        percent = src.read(1)
        assert src.dtypes[0] == "uint8" and src.nodata == NODATA and src.units == ("%",)
    probability = extent["probability"]
    finite = np.isfinite(probability)
    np.testing.assert_array_equal(percent[finite], np.rint(100 * probability[finite]))
    assert (percent[~finite] == NODATA).all()
    assert percent[3, 4] == 95 and percent[25, 31] == 49 and percent[20, 31] == 50


def test_no_flood_still_writes_an_empty_polygon_layer(tmp_path):
    dry = np.full(SHAPE, 0.2, dtype=np.float32)
    paths = write_maps(tmp_path, dry, np.zeros(SHAPE, dtype=np.float32))
    written = write_extent_maps(*paths, np.full(SHAPE, 3.0, dtype=np.float32), SETTINGS)
    polygons = gpd.read_file(written.polygons, layer="flood")
    assert len(polygons) == 0
    assert {"area_m2", "p_mean", "p_max", "scenario", "datetime"} <= set(polygons.columns)


def test_the_threshold_comes_from_the_config(tmp_path):
    config = yaml.safe_load(CONFIG.read_text())
    assert ExtentSettings.from_config(validate_config(config)) == SETTINGS  # schema defaults
    config = yaml.safe_load(CONFIG.read_text())
    config.setdefault("predict", {})["extent"] = {"threshold": 0.65}
    settings = ExtentSettings.from_config(validate_config(config))
    assert settings == ExtentSettings(threshold=0.65, low_confidence_std=0.2)
    layers = known_layers()
    paths = write_maps(tmp_path, layers["probability"], layers["std"])
    written = write_extent_maps(*paths, layers["elevation"], settings)
    with rasterio.open(written.extent) as src:
        classes = src.read(1)
        assert src.tags()["THRESHOLD"] == "0.65"
    assert (classes[12:36, 30:34] == DRY).all()  # P = 0.6 is now dry
    assert (classes[2:6, 2:7] == FLOOD).all()


def test_elevation_on_another_grid_is_refused(tmp_path):
    paths = write_maps(tmp_path, np.full(SHAPE, 0.2, dtype=np.float32),
                       np.zeros(SHAPE, dtype=np.float32))
    with pytest.raises(ValueError, match=r"elevation_m has shape \(40, 47\)"):
        write_extent_maps(*paths, np.zeros((40, 47), dtype=np.float32), SETTINGS)
    assert not (tmp_path / "flood_extent_surge_1m.tif").exists()


def _reference_layer(path: Path, layer: np.ndarray, transform: Affine = TRANSFORM) -> Path:
    grid = RegionGrid(GeoBox(layer.shape, transform, "EPSG:32631"))
    return write_reference_water(path, layer, grid, {"SOURCE": "hand-made"})


def test_reference_water_is_class_2_and_never_flood(tmp_path):
    layers = known_layers()
    reference = np.zeros(SHAPE, dtype=np.uint8)
    reference[2:6, 2:4] = 1  # the west of flood patch A is a permanent pond
    reference[8, 10:13] = 1  # permanent water where the models disagree
    reference[0, 20:25] = 1  # permanent water the model calls dry
    reference[:, 46] = 1  # the sea stays sea
    reference[39, 0] = 1  # and nodata stays nodata
    reference[12, 30:34] = 255  # unknown: not reference water, so patch B keeps its flood
    path = _reference_layer(tmp_path / "reference_water.tif", reference)
    maps = write_maps(tmp_path, layers["probability"], layers["std"])
    written = write_extent_maps(*maps, layers["elevation"], SETTINGS, reference_water=path)
    expected = layers["classes"].copy()
    expected[2:6, 2:4] = expected[8, 10:13] = expected[0, 20:25] = REFERENCE_WATER
    with rasterio.open(written.extent) as src:
        np.testing.assert_array_equal(src.read(1), expected)
        assert src.tags()["REFERENCE_WATER"] == str(path)
        assert "reference water where the reference water layer is 1" in src.tags()["CLASS_RULE"]
    polygons = gpd.read_file(written.polygons, layer="flood")
    burnt = rasterize(((geometry, 1) for geometry in polygons.geometry), out_shape=SHAPE,
                      transform=TRANSFORM, fill=0, dtype="uint8")
    np.testing.assert_array_equal(burnt == 1, expected == FLOOD)
    assert sorted(polygons["area_m2"] / PIXEL_M**2) == [1, 12, 95]  # A lost its 8 pond pixels


def test_a_reference_layer_off_the_grid_of_the_maps_is_refused(tmp_path):
    layers = known_layers()
    shifted = TRANSFORM * Affine.translation(1, 0)
    path = _reference_layer(tmp_path / "reference_water.tif", np.zeros(SHAPE, np.uint8), shifted)
    maps = write_maps(tmp_path, layers["probability"], layers["std"])
    with pytest.raises(InputError, match="reference_water.tif: the reference water layer is not "
                       "on the grid of the maps.*Fix: rerun `floodkd reference-water`"):
        write_extent_maps(*maps, layers["elevation"], SETTINGS, reference_water=path)
    assert not (tmp_path / "flood_extent_surge_1m.tif").exists()
