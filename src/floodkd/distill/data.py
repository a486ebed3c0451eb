"""Training samples over a region's datacube: (tile, time) pairs read lazily from Zarr.

A sample is one tile of ``tiles.parquet`` at one cube time. The cube is opened lazily
(``xarray.open_zarr``) and a sample reads only its own window with ``isel``, or, where many
samples are read at once (a cache that fits, an evaluation's time), one read of each chunk
serves every window in it; memory is bounded by the batch or a chunk, never by the region.
Which (tile, time) pairs exist is decided up front from the small per-time presence flags
and a one-off count of labelled pixels per tile.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import groupby
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import torch
import xarray as xr
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset

from floodkd.cube_store import check_chunks
from floodkd.errors import InputError
from floodkd.grid import RegionGrid
from floodkd.models.channels import (
    MODALITIES,
    MODALITY_CHANNELS,
    STUDENT_CHANNELS,
    TEACHER_CHANNELS,
    pass_land_level_db,
    presence_vector,
    student_image,
    teacher_image,
)
from floodkd.reference.waterline import read_waterline

__all__ = [
    "LABEL_NODATA",
    "TERRAIN_VARIABLES",
    "RegionData",
    "open_region",
    "open_cube",
    "read_tiles",
    "label_class_counts",
    "labelled_pixels",
    "calibration_holdout",
    "whole_blocks",
    "time_window_days",
    "holdout_mask",
    "select_samples",
    "padded_size",
    "cube_pass_land_level_db",
    "CubeTileDataset",
    "collate",
    "SPATIAL_KEYS",
    "augment_batch",
]

LABEL_NODATA = 255
TERRAIN_VARIABLES = ("elevation_m", "hand_m", "coast_distance_m")
RADAR_VARIABLES = ("vv_db", "vh_db")
# modality of the student's presence vector -> its per-time presence flag in the cube
PRESENCE_FLAGS = {modality: f"{modality}_present" for modality in MODALITIES}
# the cube variables the student is made of (no radar, no labels), and the teacher's
STUDENT_VARIABLES = (*STUDENT_CHANNELS, *PRESENCE_FLAGS.values(), "gauge_history_m")
TEACHER_VARIABLES = (*RADAR_VARIABLES, "radar_present", "label")
TILE_COLUMNS = ("tile_id", "row_off", "col_off", "height", "width", "split")
WATERLINE_FILE = "waterline.tif"  # results/<region>/, beside the cube
# a pass's land level is taken from at most this many pixels (a regular subsample of a
# larger region): a median of millions of pixels is as good as one of all, and memory stays
# bounded by this, not by the region
LAND_LEVEL_MAX_PIXELS = 2**22


@dataclass
class RegionData:
    """One region's aligned inputs: the lazy cube, its tile index and their paths."""

    name: str
    cube_path: Path
    cube: xr.Dataset
    tiles: pd.DataFrame
    waterline: Path | None = None  # results/<region>/waterline.tif where it exists


def open_cube(path: str | Path, required: Sequence[str] = TERRAIN_VARIABLES, *,
              dask: bool = True) -> xr.Dataset:
    """Open ``cube.zarr`` lazily and check it holds the ``required`` variables.

    With ``dask`` False the variables are Zarr arrays indexed lazily without dask: an
    ``isel`` then ``load`` reads only the chunks it touches and builds no task graph (what a
    reader of many small windows wants); nothing is cached.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "the datacube does not exist",
                         "run `floodkd align` for this region first")
    try:
        cube = (xr.open_zarr(path) if dask else
                xr.open_dataset(path, engine="zarr", chunks=None, cache=False))
    except Exception as error:  # zarr raises several types for a broken store
        raise InputError(path, f"cannot open the datacube ({error})",
                         "rerun `floodkd align` for this region") from error
    missing = [name for name in required if name not in cube.variables]
    if missing:
        raise InputError(path, f"the datacube lacks variables {missing}",
                         "rerun `floodkd align`; docs/data-contracts.md lists the variables")
    check_chunks(path, cube.data_vars)  # an absent chunk would read as NaN
    return cube


def read_tiles(path: str | Path, cube: xr.Dataset | None = None) -> pd.DataFrame:
    """Read ``tiles.parquet`` (GeoParquet) and check its columns and windows."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "the tile index does not exist",
                         "run `floodkd align` for this region first")
    tiles = pd.DataFrame(gpd.read_parquet(path))
    missing = [c for c in TILE_COLUMNS if c not in tiles.columns]
    if missing:
        raise InputError(path, f"the tile index lacks columns {missing}",
                         "rerun `floodkd align`; docs/data-contracts.md lists the columns")
    if cube is not None:
        rows, cols = cube.sizes["y"], cube.sizes["x"]
        outside = (tiles.row_off < 0) | (tiles.col_off < 0) | (
            tiles.row_off + tiles.height > rows) | (tiles.col_off + tiles.width > cols)
        if outside.any():
            raise InputError(path, f"tiles {list(tiles.tile_id[outside])} lie outside the "
                             f"{rows}x{cols} cube", "rerun `floodkd align` so both match")
    return tiles.reset_index(drop=True)


