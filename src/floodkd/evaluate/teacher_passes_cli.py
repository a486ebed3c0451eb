"""``floodkd teacher-passes --config C --region R --teacher T --out
results/R/teacher_passes.tif``: the teacher's map of each radar pass evaluation scores
(``floodkd.evaluate.teacher_passes``), so that ``floodkd evaluate`` never builds the ViT."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from floodkd.config import load_config
from floodkd.distill.cli import add_region_teacher_arguments, teacher_weights
from floodkd.distill.data import (
    TERRAIN_VARIABLES,
    holdout_mask,
    open_region,
    padded_size,
    time_window_days,
)
from floodkd.distill.loop import iso_times, pick_device
from floodkd.distill.settings import training_settings
from floodkd.evaluate.evaluate import EvaluateConfig, evaluation_plan, predict_time
from floodkd.evaluate.teacher_passes import write_teacher_passes
from floodkd.grid import RegionGrid
from floodkd.outputs import check_outputs
from floodkd.settings import settings_from_config

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_region_teacher_arguments(parser)
    parser.add_argument("--out", required=True, help="results/<region>/teacher_passes.tif")


def map_teacher_passes(config: dict[str, Any], region_name: str, teacher_path: str | Path,
                       out_path: str | Path) -> list[str]:
    """Write the teacher's stitched P(water) of every radar pass evaluation scores in
    ``region_name`` to ``out_path``, NaN where the pass has no data; the held-out period is
    cut as distillation cuts it. Returns the pass times (ISO 8601)."""
    from floodkd.models.checkpoint import load_checkpoint
    from floodkd.models.teacher import RadarTeacher

    settings = settings_from_config(EvaluateConfig, config, "evaluate")
    training = training_settings(config)
    region = open_region(config.get("results_dir", "results"), region_name,
                         ["vv_db", "radar_present", *TERRAIN_VARIABLES])
    cube, times = region.cube, region.cube["time"].values
    radar = cube["radar_present"].values.astype(bool)
    window_days = time_window_days(config)
    held = holdout_mask(times, radar, training.holdout_fraction, window_days)
    passes = evaluation_plan(config, region_name, region, held, settings)
    device = pick_device(training.device)
    teacher, _ = load_checkpoint(RadarTeacher, teacher_path)
    teacher.to(device).eval()
    size = padded_size([region.tiles], teacher.config.patch_size)

    def bands() -> Iterator[np.ndarray]:  # one pass at a time, written as it is mapped
        for t in passes.times["radar_passes"]:
            prob = predict_time(region, passes.tile_positions, t, size, teacher, {}, settings,
                                device)["teacher"]
            prob[~np.isfinite(cube["vv_db"].isel(time=t).values)] = np.nan
            log.info("teacher on the radar pass of %s", times[t])
            yield prob

    names = iso_times(times[passes.times["radar_passes"]])
    write_teacher_passes(out_path, bands(), names, RegionGrid.from_dataset(cube), region_name)
    return names


def run(args: argparse.Namespace) -> None:
    config = load_config(args.config)
    teacher = teacher_weights(args.teacher)
    check_outputs(config, args.config, replaced=[args.out], inputs=[teacher], cubes=True)
    names = map_teacher_passes(config, args.region, teacher, args.out)
    log.info("wrote %s: the teacher on %d radar passes", args.out, len(names))
