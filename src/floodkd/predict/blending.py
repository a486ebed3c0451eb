"""Tile layout and smooth blending weights for seam-free tiled inference.

Tiles overlap by ``overlap_px``; inside the overlap each tile's weight rises along a raised
cosine (Hann) ramp from a small positive value at its edge to 1, so the weighted mean of
overlapping tiles changes smoothly and no seam shows. Weights are strictly positive so a pixel
covered by one tile only (the region's border) still gets a value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from floodkd.align.tiles import tile_starts

__all__ = ["Window", "tile_windows", "ramp_1d"]


@dataclass(frozen=True)
class Window:
    """A pixel window of the region grid."""

    row_off: int
    col_off: int
    height: int
    width: int


def tile_windows(shape: tuple[int, int], tile_px: int, overlap_px: int) -> list[list[Window]]:
    """The tiles covering a (rows, cols) grid, grouped by tile row, top to bottom."""
    rows, cols = shape
    col_offsets = tile_starts(cols, tile_px, overlap_px)
    return [
        [
            Window(int(row_off), int(col_off), min(tile_px, rows), min(tile_px, cols))
            for col_off in col_offsets
        ]
        for row_off in tile_starts(rows, tile_px, overlap_px)
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
