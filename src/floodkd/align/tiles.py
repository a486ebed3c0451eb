"""The tile index: overlapping square windows over the grid, with spatially blocked splits."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
from shapely.geometry import box

from floodkd.grid import RegionGrid

__all__ = ["SPLIT_SEED", "SPLIT_PRIORITY", "tile_starts", "tile_windows", "assign_splits",
           "drop_cross_split_overlaps", "window_fractions", "tile_index"]

SPLIT_SEED = 20240601  # fixed: the same region always gets the same splits
# When tiles of two splits share pixels, the tile of the lower-priority split is dropped:
# held-out sets stay whole and train gives up its border tiles (a guard band).
SPLIT_PRIORITY = {"test": 0, "val": 1, "train": 2}


def tile_starts(length: int, tile_px: int, overlap_px: int) -> np.ndarray:
    """Offsets of tiles along one axis: step ``tile_px - overlap_px``, last tile flush with
    the edge (so it may overlap its neighbour more). One tile (clipped) if the axis is short."""
    if overlap_px >= tile_px:
        raise ValueError(f"tile overlap {overlap_px} must be smaller than the tile {tile_px}")
    if length <= tile_px:
        return np.array([0])
    step = tile_px - overlap_px
    starts = list(range(0, length - tile_px, step))
    starts.append(length - tile_px)
    return np.unique(np.array(starts))


def tile_windows(shape: tuple[int, int], tile_px: int, overlap_px: int) -> np.ndarray:
    """(n, 6) int array: tile row, tile column, row_off, col_off, height, width."""
    rows = tile_starts(shape[0], tile_px, overlap_px)
    cols = tile_starts(shape[1], tile_px, overlap_px)
    out = [
        (i, j, r, c, min(tile_px, shape[0] - r), min(tile_px, shape[1] - c))
        for i, r in enumerate(rows) for j, c in enumerate(cols)
    ]
    return np.array(out, dtype=np.int64).reshape(-1, 6)


def assign_splits(
    tile_rows: np.ndarray, tile_cols: np.ndarray, block_tiles: int,
    val_fraction: float, test_fraction: float, seed: int = SPLIT_SEED,
) -> np.ndarray:
    """Split of each tile: blocks of ``block_tiles`` x ``block_tiles`` tiles are shuffled
    deterministically and the first ``test_fraction`` of blocks go to test, the next
    ``val_fraction`` to val, the rest to train."""
    if val_fraction + test_fraction > 1:
        raise ValueError("val_fraction + test_fraction must not exceed 1")
    block_r, block_c = tile_rows // block_tiles, tile_cols // block_tiles
    blocks = np.unique(np.stack([block_r, block_c], axis=1), axis=0)
    order = np.random.default_rng(seed).permutation(len(blocks))
    n_test = int(round(test_fraction * len(blocks)))
    n_val = int(round(val_fraction * len(blocks)))
    block_split = np.full(len(blocks), "train", dtype=object)
    block_split[order[:n_test]] = "test"
    block_split[order[n_test:n_test + n_val]] = "val"
    lookup = {(int(r), int(c)): s for (r, c), s in zip(blocks, block_split, strict=True)}
    return np.array([lookup[(int(r), int(c))] for r, c in zip(block_r, block_c, strict=True)],
                    dtype=object)


def _axis_overlap(starts: np.ndarray, sizes: np.ndarray, shift: int) -> np.ndarray:
    """For each tile i along an axis, whether it shares pixels with tile i + shift."""
    n = starts.size
    out = np.zeros(n, dtype=bool)
    i = np.arange(max(0, -shift), min(n, n - shift))
    j = i + shift
    out[i] = (np.maximum(starts[i], starts[j])
              < np.minimum(starts[i] + sizes[i], starts[j] + sizes[j]))
    return out


def drop_cross_split_overlaps(table: np.ndarray, splits: np.ndarray) -> np.ndarray:
    """Keep-mask: a tile is dropped if it shares pixels with a tile of a higher-priority
    split (``SPLIT_PRIORITY``). ``table`` rows are (tile row, tile col, row_off, col_off,
    height, width) of a full tile lattice; only lattice neighbours can overlap, so the
    check walks neighbour offsets instead of all pairs."""
    n_rows, n_cols = int(table[:, 0].max()) + 1, int(table[:, 1].max()) + 1
    rank = np.full((n_rows, n_cols), -1)
    rank[table[:, 0], table[:, 1]] = [SPLIT_PRIORITY[s] for s in splits]
    row_starts = np.zeros(n_rows, dtype=np.int64)
    row_sizes = np.zeros(n_rows, dtype=np.int64)
    col_starts = np.zeros(n_cols, dtype=np.int64)
    col_sizes = np.zeros(n_cols, dtype=np.int64)
    row_starts[table[:, 0]], row_sizes[table[:, 0]] = table[:, 2], table[:, 4]
    col_starts[table[:, 1]], col_sizes[table[:, 1]] = table[:, 3], table[:, 5]
    dropped = np.zeros((n_rows, n_cols), dtype=bool)
    # overlap is symmetric and near-diagonal: collect the shifts that overlap at all
    row_shifts = [(d, h) for d in range(-n_rows + 1, n_rows)
                  if (h := _axis_overlap(row_starts, row_sizes, d)).any()]
    col_shifts = [(d, h) for d in range(-n_cols + 1, n_cols)
                  if (h := _axis_overlap(col_starts, col_sizes, d)).any()]
    for di, rows_hit in row_shifts:
        for dj, cols_hit in col_shifts:
            if di == 0 and dj == 0:
                continue
            ii, jj = np.nonzero(rows_hit[:, None] & cols_hit[None, :])
            higher = rank[ii + di, jj + dj] < rank[ii, jj]
            dropped[ii[higher], jj[higher]] = True
    return ~dropped[table[:, 0], table[:, 1]]


def window_fractions(mask: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Share of True pixels of a (y, x) mask in each window, via a summed-area table."""
    table = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.int64)
    table[1:, 1:] = mask.astype(np.int64).cumsum(0).cumsum(1)
    r0, c0 = windows[:, 0], windows[:, 1]
    r1, c1 = r0 + windows[:, 2], c0 + windows[:, 3]
    counts = table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]
    return counts / (windows[:, 2] * windows[:, 3])


