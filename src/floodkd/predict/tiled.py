"""Streaming tiled inference: tiles -> smooth blending -> finished bands of rows.

The engine knows nothing about models or files. It asks a ``predict_window`` callable for one
tile at a time, adds the tile's weighted sample moments into an accumulator that holds only
one tile's height of rows across the region's width, and hands every band of rows that no
later tile can touch to the caller, who writes it to disk. Memory is therefore
O(tile_px x region width), never O(region), and never O(samples x region).

A model sees less context at a tile's edge than inside it (convolutions pad there), so its
outermost pixels are the least trustworthy. Where a neighbouring tile covers them, the
outer quarter of the overlap gets weight 0 and the blend ramps over the rest: every pixel
inside the region is then taken from tiles that saw at least that much context around it, as
one large tile would, and a region written as many tiles matches it. Only the region's own
border keeps a tile's edge pixels, as one large tile must too.

A predictor whose model pads (a CNN) should not show the region's border as an edge either:
``context_window`` says what to read around a tile (the grid where it goes on, a mirror image
of it beyond the grid's edge) so that the model's own padding falls outside the tile.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pystac
from affine import Affine
from odc.geo.geom import Geometry, box
from rasterio.features import geometry_mask
from shapely.geometry.base import BaseGeometry

from floodkd import __version__
from floodkd.predict.blending import Window, ramp_1d, tile_windows
from floodkd.predict.cog import BandSpec, cog_band_writer
from floodkd.predict.extent import (
    EXTENT_CLASSES,
    REFERENCE_WATER,
    SEA,
    ExtentFiles,
    ExtentInputs,
    write_extent_maps,
)
from floodkd.predict.quicklook import ClassOverlay, FlagPanel, RampPanel, write_quicklook
from floodkd.predict.stac import map_item, write_item
from floodkd.predict.style import (
    PROBABILITY_RAMP,
    UNCERTAINTY_RAMP,
    paletted_qml,
    pseudocolor_qml,
    qualitative_colours,
    write_qml,
)
from floodkd.predict.uncertainty import (
    MOMENT_NAMES,
    UNCERTAINTY_BANDS,
    UncertaintyMaps,
    statistics_from_moments,
    tile_moments,
)

__all__ = [
    "PredictWindow",
    "ContextWindow",
    "context_window",
    "mirror_pad",
    "CONTEXT_CELLS",
    "RowBand",
    "predict_row_bands",
    "count_tiles",
    "INPUT_FLAGS",
    "PROBABILITY_BANDS",
    "UNCERTAINTY_BANDS",
    "INPUTS_USED_BANDS",
    "inputs_used_label",
    "MapProvenance",
    "MapFiles",
    "write_scenario_maps",
]

# bit flags of the inputs_used band: what each pixel's prediction rests on
INPUT_FLAGS = {"optical_clear": 1, "gauge": 2, "gcm": 4, "terrain": 8, "radar": 16}

PROBABILITY_BANDS = (
    BandSpec("flood_probability", "1", "calibrated probability of flooding (0..1)"),
)
# its own uint8 file: a GeoTIFF holds one data type, and flags are no floats
INPUTS_USED_BANDS = (
    BandSpec("inputs_used", "bit flags",
             "inputs the prediction rests on, sum of: "
             + ", ".join(f"{bit} {name}" for name, bit in INPUT_FLAGS.items()),
             overview_resampling="nearest"),
)
# the value range each band's style and quicklook spans: what the band can hold
BAND_RANGES = {"flood_probability": (0.0, 1.0), "std": (0.0, 0.5),
               "entropy": (0.0, float(np.log(2))), "mutual_information": (0.0, float(np.log(2)))}


def inputs_used_label(value: int) -> str:
    """The names of the inputs whose bits are set in ``value``, e.g. 'gauge + terrain'."""
    names = [name for name, bit in INPUT_FLAGS.items() if value & bit]
    return " + ".join(names) if names else "none"

# predict_window(row_off, col_off, height, width) -> (samples (S, h, w) of P(flood) in [0, 1],
# NaN where no prediction is possible; inputs_used (h, w) integer bit flags)
PredictWindow = Callable[[int, int, int, int], tuple[np.ndarray, np.ndarray]]


# context read around each tile, in cells of the student's coarsest grid (2^depth px): 16 px
# at depth 3. The convolutions repeat the edge pixel, yet a pixel's P still depends on its
# neighbours out to the receptive field; real (or mirrored) context keeps a tile's border
# from being predicted on made-up surroundings (on smooth random inputs the border step fell
# from 0.005-0.010 without context to 0.003-0.005 with it)
CONTEXT_CELLS = 2


@dataclass(frozen=True)
class ContextWindow:
    """What to read around a tile: ``read`` (row_off, col_off, height, width) is the part of
    the grid, ``pad`` ((top, bottom), (left, right)) the pixels to add around it by mirroring
    (beyond the grid's edge, and up to a multiple of the model's stride); the tile starts at
    row and column ``margin`` (the one asked of ``context_window``) of the padded input."""

    read: tuple[int, int, int, int]
    pad: tuple[tuple[int, int], tuple[int, int]]


def context_window(row_off: int, col_off: int, height: int, width: int,
                   shape: tuple[int, int], margin: int, multiple: int = 1) -> ContextWindow:
    """The tile with ``margin`` px of context on every side, read from the grid of ``shape``
    where it has pixels and mirrored beyond its edge, padded at the bottom and right to a
    multiple of ``multiple`` px. With ``margin`` a multiple of ``multiple`` every tile pixel
    keeps its phase against the model's strides."""

    def along(offset: int, length: int, size: int) -> tuple[int, int, int, int]:
        start, stop = max(offset - margin, 0), min(offset + length + margin, size)
        before = margin - (offset - start)
        after = margin - (stop - offset - length)
        after += -(before + stop - start + after) % multiple
        return start, stop - start, before, after

    r0, h, top, bottom = along(row_off, height, shape[0])
    c0, w, left, right = along(col_off, width, shape[1])
    return ContextWindow((r0, c0, h, w), ((top, bottom), (left, right)))


