"""The written maps, read back: COG validity, georeferencing, nodata, bands, STAC, QML, PNG."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
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

from floodkd.errors import InputError
from floodkd.predict import write_scenario_maps
from floodkd.predict.stac import (
    FLOODKD_EXTENSION,
    floodkd_extension_schema,
    write_region_collection,
)

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
    for path in (written.probability, written.uncertainty, written.inputs_used):
        is_valid, errors, _warnings = cog_validate(path, quiet=True)
        assert is_valid, errors
        with rasterio.open(path) as src:
            assert src.crs.to_epsg() == 32631
            assert src.transform.almost_equals(grid.transform)
            assert (src.height, src.width) == grid.shape
            if path == written.inputs_used:
                assert src.nodata == 255 and src.dtypes[0] == "uint8"
            else:
                assert src.nodata == -9999.0 and src.dtypes[0] == "float32"
            assert src.overviews(1) == [2]
            assert src.profile["tiled"] and src.compression.name.upper() == "DEFLATE"
            # band-interleaved: reading one band decompresses that band only
            assert src.interleaving.name == "band"
            tags = src.tags()
            assert tags["SYNTHETIC"] == "true" and tags["SCENARIO"] == "observed"
            assert tags["MODEL_SHA256"] == "ab" * 32 and tags["FLOODKD_VERSION"]
            assert json.loads(tags["INPUT_FILES"]) == ["results/demo-target/cube.zarr"]


def test_each_file_carries_only_its_own_layer_tags(maps):
    written, _ = maps
    tags = {}
    for kind in ("probability", "uncertainty", "inputs_used"):
        with rasterio.open(getattr(written, kind)) as src:
            tags[kind] = src.tags()
    assert "ENTROPY_UNIT" not in tags["probability"]
    assert "INPUTS_USED_FLAGS" not in tags["probability"]
    assert tags["uncertainty"]["ENTROPY_UNIT"] == "nat"
    assert "INPUTS_USED_FLAGS" not in tags["uncertainty"]
    assert json.loads(tags["inputs_used"]["INPUTS_USED_FLAGS"]) == {
        "optical_clear": 1, "gauge": 2, "gcm": 4, "terrain": 8, "radar": 16}
    assert "ENTROPY_UNIT" not in tags["inputs_used"]


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


def test_uncertainty_bands_named_with_units(maps):
    written, _ = maps
    with rasterio.open(written.uncertainty) as src:
        assert src.descriptions == ("std", "entropy", "mutual_information")
        assert src.units == ("1", "nat", "nat")
        std, entropy, mi = (src.read(i, masked=True)[:, :100] for i in range(1, 4))
    assert std.min() > 0 and mi.min() > 0 and np.all(entropy >= mi)
    assert entropy.max() <= np.float32(np.log(2))  # the entropy of a coin, in float32


def test_inputs_used_is_a_uint8_layer_with_a_colour_table_and_nearest_overviews(maps, grid):
    written, _ = maps
    assert written.inputs_used.name == "flood_inputs_used_observed.tif"
    with rasterio.open(written.inputs_used) as src:
        assert src.descriptions == ("inputs_used",) and src.units == ("bit flags",)
        assert src.tags(1)["overview_resampling"] == "nearest"
        flags = src.read(1, masked=True)
        overview = src.read(1, out_shape=(src.height // 2, src.width // 2), masked=True)
        colours = src.colormap(1)
    with rasterio.open(written.probability) as src:
        probability = src.read(1, masked=True)
    assert (flags.mask == probability.mask).all()  # nodata exactly where P is nodata
    assert set(np.unique(flags.compressed())) == {10}  # terrain (8) + gauge (2)
    assert set(np.unique(overview.compressed())) == {10}  # nearest: no new sums
    assert colours[10][3] == 255 and colours[255][3] == 0  # nodata transparent
    assert len({colours[v][:3] for v in range(32)}) == 32  # each flag sum its own colour


def test_interrupted_inference_leaves_no_file(tmp_path, grid, provenance, field_predictor):
    predictor = field_predictor(grid.shape, fail_after=5)
    out = tmp_path / "maps"
    with pytest.raises(RuntimeError, match="simulated crash"):
        write_scenario_maps(grid, predictor, out, provenance, **TILE)
    assert not out.exists()  # no final file, no scratch, not even the folder it made


STAC_BASE = "https://schemas.stacspec.org/v1.1.0/"


def _stac_schemas() -> tuple[dict, dict, list[dict]]:
    """(Item core, Collection core, extension schemas): STAC core from pystac's offline copy,
    the extensions from tests/predict/schemas and floodkd's from the package."""
    core_dir = files("pystac.validation") / "jsonschemas"
    core = {p.name: json.loads(p.read_text())
            for p in (core_dir / "stac-spec" / "v1.1.0").iterdir() if p.name.endswith(".json")}
    extensions = [json.loads(p.read_text()) for p in sorted(SCHEMAS.glob("*.json"))]
    return core["item.json"], core["collection.json"], [*extensions, floodkd_extension_schema()]