def open_region(results_dir: str | Path, region: str, required: Sequence[str]) -> RegionData:
    """The cube and tiles of ``results/<region>/`` (the Align contract), with the region's
    waterline layer (``results/<region>/waterline.tif``, ``floodkd waterline``) where it
    exists."""
    base = Path(results_dir) / region
    waterline = base / WATERLINE_FILE
    waterline = waterline if waterline.exists() else None
    cube = with_waterline(open_cube(base / "cube.zarr", required), waterline)
    return RegionData(region, base / "cube.zarr", cube, read_tiles(base / "tiles.parquet", cube),
                      waterline)


def with_waterline(cube: xr.Dataset, path: str | Path | None) -> xr.Dataset:
    """The cube with the waterline layer at ``path`` as the static variables ``waterline_m``
    and ``waterline_above`` (the student's waterline channels); unchanged without one.
    Raises InputError when the layer is not on the cube's grid."""
    if path is None:
        return cube
    level, above = read_waterline(path, RegionGrid.from_dataset(cube))
    return cube.assign(waterline_m=(("y", "x"), level),
                       waterline_above=(("y", "x"), above.astype(np.float32)))


def label_class_counts(cube: xr.Dataset, tiles: pd.DataFrame,
                       pixel_mask: np.ndarray | None = None) -> np.ndarray:
    """Labelled pixels per (tile, time, class): an int64 array (tiles, times, 2) of dry, water.

    Reads only the ``label`` variable, one chunk of the grid at a time over all times, and
    adds each tile's part of it: every chunk is read once, not once per tile that touches it.
    ``pixel_mask`` (y, x) bool on the region grid, when given, counts only the pixels where
    it is True.
    """
    counts = np.zeros((len(tiles), cube.sizes["time"], 2), dtype=np.int64)
    if "label" not in cube:
        return counts
    row_off, col_off, height, width = (tiles[c].to_numpy(np.int64) for c in TILE_COLUMNS[1:5])
    for rows, cols in chunk_slices(cube):
        # each tile's part of this chunk: rows r0:r1, columns c0:c1 of the grid
        r0, r1 = np.maximum(row_off, rows.start), np.minimum(row_off + height, rows.stop)
        c0, c1 = np.maximum(col_off, cols.start), np.minimum(col_off + width, cols.stop)
        touching = np.flatnonzero((r1 > r0) & (c1 > c0))
        if touching.size == 0:
            continue
        chunk = cube["label"].isel(y=rows, x=cols).values
        for i in touching:
            part = chunk[:, r0[i] - rows.start:r1[i] - rows.start,
                         c0[i] - cols.start:c1[i] - cols.start]
            keep = True if pixel_mask is None else pixel_mask[r0[i]:r1[i], c0[i]:c1[i]]
            counts[i, :, 0] += ((part == 0) & keep).sum((1, 2))
            counts[i, :, 1] += ((part == 1) & keep).sum((1, 2))
    return counts