def mirror_pad(image: np.ndarray, pad: tuple[tuple[int, int], tuple[int, int]]) -> np.ndarray:
    """``image`` (..., H, W) padded by mirroring its last two axes (the edge pixel repeated,
    numpy's "symmetric"; pads wider than the image mirror again)."""
    return np.pad(image, ((0, 0),) * (image.ndim - 2) + tuple(pad), mode="symmetric")


@dataclass(frozen=True)
class RowBand:
    """Finished rows ``row_off .. row_off + n`` across the whole width (NaN = no prediction)."""

    row_off: int
    maps: UncertaintyMaps
    inputs_used: np.ndarray  # (n, width) uint16 bit flags, 0 where no prediction

    @property
    def height(self) -> int:
        return int(self.inputs_used.shape[0])


def count_tiles(shape: tuple[int, int], tile_px: int, overlap_px: int) -> int:
    """How many tiles ``predict_row_bands`` will request (for progress bars)."""
    return sum(len(row) for row in tile_windows(shape, tile_px, overlap_px))


def predict_row_bands(
    shape: tuple[int, int],
    predict_window: PredictWindow,
    tile_px: int,
    overlap_px: int,
    on_tile: Callable[[Window], None] | None = None,
) -> Iterator[RowBand]:
    """Run ``predict_window`` over the grid tile by tile and yield blended bands of rows.

    ``shape`` is the region grid's (rows, cols). Rows are yielded top to bottom, each exactly
    once, each band at most ``tile_px`` rows high. ``on_tile`` is called after every tile.
    """
    rows, cols = shape
    tile_rows = tile_windows(shape, tile_px, overlap_px)
    buffer_rows = tile_rows[0][0].height
    # weighted sums of per-tile moments, the weight sum and the OR of input flags
    moment_sums = np.zeros((len(MOMENT_NAMES), buffer_rows, cols), dtype=np.float64)
    weight_sum = np.zeros((buffer_rows, cols), dtype=np.float64)
    flags = np.zeros((buffer_rows, cols), dtype=np.uint16)
    weights_cache: dict[tuple[bool | int, ...], np.ndarray] = {}
    top = 0  # the grid row that buffer row 0 holds

    def finish(n: int) -> RowBand:
        """Finalise the first ``n`` buffered rows and shift the buffer up by ``n``."""
        band = _finalise(top, moment_sums[:, :n], weight_sum[:n], flags[:n])
        for array in (moment_sums, weight_sum, flags):
            _shift_rows_up(array, n)
        return band

    for tile_row in tile_rows:
        row_off = tile_row[0].row_off
        if row_off > top:  # rows above this tile row are complete: no later tile reaches them
            yield finish(row_off - top)
            top = row_off
        for window in tile_row:
            samples, inputs_used = predict_window(
                window.row_off, window.col_off, window.height, window.width
            )
            samples, inputs_used = _check_prediction(window, samples, inputs_used)
            key = _neighbour_sides(window, shape) + (window.height, window.width)
            if key not in weights_cache:
                weights_cache[key] = _tile_weights(key, overlap_px)
            valid = np.isfinite(samples).all(axis=0)
            r0 = window.row_off - top
            rows_slice = slice(r0, r0 + window.height)
            cols_slice = slice(window.col_off, window.col_off + window.width)
            if valid.all():  # the usual tile: no masking copies
                weight = weights_cache[key]
                moments = tile_moments(samples)
                flags[rows_slice, cols_slice] |= inputs_used.astype(np.uint16, copy=False)
            else:
                weight = np.where(valid, weights_cache[key], 0.0)
                moments = _tile_moments_valid(samples, valid)
                flags[rows_slice, cols_slice] |= np.where(valid, inputs_used, 0).astype(np.uint16)
            moments *= weight
            moment_sums[:, rows_slice, cols_slice] += moments
            weight_sum[rows_slice, cols_slice] += weight
            # let go of this tile's samples before the next tile is predicted: S x tile px,
            # the largest array here (240 samples of a climate tile: 63 MB)
            del samples, inputs_used, moments, valid
            if on_tile is not None:
                on_tile(window)
    last = rows - top
    yield _finalise(top, moment_sums[:, :last], weight_sum[:last], flags[:last])


