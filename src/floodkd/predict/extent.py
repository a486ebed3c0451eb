"""Flood extent and flood likelihood: the probability map turned into classes a GIS reads.

From the probability and uncertainty COGs of one scenario (as ``write_scenario_maps`` wrote
them) and the cube's ``elevation_m``, three products are written beside them:

- ``flood_extent_<scenario>.tif``: uint8 classes (``EXTENT_CLASSES``) with a GDAL colour
  table and a paletted QGIS style; nodata 255 where the probability map is nodata.
- ``flood_extent_<scenario>.gpkg``: the flood class vectorised, layer ``flood``: one polygon
  per 4-connected patch with ``area_m2``, ``p_mean``, ``p_max``, ``scenario``, ``datetime``.
- ``flood_likelihood_<scenario>.tif``: uint8 round(100 P) in percent; nodata 255.

The class rule (first match wins): nodata where P is nodata; sea where the DEM is at or below
sea level (``floodkd.align.terrain.sea_mask``); reference water where the region's reference
water layer (``floodkd reference-water``: permanent water, as the Copernicus Global Flood
Monitoring service keeps it apart from flood) is 1; low confidence where the ``std`` of P is
at or above ``predict.extent.low_confidence_std``; flood where P >= ``predict.extent.threshold``;
dry otherwise. The probability map stays P(water): only the classes tell permanent water from
flood. Without a reference water layer no pixel is class 2.

The rasters are computed block row by block row; the polygons need the whole flood mask
and probability at once (one uint8 and one float32 array of the grid).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from affine import Affine
from rasterio.features import shapes
from rasterio.windows import Window
from scipy import ndimage
from shapely.geometry import shape as to_shape

from floodkd.align.terrain import SEA_LEVEL_M, sea_mask
from floodkd.atomic import atomic_path
from floodkd.errors import InputError
from floodkd.predict.cog import BYTE_NODATA, BandSpec, cog_band_writer
from floodkd.predict.style import paletted_qml, write_qml

__all__ = [
    "DRY", "FLOOD", "REFERENCE_WATER", "SEA", "LOW_CONFIDENCE", "NODATA",
    "EXTENT_CLASSES", "POLYGON_COLUMNS", "ExtentSettings", "ExtentInputs", "ExtentFiles",
    "extent_classes", "likelihood_percent", "flood_polygons", "write_extent_maps",
]

DRY, FLOOD, REFERENCE_WATER, SEA, LOW_CONFIDENCE = 0, 1, 2, 3, 4
NODATA = BYTE_NODATA  # of both uint8 layers
# class value -> (name, colour): the colour table, the QGIS style and the tags
EXTENT_CLASSES: dict[int, tuple[str, str]] = {
    DRY: ("dry", "#f5f1e6"),
    FLOOD: ("flood", "#0570b0"),
    # teal, off the blue probability ramp, so that the probability quicklook can draw them
    # over it (floodkd.predict.quicklook.ClassOverlay) without reading as probabilities
    REFERENCE_WATER: ("reference water", "#01665e"),
    SEA: ("sea", "#80cdc1"),
    LOW_CONFIDENCE: ("low confidence", "#fdae61"),
}
POLYGON_COLUMNS = ("area_m2", "p_mean", "p_max", "scenario", "datetime")
POLYGON_LAYER = "flood"
LIKELIHOOD_BAND = BandSpec("flood_likelihood", "%", "P(flood) in percent, round(100 P)")


@dataclass(frozen=True)
class ExtentSettings:
    """``predict.extent`` of the config: the flood threshold on P and the std from which a
    pixel is low confidence."""

    threshold: float
    low_confidence_std: float

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ExtentSettings:
        """From a loaded config (``load_config`` has filled the schema's defaults)."""
        extent = config["predict"]["extent"]
        return cls(float(extent["threshold"]), float(extent["low_confidence_std"]))

    def rule(self) -> str:
        """The class rule in words (written into the tags)."""
        return (f"first match: nodata where P is nodata; sea where the DEM <= {SEA_LEVEL_M:g} m; "
                "reference water where the reference water layer is 1; "
                f"low confidence where std >= {self.low_confidence_std:g}; flood where P >= "
                f"{self.threshold:g}; dry otherwise")


@dataclass(frozen=True)
class ExtentInputs:
    """What the extent needs beside a scenario's maps: the cube's ``elevation_m`` (y, x; numpy
    or a lazy xarray DataArray on the maps' grid), the settings and the optional reference
    water COG (``floodkd reference-water``)."""

    elevation_m: Any
    settings: ExtentSettings
    reference_water: str | Path | None = None


@dataclass(frozen=True)
class ExtentFiles:
    """The files written for one scenario's extent."""

    extent: Path
    polygons: Path
    likelihood: Path
    style: Path


def extent_classes(
    probability: np.ndarray, std: np.ndarray, sea: np.ndarray, settings: ExtentSettings,
    reference_water: np.ndarray | None = None,
) -> np.ndarray:
    """uint8 extent classes of pixels with P(flood) ``probability`` (NaN = nodata), its
    ``std``, the boolean ``sea`` mask and the optional boolean ``reference_water`` mask, all
    of one shape (see the module's rule)."""
    with np.errstate(invalid="ignore"):  # NaN compares False
        classes = np.where(probability >= settings.threshold, FLOOD, DRY).astype(np.uint8)
        classes[std >= settings.low_confidence_std] = LOW_CONFIDENCE
    if reference_water is not None:
        classes[reference_water] = REFERENCE_WATER
    classes[sea] = SEA
    classes[~np.isfinite(probability)] = NODATA
    return classes


def likelihood_percent(probability: np.ndarray) -> np.ndarray:
    """P(flood) as uint8 percent, round(100 P) (ties to even, as Python's round); NaN -> 255."""
    finite = np.isfinite(probability)
    percent = np.rint(100.0 * np.where(finite, probability, 0.0))
    return np.where(finite, percent, NODATA).astype(np.uint8)


def flood_polygons(
    classes: np.ndarray, probability: np.ndarray, transform: Affine
) -> tuple[list[Any], dict[str, np.ndarray]]:
    """The flood pixels of ``classes`` as polygons in the grid CRS of ``transform``: one per
    4-connected patch (holes kept), with its ``area_m2`` and the ``p_mean`` and ``p_max`` of
    ``probability`` over its pixels. Returns (geometries, {column: values})."""
    flood = classes == FLOOD
    labels, count = ndimage.label(flood)  # 4-connected, as rasterio's shapes
    patches = np.arange(1, count + 1)
    geometries: list[Any] = [None] * count
    for geometry, label in shapes(labels.astype(np.int32, copy=False), mask=flood,
                                   transform=transform):
        geometries[int(label) - 1] = to_shape(geometry)
    pixel_area = abs(transform.a * transform.e - transform.b * transform.d)
    # ndimage reads only the labelled (flood) pixels, whose probability is finite
    columns = {
        "area_m2": ndimage.sum_labels(flood, labels, patches).astype(np.float64) * pixel_area,
        "p_mean": np.asarray(ndimage.mean(probability, labels, patches), dtype=np.float32),
        "p_max": np.asarray(ndimage.maximum(probability, labels, patches), dtype=np.float32),
    }
    return geometries, columns


def write_extent_maps(
    probability_path: str | Path,
    uncertainty_path: str | Path,
    elevation_m: Any,
    settings: ExtentSettings,
    reference_water: str | Path | None = None,
) -> ExtentFiles:
    """Write a scenario's extent COG (+ ``.qml``), flood polygons and likelihood COG beside
    its probability COG, from that COG, the ``std`` band of the uncertainty COG, the
    cube's ``elevation_m`` (y, x; a numpy array or a lazy xarray DataArray on the same grid)
    and, when given, the region's reference water COG (``floodkd reference-water``; value 1
    is class 2). The scenario and its date come from the probability COG's tags."""
    probability_path, uncertainty_path = Path(probability_path), Path(uncertainty_path)
    out_dir = probability_path.parent
    with rasterio.open(probability_path) as src:
        profile, tags = src.profile, src.tags()
        shape, blocksize = (src.height, src.width), src.block_shapes[0][0]
    for key in ("SCENARIO", "SCENARIO_DATETIME"):
        if key not in tags:
            raise ValueError(f"{probability_path}: no {key} tag; write it with "
                             "floodkd.predict.write_scenario_maps")
    if tuple(elevation_m.shape) != shape:
        raise ValueError(f"elevation_m has shape {tuple(elevation_m.shape)}, the maps "
                         f"{shape}: pass the cube of the region the maps were made on")
    scenario = tags["SCENARIO"]
    paths = {kind: out_dir / f"flood_{kind}_{scenario}.tif" for kind in ("extent", "likelihood")}
    layer = {"crs": profile["crs"].to_wkt(), "transform": profile["transform"], "shape": shape,
             "blocksize": blocksize}
    extent_tags = _extent_tags(tags, settings, reference_water)
    # the polygons need the whole grid at once: kept from the blocks, not read back
    all_classes = np.empty(shape, np.uint8)
    all_probability = np.empty(shape, np.float32)
    colours = {value: colour for value, (_, colour) in EXTENT_CLASSES.items()}
    with (
        _reference_reader(reference_water, profile) as reference,
        cog_band_writer(paths["extent"], [_extent_band(settings)], tags=extent_tags,
                        dtype="uint8", colours=colours, **layer) as extent,
        cog_band_writer(paths["likelihood"], [LIKELIHOOD_BAND], tags=tags, dtype="uint8",
                        **layer) as likelihood,
    ):
        for window, probability, std in _read_blocks(probability_path, uncertainty_path,
                                                     blocksize):
            rows = slice(window.row_off, window.row_off + window.height)
            sea = sea_mask(np.asarray(elevation_m[rows], dtype=np.float32))
            permanent = None if reference is None else reference.read(1, window=window) == 1
            classes = extent_classes(probability, std, sea, settings, permanent)
            extent.write_rows(window.row_off, {"flood_extent": classes})
            all_classes[rows], all_probability[rows] = classes, probability
            likelihood.write_rows(window.row_off,
                                  {"flood_likelihood": likelihood_percent(probability)})
    style = write_qml(out_dir / f"flood_extent_{scenario}.qml", paletted_qml(1, [
        (value, colour, name) for value, (name, colour) in EXTENT_CLASSES.items()]))
    polygons = _write_polygons(all_classes, all_probability, layer["transform"], profile["crs"],
                               out_dir / f"flood_extent_{scenario}.gpkg", scenario,
                               pd.Timestamp(tags["SCENARIO_DATETIME"]))
    return ExtentFiles(paths["extent"], polygons, paths["likelihood"], style)


def _read_blocks(
    probability_path: Path, uncertainty_path: Path, rows: int
) -> Iterator[tuple[Window, np.ndarray, np.ndarray]]:
    """(window, P, std) for bands of ``rows`` rows across the width; nodata -> NaN."""
    with rasterio.open(probability_path) as prob, rasterio.open(uncertainty_path) as unc:
        if "std" not in unc.descriptions:
            raise ValueError(f"{uncertainty_path}: no band named 'std' (bands "
                             f"{unc.descriptions}); write it with write_scenario_maps")
        std_band = unc.descriptions.index("std") + 1
        for row_off in range(0, prob.height, rows):
            window = Window(0, row_off, prob.width, min(rows, prob.height - row_off))
            yield (window,
                   prob.read(1, window=window, masked=True).filled(np.nan),
                   unc.read(std_band, window=window, masked=True).filled(np.nan))


@contextmanager
def _reference_reader(
    path: str | Path | None, profile: dict[str, Any]
) -> Iterator[rasterio.io.DatasetReader | None]:
    """The reference water COG open for reading (None without one), refused unless it lies on
    the grid of the maps (``profile``)."""
    if path is None:
        yield None
        return
    with rasterio.open(path) as reference:
        if (reference.crs != profile["crs"]
                or (reference.height, reference.width) != (profile["height"], profile["width"])
                or not reference.transform.almost_equals(profile["transform"])):
            raise InputError(path, "the reference water layer is not on the grid of the maps",
                             "rerun `floodkd reference-water` for this region with this config")
        yield reference


def _extent_tags(tags: dict[str, str], settings: ExtentSettings,
                 reference_water: str | Path | None) -> dict[str, str]:
    classes = {f"CLASS_{value}": name for value, (name, _) in EXTENT_CLASSES.items()}
    return {**tags, **classes, f"CLASS_{NODATA}": "nodata",
            "THRESHOLD": f"{settings.threshold:g}",
            "LOW_CONFIDENCE_STD": f"{settings.low_confidence_std:g}",
            "CLASS_RULE": settings.rule(),
            "REFERENCE_WATER": (str(reference_water) if reference_water is not None else
                                "none: no reference water layer given, so no pixel is class 2")}


def _extent_band(settings: ExtentSettings) -> BandSpec:
    classes = ", ".join(f"{value} {name}" for value, (name, _) in EXTENT_CLASSES.items())
    return BandSpec("flood_extent", "class", f"flood extent classes: {classes}, {NODATA} "
                    f"nodata; {settings.rule()}", overview_resampling="mode")


def _write_polygons(
    classes: np.ndarray, probability: np.ndarray, transform: Affine, crs: Any, final: Path,
    scenario: str, when: pd.Timestamp,
) -> Path:
    geometries, columns = flood_polygons(classes, probability, transform)
    count = len(geometries)
    when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
    frame = gpd.GeoDataFrame(
        {**columns, "scenario": pd.Series([scenario] * count, dtype=object),
         "datetime": pd.Series([when] * count, dtype="datetime64[ns, UTC]")},
        geometry=gpd.GeoSeries(geometries, crs=crs),
    )
    with atomic_path(final) as tmp:
        frame.to_file(tmp, layer=POLYGON_LAYER, driver="GPKG", geometry_type="Polygon")
    return final
