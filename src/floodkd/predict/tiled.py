"""Streaming tiled inference: tiles -> smooth blending -> finished bands of rows.

The engine knows nothing about models or files. It asks a ``predict_window`` callable for one
tile at a time, adds the tile's weighted sample moments into an accumulator that holds only
one tile's height of rows across the region's width, and hands every band of rows that no
later tile can touch to the caller, who writes it to disk. Memory is therefore
O(tile_px x region width), never O(region), and never O(samples x region).
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
from floodkd.predict.blending import Window, blend_weights, tile_windows
from floodkd.predict.cog import BandSpec, cog_band_writer
from floodkd.predict.quicklook import write_quicklook
from floodkd.predict.stac import map_item, write_item
from floodkd.predict.style import PROBABILITY_RAMP, UNCERTAINTY_RAMP, pseudocolor_qml, write_qml
from floodkd.predict.uncertainty import (
    MOMENT_NAMES,
    UncertaintyMaps,
    statistics_from_moments,
    tile_moments,
)

__all__ = [
    "PredictWindow",
    "RowBand",
    "predict_row_bands",
    "count_tiles",
    "INPUT_FLAGS",
    "PROBABILITY_BANDS",
    "UNCERTAINTY_BANDS",
    "MapProvenance",
    "MapFiles",
    "write_scenario_maps",
]

# bit flags of the inputs_used band: what each pixel's prediction rests on
INPUT_FLAGS = {"optical_clear": 1, "gauge": 2, "gcm": 4, "terrain": 8, "radar": 16}

PROBABILITY_BANDS = (
    BandSpec("flood_probability", "1", "calibrated probability of flooding (0..1)"),
)
UNCERTAINTY_BANDS = (
    BandSpec("std", "1", "standard deviation of P(flood) over ensemble members x MC dropout"),
    BandSpec("entropy", "nat", "predictive entropy of the mean P(flood), natural log"),
    BandSpec("mutual_information", "nat",
             "epistemic uncertainty: entropy of the mean minus mean entropy, natural log"),
    BandSpec("inputs_used", "bit flags",
             "inputs the prediction rests on, sum of: "
             + ", ".join(f"{bit} {name}" for name, bit in INPUT_FLAGS.items()),
             overview_resampling="nearest"),
)

# predict_window(row_off, col_off, height, width) -> (samples (S, h, w) of P(flood) in [0, 1],
# NaN where no prediction is possible; inputs_used (h, w) integer bit flags)
PredictWindow = Callable[[int, int, int, int], tuple[np.ndarray, np.ndarray]]


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
    weights_cache: dict[tuple[int, int], np.ndarray] = {}
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
            key = (window.height, window.width)
            if key not in weights_cache:
                weights_cache[key] = blend_weights(window.height, window.width, overlap_px)
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
            if on_tile is not None:
                on_tile(window)
    last = rows - top
    yield _finalise(top, moment_sums[:, :last], weight_sum[:last], flags[:last])


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


@dataclass(frozen=True)
class MapFiles:
    """Every file written for one scenario."""

    probability: Path
    uncertainty: Path
    styles: tuple[Path, ...]
    stac_items: tuple[Path, ...]
    quicklooks: tuple[Path, ...]


def provenance_tags(provenance: MapProvenance, created: datetime) -> dict[str, str]:
    """GeoTIFF dataset tags (strings) recording how the map was made."""
    return {
        "FLOODKD_VERSION": __version__,
        "REGION": provenance.region,
        "SCENARIO": provenance.scenario,
        "SCENARIO_DATETIME": provenance.scenario_datetime.isoformat(),
        "MODEL_SHA256": provenance.model_sha256,
        "INPUT_FILES": json.dumps(list(provenance.input_files)),
        "CREATED_UTC": created.isoformat(),
        "SYNTHETIC": "true" if provenance.synthetic else "false",
        "ENTROPY_UNIT": "nat",
        "INPUTS_USED_FLAGS": json.dumps(INPUT_FLAGS),
        **{key.upper(): value for key, value in provenance.extra.items()},
    }


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
) -> MapFiles:
    """Predict the whole grid tile by tile and write the scenario's maps into ``out_dir``.

    Writes ``flood_probability_<scenario>.tif`` and ``flood_uncertainty_<scenario>.tif``
    (COGs), a ``.qml`` style, a ``.stac.json`` Item and a ``.png`` quicklook for each. Pixels
    outside ``outline_lonlat`` (EPSG:4326; None = the whole grid) or without a prediction
    are nodata. If ``predict_window`` fails, no map exists at its final path.
    ``uncertainty_bands`` (the names of UNCERTAINTY_BANDS) may say what else the samples span.
    """
    out_dir = Path(out_dir)
    crs = _crs_text(grid.crs)
    transform, shape = grid.transform, tuple(int(n) for n in grid.shape)
    created = datetime.now(UTC).replace(microsecond=0)
    tags = provenance_tags(provenance, created)
    footprint = _footprint(crs, transform, shape, outline_lonlat)
    names = {kind: f"flood_{kind}_{provenance.scenario}" for kind in ("probability", "uncertainty")}
    paths = {kind: out_dir / f"{name}.tif" for kind, name in names.items()}
    common = {"crs": crs, "transform": transform, "shape": shape, "blocksize": blocksize}
    with (
        cog_band_writer(paths["probability"], PROBABILITY_BANDS, tags=tags, **common) as prob,
        cog_band_writer(paths["uncertainty"], uncertainty_bands, tags=tags, **common) as unc,
    ):
        for band in predict_row_bands(shape, predict_window, tile_px, overlap_px, on_tile):
            inside = _inside_mask(footprint.grid, transform, band.row_off, band.height, shape[1])
            maps = band.maps
            prob.write_rows(band.row_off, {"flood_probability": _mask(maps.probability, inside)})
            unc.write_rows(band.row_off, {
                "std": _mask(maps.std, inside),
                "entropy": _mask(maps.entropy_nats, inside),
                "mutual_information": _mask(maps.mutual_information_nats, inside),
                # flags stay nodata wherever the probability is nodata
                "inputs_used": _mask(np.where(np.isfinite(maps.probability),
                                              band.inputs_used.astype(np.float32), np.nan), inside),
            })
    styles, items, quicklooks = [], [], []
    looks = {  # band, colour label, value range, ramp
        "probability": (1, "P(flood)", (0.0, 1.0), PROBABILITY_RAMP),
        "uncertainty": (1, "std of P(flood)", (0.0, 0.5), UNCERTAINTY_RAMP),
    }
    for kind, name in names.items():
        band, label, value_range, ramp = looks[kind]
        qml = write_qml(out_dir / f"{name}.qml", pseudocolor_qml(band, *value_range, ramp))
        png = write_quicklook(
            paths[kind], out_dir / f"{name}.png", band=band, colour_label=label,
            title=f"{provenance.region}: {kind}, scenario {provenance.scenario}"
            + (" (SYNTHETIC)" if provenance.synthetic else ""),
            value_range=value_range, ramp=ramp,
        )
        item = map_item(
            name, cog_name=paths[kind].name,
            bands=PROBABILITY_BANDS if kind == "probability" else uncertainty_bands,
            footprint_lonlat=footprint.lonlat, crs=crs, transform=transform, shape=shape,
            map_datetime=provenance.scenario_datetime, created=created,
            properties={f"floodkd:{key.lower()}": value for key, value in tags.items()
                        if key not in ("CREATED_UTC", "SCENARIO_DATETIME")},
            extra_assets={
                "style": (qml.name, "application/xml", ["style"]),
                "thumbnail": (png.name, pystac.MediaType.PNG, ["thumbnail", "overview"]),
            },
        )
        styles.append(qml)
        quicklooks.append(png)
        items.append(write_item(item, out_dir / f"{name}.stac.json"))
    return MapFiles(paths["probability"], paths["uncertainty"], tuple(styles), tuple(items),
                    tuple(quicklooks))


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