def _neighbour_sides(window: Window, shape: tuple[int, int]) -> tuple[bool, bool, bool, bool]:
    """Whether the window has grid beyond its top, bottom, left and right edge."""
    rows, cols = shape
    return (window.row_off > 0, window.row_off + window.height < rows,
            window.col_off > 0, window.col_off + window.width < cols)


def _tile_weights(key: tuple[bool | int, ...], overlap_px: int) -> np.ndarray:
    """The blending weight of a tile: 0 over the outer quarter of the overlap on each side
    where a neighbour covers it (see the module docstring), a Hann ramp over the rest."""
    top, bottom, left, right, height, width = key
    margin = overlap_px // 4

    def along(length: int, before: bool, after: bool) -> np.ndarray:
        lo, hi = margin * before, margin * after
        weights = np.zeros(length, dtype=np.float64)
        weights[lo : length - hi] = ramp_1d(length - lo - hi, overlap_px - margin)
        return weights

    return np.outer(along(height, top, bottom), along(width, left, right))


def _shift_rows_up(array: np.ndarray, n: int) -> None:
    """Move rows (second-to-last axis) up by ``n`` in place and zero the rows freed below."""
    height = array.shape[-2]
    if n < height:
        array[..., : height - n, :] = array[..., n:, :].copy()
    array[..., max(height - n, 0) :, :] = 0


