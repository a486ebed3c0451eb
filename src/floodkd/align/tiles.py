"""The tile index: the grid cut into split blocks, each block into overlapping tiles.

Splits (train / val / test) are assigned per block, and tiles never cross a block edge, so
tiles of different splits never share a pixel while every pixel still lies in some tile.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
from shapely.geometry import box

from floodkd.grid import RegionGrid

__all__ = ["SPLIT_SEED", "tile_starts", "block_edges", "tile_windows", "assign_splits",
           "window_fractions", "tile_index"]

SPLIT_SEED = 20240601  # fixed: the same region always gets the same splits


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


def block_edges(length: int, block_px: int) -> np.ndarray:
    """Edges of the split blocks along one axis: as many blocks as fit about ``block_px``,
    of near-equal size, so no sliver block is left at the end."""
    n_blocks = max(1, round(length / block_px))
    return np.linspace(0, length, n_blocks + 1).round().astype(np.int64)


def tile_windows(shape: tuple[int, int], tile_px: int, overlap_px: int, block_tiles: int
                 ) -> np.ndarray:
    """(n, 8) int array: block row, block column, tile row, tile column, row_off, col_off,
    height, width. Tiles overlap within a block and never cross a block edge."""
    block_px = block_tiles * tile_px
    out = []
    axes = [block_edges(n, block_px) for n in shape]
    tile_row = 0
    for bi, (r0, r1) in enumerate(zip(axes[0][:-1], axes[0][1:], strict=True)):
        rows = r0 + tile_starts(int(r1 - r0), tile_px, overlap_px)
        tile_col = 0
        for bj, (c0, c1) in enumerate(zip(axes[1][:-1], axes[1][1:], strict=True)):
            cols = c0 + tile_starts(int(c1 - c0), tile_px, overlap_px)
            out += [(bi, bj, tile_row + i, tile_col + j, r, c,
                     min(tile_px, r1 - r), min(tile_px, c1 - c))
                    for i, r in enumerate(rows) for j, c in enumerate(cols)]
            tile_col += len(cols)
        tile_row += len(rows)
    return np.array(out, dtype=np.int64).reshape(-1, 8)


def assign_splits(block_rows: np.ndarray, block_cols: np.ndarray, val_fraction: float,
                  test_fraction: float, seed: int = SPLIT_SEED) -> np.ndarray:
    """Split of each tile from its block: blocks are shuffled deterministically and the first
    ``test_fraction`` of them go to test, the next ``val_fraction`` to val, the rest to train
    (at least one block each for test and val when there are three blocks or more)."""
    if val_fraction + test_fraction > 1:
        raise ValueError("val_fraction + test_fraction must not exceed 1")
    blocks = np.unique(np.stack([block_rows, block_cols], axis=1), axis=0)
    order = np.random.default_rng(seed).permutation(len(blocks))
    at_least = 1 if len(blocks) >= 3 else 0
    n_test = max(int(round(test_fraction * len(blocks))), at_least if test_fraction else 0)
    n_val = max(int(round(val_fraction * len(blocks))), at_least if val_fraction else 0)
    block_split = np.full(len(blocks), "train", dtype=object)
    block_split[order[:n_test]] = "test"
    block_split[order[n_test:n_test + n_val]] = "val"
    lookup = {(int(r), int(c)): s for (r, c), s in zip(blocks, block_split, strict=True)}
    return np.array([lookup[(int(r), int(c))] for r, c in zip(block_rows, block_cols,
                                                               strict=True)], dtype=object)


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
    """One row per tile: ``tile_id``, pixel window, geometry (grid CRS), fractions of
    valid and labelled pixels, and split."""
    table = tile_windows(grid.shape, tile_px, overlap_px, block_tiles)
    splits = assign_splits(table[:, 0], table[:, 1], val_fraction, test_fraction)
    windows = table[:, 4:]
    t = grid.transform
    geometry = [
        box(t.c + c * t.a, t.f + (r + h) * t.e, t.c + (c + w) * t.a, t.f + r * t.e)
        for r, c, h, w in windows
    ]
    return gpd.GeoDataFrame(
        {
            "tile_id": [f"r{i:04d}c{j:04d}" for i, j in table[:, 2:4]],
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
