"""A QGIS project file (``.qgs``, plain XML) from a tree of groups and layers.

Pure: the caller says which files to show, in which groups, with which style; this module
only writes the XML QGIS 3.22 reads. Every data source is a path relative to the project
file (``./maps/x.tif``) and the project says so (``Paths/Absolute`` false), so the folder
can be moved or copied as a whole. A layer's style is a QGIS style document (a ``.qml``'s
text): its elements go into the layer as QGIS itself embeds them when it saves a project.

Layer ids are made from the source, not random, so the same layers give the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from xml.etree import ElementTree as ET

from pyproj import CRS

from floodkd.predict.style import rgba

__all__ = [
    "Layer", "Group", "project_xml", "fill_style", "marker_style", "categorized_fill_style",
    "QGIS_VERSION",
]

QGIS_VERSION = "3.22.0"  # the oldest QGIS the project is written for (Debian 12's)
DOCTYPE = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"


@dataclass(frozen=True)
class Layer:
    """One map layer.

    ``source`` is the file's path relative to the project file's folder, POSIX style;
    ``sublayer`` the layer inside a GeoPackage; ``crs`` the file's CRS (anything pyproj
    reads: ``EPSG:32648``, WKT); ``style`` a QGIS style document or None (QGIS default);
    ``geometry`` Point, LineString or Polygon for a vector layer, None for a raster.
    """

    name: str
    source: str
    crs: str
    style: str | None = None
    geometry: str | None = None
    sublayer: str | None = None
    visible: bool = True

    @property
    def provider(self) -> str:
        return "gdal" if self.geometry is None else "ogr"

    @property
    def datasource(self) -> str:
        path = self.source if self.source.startswith(("./", "../")) else f"./{self.source}"
        return path if self.sublayer is None else f"{path}|layername={self.sublayer}"


@dataclass(frozen=True)
class Group:
    """A group in the layer tree: layers and groups, top (drawn last) first."""

    name: str
    children: Sequence[Layer | Group]
    visible: bool = True
    expanded: bool = True


def project_xml(
    title: str, crs: str, extent: tuple[float, float, float, float], groups: Sequence[Group]
) -> str:
    """The ``.qgs`` document: ``groups`` in the layer tree (top first), the project in ``crs``
    and the map opening on ``extent`` (xmin, ymin, xmax, ymax in that CRS)."""
    layers = list(_layers(groups))
    ids = _layer_ids(layers)
    if len(set(ids.values())) != len(layers):
        raise ValueError("two layers share a name and a data source: give each its own name")
    qgis = ET.Element("qgis", {"projectname": title, "version": QGIS_VERSION})
    ET.SubElement(qgis, "homePath", {"path": ""})
    ET.SubElement(qgis, "title").text = title
    ET.SubElement(ET.SubElement(qgis, "projectCrs"), "spatialrefsys").extend(
        _spatial_ref(crs))
    tree = ET.SubElement(qgis, "layer-tree-group")
    ET.SubElement(tree, "customproperties")
    for group in groups:
        _tree_group(tree, group, ids)
    canvas = ET.SubElement(qgis, "mapcanvas", {"name": "theMapCanvas", "annotationsVisible": "1"})
    ET.SubElement(canvas, "units").text = "degrees" if CRS(crs).is_geographic else "meters"
    box = ET.SubElement(canvas, "extent")
    for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), extent, strict=True):
        ET.SubElement(box, tag).text = repr(float(value))
    ET.SubElement(canvas, "rotation").text = "0"
    ET.SubElement(ET.SubElement(canvas, "destinationsrs"), "spatialrefsys").extend(
        _spatial_ref(crs))
    project_layers = ET.SubElement(qgis, "projectlayers")
    for layer in layers:
        project_layers.append(_map_layer(layer, ids[id(layer)]))
    properties = ET.SubElement(qgis, "properties")
    # QGIS 3.22 reads <projectCrs> only where this legacy flag is set
    srs = ET.SubElement(properties, "SpatialRefSys")
    ET.SubElement(srs, "ProjectionsEnabled", {"type": "int"}).text = "1"
    absolute = ET.SubElement(ET.SubElement(properties, "Paths"), "Absolute", {"type": "bool"})
    absolute.text = "false"  # sources are relative to the project file
    ET.indent(qgis)
    return f"{DOCTYPE}\n{ET.tostring(qgis, encoding='unicode')}\n"


def _layers(children: Sequence[Layer | Group]) -> Iterator[Layer]:
    for child in children:
        if isinstance(child, Group):
            yield from _layers(child.children)
        else:
            yield child


def _layer_ids(layers: list[Layer]) -> dict[int, str]:
    """A readable, stable id per layer (QGIS needs them unique): its name and source."""
    return {id(layer): re.sub(r"[^A-Za-z0-9_]", "_", f"{layer.name}_{layer.datasource}")
            for layer in layers}


def _tree_group(parent: ET.Element, group: Group, ids: dict[int, str]) -> None:
    element = ET.SubElement(parent, "layer-tree-group", {
        "name": group.name, "checked": _checked(group.visible),
        "expanded": "1" if group.expanded else "0"})
    ET.SubElement(element, "customproperties")
    for child in group.children:
        if isinstance(child, Group):
            _tree_group(element, child, ids)
        else:
            layer = ET.SubElement(element, "layer-tree-layer", {
                "id": ids[id(child)], "name": child.name, "source": child.datasource,
                "providerKey": child.provider, "checked": _checked(child.visible),
                "expanded": "0"})
            ET.SubElement(layer, "customproperties")


def _checked(visible: bool) -> str:
    return "Qt::Checked" if visible else "Qt::Unchecked"


def _map_layer(layer: Layer, layer_id: str) -> ET.Element:
    attributes = {"type": "raster" if layer.geometry is None else "vector",
                  "hasScaleBasedVisibilityFlag": "0", "autoRefreshEnabled": "0"}
    if layer.geometry is not None:
        attributes.update(geometry=layer.geometry, wkbType=layer.geometry)
    element = ET.Element("maplayer", attributes)
    ET.SubElement(element, "id").text = layer_id
    ET.SubElement(element, "datasource").text = layer.datasource
    ET.SubElement(element, "layername").text = layer.name
    # QGIS keeps the CRS written here over the file's own, so it must be the file's
    ET.SubElement(ET.SubElement(element, "srs"), "spatialrefsys").extend(
        _spatial_ref(layer.crs))
    provider = ET.SubElement(element, "provider")
    provider.text = layer.provider
    if layer.geometry is not None:
        provider.set("encoding", "UTF-8")
    if layer.style is not None:
        element.extend(_style_elements(layer.style))
    return element


def _style_elements(style: str) -> list[ET.Element]:
    """The elements of a QGIS style document (a ``.qml``'s root children)."""
    root = ET.fromstring(re.sub(r"^\s*<!DOCTYPE[^>]*>", "", style))
    if root.tag != "qgis":
        raise ValueError(f"a QGIS style has the root element <qgis>, not <{root.tag}>")
    return list(root)


def _spatial_ref(crs: str) -> list[ET.Element]:
    """The children of a ``<spatialrefsys>``: QGIS 3.22 reads the WKT, lossless."""
    parsed = CRS.from_user_input(crs)
    authority = parsed.to_authority()
    values = {
        "wkt": parsed.to_wkt(),
        "srid": authority[1] if authority else "",
        "authid": ":".join(authority) if authority else "",
        "description": parsed.name,
        "projectionacronym": "longlat" if parsed.is_geographic else "",
        "ellipsoidacronym": "",
        "geographicflag": "true" if parsed.is_geographic else "false",
    }
    elements = []
    for tag, text in values.items():
        element = ET.Element(tag)
        element.text = text
        elements.append(element)
    return elements


# -- vector styles: QGIS 3 single-symbol and categorised renderers --------------------------

def _symbol(name: str, kind: str, symbol_layer: str, options: dict[str, str]) -> ET.Element:
    symbol = ET.Element("symbol", {"type": kind, "name": name, "alpha": "1",
                                   "clip_to_extent": "1", "force_rhr": "0"})
    layer = ET.SubElement(symbol, "layer", {"class": symbol_layer, "enabled": "1",
                                            "locked": "0", "pass": "0"})
    option_map = ET.SubElement(layer, "Option", {"type": "Map"})
    for key, value in options.items():
        ET.SubElement(option_map, "Option", {"type": "QString", "name": key, "value": value})
    for key, value in options.items():  # QGIS before 3.26 also wrote (and reads) these
        ET.SubElement(layer, "prop", {"k": key, "v": value})
    return symbol


def _fill(name: str, fill: str | None, outline: str, fill_alpha: int,
          outline_width_mm: float) -> ET.Element:
    return _symbol(name, "fill", "SimpleFill", {
        "color": rgba(fill or "#000000", fill_alpha if fill else 0),
        "style": "solid" if fill else "no",
        "outline_color": rgba(outline), "outline_style": "solid",
        "outline_width": f"{outline_width_mm:g}", "outline_width_unit": "MM",
        "joinstyle": "bevel",
    })


def _vector_style(renderer: ET.Element, labels_field: str | None = None) -> str:
    qgis = ET.Element("qgis", {"version": QGIS_VERSION, "styleCategories": "AllStyleCategories",
                               "labelsEnabled": "1" if labels_field else "0"})
    qgis.append(renderer)
    ET.SubElement(renderer, "rotation")
    ET.SubElement(renderer, "sizescale")
    if labels_field:  # a name beside each feature
        labeling = ET.SubElement(qgis, "labeling", {"type": "simple"})
        settings = ET.SubElement(labeling, "settings", {"calloutType": "simple"})
        ET.SubElement(settings, "text-style", {
            "fieldName": labels_field, "isExpression": "0", "fontSize": "9",
            "fontSizeUnit": "Point", "textColor": "0,0,0,255", "namedStyle": "Regular"})
        ET.SubElement(settings, "text-buffer", {
            "bufferDraw": "1", "bufferSize": "0.8", "bufferSizeUnits": "MM",
            "bufferColor": "255,255,255,255"})
        ET.SubElement(settings, "placement", {"placement": "6", "dist": "1.5",
                                              "distUnits": "MM"})
        ET.SubElement(settings, "rendering", {"obstacle": "1", "scaleVisibility": "0"})
    ET.SubElement(qgis, "blendMode").text = "0"
    ET.SubElement(qgis, "layerOpacity").text = "1"
    return ET.tostring(qgis, encoding="unicode")


def _single(symbol: ET.Element) -> ET.Element:
    renderer = ET.Element("renderer-v2", {"type": "singleSymbol", "forceraster": "0",
                                          "symbollevels": "0", "enableorderby": "0"})
    ET.SubElement(renderer, "symbols").append(symbol)
    return renderer


def fill_style(outline: str, fill: str | None = None, fill_alpha: int = 255,
               outline_width_mm: float = 0.4, labels_field: str | None = None) -> str:
    """A polygon style: ``outline`` colour (hex) and a ``fill`` colour, or none (hollow),
    labelled by ``labels_field``."""
    return _vector_style(_single(_fill("0", fill, outline, fill_alpha, outline_width_mm)),
                         labels_field)


def marker_style(colour: str, size_mm: float = 3.0, shape: str = "triangle",
                 labels_field: str | None = None) -> str:
    """A point style: one marker ``shape`` of ``colour``, labelled by ``labels_field``."""
    symbol = _symbol("0", "marker", "SimpleMarker", {
        "name": shape, "color": rgba(colour), "outline_color": "35,35,35,255",
        "outline_style": "solid", "outline_width": "0.3", "outline_width_unit": "MM",
        "size": f"{size_mm:g}", "size_unit": "MM", "angle": "0",
    })
    return _vector_style(_single(symbol), labels_field)


def categorized_fill_style(field: str, classes: Sequence[tuple[int | str, str, str]],
                           fill_alpha: int = 160) -> str:
    """A polygon style by the value of ``field``: ``classes`` are (value, hex colour, label)."""
    renderer = ET.Element("renderer-v2", {"type": "categorizedSymbol", "attr": field,
                                          "forceraster": "0", "symbollevels": "0",
                                          "enableorderby": "0"})
    categories = ET.SubElement(renderer, "categories")
    symbols = ET.SubElement(renderer, "symbols")
    for index, (value, colour, label) in enumerate(classes):
        ET.SubElement(categories, "category", {"render": "true", "symbol": str(index),
                                               "value": str(value), "label": label})
        symbols.append(_fill(str(index), colour, colour, fill_alpha, 0.26))
    return _vector_style(renderer)