def tile_index(
    grid: RegionGrid,
    valid: np.ndarray,
    labelled: np.ndarray,
    tile_px: int,
    overlap_px: int,
    block_tiles: int,
    val_fraction: float,
    test_fraction: float,
) -> gpd.GeoDataFrame:
    """One row per kept tile: ``tile_id``, pixel window, geometry (grid CRS), fractions of
    valid and labelled pixels, and split."""
    table = tile_windows(grid.shape, tile_px, overlap_px)
    splits = assign_splits(table[:, 0], table[:, 1], block_tiles, val_fraction, test_fraction)
    keep = drop_cross_split_overlaps(table, splits)
    table, splits = table[keep], splits[keep]
    windows = table[:, 2:]
    t = grid.transform
    geometry = [
        box(t.c + c * t.a, t.f + (r + h) * t.e, t.c + (c + w) * t.a, t.f + r * t.e)
        for r, c, h, w in windows
    ]
    return gpd.GeoDataFrame(
        {
            "tile_id": [f"r{i:04d}c{j:04d}" for i, j in table[:, :2]],
            "row_off": windows[:, 0].astype(np.int32),
            "col_off": windows[:, 1].astype(np.int32),
            "height": windows[:, 2].astype(np.int32),
            "width": windows[:, 3].astype(np.int32),
            "valid_fraction": window_fractions(valid, windows).astype(np.float32),
            "labelled_fraction": window_fractions(labelled, windows).astype(np.float32),
            "split": splits.astype(str),
        },
        geometry=geometry,
        crs=grid.crs.to_wkt(),
    )
