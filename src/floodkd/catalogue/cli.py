"""``floodkd catalogue``: a QGIS project of a region's maps, and the STAC Collection of them.

Writes ``<out>/<region>.qgs``: one group per scenario (flood polygons, flood extent,
likelihood, probability, and a subgroup of the uncertainty bands and the inputs used), each
layer styled by its map's ``.qml``, and a ``context`` group: the region outline, the tide
gauges, the hand labels and the reference water where the region has them. The outline and
the gauges are written as GeoJSON into ``<out>/context/``, so the project needs nothing
outside ``<out>``: every path in it is relative, and ``<out>`` can be moved as a whole.
Maps that do not exist are left out. Also writes ``<maps>/collection.json``, the region's
STAC Collection linking the maps' Items (``floodkd.predict.stac``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

import pyogrio
import rasterio
import xarray as xr
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from floodkd.atomic import atomic_dir, atomic_path
from floodkd.catalogue.qgis_project import (
    Group,
    Layer,
    categorized_fill_style,
    fill_style,
    marker_style,
    project_xml,
)
from floodkd.config import load_config, region_config
from floodkd.errors import InputError
from floodkd.grid import RegionGrid
from floodkd.outputs import check_outputs
from floodkd.predict.extent import EXTENT_CLASSES, FLOOD, POLYGON_LAYER, REFERENCE_WATER
from floodkd.predict.stac import COLLECTION_FILE, write_region_collection
from floodkd.predict.style import PROBABILITY_RAMP, paletted_qml, pseudocolor_qml
from floodkd.region import region_outline
from floodkd.risk.exposure_cli import map_scenarios

__all__ = ["add_arguments", "run", "scenario_groups", "context_layers", "outline_geojson",
           "gauges_geojson", "CONTEXT_DIR", "OUTLINE_FILE", "GAUGES_FILE"]

log = logging.getLogger(__name__)

CONTEXT_DIR = "context"
OUTLINE_FILE = "region_outline.geojson"
GAUGES_FILE = "tide_gauges.geojson"
WATER, DRY = "#1f78b4", "#e6c27a"  # hand-label colours, apart from the extent's classes
LIKELIHOOD_STYLE = pseudocolor_qml(1, 0.0, 100.0, PROBABILITY_RAMP, 0)  # when no .qml


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="workflow config YAML")
    parser.add_argument("--region", required=True, help="region name in the config")
    parser.add_argument("--maps", required=True, help="the region's maps folder")
    parser.add_argument("--out", required=True,
                        help="folder of <region>.qgs and its context/, e.g. results/<region>")
    parser.add_argument("--labels", help="the region's ingested labels folder, if any")
    parser.add_argument("--tide", help="the region's ingested tide folder, if any")
    parser.add_argument("--defences", help="the region's ingested defences folder, if any")
    parser.add_argument("--reference-water", help="the region's reference_water.tif, if any")


def run(args: argparse.Namespace) -> None:
    config = load_config(args.config)
    region = region_config(config, args.region)
    out, maps_dir = Path(args.out), Path(args.maps)
    project_path, context_dir = out / f"{args.region}.qgs", out / CONTEXT_DIR
    extras = [Path(p) for p in (args.labels, args.tide, args.defences, args.reference_water)
              if p]
    check_outputs(config, args.config, replaced=[project_path, context_dir],
                  inputs=[maps_dir, *extras])
    # inside the maps folder, which the check above guards as an input
    check_outputs(config, args.config, replaced=[maps_dir / COLLECTION_FILE])
    for path in extras:
        if not path.exists():
            raise InputError(path, "does not exist", "run `floodkd ingest` (or reference-water) "
                             "for this region first, or leave the option out")
    grid = RegionGrid.from_config(config, args.region)
    scenarios = scenario_groups(out, maps_dir, map_scenarios(config, args.region))
    with atomic_dir(context_dir) as tmp:
        _write_json(tmp / OUTLINE_FILE, outline_geojson(region_outline(region), args.region))
        if args.tide:
            _write_json(tmp / GAUGES_FILE, gauges_geojson(Path(args.tide) / "tide.nc"))
    context = context_layers(out, *(Path(p) if p else None for p in (
        args.labels, args.defences, args.reference_water)))
    groups = [Group("context", context), *scenarios]
    bounds = grid.bounds
    xml = project_xml(args.region, _crs_text(grid.crs),
                      (bounds.left, bounds.bottom, bounds.right, bounds.top), groups)
    synthetic = " (SYNTHETIC: made from synthetic inputs)" if region.get("synthetic") else ""
    description = (f"floodkd flood maps of {args.region} per scenario: probability, "
                   f"uncertainty, extent classes and polygons, likelihood{synthetic}")
    log.info("wrote %s", write_region_collection(maps_dir, args.region, description))
    with atomic_path(project_path) as tmp:
        tmp.write_text(xml, encoding="utf-8")
    counts = {group.name: _count(group) for group in groups}
    log.info("wrote %s: %s", project_path,
             ", ".join(f"{name} {count} layers" for name, count in counts.items()))


def scenario_groups(project_dir: Path, maps_dir: Path, scenarios: list[str]) -> list[Group]:
    """A group per scenario that has maps, for a project in ``project_dir``; only the first
    is shown when the project opens."""
    groups: list[Group] = []
    for scenario in scenarios:
        children = _scenario_layers(project_dir, maps_dir, scenario)
        if children:
            first = not groups
            groups.append(Group(scenario, children, visible=first, expanded=first))
    if not groups:
        raise InputError(maps_dir, f"holds no maps of the scenarios {', '.join(scenarios)}",
                         "run `floodkd predict` for this region first")
    return groups


def _scenario_layers(project_dir: Path, maps_dir: Path, scenario: str) -> list[Layer | Group]:
    def path(kind: str, suffix: str = ".tif") -> Path:
        return maps_dir / f"flood_{kind}_{scenario}{suffix}"

    layers: list[Layer | Group] = []
    polygons = path("extent", ".gpkg")
    if polygons.is_file():
        colour = EXTENT_CLASSES[FLOOD][1]
        layers.append(Layer("flood polygons", _relative(polygons, project_dir),
                            _vector_crs(polygons, POLYGON_LAYER),
                            fill_style(colour, colour, fill_alpha=90), "Polygon",
                            sublayer=POLYGON_LAYER, visible=False))
    for kind, title, fallback in (("extent", "flood extent", None),
                                  ("likelihood", "likelihood (%)", LIKELIHOOD_STYLE),
                                  ("probability", "probability", None)):
        if path(kind).is_file():
            layers.append(_raster(path(kind), project_dir, title, _sidecar_style(
                path(kind).with_suffix(".qml"), fallback), visible=kind == "extent"))
    uncertainty = _uncertainty_layers(project_dir, path("uncertainty"))
    if path("inputs_used").is_file():
        uncertainty.append(_raster(path("inputs_used"), project_dir, "inputs used",
                                   _sidecar_style(path("inputs_used").with_suffix(".qml"))))
    if uncertainty:
        layers.append(Group("uncertainty", uncertainty, visible=False, expanded=False))
    return layers


def _uncertainty_layers(project_dir: Path, path: Path) -> list[Layer | Group]:
    """A layer per band that has its own style (``<name>.<band>.qml``), else the file as one
    layer with ``<name>.qml``."""
    if not path.is_file():
        return []
    with rasterio.open(path) as dataset:
        bands = [name for name in dataset.descriptions if name]
    layers: list[Layer | Group] = []
    for band in bands:
        style = path.with_name(f"{path.stem}.{band}.qml")
        if style.is_file():
            layers.append(_raster(path, project_dir, band.replace("_", " "),
                                  style.read_text(encoding="utf-8")))
    return layers or [_raster(path, project_dir, "uncertainty",
                              _sidecar_style(path.with_suffix(".qml")))]


def context_layers(project_dir: Path, labels_dir: Path | None, defences_dir: Path | None,
                   reference_water: Path | None) -> list[Layer | Group]:
    """The region outline and tide gauges (``project_dir/context/``, where written), the
    protected areas of the defence register, the hand labels and the reference water."""
    context = project_dir / CONTEXT_DIR
    layers: list[Layer | Group] = []
    if (context / OUTLINE_FILE).is_file():
        layers.append(Layer("region outline", _relative(context / OUTLINE_FILE, project_dir),
                            "EPSG:4326", fill_style("#e31a1c", outline_width_mm=0.6),
                            "Polygon"))
    if (context / GAUGES_FILE).is_file():
        layers.append(Layer("tide gauges", _relative(context / GAUGES_FILE, project_dir),
                            "EPSG:4326", marker_style("#6a3d9a", labels_field="station_name"),
                            "Point"))
    register = defences_dir / "defences.gpkg" if defences_dir is not None else None
    if register is not None and register.is_file():
        layers.append(Layer("protected areas (crest m)", _relative(register, project_dir),
                            _vector_crs(register, "defences"),
                            fill_style("#33a02c", outline_width_mm=0.8, labels_field="crest_m"),
                            "Polygon", sublayer="defences"))
    if labels_dir is not None:
        labels = _label_layers(project_dir, labels_dir)
        if labels:
            layers.append(Group("hand labels", labels, visible=False, expanded=False))
    if reference_water is not None:
        colour = EXTENT_CLASSES[REFERENCE_WATER][1]
        layers.append(_raster(reference_water, project_dir, "reference water",
                              paletted_qml(1, [(1, colour, "reference water")]), visible=False))
    return layers


def _label_layers(project_dir: Path, labels_dir: Path) -> list[Layer | Group]:
    """The ingested labels: ``labels.gpkg`` (``label`` 1 water, 0 dry) and the label rasters
    (``<time>.tif``: 1 water, 0 dry, 255 no label), one layer each."""
    layers: list[Layer | Group] = []
    vector = labels_dir / "labels.gpkg"
    if vector.is_file():
        layers.append(Layer("labels", _relative(vector, project_dir),
                            _vector_crs(vector, "labels"),
                            categorized_fill_style("label", [(1, WATER, "water"),
                                                             (0, DRY, "dry")]),
                            "Polygon", sublayer="labels"))
    classes = paletted_qml(1, [(1, WATER, "water"), (0, DRY, "dry")])
    for raster in sorted(labels_dir.glob("*.tif")):
        layers.append(_raster(raster, project_dir, f"labels {raster.stem}", classes))
    return layers


def _raster(path: Path, project_dir: Path, name: str, style: str | None,
            visible: bool = True) -> Layer:
    with rasterio.open(path) as dataset:
        if dataset.crs is None:
            raise InputError(path, "has no CRS", "rewrite it with its CRS")
        crs = _crs_text(dataset.crs)
    return Layer(name, _relative(path, project_dir), crs, style, visible=visible)


def _vector_crs(path: Path, layer: str) -> str:
    crs = pyogrio.read_info(path, layer=layer).get("crs")
    if not crs:
        raise InputError(path, f"layer {layer} has no CRS", "rewrite it with its CRS")
    return crs


def _sidecar_style(path: Path, fallback: str | None = None) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else fallback


def _relative(path: Path, project_dir: Path) -> str:
    return Path(os.path.relpath(path.resolve(), project_dir.resolve())).as_posix()


def _crs_text(crs: Any) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


def _count(group: Group) -> int:
    return sum(_count(child) if isinstance(child, Group) else 1 for child in group.children)


def outline_geojson(outline: BaseGeometry, region: str) -> dict[str, Any]:
    """The region outline (lon/lat) as a GeoJSON FeatureCollection of one feature."""
    return {"type": "FeatureCollection", "name": "region_outline", "features": [
        {"type": "Feature", "properties": {"region": region}, "geometry": mapping(outline)}]}


def gauges_geojson(tide_file: Path) -> dict[str, Any]:
    """The tide gauges of an ingested ``tide.nc`` as GeoJSON points (lon/lat)."""
    if not tide_file.is_file():
        raise InputError(tide_file, "not found", "run `floodkd ingest tide` for this region")
    with xr.open_dataset(tide_file) as tide:
        stations = [{"station": str(station), "station_name": str(name), "datum": str(datum),
                     "lon": float(lon), "lat": float(lat)}
                    for station, name, datum, lon, lat in zip(
                        tide["station"].values, tide["station_name"].values,
                        tide["datum"].values, tide["lon"].values, tide["lat"].values,
                        strict=True)]
    features = []
    for station in stations:
        lon = station.pop("lon")
        lon = lon - 360.0 if lon > 180.0 else lon  # UHSLC tables give 0..360
        point = {"type": "Point", "coordinates": [lon, station.pop("lat")]}
        features.append({"type": "Feature", "properties": station, "geometry": point})
    return {"type": "FeatureCollection", "name": "tide_gauges", "features": features}


def _write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
