"""The teacher over every radar pass of a region's cube, counted into ``WaterCounts`` (and,
pass by pass, for the waterline).

Each pass is mapped as ``floodkd predict --model teacher`` maps one (the same tiled, blended
MC-dropout mean of the teacher, at the teacher's training tile size), so the reference water
is what the teacher's own maps show, pass after pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from floodkd.models.teacher import RadarTeacher
from floodkd.predict.teacher import teacher_window_predictor
from floodkd.predict.tiled import predict_row_bands
from floodkd.reference.water import WaterCounts

__all__ = ["radar_passes", "teacher_pass_maps", "teacher_water_counts"]


def radar_passes(cube: Any) -> list[int]:
    """Time indices of the cube that hold a radar pass."""
    return [int(t) for t in np.flatnonzero(np.asarray(cube["radar_present"].values, bool))]


def teacher_pass_maps(
    cube: Any, teacher: RadarTeacher, tile_px: int, overlap_px: int, mc_samples: int,
    device: torch.device | str = "cpu", passes: Sequence[int] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """(time index, P(water) on the whole grid, NaN where not observed) for each of
    ``passes`` (default: every radar pass). Dropout masks are seeded by the pass's time
    index, so the same cube and weights always give the same maps."""
    shape = (int(cube.sizes["y"]), int(cube.sizes["x"]))
    for t in radar_passes(cube) if passes is None else passes:
        torch.manual_seed(t)
        predict_window = teacher_window_predictor(cube, t, teacher, mc_samples, device)
        probability = np.full(shape, np.nan, np.float32)
        for band in predict_row_bands(shape, predict_window, tile_px, overlap_px):
            rows = slice(band.row_off, band.row_off + band.maps.probability.shape[0])
            probability[rows] = band.maps.probability
        yield t, probability


def teacher_water_counts(
    cube: Any, teacher: RadarTeacher, tile_px: int, overlap_px: int, mc_samples: int,
    water_probability: float, device: torch.device | str = "cpu",
    on_pass: Callable[[int], None] | None = None,
) -> WaterCounts:
    """Per pixel, the radar passes the teacher mapped and those it mapped as water
    (P(water) >= ``water_probability``), as ``teacher_pass_maps`` maps them."""
    counts = WaterCounts.zeros((int(cube.sizes["y"]), int(cube.sizes["x"])))
    for t, probability in teacher_pass_maps(cube, teacher, tile_px, overlap_px, mc_samples,
                                            device):
        counts.add(0, probability, water_probability)
        if on_pass is not None:
            on_pass(t)
    return counts