def labelled_pixels(cube: xr.Dataset, tiles: pd.DataFrame, time_ok: np.ndarray) -> np.ndarray:
    """(y, x) bool on the region grid: pixels labelled at any time where ``time_ok``, inside
    one of ``tiles``."""
    mask = np.zeros((cube.sizes["y"], cube.sizes["x"]), dtype=bool)
    times = np.flatnonzero(np.asarray(time_ok, dtype=bool))
    if "label" not in cube or times.size == 0:
        return mask
    labelled = np.zeros_like(mask)
    for rows, cols in chunk_slices(cube):  # one chunk at a time: memory O(chunk)
        chunk = cube["label"].isel(time=times, y=rows, x=cols).values
        labelled[rows, cols] = (chunk != LABEL_NODATA).any(0)
    for tile in tiles.itertuples():
        rows = slice(tile.row_off, tile.row_off + tile.height)
        cols = slice(tile.col_off, tile.col_off + tile.width)
        mask[rows, cols] |= labelled[rows, cols]
    return mask


def block_counts(mask: np.ndarray, block_px: int) -> np.ndarray:
    """(rows, cols) int: the pixels of ``mask`` in each ``block_px`` square of the grid (the
    last row and column of squares clipped at the grid's edge)."""
    n_rows, n_cols = -(-mask.shape[0] // block_px), -(-mask.shape[1] // block_px)
    padded = np.zeros((n_rows * block_px, n_cols * block_px), dtype=bool)
    padded[: mask.shape[0], : mask.shape[1]] = mask
    return padded.reshape(n_rows, block_px, n_cols, block_px).sum((1, 3))


def whole_blocks(mask: np.ndarray, block_px: int) -> np.ndarray:
    """(y, x) bool: every ``block_px`` square of the grid that holds a pixel of ``mask``."""
    touched = block_counts(mask, block_px) > 0
    return np.repeat(np.repeat(touched, block_px, 0), block_px, 1)[: mask.shape[0],
                                                                   : mask.shape[1]]


def calibration_holdout(labelled: np.ndarray, fraction: float, block_px: int,
                        seed: int = 0) -> np.ndarray:
    """(y, x) bool: pixels of ``labelled`` (a pool: the labelled pixels, or the area) kept out
    of training to fit the calibration (temperature and water bias) on.

    Spatially blocked, so held-out pixels are not the immediate neighbours of training
    pixels (which would make the fit as over-confident as the training set): the grid is
    cut into ``block_px`` squares, the squares holding labels are put in a seeded random
    order, and whole squares are taken until at least ``fraction`` of the labelled pixels
    are held out. At least one labelled square always stays for training.
    """
    labelled = np.asarray(labelled, dtype=bool)
    held = np.zeros_like(labelled)
    total = int(labelled.sum())
    if fraction <= 0 or total == 0:
        return held
    counts = block_counts(labelled, block_px)
    n_cols = counts.shape[1]
    per_block = counts.reshape(-1)
    blocks = np.flatnonzero(per_block)
    order = np.random.default_rng(seed).permutation(blocks)
    taken, chosen = 0, []
    for block in order[: max(len(order) - 1, 0)]:
        if taken >= fraction * total:
            break
        chosen.append(block)
        taken += int(per_block[block])
    for block in chosen:
        row, col = divmod(int(block), n_cols)
        rows = slice(row * block_px, (row + 1) * block_px)
        cols = slice(col * block_px, (col + 1) * block_px)
        held[rows, cols] = labelled[rows, cols]
    return held


def time_window_days(config: dict[str, Any]) -> float:
    """``align.time_window_days``: how far from a cube time a radar pass may be matched to
    it, so how far before the first held-out pass the held-out period starts."""
    return float((config.get("align") or {}).get("time_window_days", 3))


def holdout_mask(
    times: np.ndarray, radar_present: np.ndarray, fraction: float, window_days: float
) -> np.ndarray:
    """Times held out of training: from the last ``fraction`` of radar passes onwards.

    The cut is temporal: every time at or after the first held-out pass, less the radar
    matching window (a time before it may carry that pass's backscatter), is held out, so
    neither the held-out passes nor their radar reach distillation or fine-tuning.
    """
    times = np.asarray(times, dtype="datetime64[ns]")
    passes = np.sort(times[np.asarray(radar_present, dtype=bool)])
    held = np.zeros(times.shape, dtype=bool)
    n_held = math.ceil(fraction * passes.size)
    if n_held == 0 or passes.size < 2:  # with one pass, nothing would be left to learn from
        return held
    n_held = min(n_held, passes.size - 1)
    cutoff = passes[passes.size - n_held] - np.timedelta64(int(window_days * 86400), "s")
    return times >= cutoff


def select_samples(
    tiles: pd.DataFrame,
    splits: Sequence[str],
    time_ok: np.ndarray,
    labelled_pixels: np.ndarray | None = None,
    require: str = "any",
) -> list[tuple[int, int]]:
    """(tile position, time index) pairs of tiles in ``splits`` at times where ``time_ok``.

    ``labelled_pixels`` (tiles, times) and ``require``: ``"labels"`` keeps only pairs with
    labelled pixels, ``"any"`` keeps all (a radar-only pair still gives soft targets).
    """
    positions = np.flatnonzero(tiles["split"].isin(list(splits)).to_numpy())
    samples = []
    for tile_pos in positions:
        for t in np.flatnonzero(time_ok):
            unlabelled = labelled_pixels is None or labelled_pixels[tile_pos, t] == 0
            if require == "labels" and unlabelled:
                continue
            samples.append((int(tile_pos), int(t)))
    return samples


def padded_size(tiles: Sequence[pd.DataFrame], multiple: int) -> tuple[int, int]:
    """A common (H, W): the largest tile, rounded up to ``multiple`` (what the models need)."""
    height = max(int(t.height.max()) for t in tiles if len(t))
    width = max(int(t.width.max()) for t in tiles if len(t))
    return (math.ceil(height / multiple) * multiple, math.ceil(width / multiple) * multiple)


def cube_pass_land_level_db(cube: xr.Dataset, t: int) -> tuple[float, float]:
    """The land level (VV, VH dB; ``pass_land_level_db``) of the cube's radar pass at time
    index ``t``, from the whole pass over the region (every k-th row and column of a region
    larger than LAND_LEVEL_MAX_PIXELS). Training, evaluation and mapping all take it here."""
    rows, cols = int(cube.sizes["y"]), int(cube.sizes["x"])
    step = max(1, math.ceil(math.sqrt(rows * cols / LAND_LEVEL_MAX_PIXELS)))
    at_time = cube[list(RADAR_VARIABLES)].isel(time=t, y=slice(None, None, step),
                                               x=slice(None, None, step))
    return pass_land_level_db(at_time["vv_db"].values, at_time["vh_db"].values)


class CubeTileDataset(Dataset):
    """(tile, time) samples of one region's cube, padded to a common size.

    Each item is a dict of tensors: ``teacher_image`` (len(TEACHER_CHANNELS), H, W),
    ``land_level_db`` (2,) the pass's land level in VV and VH, ``radar_present`` (),
    ``radar_valid`` (H, W) bool (finite VV and VH), ``student_image`` (C, H, W),
    ``presence`` (3,) for the optical, gauge and GCM modalities,
    ``gauge_history`` (G, L) metres with NaN for missing hours, ``label`` (H, W) int64 (0 dry,
    1 water, 255 no label, also on padding), ``valid`` (H, W) bool (inside the tile),
    ``window`` (row_off, col_off, height, width) and ``time_index``.
    ``label_tiles`` (tile positions) hides the labels of every other tile (all 255), so a
    tile can give radar soft targets without its labels reaching the task loss.
    ``visible_pixels`` (y, x) bool on the region grid keeps the labels and the radar's
    validity (so the teacher's targets) only where it is True, and each item's ``visible``
    (H, W) says where: the calibration hold-out is hidden from training this way, and kept
    alone to fit on. Without it every pixel is visible.
    ``student`` False (the teacher's training) reads and returns only the radar and the
    labels: no ``student_image``, ``presence`` or ``gauge_history``, a third of the bytes.
    ``waterline`` (``floodkd waterline``'s layer of the region) gives the student's
    waterline channels; without it they read as no archive.
    The store is opened on first use in each worker, never pickled with the dataset.
    When all samples fit in ``cache_mb`` they are all read at the first item, chunk by
    chunk of the cube, and kept, so later epochs of a small region cost no I/O. Else, when
    the chunks they lie in fit, those are kept as first read (``_blocks``). Else (a large
    region) they are spilled at the first item, chunk by chunk, to a temporary folder
    (``_spilled``), whence each epoch reads only each sample's own bytes; a pickled copy
    (a DataLoader worker's) reads that spill, or windows where there is none. ``cache_mb`` 0
    keeps nothing and reads each window from the cube, every time.
    """

    def __init__(
        self,
        cube_path: str | Path,
        tiles: pd.DataFrame,
        samples: Sequence[tuple[int, int]],
        size: tuple[int, int],
        cache_mb: float = 0.0,
        label_tiles: Sequence[int] | None = None,
        visible_pixels: np.ndarray | None = None,
        student: bool = True,
        waterline: str | Path | None = None,
    ):
        self.cube_path = Path(cube_path)
        self.waterline = waterline
        self.student = student
        # tile positions whose labels the model may see; None: all (others read as 255)
        self.label_tiles = None if label_tiles is None else {int(p) for p in label_tiles}
        self.visible_pixels = (None if visible_pixels is None
                               else np.asarray(visible_pixels, bool))
        self.windows = tiles[["row_off", "col_off", "height", "width"]].to_numpy(dtype=np.int64)
        self.samples = list(samples)
        self.size = size
        # float32 planes per sample: teacher + student images, label (int64 = 2 planes), masks
        planes = len(TEACHER_CHANNELS) + (len(STUDENT_CHANNELS) if student else 0) + 4
        sample_bytes = planes * size[0] * size[1] * 4
        self._cache: dict[int, dict[str, torch.Tensor]] | None = (
            {} if len(self.samples) * sample_bytes <= cache_mb * 2**20 else None)
        self._cube: xr.Dataset | None = None
        self._land_levels: dict[int, tuple[float, float]] = {}  # time index -> pass level
        self._variables = (*TEACHER_VARIABLES, *STUDENT_VARIABLES) if student else TEACHER_VARIABLES
        self._cache_mb = cache_mb
        self._spill: tempfile.TemporaryDirectory | None = None
        self._spill_dir: str | None = None  # the spill's folder, for copies too
        self._copy = False  # a pickled copy (a DataLoader worker's)
        self._reach_px = (int(self.windows[:, 2].max(initial=0)),
                          int(self.windows[:, 3].max(initial=0)))  # a tile's reach past a chunk

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def cube(self) -> xr.Dataset:
        if self._cube is None:
            # chunks=None: lazily indexed zarr arrays without dask, whose per-task overhead
            # dwarfs reading one small window
            self._cube = with_waterline(xr.open_zarr(self.cube_path, chunks=None),
                                        self.waterline if self.student else None)
        return self._cube

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cube"] = None  # each DataLoader worker opens its own handle
        state.pop("_blocks", None)  # and decodes its own blocks
        # the spill stays the process's that wrote it (its folder goes with that dataset);
        # a copy reads it where it exists, and never spills: DataLoader workers are new
        # copies every epoch, and each would spill everything again
        state["_spill"] = None
        state["_copy"] = True
        return state

    def _land_level(self, t: int) -> tuple[float, float]:
        """The land level of the pass at ``t``, read once per time (NaN without radar)."""
        if t not in self._land_levels:
            radar = ("radar_present" in self.cube and bool(self.cube["radar_present"][t])
                     and all(name in self.cube for name in RADAR_VARIABLES))
            self._land_levels[t] = (cube_pass_land_level_db(self.cube, t) if radar
                                    else (float("nan"), float("nan")))
        return self._land_levels[t]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if self._cache is not None:
            if not self._cache:
                self._fill_cache()
            return self._cache[index]
        if self._blocks is not None:
            block = self._block(index)
            if block not in self._blocks:
                self._blocks[block] = self._read_block(block)
            return self._from_block(index, block, self._blocks[block])
        if self._spill_dir is not None or (self._cache_mb > 0 and not self._copy):
            return self._spilled(index)
        row_off, col_off, height, width = self._window(index)
        return self._sample(index, read_window(self.cube, self.samples[index][1], row_off,
                                               col_off, height, width, self._variables))

    def _window(self, index: int) -> tuple[int, int, int, int]:
        """(row_off, col_off, height, width) of sample ``index``'s tile."""
        row_off, col_off, height, width = (int(v) for v in self.windows[self.samples[index][0]])
        return row_off, col_off, height, width

    def _fill_cache(self) -> None:
        """Read every sample into the cache, chunk by chunk (``chunk_ordered``)."""
        self._cache.update(self.chunk_ordered())

    def chunk_ordered(self) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
        """Every sample as (index, tensors), with one read per time and chunk of the cube.

        The windows whose corner lies in one chunk are cut from one read of that chunk and
        the tiles' reach beyond it (``_read_block``), in their own order; memory holds one
        such read. Read alone, each window would decompress its chunks again: at the demo's
        size one chunk holds the whole region, so each window decompressed all of it.
        """
        for block, indices in groupby(sorted(range(len(self.samples)), key=self._block),
                                      key=self._block):
            part = self._read_block(block)
            for index in indices:
                yield index, self._from_block(index, block, part)

    def _spilled(self, index: int) -> dict[str, torch.Tensor]:
        """Sample ``index`` from the spill: every sample written once, chunk by chunk
        (``chunk_ordered``), as one uncompressed safetensors file in a temporary folder (in
        ``TMPDIR``), removed with the dataset. Read window by window instead, each read
        would decompress the window's whole chunk of every variable again, every epoch."""
        if self._spill_dir is None:
            spill = tempfile.TemporaryDirectory(prefix="floodkd-samples-")
            try:
                for i, sample in self.chunk_ordered():
                    self._save_spilled(sample, f"{spill.name}/{i}.safetensors")
            except BaseException:  # a failed read or write leaves no folder behind
                spill.cleanup()
                raise
            self._spill, self._spill_dir = spill, spill.name
        return load_file(f"{self._spill_dir}/{index}.safetensors")

    def _save_spilled(self, sample: dict[str, torch.Tensor], path: str) -> None:
        try:
            save_file({key: value.contiguous() for key, value in sample.items()}, path)
        except (OSError, SafetensorError) as error:
            raise InputError(Path(path).parent, f"cannot spill the training samples of "
                             f"{self.cube_path} there ({error})",
                             "free disk space there, point TMPDIR at a larger disk, or set "
                             "training.sample_cache_mb to 0 to read each window from the "
                             "cube every epoch") from error

    @cached_property
    def _chunk_px(self) -> tuple[int, int]:
        return cube_chunk_px(self.cube)

    @cached_property
    def _blocks(self) -> dict[tuple[int, int, int], xr.Dataset] | None:
        """Blocks (``_read_block``) kept as read, for samples that do not fit the cache but
        whose blocks do (about 350 MB for the demo coast at 256 px, whose samples take 530):
        each chunk is then decompressed once, not once per window read. None: they do not
        fit either, and each window is read alone."""
        (chunk_y, chunk_x), (reach_y, reach_x) = self._chunk_px, self._reach_px
        block_px = (min(chunk_y + reach_y, self.cube.sizes["y"])
                    * min(chunk_x + reach_x, self.cube.sizes["x"]))
        planes = sum(name in self.cube.variables for name in self._variables)
        blocks = len({self._block(index) for index in range(len(self.samples))})
        return {} if blocks * planes * block_px * 4 <= self._cache_mb * 2**20 else None

    def _block(self, index: int) -> tuple[int, int, int]:
        """(time, chunk row, chunk column): the chunk holding sample ``index``'s corner."""
        chunk_y, chunk_x = self._chunk_px
        row_off, col_off, _, _ = self._window(index)
        return self.samples[index][1], row_off // chunk_y, col_off // chunk_x

    def _read_block(self, block: tuple[int, int, int]) -> xr.Dataset:
        """That chunk and the tiles' reach past it, loaded: every window whose corner lies
        in the chunk is inside."""
        t, block_row, block_col = block
        (chunk_y, chunk_x), (reach_y, reach_x) = self._chunk_px, self._reach_px
        return read_window(self.cube, t, block_row * chunk_y, block_col * chunk_x,
                           chunk_y + reach_y, chunk_x + reach_x, self._variables)

    def _from_block(self, index: int, block: tuple[int, int, int],
                    part: xr.Dataset) -> dict[str, torch.Tensor]:
        """Sample ``index`` cut from ``part``, its loaded ``block``."""
        chunk_y, chunk_x = self._chunk_px
        top, left = block[1] * chunk_y, block[2] * chunk_x
        row_off, col_off, height, width = self._window(index)
        return self._sample(index, part.isel(y=slice(row_off - top, row_off - top + height),
                                             x=slice(col_off - left, col_off - left + width)))

    def _sample(self, index: int, window: xr.Dataset) -> dict[str, torch.Tensor]:
        """Sample ``index``'s tensors from its loaded ``window``."""
        tile_pos, t = self.samples[index]
        row_off, col_off, height, width = self._window(index)
        sample = sample_tensors(window, self.size, (row_off, col_off, height, width), t,
                                self._land_level(t), student=self.student)
        if self.label_tiles is not None and tile_pos not in self.label_tiles:
            sample["label"] = torch.full_like(sample["label"], LABEL_NODATA)
        visible = torch.ones_like(sample["valid"])
        if self.visible_pixels is not None:
            visible[:height, :width] = torch.from_numpy(
                self.visible_pixels[row_off:row_off + height, col_off:col_off + width])
            sample["label"] = torch.where(visible, sample["label"], LABEL_NODATA)
            sample["radar_valid"] = sample["radar_valid"] & visible
        sample["visible"] = visible
        return sample


def chunk_slices(cube: xr.Dataset) -> Iterator[tuple[slice, slice]]:
    """(rows, cols) slices of every chunk of the cube's grid, clipped to the grid."""
    (chunk_y, chunk_x), (height, width) = cube_chunk_px(cube), (cube.sizes["y"], cube.sizes["x"])
    for top in range(0, height, chunk_y):
        for left in range(0, width, chunk_x):
            yield slice(top, min(top + chunk_y, height)), slice(left, min(left + chunk_x, width))


def cube_chunk_px(cube: xr.Dataset) -> tuple[int, int]:
    """(rows, cols) of the cube's chunks on the grid (``align`` writes one size for all)."""
    for variable in cube.data_vars.values():
        chunks = variable.encoding.get("chunks")
        if variable.dims[-2:] == ("y", "x") and chunks:
            return int(chunks[-2]), int(chunks[-1])
    return int(cube.sizes["y"]), int(cube.sizes["x"])


def read_window(
    cube: xr.Dataset, t: int, row_off: int, col_off: int, height: int, width: int,
    variables: Sequence[str] | None = None,
) -> xr.Dataset:
    """The ``variables`` (default: all a sample may need) the cube has, for one time and
    pixel window, loaded into memory."""
    variables = (*TEACHER_VARIABLES, *STUDENT_VARIABLES) if variables is None else variables
    wanted = [name for name in variables if name in cube.variables]
    part = cube[wanted].isel(y=slice(row_off, row_off + height), x=slice(col_off, col_off + width))
    if "time" in part.dims:
        part = part.isel(time=t)
    return part.load()


def _flag(window: xr.Dataset, name: str) -> bool:
    return bool(window[name].values) if name in window else False


def sample_tensors(
    window: xr.Dataset, size: tuple[int, int], bounds: tuple[int, int, int, int], t: int,
    land_level_db: tuple[float, float] | None = None, student: bool = True,
) -> dict[str, torch.Tensor]:
    """Turn one loaded window into the model inputs (see ``CubeTileDataset``), padded to size;
    with ``student`` False, the teacher's only (radar, labels, masks).

    ``land_level_db`` is the window's pass's ``cube_pass_land_level_db``; without it (the
    student's paths, which read no radar) the sample has no ``teacher_image`` nor
    ``land_level_db``, since a window alone cannot give its pass's level."""
    height, width = bounds[2], bounds[3]
    pad = ((0, size[0] - height), (0, size[1] - width))
    radar = _flag(window, "radar_present") and all(v in window for v in RADAR_VARIABLES)
    if radar:
        vv, vh = window["vv_db"].values, window["vh_db"].values
        radar_valid = np.isfinite(vv) & np.isfinite(vh)
    else:
        radar_valid = np.zeros((height, width), dtype=bool)
    teacher_inputs = {}
    if land_level_db is not None:
        radar_image = (teacher_image(vv, vh, land_level_db) if radar else
                       np.zeros((len(TEACHER_CHANNELS), height, width), dtype=np.float32))
        teacher_inputs = {"teacher_image": torch.from_numpy(_pad(radar_image, pad, 0.0)),
                          "land_level_db": torch.tensor(land_level_db, dtype=torch.float32)}
    student_inputs = student_tensors(window, pad) if student else {}
    if "label" in window:
        label = window["label"].values.astype(np.int64)
    else:
        label = np.full((height, width), LABEL_NODATA, dtype=np.int64)
    return {
        **teacher_inputs,
        "radar_present": torch.tensor(float(radar)),
        "radar_valid": torch.from_numpy(np.pad(radar_valid, pad)),
        **student_inputs,
        "label": torch.from_numpy(np.pad(label, pad, constant_values=LABEL_NODATA)),
        "valid": torch.from_numpy(np.pad(np.ones((height, width), bool), pad)),
        "window": torch.tensor(bounds, dtype=torch.int64),
        "time_index": torch.tensor(t, dtype=torch.int64),
    }


def student_tensors(window: xr.Dataset, pad: tuple) -> dict[str, torch.Tensor]:
    """``student_image``, ``presence`` and ``gauge_history`` of one loaded window."""
    presence = {m: _flag(window, flag) for m, flag in PRESENCE_FLAGS.items()}
    # water_depth_m is derived by student_image; a variable the cube lacks leaves its
    # modality absent (zeroed) rather than failing
    arrays = {name: window[name].values for name in STUDENT_CHANNELS if name in window}
    for modality in MODALITIES:
        needed = [n for n in MODALITY_CHANNELS[modality] if n != "water_depth_m"]
        presence[modality] = presence[modality] and all(n in arrays for n in needed)
    image = student_image(arrays, presence)
    if "gauge_history_m" in window:
        history = window["gauge_history_m"].values.astype(np.float32)
    else:
        history = np.full((1, 1), np.nan, dtype=np.float32)
    return {"student_image": torch.from_numpy(_pad(np.asarray(image, dtype=np.float32), pad,
                                                   0.0)),
            "presence": torch.from_numpy(presence_vector(presence)),
            "gauge_history": torch.from_numpy(history)}


def collate(samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack samples into a batch; gauge histories of regions with different gauge counts
    or lengths are padded with NaN (missing), which the student masks out."""
    batch = {}
    for key in samples[0]:
        if key == "gauge_history":
            gauges = max(s[key].shape[0] for s in samples)
            lags = max(s[key].shape[1] for s in samples)
            padded = torch.full((len(samples), gauges, lags), float("nan"))
            for i, s in enumerate(samples):
                g, lag = s[key].shape
                padded[i, :g, lags - lag:] = s[key]  # align on the last (current) hour
            batch[key] = padded
        else:
            batch[key] = torch.stack([s[key] for s in samples])
    return batch


def _pad(image: np.ndarray, pad: tuple, value: float) -> np.ndarray:
    return np.pad(image, ((0, 0), *pad), constant_values=value).astype(np.float32)


# batch entries laid out on the pixel grid (last two dims y, x): augmentation moves them together
SPATIAL_KEYS = ("teacher_image", "radar_valid", "student_image", "label", "valid", "visible")


def augment_batch(batch: dict[str, torch.Tensor],
                  generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """A random symmetry of the square (flip and/or 90-degree rotation) per sample, applied
    alike to every pixel-grid entry of the batch (images, labels, masks).

    Why: with spatially blocked splits the train tiles of a small region can be mostly sea in
    one corner; without it a model learns *where* water sits in a tile (position
    embeddings, padding) instead of *what* water looks like. Non-square tiles are only
    flipped. Entries off the grid (presence, gauge history, windows) are left as they are.
    """
    first = batch[SPATIAL_KEYS[0]] if SPATIAL_KEYS[0] in batch else batch["label"]
    size = first.shape[0]
    square = first.shape[-1] == first.shape[-2]
    draws = torch.randint(0, 8 if square else 4, (size,), generator=generator)
    out = dict(batch)
    for key in SPATIAL_KEYS:
        if key not in batch:
            continue
        samples = []
        for i, code in enumerate(draws.tolist()):
            x = batch[key][i]
            if code & 1:
                x = x.flip(-1)
            if code & 2:
                x = x.flip(-2)
            if code & 4:
                x = x.transpose(-1, -2)
            samples.append(x)
        out[key] = torch.stack(samples).contiguous()
    return out
