"""Tile layout and smooth blending weights for seam-free tiled inference.

Tiles overlap by ``overlap_px``; inside the overlap each tile's weight rises along a raised
cosine (Hann) ramp from a small positive value at its edge to 1, so the weighted mean of
overlapping tiles changes smoothly and no seam shows. Weights are strictly positive so a pixel
covered by one tile only (the region's border) still gets a value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Window", "tile_offsets", "tile_windows", "ramp_1d", "blend_weights"]


@dataclass(frozen=True)
class Window:
    """A pixel window of the region grid."""

    row_off: int
    col_off: int
    height: int
    width: int


def tile_offsets(length: int, tile_px: int, overlap_px: int) -> list[int]:
    """Start offsets of tiles of ``tile_px`` covering ``length`` pixels with ``overlap_px``.

    Tiles step by ``tile_px - overlap_px``; the last tile is aligned to the end so every tile
    has the full size (models want fixed, patch-aligned sizes). A length shorter than one
    tile gives one tile at 0 (it is clipped to the length by ``tile_windows``).
    """
    if tile_px <= 0 or length <= 0:
        raise ValueError(f"tile_px and length must be positive, got {tile_px}, {length}")
    if not 0 <= overlap_px < tile_px:
        raise ValueError(f"overlap_px must be in [0, tile_px), got {overlap_px} for {tile_px}")
    if length <= tile_px:
        return [0]
    stride = tile_px - overlap_px
    offsets = list(range(0, length - tile_px, stride))
    offsets.append(length - tile_px)
    return offsets


def tile_windows(shape: tuple[int, int], tile_px: int, overlap_px: int) -> list[list[Window]]:
    """The tiles covering a (rows, cols) grid, grouped by tile row, top to bottom."""
    rows, cols = shape
    col_offsets = tile_offsets(cols, tile_px, overlap_px)
    return [
        [
            Window(row_off, col_off, min(tile_px, rows), min(tile_px, cols))
            for col_off in col_offsets
        ]
        for row_off in tile_offsets(rows, tile_px, overlap_px)
    ]


def ramp_1d(length: int, overlap_px: int) -> np.ndarray:
    """Weights along one axis: Hann ramps of ``overlap_px`` at both ends, 1 in between.

    The ramp samples 0.5 - 0.5 cos(pi (i + 0.5) / (overlap + 1)): half a pixel in from the
    zero of the cosine, so the edge weight is small but never zero.
    """
    weights = np.ones(length, dtype=np.float64)
    ramp_len = min(overlap_px, length // 2)
    if ramp_len > 0:
        i = np.arange(ramp_len, dtype=np.float64)
        ramp = 0.5 - 0.5 * np.cos(np.pi * (i + 0.5) / (ramp_len + 1))
        weights[:ramp_len] = ramp
        weights[length - ramp_len :] = ramp[::-1]
    return weights


def blend_weights(height: int, width: int, overlap_px: int) -> np.ndarray:
    """The (height, width) blending weight of one tile: outer product of two 1-D ramps."""
    return np.outer(ramp_1d(height, overlap_px), ramp_1d(width, overlap_px))
