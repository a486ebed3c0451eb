"""The region's QGIS project: groups, layer names, relative paths that resolve, styles from the
maps' .qml files, the region grid's CRS; and the pure XML builder on its own."""

from __future__ import annotations

import argparse
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree as ET

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import xarray as xr
import yaml
from affine import Affine
from shapely.geometry import box

from floodkd.catalogue import cli
from floodkd.catalogue.qgis_project import Group, Layer, fill_style, project_xml
from floodkd.config import load_config
from floodkd.errors import InputError
from floodkd.grid import RegionGrid
from floodkd.predict import MapProvenance
from floodkd.predict.extent import ExtentSettings, write_extent_maps
from floodkd.predict.tiled import write_scenario_maps

REGION = "coast"
SCENARIOS = ("observed", "surge_1m")
BBOX = [3.0, 52.3, 3.006, 52.304]  # about 400 x 450 m: UTM 31N
STATIONS = [("801a", "Synth North", 3.002, 52.303), ("802a", "Synth Far", 363.004, 52.301)]


def _field_predictor(shape):
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    field = 0.5 + 0.45 * np.sin(rows / 9.0) * np.cos(cols / 7.0)

    def predict_window(row_off, col_off, height, width):
        base = field[row_off : row_off + height, col_off : col_off + width]
        return np.stack([base, 0.9 * base, 0.8 * base]), np.full((height, width), 10, np.uint16)

    return predict_window


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A working folder with a config, a region's maps of two scenarios (as predict writes
    them) and its ingested labels (vector and raster) and tide gauges."""
    monkeypatch.chdir(tmp_path)
    config = {"regions": {REGION: {
        "role": "target", "bbox": BBOX, "synthetic": True,
        "inputs": {"sar": {"glob": "data/s1/*.tif"},
                   "tide": {"glob": "data/tide/h*.csv", "format": "uhslc"},
                   "labels": {"glob": "data/labels.gpkg"}}}},
        "predict": {"scenarios": {name: {} if name == "observed" else
                                  {"water_level_offset_m": 1.0} for name in SCENARIOS}}}
    Path("config.yaml").write_text(yaml.safe_dump(config))
    grid = RegionGrid.from_config(load_config("config.yaml"), REGION)
    maps = Path("results", REGION, "maps")
    for scenario in SCENARIOS:
        provenance = MapProvenance(
            region=REGION, scenario=scenario, scenario_datetime=datetime(2024, 1, 5, tzinfo=UTC),
            model_sha256="ab" * 32, input_files=["results/coast/cube.zarr"], synthetic=True)
        written = write_scenario_maps(grid, _field_predictor(grid.shape), maps, provenance,
                                      tile_px=32, overlap_px=8)
        elevation = np.full(grid.shape, 2.0, np.float32)
        elevation[:, :5] = -1.0  # a strip of sea
        write_extent_maps(written.probability, written.uncertainty, elevation,
                          ExtentSettings(0.5, 0.2))
    labels = Path("results", REGION, "ingest", "labels")
    labels.mkdir(parents=True)
    left, bottom, right, top = grid.bounds
    gpd.GeoDataFrame({"label": [1, 0], "time": [datetime(2024, 1, 5)] * 2},
                     geometry=[box(left, bottom, left + 100, bottom + 100),
                               box(right - 100, top - 100, right, top)], crs=grid.crs.to_wkt()
                     ).to_file(labels / "labels.gpkg", layer="labels", driver="GPKG")
    with rasterio.open(labels / "20240105T000000.tif", "w", driver="GTiff", width=8, height=8,
                       count=1, dtype="uint8", crs="EPSG:32631", nodata=255,
                       transform=Affine(10, 0, left, 0, -10, top)) as dst:
        dst.write(np.eye(8, dtype=np.uint8)[None])
    tide = Path("results", REGION, "ingest", "tide")
    tide.mkdir(parents=True)
    ids, names, lons, lats = zip(*STATIONS, strict=True)
    xr.Dataset({"water_level_m": (("station", "time"), np.zeros((2, 3)))}, coords={
        "station": ("station", list(ids)), "time": np.arange(3),
        "lat": ("station", list(lats)), "lon": ("station", list(lons)),
        "station_name": ("station", list(names)), "datum": ("station", ["MSL", "MSL"]),
    }).to_netcdf(tide / "tide.nc")
    return tmp_path


def _run(*extra: str, labels: bool = True, tide: bool = True) -> Path:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    ingest = f"results/{REGION}/ingest"
    args = ["--config", "config.yaml", "--region", REGION, "--maps", f"results/{REGION}/maps",
            "--out", f"results/{REGION}", *extra,
            *(["--labels", f"{ingest}/labels"] if labels else []),
            *(["--tide", f"{ingest}/tide"] if tide else [])]
    cli.run(parser.parse_args(args))
    return Path("results", REGION, f"{REGION}.qgs")


def _tree(group: ET.Element) -> list:
    """The layer tree as nested lists: a group is (name, [children]), a layer its name."""
    return [(child.get("name"), _tree(child)) if child.tag == "layer-tree-group"
            else child.get("name") for child in group
            if child.tag in ("layer-tree-group", "layer-tree-layer")]


def _canonical(element: ET.Element) -> str:
    return ET.canonicalize(ET.tostring(element), strip_text=True)


def _map_layers(root: ET.Element) -> dict[str, ET.Element]:
    return {layer.findtext("id"): layer for layer in root.iter("maplayer")}


def test_project_groups_every_scenario_and_the_context(workdir):
    root = ET.parse(_run()).getroot()
    scenario = ["flood polygons", "flood extent", "likelihood (%)", "probability",
                ("uncertainty", ["std", "entropy", "mutual information", "inputs used"])]
    assert _tree(root.find("layer-tree-group")) == [
        ("context", ["region outline", "tide gauges",
                     ("hand labels", ["labels", "labels 20240105T000000"])]),
        ("observed", scenario), ("surge_1m", scenario),
    ]
    groups = root.find("layer-tree-group").findall("layer-tree-group")
    # the first scenario opens shown, the others hidden
    assert [group.get("checked") for group in groups] == ["Qt::Checked", "Qt::Checked",
                                                           "Qt::Unchecked"]
    assert len(_map_layers(root)) == 2 * 8 + 4


def test_every_source_is_relative_and_resolves_after_the_folder_moved(workdir):
    project = _run()
    moved = workdir / "elsewhere" / "copy"
    shutil.copytree(project.parent, moved)
    root = ET.parse(moved / project.name).getroot()
    assert root.find("properties/Paths/Absolute").text == "false"
    sources = [layer.findtext("datasource") for layer in root.iter("maplayer")]
    tree_sources = [node.get("source") for node in root.iter("layer-tree-layer")]
    assert sorted(sources) == sorted(tree_sources)
    for source in sources:
        path = source.split("|")[0]
        assert path.startswith("./"), source
        assert (moved / path).is_file(), source
    assert "./maps/flood_extent_observed.gpkg|layername=flood" in sources
    assert "./context/tide_gauges.geojson" in sources


def test_project_crs_and_extent_are_the_region_grids(workdir):
    root = ET.parse(_run()).getroot()
    grid = RegionGrid.from_config(load_config("config.yaml"), REGION)
    assert grid.crs.epsg == 32631
    assert root.findtext("projectCrs/spatialrefsys/authid") == "EPSG:32631"
    assert root.findtext("properties/SpatialRefSys/ProjectionsEnabled") == "1"
    extent = [float(root.findtext(f"mapcanvas/extent/{key}"))
              for key in ("xmin", "ymin", "xmax", "ymax")]
    assert extent == pytest.approx(list(grid.bounds))
    layers = {layer.findtext("layername") + layer.findtext("datasource"): layer
              for layer in root.iter("maplayer")}
    crs = {name: layer.findtext("srs/spatialrefsys/authid") for name, layer in layers.items()}
    assert crs["region outline./context/region_outline.geojson"] == "EPSG:4326"
    assert crs["probability./maps/flood_probability_observed.tif"] == "EPSG:32631"
    assert crs["labels./ingest/labels/labels.gpkg|layername=labels"] == "EPSG:32631"


def test_raster_layers_carry_their_maps_styles(workdir):
    root = ET.parse(_run()).getroot()
    maps = Path("results", REGION, "maps")
    by_source = {}
    for layer in root.iter("maplayer"):
        by_source.setdefault(layer.findtext("datasource"), []).append(layer)
    [extent] = by_source["./maps/flood_extent_surge_1m.tif"]
    qml = ET.parse(maps / "flood_extent_surge_1m.qml").getroot()
    assert _canonical(extent.find("pipe")) == _canonical(qml.find("pipe"))
    entries = extent.findall("pipe/rasterrenderer/colorPalette/paletteEntry")
    assert [e.get("label") for e in entries][:2] == ["dry", "flood"]
    bands = {layer.findtext("layername"): layer.find("pipe/rasterrenderer").get("band")
             for layer in by_source["./maps/flood_uncertainty_observed.tif"]}
    assert bands == {"std": "1", "entropy": "2", "mutual information": "3"}
    [probability] = by_source["./maps/flood_probability_observed.tif"]
    shader = probability.find("pipe/rasterrenderer/rastershader/colorrampshader")
    assert (float(shader.get("minimumValue")), float(shader.get("maximumValue"))) == (0.0, 1.0)
    # no likelihood .qml beside the map: a 0..100 % ramp of the catalogue's own
    [likelihood] = by_source["./maps/flood_likelihood_observed.tif"]
    shader = likelihood.find("pipe/rasterrenderer/rastershader/colorrampshader")
    assert float(shader.get("maximumValue")) == 100.0
    [polygons] = by_source["./maps/flood_extent_observed.gpkg|layername=flood"]
    assert polygons.get("geometry") == "Polygon"
    assert polygons.find("renderer-v2").get("type") == "singleSymbol"
    [labels] = by_source["./ingest/labels/labels.gpkg|layername=labels"]
    categories = labels.findall("renderer-v2/categories/category")
    assert [(c.get("value"), c.get("label")) for c in categories] == [("1", "water"),
                                                                      ("0", "dry")]


def test_context_files_hold_the_outline_and_the_gauges(workdir):
    _run()
    context = Path("results", REGION, cli.CONTEXT_DIR)
    outline = json.loads((context / cli.OUTLINE_FILE).read_text())
    [feature] = outline["features"]
    assert feature["properties"] == {"region": REGION}
    coordinates = np.array(feature["geometry"]["coordinates"][0])
    assert [*coordinates.min(0), *coordinates.max(0)] == pytest.approx(BBOX)
    gauges = json.loads((context / cli.GAUGES_FILE).read_text())["features"]
    assert [g["properties"]["station_name"] for g in gauges] == ["Synth North", "Synth Far"]
    # a UHSLC longitude of 363.004 is 3.004 east
    assert [g["geometry"]["coordinates"] for g in gauges] == [
        [3.002, 52.303], [pytest.approx(3.004), 52.301]]


def test_missing_maps_are_left_out_and_none_is_an_error(workdir):
    maps = Path("results", REGION, "maps")
    (maps / "flood_likelihood_surge_1m.tif").unlink()
    root = ET.parse(_run(labels=False, tide=False)).getroot()
    tree = dict(_tree(root.find("layer-tree-group")))
    assert "likelihood (%)" in tree["observed"]
    assert "likelihood (%)" not in tree["surge_1m"]
    assert tree["context"] == ["region outline"]
    for path in maps.glob("flood_*"):
        path.unlink()
    shutil.rmtree(Path("results", REGION, cli.CONTEXT_DIR))
    with pytest.raises(InputError, match="holds no maps of the scenarios observed, surge_1m"):
        _run()
    assert not Path("results", REGION, cli.CONTEXT_DIR).exists()  # refused before writing


def test_reference_water_joins_the_context(workdir):
    grid = RegionGrid.from_config(load_config("config.yaml"), REGION)
    reference = Path("results", REGION, "reference_water.tif")
    with rasterio.open(reference, "w", driver="GTiff", width=grid.shape[1],
                       height=grid.shape[0], count=1, dtype="uint8", crs="EPSG:32631",
                       nodata=255, transform=grid.transform) as dst:
        dst.write(np.ones((1, *grid.shape), np.uint8))
    root = ET.parse(_run("--reference-water", str(reference), labels=False)).getroot()
    assert dict(_tree(root.find("layer-tree-group")))["context"] == [
        "region outline", "tide gauges", "reference water"]
    [layer] = [layer for layer in root.iter("maplayer")
               if layer.findtext("datasource") == "./reference_water.tif"]
    [entry] = layer.findall("pipe/rasterrenderer/colorPalette/paletteEntry")
    assert (entry.get("value"), entry.get("label")) == ("1", "reference water")


def test_the_protected_areas_join_the_context_labelled_by_their_crest(workdir):
    grid = RegionGrid.from_config(load_config("config.yaml"), REGION)
    defences = Path("results", REGION, "ingest", "defences")
    defences.mkdir(parents=True)
    left, bottom, _, _ = grid.bounds
    gpd.GeoDataFrame({"crest_m": [4.2]}, geometry=[box(left, bottom, left + 200, bottom + 200)],
                     crs=grid.crs.to_wkt()).to_crs("EPSG:4326").to_file(
        defences / "defences.gpkg", layer="defences", driver="GPKG")
    root = ET.parse(_run("--defences", str(defences), labels=False)).getroot()
    assert dict(_tree(root.find("layer-tree-group")))["context"] == [
        "region outline", "tide gauges", "protected areas (crest m)"]
    [layer] = [layer for layer in root.iter("maplayer")
               if layer.findtext("layername") == "protected areas (crest m)"]
    assert layer.findtext("datasource") == "./ingest/defences/defences.gpkg|layername=defences"
    assert layer.find("srs/spatialrefsys/authid").text == "EPSG:4326"
    assert layer.find(".//text-style").get("fieldName") == "crest_m"


def test_the_same_maps_give_the_same_project_and_a_stac_collection(workdir):
    first = _run().read_bytes()
    assert _run().read_bytes() == first
    collection = json.loads(Path("results", REGION, "maps", "collection.json").read_text())
    items = {link["href"] for link in collection["links"] if link["rel"] == "item"}
    assert "./flood_probability_surge_1m.stac.json" in items


def test_builder_refuses_two_layers_of_one_name_and_source():
    layer = Layer("probability", "maps/p.tif", "EPSG:32631")
    same = Layer("probability", "maps/p.tif", "EPSG:32631")
    with pytest.raises(ValueError, match="share a name and a data source"):
        project_xml("x", "EPSG:32631", (0, 0, 1, 1), [Group("a", [layer]), Group("b", [same])])


def test_builder_embeds_a_style_and_writes_relative_sources():
    outline = Layer("outline", "context/outline.geojson", "EPSG:4326",
                    fill_style("#e31a1c"), "Polygon")
    root = ET.fromstring(project_xml("r", "EPSG:32648", (0, 0, 10, 10),
                                     [Group("context", [outline])]).split("\n", 1)[1])
    [layer] = root.iter("maplayer")
    assert layer.findtext("datasource") == "./context/outline.geojson"
    assert layer.findtext("provider") == "ogr"
    fill = layer.find("renderer-v2/symbols/symbol/layer/Option")
    options = {option.get("name"): option.get("value") for option in fill}
    assert options["style"] == "no"  # hollow: the maps below stay visible
    assert options["outline_color"] == "227,26,28,255"
    with pytest.raises(ValueError, match="root element <qgis>"):
        project_xml("r", "EPSG:32648", (0, 0, 1, 1),
                    [Group("g", [Layer("p", "p.tif", "EPSG:32648", "<pipe/>")])])
