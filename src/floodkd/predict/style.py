"""QGIS layer styles (.qml) so a map opens styled: a pseudocolour ramp over a fixed range, or
a palette of classes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from xml.etree import ElementTree as ET

from floodkd.atomic import atomic_path

__all__ = ["PROBABILITY_RAMP", "UNCERTAINTY_RAMP", "hex_rgb", "pseudocolor_qml", "paletted_qml",
           "qualitative_colours", "write_qml"]

# (fraction of the range, hex colour): light dry land -> deep water blue (ColorBrewer-like)
PROBABILITY_RAMP: tuple[tuple[float, str], ...] = (
    (0.0, "#f7fbff"), (0.2, "#c6dbef"), (0.4, "#6baed6"),
    (0.6, "#2171b5"), (0.8, "#08519c"), (1.0, "#08306b"),
)
# low uncertainty pale yellow -> high uncertainty dark red
UNCERTAINTY_RAMP: tuple[tuple[float, str], ...] = (
    (0.0, "#ffffcc"), (0.25, "#fed976"), (0.5, "#fd8d3c"), (0.75, "#e31a1c"), (1.0, "#800026"),
)

# distinct colours for unordered classes (matplotlib's tab20 then tab20b), as hex. tab20's
# grey pair goes last: the commonest flag sums (14, 15) would be grey beside grey nodata.
QUALITATIVE: tuple[str, ...] = (
    "#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896",
    "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#bcbd22", "#dbdb8d",
    "#17becf", "#9edae5", "#393b79", "#5254a3", "#6b6ecf", "#9c9ede", "#637939", "#8ca252",
    "#b5cf6b", "#cedb9c", "#8c6d31", "#bd9e39", "#e7ba52", "#e7cb94", "#7f7f7f", "#c7c7c7",
)


def qualitative_colours(count: int) -> tuple[str, ...]:
    """``count`` distinct hex colours for classes without an order (at most 32)."""
    if not 0 <= count <= len(QUALITATIVE):
        raise ValueError(f"{count} colours asked, {len(QUALITATIVE)} available")
    return QUALITATIVE[:count]


def hex_rgb(colour: str) -> tuple[int, int, int]:
    """(red, green, blue) 0..255 of a ``#rrggbb`` colour, the form every colour here takes."""
    if len(colour) != 7 or colour[0] != "#":
        raise ValueError(f"colour {colour!r} is not of the form #rrggbb")
    try:
        return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)
    except ValueError:
        raise ValueError(f"colour {colour!r} is not of the form #rrggbb") from None


def rgba(hex_colour: str, alpha: int = 255) -> str:
    """"r,g,b,a" of a #rrggbb colour, as QGIS styles write colours."""
    return ",".join(map(str, (*hex_rgb(hex_colour), alpha)))


def pseudocolor_qml(
    band: int,
    minimum: float,
    maximum: float,
    ramp: Sequence[tuple[float, str]] = PROBABILITY_RAMP,
    label_precision: int = 2,
) -> str:
    """A QGIS 3 style (singlebandpseudocolor, interpolated ramp) for ``band`` over min..max."""
    span = maximum - minimum
    qgis = ET.Element("qgis", {"version": "3.28.0", "styleCategories": "AllStyleCategories"})
    pipe = ET.SubElement(qgis, "pipe")
    renderer = ET.SubElement(pipe, "rasterrenderer", {
        "type": "singlebandpseudocolor", "band": str(band), "opacity": "1", "alphaBand": "-1",
        "classificationMin": repr(minimum), "classificationMax": repr(maximum),
        "nodataColor": "",
    })
    ET.SubElement(renderer, "rasterTransparency")
    min_max = ET.SubElement(renderer, "minMaxOrigin")
    for tag, text in (("limits", "None"), ("extent", "WholeRaster"),
                      ("statAccuracy", "Estimated")):
        ET.SubElement(min_max, tag).text = text
    shader = ET.SubElement(ET.SubElement(renderer, "rastershader"), "colorrampshader", {
        "colorRampType": "INTERPOLATED", "classificationMode": "1", "clip": "0",
        "minimumValue": repr(minimum), "maximumValue": repr(maximum),
        "labelPrecision": str(label_precision),
    })
    ramp_element = ET.SubElement(shader, "colorramp", {"type": "gradient", "name": "[source]"})
    options = ET.SubElement(ramp_element, "Option", {"type": "Map"})
    stops = ":".join(f"{fraction};{rgba(colour)}" for fraction, colour in ramp[1:-1])
    for name, value in (("color1", rgba(ramp[0][1])), ("color2", rgba(ramp[-1][1])),
                        ("discrete", "0"), ("rampType", "gradient"), ("stops", stops)):
        ET.SubElement(options, "Option", {"type": "QString", "name": name, "value": value})
    for fraction, colour in ramp:
        value = minimum + fraction * span
        ET.SubElement(shader, "item", {
            "alpha": "255", "value": repr(value), "label": f"{value:.{label_precision}f}",
            "color": colour,
        })
    return _finish(qgis, pipe)


def paletted_qml(band: int, classes: Sequence[tuple[int, str, str]]) -> str:
    """A QGIS 3 style (paletted, one colour per value) for ``band``: ``classes`` are
    (value, hex colour, label); values not listed (e.g. nodata) are not drawn."""
    qgis = ET.Element("qgis", {"version": "3.28.0", "styleCategories": "AllStyleCategories"})
    pipe = ET.SubElement(qgis, "pipe")
    renderer = ET.SubElement(pipe, "rasterrenderer", {
        "type": "paletted", "band": str(band), "opacity": "1", "alphaBand": "-1",
        "nodataColor": "",
    })
    ET.SubElement(renderer, "rasterTransparency")
    palette = ET.SubElement(renderer, "colorPalette")
    for value, colour, label in classes:
        ET.SubElement(palette, "paletteEntry", {
            "value": str(value), "color": colour, "alpha": "255", "label": label,
        })
    return _finish(qgis, pipe)


def _finish(qgis: ET.Element, pipe: ET.Element) -> str:
    """Add the pipe's neutral filters and serialise the style."""
    ET.SubElement(pipe, "brightnesscontrast", {"brightness": "0", "contrast": "0", "gamma": "1"})
    ET.SubElement(pipe, "huesaturation", {"saturation": "0", "grayscaleMode": "0",
                                          "colorizeOn": "0"})
    ET.SubElement(pipe, "rasterresampler", {"maxOversampling": "2"})
    ET.SubElement(qgis, "blendMode").text = "0"
    ET.indent(qgis)
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(
        qgis, encoding="unicode"
    ) + "\n"


def write_qml(path: str | Path, qml: str) -> Path:
    """Write a style file atomically; QGIS picks it up when it sits beside the raster."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(qml, encoding="utf-8")
    return path
