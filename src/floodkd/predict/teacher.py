"""Radar-only maps: the teacher alone over a region's latest radar pass.

``floodkd predict --model teacher`` (or ``model: teacher`` in the region's config block) maps
a region that has nothing but Sentinel-1, as the Copernicus Global Flood Monitoring service
does: no DEM, no optical, no gauges. It writes the same products as the student path
(probability, uncertainty and inputs-used COGs, QGIS styles, STAC Items, quicklooks; extent,
flood polygons and likelihood). Scenario ``observed`` is the latest radar pass (also the
inputs' window of its STAC Items); water-level scenarios need the student, which reads the
water level, and are refused here. Uncertainty comes from MC dropout of each of the
teacher's ViTs: ``mc_samples`` draws per member.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from floodkd.config import region_config
from floodkd.errors import InputError
from floodkd.grid import RegionGrid
from floodkd.models.channels import teacher_image
from floodkd.models.checkpoint import load_checkpoint, weights_sha256
from floodkd.models.teacher import RadarTeacher
from floodkd.predict.extent import ExtentInputs, ExtentSettings
from floodkd.predict.tiled import (
    INPUT_FLAGS,
    MapFiles,
    MapProvenance,
    PredictWindow,
    count_tiles,
    mirror_pad,
    write_scenario_maps,
)

__all__ = ["TEACHER_WEIGHTS", "latest_pass", "mc_dropout", "teacher_tiling",
           "teacher_window_predictor", "map_with_teacher", "run"]

log = logging.getLogger(__name__)

TEACHER_WEIGHTS = "teacher.safetensors"
OBSERVED = "observed"


def latest_pass(cube: Any) -> int:
    """Index of the cube's last time with a radar pass (the observed state of the region)."""
    present = np.flatnonzero(np.asarray(cube["radar_present"].values, dtype=bool))
    if present.size == 0:
        raise InputError("cube", "the datacube holds no radar pass",
                         "ingest at least one Sentinel-1 scene of the region and rerun align")
    return int(present[-1])