def _tile_moments_valid(samples: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Tile moments with invalid pixels set to 0 (their weight is 0 too)."""
    return tile_moments(np.where(valid, samples, 0.0))


def _finalise(
    row_off: int, moment_sums: np.ndarray, weight_sum: np.ndarray, flags: np.ndarray
) -> RowBand:
    covered = weight_sum > 0
    safe_weight = np.where(covered, weight_sum, 1.0)
    maps = statistics_from_moments(moment_sums / safe_weight)
    nan = np.float64(np.nan)
    maps = UncertaintyMaps(
        *(np.where(covered, values, nan).astype(np.float32) for values in (
            maps.probability, maps.std, maps.entropy_nats, maps.mutual_information_nats
        ))
    )
    return RowBand(row_off, maps, np.where(covered, flags, 0).astype(np.uint16))


def _check_prediction(
    window: Window, samples: np.ndarray, inputs_used: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The callable's output as arrays of the window's size, or a ValueError saying what is off.
    Float samples keep their dtype (the moments sum them in float64)."""
    samples = np.asarray(samples)
    if not np.issubdtype(samples.dtype, np.floating):
        samples = samples.astype(np.float64)
    inputs_used = np.asarray(inputs_used)
    expected = (window.height, window.width)
    if samples.ndim != 3 or samples.shape[1:] != expected or samples.shape[0] < 1:
        raise ValueError(f"predict_window{window} returned samples of shape {samples.shape}, "
                         f"expected (S, {expected[0]}, {expected[1]})")
    if inputs_used.shape != expected:
        raise ValueError(f"predict_window{window} returned inputs_used of shape "
                         f"{inputs_used.shape}, expected {expected}")
    if (samples < 0.0).any() or (samples > 1.0).any():  # NaN compares False: no prediction
        raise ValueError(f"predict_window{window} returned probabilities outside [0, 1]")
    return samples, inputs_used


class GridLike(Protocol):
    """What the writer needs of a region grid (``floodkd.grid.RegionGrid`` has it)."""

    @property
    def crs(self) -> Any: ...
    @property
    def transform(self) -> Affine: ...
    @property
    def shape(self) -> tuple[int, int]: ...


@dataclass(frozen=True)
class MapProvenance:
    """Where a map comes from; written into the COG tags and the STAC Item."""

    region: str
    scenario: str
    scenario_datetime: datetime  # the date the scenario's inputs describe (UTC)
    model_sha256: str  # sha256 over the student's safetensors files
    input_files: Sequence[str]
    synthetic: bool
    extra: dict[str, str] = field(default_factory=dict)  # e.g. the scenario's water level
    # (first, last) time of the inputs the map rests on; None: the scenario's date alone
    inputs_window: tuple[datetime, datetime] | None = None


@dataclass(frozen=True)
class MapFiles:
    """Every file written for one scenario."""

    probability: Path
    uncertainty: Path
    inputs_used: Path
    styles: tuple[Path, ...]
    stac_items: tuple[Path, ...]
    quicklooks: tuple[Path, ...]
    extent: ExtentFiles | None = None  # when write_scenario_maps was given ExtentInputs


def provenance_tags(provenance: MapProvenance, created: datetime) -> dict[str, str]:
    """GeoTIFF dataset tags (strings) recording how the map was made, common to all its files."""
    return {
        "FLOODKD_VERSION": __version__,
        "REGION": provenance.region,
        "SCENARIO": provenance.scenario,
        "SCENARIO_DATETIME": provenance.scenario_datetime.isoformat(),
        "MODEL_SHA256": provenance.model_sha256,
        "INPUT_FILES": json.dumps(list(provenance.input_files)),
        "CREATED_UTC": created.isoformat(),
        "SYNTHETIC": "true" if provenance.synthetic else "false",
        **{key.upper(): value for key, value in provenance.extra.items()},
    }


# the tags and STAC fields that belong to one layer only (kind -> GeoTIFF tags)
LAYER_TAGS = {
    "probability": {},
    "uncertainty": {"ENTROPY_UNIT": "nat"},
    "inputs_used": {"INPUTS_USED_FLAGS": json.dumps(INPUT_FLAGS)},
}
LAYER_FIELDS = {
    "probability": {},
    "uncertainty": {"floodkd:entropy_unit": "nat"},
    "inputs_used": {"floodkd:inputs_used_flags": INPUT_FLAGS},
}


def stac_fields(provenance: MapProvenance) -> dict[str, Any]:
    """The ``floodkd:`` fields of a map's STAC Item, as JSON values."""
    fields: dict[str, Any] = {
        "floodkd:version": __version__,
        "floodkd:region": provenance.region,
        "floodkd:scenario": provenance.scenario,
        "floodkd:model_sha256": provenance.model_sha256,
        "floodkd:input_files": list(provenance.input_files),
        "floodkd:synthetic": provenance.synthetic,
    }
    if provenance.extra:
        fields["floodkd:scenario_settings"] = {k: str(v) for k, v in provenance.extra.items()}
    return fields


def inputs_used_bitfields() -> list[dict[str, Any]]:
    """STAC ``classification:bitfields`` of the inputs_used layer: one bit per input."""
    return [
        {"name": name, "offset": int(bit).bit_length() - 1, "length": 1,
         "description": f"the prediction rests on {name.replace('_', ' ')}",
         "classes": [{"value": 0, "name": "unused", "description": f"no {name}"},
                     {"value": 1, "name": "used", "description": f"{name} used"}]}
        for name, bit in INPUT_FLAGS.items()
    ]


def write_scenario_maps(
    grid: GridLike,
    predict_window: PredictWindow,
    out_dir: str | Path,
    provenance: MapProvenance,
    *,
    outline_lonlat: BaseGeometry | None = None,
    tile_px: int = 256,
    overlap_px: int = 32,
    blocksize: int = 512,
    on_tile: Callable[[Window], None] | None = None,
    uncertainty_bands: Sequence[BandSpec] = UNCERTAINTY_BANDS,
    extent: ExtentInputs | None = None,
) -> MapFiles:
    """Predict the whole grid tile by tile and write the scenario's maps into ``out_dir``.

    Writes ``flood_probability_<scenario>.tif``, ``flood_uncertainty_<scenario>.tif``
    (float32 COGs) and ``flood_inputs_used_<scenario>.tif`` (uint8 bit flags, nodata 255, a
    colour table), a ``.qml`` style (and one ``<name>.<band>.qml`` per uncertainty band) and a
    ``.stac.json`` Item for each, and a ``.png`` quicklook of probability and uncertainty.
    With ``extent``, also the extent, flood polygons and likelihood
    (``floodkd.predict.extent.write_extent_maps``), and the probability quicklook draws the
    extent's sea and reference water over P in their own colours.
    Pixels outside ``outline_lonlat`` (EPSG:4326; None = the whole grid) or without a
    prediction are nodata. If ``predict_window`` fails, no map exists at its final path.
    ``uncertainty_bands`` (the names of UNCERTAINTY_BANDS) may say what else the samples span.
    """
    out_dir = Path(out_dir)
    crs = _crs_text(grid.crs)
    transform, shape = grid.transform, tuple(int(n) for n in grid.shape)
    created = datetime.now(UTC).replace(microsecond=0)
    tags = provenance_tags(provenance, created)
    footprint = _footprint(crs, transform, shape, outline_lonlat)
    kinds = ("probability", "uncertainty", "inputs_used")
    names = {kind: f"flood_{kind}_{provenance.scenario}" for kind in kinds}
    paths = {kind: out_dir / f"{name}.tif" for kind, name in names.items()}
    layer_bands = {"probability": PROBABILITY_BANDS, "uncertainty": tuple(uncertainty_bands),
                   "inputs_used": INPUTS_USED_BANDS}
    flag_colours = dict(enumerate(qualitative_colours(max(INPUT_FLAGS.values()) * 2)))
    common = {"crs": crs, "transform": transform, "shape": shape, "blocksize": blocksize}
    flag_values: set[int] = set()
    with (
        cog_band_writer(paths["probability"], PROBABILITY_BANDS,
                        tags=tags | LAYER_TAGS["probability"], **common) as prob,
        cog_band_writer(paths["uncertainty"], layer_bands["uncertainty"],
                        tags=tags | LAYER_TAGS["uncertainty"], **common) as unc,
        cog_band_writer(paths["inputs_used"], INPUTS_USED_BANDS, dtype="uint8",
                        colours=flag_colours, tags=tags | LAYER_TAGS["inputs_used"],
                        **common) as used,
    ):
        for band in predict_row_bands(shape, predict_window, tile_px, overlap_px, on_tile):
            inside = _inside_mask(footprint.grid, transform, band.row_off, band.height, shape[1])
            maps = band.maps
            prob.write_rows(band.row_off, {"flood_probability": _mask(maps.probability, inside)})
            unc.write_rows(band.row_off, {
                "std": _mask(maps.std, inside),
                "entropy": _mask(maps.entropy_nats, inside),
                "mutual_information": _mask(maps.mutual_information_nats, inside),
            })
            # flags stay nodata wherever the probability is nodata
            flags = _mask(np.where(np.isfinite(maps.probability), band.inputs_used, np.nan),
                          inside)
            used.write_rows(band.row_off, {"inputs_used": flags})
            flag_values.update(int(v) for v in np.unique(flags[np.isfinite(flags)]))
    styles = _write_styles(out_dir, names, layer_bands, flag_colours, flag_values)
    extent_files = None if extent is None else write_extent_maps(
        paths["probability"], paths["uncertainty"], extent.elevation_m, extent.settings,
        extent.reference_water)
    # the uncertainty quicklook also shows what each pixel's prediction rests on
    flag_panel = FlagPanel(paths["inputs_used"], 1, "inputs used (bit flags)", inputs_used_label)
    quicklooks = [
        write_quicklook(out_dir / f"{names['probability']}.png", [
            RampPanel(paths["probability"], 1, "P(flood)",
                      BAND_RANGES["flood_probability"], PROBABILITY_RAMP,
                      _water_overlay(extent_files))],
            title="flood probability"),
        write_quicklook(out_dir / f"{names['uncertainty']}.png", [
            RampPanel(paths["uncertainty"], 1, "std of P(flood)", BAND_RANGES["std"],
                      UNCERTAINTY_RAMP), flag_panel],
            title="uncertainty"),
    ]
    items = []
    window = provenance.inputs_window or (provenance.scenario_datetime,) * 2
    for kind, name in names.items():
        extra_assets = {key: (qml.name, "application/xml", ["style"])
                        for key, qml in styles[kind].items()}
        if kind != "inputs_used":
            extra_assets["thumbnail"] = (f"{name}.png", pystac.MediaType.PNG,
                                         ["thumbnail", "overview"])
        item = map_item(
            name, cog_name=paths[kind].name, bands=layer_bands[kind],
            footprint_lonlat=footprint.lonlat, crs=crs, transform=transform, shape=shape,
            map_datetime=provenance.scenario_datetime, inputs_window=window, created=created,
            region=provenance.region,
            properties=stac_fields(provenance) | LAYER_FIELDS[kind],
            data_type="uint8" if kind == "inputs_used" else "float32",
            asset_fields={"classification:bitfields": inputs_used_bitfields()}
            if kind == "inputs_used" else {},
            extra_assets=extra_assets,
        )
        items.append(write_item(item, out_dir / f"{name}.stac.json"))
    return MapFiles(paths["probability"], paths["uncertainty"], paths["inputs_used"],
                    tuple(qml for kind in kinds for qml in styles[kind].values()),
                    tuple(items), tuple(quicklooks), extent_files)


def _water_overlay(extent: ExtentFiles | None) -> ClassOverlay | None:
    """The extent's sea and reference water, drawn over the probability in the quicklook."""
    if extent is None:
        return None
    return ClassOverlay(extent.extent, 1, [(value, *EXTENT_CLASSES[value])
                                           for value in (SEA, REFERENCE_WATER)])


def _write_styles(
    out_dir: Path,
    names: dict[str, str],
    layer_bands: dict[str, Sequence[BandSpec]],
    flag_colours: dict[int, str],
    flag_values: set[int],
) -> dict[str, dict[str, Path]]:
    """kind -> {STAC asset key: .qml}: ``<name>.qml`` (what QGIS loads by itself; the first
    band of a multi-band file) and ``<name>.<band>.qml`` per band of the uncertainty file, each
    over the range its band can hold; a palette of the flag sums that occur for inputs_used."""
    styles: dict[str, dict[str, Path]] = {}
    probability = layer_bands["probability"][0].name
    styles["probability"] = {"style": write_qml(
        out_dir / f"{names['probability']}.qml",
        pseudocolor_qml(1, *BAND_RANGES[probability], PROBABILITY_RAMP))}
    uncertainty = {}
    for index, band in enumerate(layer_bands["uncertainty"], start=1):
        qml = pseudocolor_qml(index, *BAND_RANGES[band.name], UNCERTAINTY_RAMP, 3)
        if index == 1:
            uncertainty["style"] = write_qml(out_dir / f"{names['uncertainty']}.qml", qml)
        uncertainty[f"style_{band.name}"] = write_qml(
            out_dir / f"{names['uncertainty']}.{band.name}.qml", qml)
    styles["uncertainty"] = uncertainty
    classes = [(value, flag_colours[value], inputs_used_label(value))
               for value in sorted(flag_values)]
    styles["inputs_used"] = {"style": write_qml(out_dir / f"{names['inputs_used']}.qml",
                                                paletted_qml(1, classes))}
    return styles


@dataclass(frozen=True)
class _Footprint:
    grid: BaseGeometry | None  # the outline in grid CRS, None = the whole grid
    lonlat: BaseGeometry


def _footprint(
    crs: str, transform: Affine, shape: tuple[int, int], outline_lonlat: BaseGeometry | None
) -> _Footprint:
    rows, cols = shape
    if outline_lonlat is None:
        left, top = transform @ (0, 0)
        right, bottom = transform @ (cols, rows)
        extent = box(min(left, right), min(bottom, top), max(left, right), max(bottom, top), crs)
        return _Footprint(None, extent.to_crs("EPSG:4326").geom)
    in_grid = Geometry(outline_lonlat, "EPSG:4326").to_crs(crs).geom
    return _Footprint(in_grid, outline_lonlat)


def _inside_mask(
    outline: BaseGeometry | None, transform: Affine, row_off: int, height: int, width: int
) -> np.ndarray | None:
    """True for pixels of rows ``row_off..+height`` whose centre lies in ``outline``."""
    if outline is None:
        return None
    band_transform = transform @ Affine.translation(0, row_off)
    return geometry_mask([outline], out_shape=(height, width), transform=band_transform,
                         invert=True)


def _mask(values: np.ndarray, inside: np.ndarray | None) -> np.ndarray:
    return values if inside is None else np.where(inside, values, np.nan)


def _crs_text(crs: Any) -> str:
    """A CRS as text GDAL reads: ``EPSG:xxxx`` where there is a code, WKT otherwise."""
    epsg = getattr(crs, "epsg", None)
    if isinstance(epsg, int):
        return f"EPSG:{epsg}"
    if hasattr(crs, "to_epsg") and crs.to_epsg():
        return f"EPSG:{crs.to_epsg()}"
    return crs.to_wkt() if hasattr(crs, "to_wkt") else str(crs)