def _registry() -> Registry:
    core_dir = files("pystac.validation") / "jsonschemas"
    # core files refer to each other by file name, relative to the Item schema's URL
    # (common.json's own $id is misspelt upstream, so register by file name too)
    resources = {STAC_BASE + "item-spec/json-schema/" + p.name: json.loads(p.read_text())
                 for p in (core_dir / "stac-spec" / "v1.1.0").iterdir() if p.name.endswith(".json")}
    resources.update({json.loads(p.read_text())["$id"]: json.loads(p.read_text())
                      for p in (core_dir / "geojson").iterdir() if p.name.endswith(".json")})
    item, collection, extensions = _stac_schemas()
    resources[collection["$id"]] = collection
    resources.update({schema["$id"]: schema for schema in extensions})
    return Registry().with_resources(
        (uri, Resource.from_contents(schema)) for uri, schema in resources.items()
    )


def _stac_errors(document: dict) -> list[str]:
    """Errors of a STAC Item or Collection against its core schema and against every
    extension schema it lists (all of them must be known here)."""
    item, collection, extensions = _stac_schemas()
    registry = _registry()
    by_id = {schema["$id"]: schema for schema in extensions}
    assert set(document.get("stac_extensions", [])) <= set(by_id)
    schemas = [item if document["type"] == "Feature" else collection,
               *(by_id[uri] for uri in document.get("stac_extensions", []))]
    return [f"{schema['$id']}: {error.message}" for schema in schemas
            for error in Draft7Validator(schema, registry=registry).iter_errors(document)]


def test_stac_items_validate_and_describe_the_grid(maps, grid):
    written, _ = maps
    assert [p.name for p in written.stac_items] == [
        "flood_probability_observed.stac.json", "flood_uncertainty_observed.stac.json",
        "flood_inputs_used_observed.stac.json"]
    for path in written.stac_items:
        item = json.loads(path.read_text())
        assert _stac_errors(item) == [], path.name
        assert FLOODKD_EXTENSION in item["stac_extensions"]
        props = item["properties"]
        assert props["proj:code"] == "EPSG:32631"
        assert props["proj:shape"] == list(grid.shape)
        assert props["proj:transform"] == list(grid.transform)[:6]
        assert props["datetime"].startswith("2024-01-05T06:00:00")
        lon_min, lat_min, lon_max, lat_max = item["bbox"]
        assert 2.9 < lon_min < lon_max < 3.1 and 52.0 < lat_min < lat_max < 52.5
        bands = item["assets"]["data"]["raster:bands"]
        if "inputs_used" in path.name:
            assert all(b["data_type"] == "uint8" and b["nodata"] == 255 for b in bands)
        else:
            assert all(b["data_type"] == "float32" and b["nodata"] == -9999.0 for b in bands)
        for asset in item["assets"].values():
            assert (path.parent / asset["href"]).is_file(), asset["href"]


