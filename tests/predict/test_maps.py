"""The written maps, read back: COG validity, georeferencing, nodata, bands, STAC, QML, PNG."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
import rasterio
from jsonschema import Draft7Validator
from odc.geo.geom import box
from referencing import Registry, Resource
from rio_cogeo.cogeo import cog_validate

from floodkd.predict import write_scenario_maps

SCHEMAS = Path(__file__).parent / "schemas"
TILE = {"tile_px": 64, "overlap_px": 16, "blocksize": 64}


@pytest.fixture
def west_half_lonlat(grid):
    """An outline covering the western half of the grid (as a lon/lat polygon)."""
    left, bottom, right, top = grid.bounds
    return box(left, bottom, (left + right) / 2, top, "EPSG:32631").to_crs("EPSG:4326").geom


@pytest.fixture
def maps(tmp_path, grid, provenance, field_predictor, west_half_lonlat):
    predictor = field_predictor(grid.shape)
    files_written = write_scenario_maps(grid, predictor, tmp_path / "maps", provenance,
                                        outline_lonlat=west_half_lonlat, **TILE)
    return files_written, predictor


def test_cogs_are_valid_with_grid_georeferencing_and_overviews(maps, grid):
    written, _ = maps
    for path in (written.probability, written.uncertainty):
        is_valid, errors, _warnings = cog_validate(path, quiet=True)
        assert is_valid, errors
        with rasterio.open(path) as src:
            assert src.crs.to_epsg() == 32631
            assert src.transform.almost_equals(grid.transform)
            assert (src.height, src.width) == grid.shape
            assert src.nodata == -9999.0 and src.dtypes[0] == "float32"
            assert src.overviews(1) == [2]
            assert src.profile["tiled"] and src.compression.name.upper() == "DEFLATE"
            tags = src.tags()
            assert tags["SYNTHETIC"] == "true" and tags["SCENARIO"] == "observed"
            assert tags["MODEL_SHA256"] == "ab" * 32 and tags["FLOODKD_VERSION"]
            assert json.loads(tags["INPUT_FILES"]) == ["results/demo-target/cube.zarr"]


def test_probability_values_and_nodata_outside_the_outline(maps, grid):
    written, predictor = maps
    with rasterio.open(written.probability) as src:
        assert src.descriptions == ("flood_probability",)
        assert src.units == ("1",)
        prob = src.read(1, masked=True)
    cols = grid.shape[1]
    assert prob.mask[:, cols // 2 + 2 :].all()  # east half: outside the region
    inside = prob[:, : cols // 2 - 2]
    assert not inside.mask.any()
    assert 0.0 <= inside.min() and inside.max() <= 1.0
    np.testing.assert_allclose(inside, 0.9 * predictor.field[:, : cols // 2 - 2], atol=1e-5)


def test_uncertainty_bands_named_with_units_and_flags(maps):
    written, _ = maps
    with rasterio.open(written.uncertainty) as src:
        assert src.descriptions == ("std", "entropy", "mutual_information", "inputs_used")
        assert src.units == ("1", "nat", "nat", "bit flags")
        std, entropy, mi, flags = (src.read(i, masked=True)[:, :100] for i in range(1, 5))
        assert src.tags(4)["overview_resampling"] == "nearest"
        # nearest overviews keep the flags whole numbers
        flags_overview = src.read(4, out_shape=(src.height // 2, src.width // 2), masked=True)
    assert set(np.unique(flags.compressed())) == {10}
    assert set(np.unique(flags_overview.compressed())) == {10}
    assert std.min() > 0 and mi.min() > 0 and np.all(entropy >= mi)


def test_interrupted_inference_leaves_no_file(tmp_path, grid, provenance, field_predictor):
    predictor = field_predictor(grid.shape, fail_after=5)
    out = tmp_path / "maps"
    with pytest.raises(RuntimeError, match="simulated crash"):
        write_scenario_maps(grid, predictor, out, provenance, **TILE)
    assert not out.exists()  # no final file, no scratch, not even the folder it made


STAC_ITEM_BASE = "https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/"


def _stac_validators() -> list[Draft7Validator]:
    """Validators for the STAC core Item (pystac's offline copy) and our extension schemas."""
    core_dir = files("pystac.validation") / "jsonschemas"
    # core files refer to each other by file name, relative to the Item schema's URL
    # (common.json's own $id is misspelt upstream, so register by file name too)
    resources = {STAC_ITEM_BASE + p.name: json.loads(p.read_text())
                 for p in (core_dir / "stac-spec" / "v1.1.0").iterdir() if p.name.endswith(".json")}
    resources.update({json.loads(p.read_text())["$id"]: json.loads(p.read_text())
                      for p in (core_dir / "geojson").iterdir() if p.name.endswith(".json")})
    extensions = [json.loads(p.read_text()) for p in sorted(SCHEMAS.glob("*.json"))]
    resources.update({schema["$id"]: schema for schema in extensions})
    registry = Registry().with_resources(
        (uri, Resource.from_contents(schema)) for uri, schema in resources.items()
    )
    item_schema = resources[STAC_ITEM_BASE + "item.json"]
    return [Draft7Validator(s, registry=registry) for s in [item_schema, *extensions]]


def test_stac_items_validate_and_describe_the_grid(maps, grid):
    written, _ = maps
    validators = _stac_validators()
    assert len(validators) == 3
    for path in written.stac_items:
        item = json.loads(path.read_text())
        for validator in validators:
            errors = [e.message for e in validator.iter_errors(item)]
            assert errors == [], (path.name, validator.schema.get("$id"), errors)
        props = item["properties"]
        assert props["proj:code"] == "EPSG:32631"
        assert props["proj:shape"] == list(grid.shape)
        assert props["proj:transform"] == list(grid.transform)[:6]
        assert props["datetime"].startswith("2024-01-05T06:00:00")
        lon_min, lat_min, lon_max, lat_max = item["bbox"]
        assert 2.9 < lon_min < lon_max < 3.1 and 52.0 < lat_min < lat_max < 52.5
        bands = item["assets"]["data"]["raster:bands"]
        assert all(b["data_type"] == "float32" and b["nodata"] == -9999.0 for b in bands)
        assert (path.parent / item["assets"]["data"]["href"]).is_file()


def test_stac_schema_rejects_a_broken_item(maps):
    written, _ = maps
    item = json.loads(written.stac_items[0].read_text())
    item["properties"]["proj:shape"] = [300]
    projection = next(v for v in _stac_validators() if "projection" in v.schema["$id"])
    assert not projection.is_valid(item)


def test_qml_is_a_pseudocolour_ramp_from_0_to_1(maps):
    written, _ = maps
    qml = next(p for p in written.styles if "probability" in p.name)
    assert qml.with_suffix(".tif") == written.probability
    root = ET.fromstring(qml.read_text())
    renderer = root.find("pipe/rasterrenderer")
    assert renderer.get("type") == "singlebandpseudocolor" and renderer.get("band") == "1"
    shader = renderer.find("rastershader/colorrampshader")
    values = [float(item.get("value")) for item in shader.findall("item")]
    assert values[0] == 0.0 and values[-1] == 1.0 and values == sorted(values)
    assert all(item.get("color").startswith("#") for item in shader.findall("item"))


def test_quicklooks_are_pngs(maps):
    from PIL import Image

    written, _ = maps
    assert [p.name for p in written.quicklooks] == [
        "flood_probability_observed.png", "flood_uncertainty_observed.png"]
    pixels = []
    for png in written.quicklooks:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(png) as image:
            assert image.width >= 300 and image.height >= 300  # a 6 inch figure at 100 dpi
            pixels.append(np.asarray(image.convert("RGB")))
    # two maps on two ramps: not one picture written twice
    assert pixels[0].shape != pixels[1].shape or (pixels[0] != pixels[1]).any()
