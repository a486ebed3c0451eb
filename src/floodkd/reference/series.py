"""The teacher over every radar pass of a region's cube, counted into ``WaterCounts``.

Each pass is mapped as ``floodkd predict --model teacher`` maps one (the same tiled, blended
MC-dropout mean of the teacher, at the teacher's training tile size), so the reference water
is what the teacher's own maps show, pass after pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from floodkd.models.teacher import RadarTeacher
from floodkd.predict.teacher import teacher_window_predictor
from floodkd.predict.tiled import predict_row_bands
from floodkd.reference.water import WaterCounts

__all__ = ["radar_passes", "teacher_water_counts"]


def radar_passes(cube: Any) -> list[int]:
    """Time indices of the cube that hold a radar pass."""
    return [int(t) for t in np.flatnonzero(np.asarray(cube["radar_present"].values, bool))]


def teacher_water_counts(
    cube: Any, teacher: RadarTeacher, tile_px: int, overlap_px: int, mc_samples: int,
    water_probability: float, device: torch.device | str = "cpu",
    on_pass: Callable[[int], None] | None = None,
) -> WaterCounts:
    """Per pixel, the radar passes the teacher mapped and those it mapped as water
    (P(water) >= ``water_probability``). Dropout masks are seeded by the pass's time index,
    so the same cube and weights always give the same counts."""
    shape = (int(cube.sizes["y"]), int(cube.sizes["x"]))
    counts = WaterCounts.zeros(shape)
    for t in radar_passes(cube):
        torch.manual_seed(t)
        predict_window = teacher_window_predictor(cube, t, teacher, mc_samples, device)
        for band in predict_row_bands(shape, predict_window, tile_px, overlap_px):
            counts.add(band.row_off, band.maps.probability, water_probability)
        if on_pass is not None:
            on_pass(t)
    return counts