def test_stac_items_carry_licence_providers_window_links_and_json_fields(maps):
    written, _ = maps
    for path in written.stac_items:
        item = json.loads(path.read_text())
        props = item["properties"]
        assert props["license"] == "MIT"
        assert [p["name"] for p in props["providers"]] == ["floodkd"]
        assert set(props["providers"][0]["roles"]) == {"producer", "processor"}
        # no inputs window given: the scenario's date is the window
        assert props["start_datetime"] == props["end_datetime"] == props["datetime"]
        assert item["collection"] == "floodkd-demo-target"
        links = {link["rel"]: link["href"] for link in item["links"]}
        assert links == {"self": f"./{path.name}", "parent": "./collection.json",
                         "collection": "./collection.json"}
        # JSON values, not JSON inside strings
        assert props["floodkd:input_files"] == ["results/demo-target/cube.zarr"]
        assert props["floodkd:synthetic"] is True
        assert props["floodkd:region"] == "demo-target"
        assert props["floodkd:scenario"] == "observed"
    fields = {p.name.split("_")[1]: json.loads(p.read_text()) for p in written.stac_items}
    assert fields["uncertainty"]["properties"]["floodkd:entropy_unit"] == "nat"
    inputs_used = fields["inputs"]
    assert inputs_used["properties"]["floodkd:inputs_used_flags"]["radar"] == 16
    assert "floodkd:inputs_used_flags" not in fields["probability"]["properties"]
    bitfields = inputs_used["assets"]["data"]["classification:bitfields"]
    assert [(b["name"], b["offset"], b["length"]) for b in bitfields] == [
        ("optical_clear", 0, 1), ("gauge", 1, 1), ("gcm", 2, 1), ("terrain", 3, 1),
        ("radar", 4, 1)]


def test_stac_items_take_the_inputs_window(tmp_path, grid, provenance, field_predictor):
    window = (datetime(2023, 12, 20, tzinfo=UTC), provenance.scenario_datetime)
    written = write_scenario_maps(grid, field_predictor(grid.shape), tmp_path / "maps",
                                  replace(provenance, inputs_window=window), **TILE)
    item = json.loads(written.stac_items[0].read_text())
    assert item["properties"]["start_datetime"].startswith("2023-12-20T00:00:00")
    assert item["properties"]["end_datetime"].startswith("2024-01-05T06:00:00")
    assert _stac_errors(item) == []


def test_stac_schemas_reject_broken_items(maps):
    written, _ = maps
    item = json.loads(written.stac_items[0].read_text())
    broken = json.loads(json.dumps(item))
    broken["properties"]["proj:shape"] = [300]
    assert any("projection" in error for error in _stac_errors(broken))
    broken = json.loads(json.dumps(item))
    broken["properties"]["floodkd:input_files"] = json.dumps(["a JSON string"])
    assert any(FLOODKD_EXTENSION in error for error in _stac_errors(broken))
    broken = json.loads(json.dumps(item))
    broken["properties"]["floodkd:unknown"] = 1
    assert any(FLOODKD_EXTENSION in error for error in _stac_errors(broken))


def test_region_collection_links_every_item_and_spans_them(tmp_path, grid, provenance,
                                                           field_predictor):
    maps_dir = tmp_path / "maps"
    observed = write_scenario_maps(grid, field_predictor(grid.shape), maps_dir, provenance,
                                   **TILE)
    later = replace(provenance, scenario="surge_1m",
                    scenario_datetime=datetime(2024, 2, 1, tzinfo=UTC),
                    inputs_window=(datetime(2024, 1, 20, tzinfo=UTC),
                                   datetime(2024, 2, 1, tzinfo=UTC)))
    surge = write_scenario_maps(grid, field_predictor(grid.shape), maps_dir, later, **TILE)
    path = write_region_collection(maps_dir, "demo-target", "Synthetic demo flood maps.")
    assert path == maps_dir / "collection.json"
    collection = json.loads(path.read_text())
    assert _stac_errors(collection) == []
    assert collection["id"] == "floodkd-demo-target" and collection["license"] == "MIT"
    assert collection["description"] == "Synthetic demo flood maps."
    assert [p["name"] for p in collection["providers"]] == ["floodkd"]
    items = [json.loads(p.read_text()) for p in observed.stac_items + surge.stac_items]
    item_links = sorted(link["href"] for link in collection["links"] if link["rel"] == "item")
    assert item_links == sorted(f"./{p.name}" for p in observed.stac_items + surge.stac_items)
    assert all((maps_dir / href).is_file() for href in item_links)
    assert {link["rel"]: link["href"] for link in collection["links"]
            if link["rel"] != "item"} == {"self": "./collection.json", "root": "./collection.json"}
    (bbox,) = collection["extent"]["spatial"]["bbox"]
    assert bbox == [min(i["bbox"][k] for i in items) for k in (0, 1)] + [
        max(i["bbox"][k] for i in items) for k in (2, 3)]
    ((start, end),) = collection["extent"]["temporal"]["interval"]
    assert start.startswith("2024-01-05T06:00:00") and end.startswith("2024-02-01T00:00:00")
    # the Items' parent and collection links resolve to this file
    for item in items:
        links = {link["rel"]: link["href"] for link in item["links"]}
        assert (maps_dir / links["collection"]).resolve() == path.resolve()
        assert item["collection"] == collection["id"]