@contextmanager
def mc_dropout(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode with only its dropout layers active (MC dropout), no grads."""
    model.eval()
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout | nn.Dropout2d)]
    for module in dropouts:
        module.train()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.eval()


def teacher_tiling(meta: dict[str, Any], teacher: RadarTeacher, overlap_px: int
                   ) -> tuple[int, int]:
    """(tile, overlap) in px for mapping with the teacher: its own training tile size (its
    position embeddings were learnt at that size), the overlap at most a quarter of it."""
    tile_px = int(meta.get("tile_size_px", [teacher.config.image_size])[0])
    return tile_px, min(int(overlap_px), tile_px // 4)


def teacher_window_predictor(
    cube: Any, time_index: int, teacher: RadarTeacher, mc_samples: int,
    device: torch.device | str = "cpu",
) -> PredictWindow:
    """predict_window over one radar pass: (S, h, w) MC-dropout samples of P(water), NaN
    where VV or VH is missing, and the inputs_used flags (radar where it was read)."""
    from floodkd.distill.data import cube_chunk_px, cube_pass_land_level_db

    patch = teacher.config.patch_size
    at_time = cube[["vv_db", "vh_db"]].isel(time=time_index)
    land_level = cube_pass_land_level_db(cube, time_index)  # the whole pass's, as in training
    chunk_rows = cube_chunk_px(cube)[0]
    # the rows read last, across the width: at most a chunk row and a tile
    strip: dict[str, Any] = {}

    def read(row_off: int, col_off: int, height: int, width: int) -> Any:
        """The window, cut from a strip of rows read across the width down to the end of
        the cube's chunk row where the window ends. Tiles come row by row, and each window
        read alone would decompress its chunks again: 16 times per pass at the demo's size."""
        if not strip or not strip["top"] <= row_off <= row_off + height <= strip["bottom"]:
            bottom = min(-(-(row_off + height) // chunk_rows) * chunk_rows, at_time.sizes["y"])
            strip.update(top=row_off, bottom=bottom,
                         rows=at_time.isel(y=slice(row_off, bottom)).load())
        top = strip["top"]
        return strip["rows"].isel(y=slice(row_off - top, row_off - top + height),
                                  x=slice(col_off, col_off + width))

    def predict_window(row_off: int, col_off: int, height: int, width: int):
        window = read(row_off, col_off, height, width)
        vv, vh = window["vv_db"].values, window["vh_db"].values
        valid = np.isfinite(vv) & np.isfinite(vh)
        image = teacher_image(vv, vh, land_level)
        # up to whole patches by mirroring, not zeros: a zero strip is no radar the model saw
        pad = ((0, -height % patch), (0, -width % patch))
        batch = torch.from_numpy(mirror_pad(image, pad)).unsqueeze(0).repeat(
            mc_samples, 1, 1, 1)
        batch = batch.to(device)
        with mc_dropout(teacher):  # each ViT's draws: the spread holds their disagreement too
            water = [torch.softmax(member(batch)[0].float(), dim=1)[:, 1]
                     for member in teacher.members]
        samples = torch.cat(water)[:, :height, :width].cpu().numpy()
        samples[:, ~valid] = np.nan  # no backscatter, no prediction
        flags = np.where(valid, INPUT_FLAGS["radar"], 0).astype(np.uint16)
        return samples.astype(np.float32), flags

    return predict_window


def map_with_teacher(
    config: dict[str, Any], region_name: str, scenario: str, teacher_dir: Path, cube_path: Path,
    out_dir: Path, device: str | None = None, reference_water: Path | None = None,
) -> MapFiles:
    """Write the ``observed`` maps of ``region_name`` from its latest radar pass."""
    from tqdm import tqdm

    from floodkd.distill.data import open_cube
    from floodkd.region import region_outline

    if scenario != OBSERVED:
        raise InputError(
            "config", f"scenario '{scenario}' sets a water level, which the radar teacher "
            "does not read (it maps what a pass observed)",
            f"map '{scenario}' with the student (regions.{region_name}.model: student, which "
            "needs terrain), or ask the teacher for the observed scenario only")
    region = region_config(config, region_name)
    weights = teacher_dir / TEACHER_WEIGHTS
    teacher, meta = load_checkpoint(RadarTeacher, weights)
    cube = open_cube(cube_path, required=("vv_db", "vh_db", "radar_present", "elevation_m"))
    grid = RegionGrid.from_config(config, region_name)
    if not grid.same_as(RegionGrid.from_dataset(cube)):
        raise InputError(cube_path, "the cube is not on the region grid of the config",
                         "rerun `floodkd align` for this region with this config")
    time_index = latest_pass(cube)
    when = pd.Timestamp(cube["time"].values[time_index]).to_pydatetime().replace(tzinfo=UTC)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    teacher.to(device)
    settings = config["predict"]
    tile_px, overlap_px = teacher_tiling(meta, teacher, settings["overlap_px"])
    predict_window = teacher_window_predictor(cube, time_index, teacher,
                                              int(settings["mc_samples"]), device)
    provenance = MapProvenance(
        region=region_name, scenario=scenario, scenario_datetime=when,
        model_sha256=weights_sha256(weights), input_files=[str(cube_path), str(weights)],
        synthetic=bool(region.get("synthetic", False)),
        extra={"model": "teacher", "radar_pass": when.isoformat()},
    )
    total = count_tiles(grid.shape, tile_px, overlap_px)
    log.info("radar-only map of %s from the pass of %s: %s x %s px, %d tiles on %s",
             region_name, when.isoformat(), *grid.shape, total, device)
    with tqdm(total=total, unit="tile", desc=f"predict {scenario} (teacher)") as progress:
        written = write_scenario_maps(
            grid, predict_window, out_dir, provenance, outline_lonlat=region_outline(region),
            tile_px=tile_px, overlap_px=overlap_px, on_tile=lambda _window: progress.update(),
            # a radar-only cube has elevation_m all missing: no sea class, the rest (reference
            # water included) as for the student
            extent=ExtentInputs(cube["elevation_m"], ExtentSettings.from_config(config),
                                reference_water),
        )
    return written


def run(args: argparse.Namespace, config: dict[str, Any]) -> None:
    """The ``--model teacher`` branch of ``floodkd predict`` (``config`` already loaded)."""
    if args.teacher is None:
        raise InputError("command line", "--model teacher needs --teacher",
                         "pass --teacher results/teacher (the folder of teacher.safetensors)")
    written = map_with_teacher(config, args.region, args.scenario,
                               Path(args.teacher), Path(args.cube), Path(args.out), args.device,
                               args.reference_water)
    log.info("wrote %s and %s", written.probability, written.uncertainty)