def test_region_collection_refuses_an_empty_folder_and_a_foreign_item(tmp_path, maps):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no"):
        write_region_collection(empty, "demo-target", "maps")
    written, _ = maps
    with pytest.raises(InputError, match="not a STAC Item of collection floodkd-elsewhere"):
        write_region_collection(written.probability.parent, "elsewhere", "maps")
    assert not (written.probability.parent / "collection.json").exists()


def test_the_floodkd_extension_schema_ships_in_the_package():
    schema = floodkd_extension_schema()
    assert schema["$id"] == FLOODKD_EXTENSION
    Draft7Validator.check_schema(schema)


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


def test_a_qml_per_uncertainty_band_over_the_range_it_can_hold(maps):
    written, _ = maps
    names = sorted(p.name for p in written.styles)
    assert names == sorted([
        "flood_probability_observed.qml", "flood_uncertainty_observed.qml",
        "flood_uncertainty_observed.std.qml", "flood_uncertainty_observed.entropy.qml",
        "flood_uncertainty_observed.mutual_information.qml", "flood_inputs_used_observed.qml"])
    folder = written.uncertainty.parent
    expected = {"std": (1, 0.5), "entropy": (2, np.log(2)), "mutual_information": (3, np.log(2))}
    for band, (index, maximum) in expected.items():
        renderer = ET.parse(folder / f"flood_uncertainty_observed.{band}.qml").getroot().find(
            "pipe/rasterrenderer")
        assert renderer.get("type") == "singlebandpseudocolor"
        assert renderer.get("band") == str(index)
        assert float(renderer.get("classificationMin")) == 0.0
        assert float(renderer.get("classificationMax")) == pytest.approx(maximum)
    # QGIS loads <name>.qml by itself: the first band's style
    assert (folder / "flood_uncertainty_observed.qml").read_text() == (
        folder / "flood_uncertainty_observed.std.qml").read_text()
    item = json.loads((folder / "flood_uncertainty_observed.stac.json").read_text())
    assert {k: a["href"] for k, a in item["assets"].items() if "style" in a["roles"]} == {
        "style": "./flood_uncertainty_observed.qml",
        **{f"style_{b}": f"./flood_uncertainty_observed.{b}.qml" for b in expected}}


def test_inputs_used_qml_is_a_palette_of_the_flag_sums_that_occur(maps):
    written, _ = maps
    qml = written.inputs_used.with_suffix(".qml")
    renderer = ET.parse(qml).getroot().find("pipe/rasterrenderer")
    assert renderer.get("type") == "paletted" and renderer.get("band") == "1"
    entries = renderer.findall("colorPalette/paletteEntry")
    assert [(e.get("value"), e.get("label")) for e in entries] == [("10", "gauge + terrain")]
    with rasterio.open(written.inputs_used) as src:  # the same colour as the embedded table
        red, green, blue, _ = src.colormap(1)[10]
    assert entries[0].get("color") == f"#{red:02x}{green:02x}{blue:02x}"


def test_quicklooks_are_pngs(maps):
    from PIL import Image

    written, _ = maps
    assert [p.name for p in written.quicklooks] == [
        "flood_probability_observed.png", "flood_uncertainty_observed.png"]
    sizes = []
    for png in written.quicklooks:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size < 400_000  # small enough for a report page
        with Image.open(png) as image:
            assert image.width >= 300 and image.height >= 300  # a 6 inch figure at 100 dpi
            sizes.append(image.size)
    # the uncertainty quicklook has std and inputs_used side by side
    assert sizes[1][0] > 1.6 * sizes[0][0]
