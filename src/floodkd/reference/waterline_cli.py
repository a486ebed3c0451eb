"""``floodkd waterline --config C --region R --teacher T --cube results/R/cube.zarr
--out results/R/waterline.tif``: the level at which the region's radar archive sees each
pixel flood (``floodkd.reference.waterline``).

The archive is the teacher's map of every radar pass of the cube before a target region's
held-out period (``floodkd holdout``'s ``train_before``, from the config as distillation
takes it; a source region has none and gives all its passes), each mapped as
``floodkd reference-water`` maps it; a pass is water where P(water) >=
``reference_water.water_probability``. Written as a float32 COG of metres (nodata where
unknown), read by the student as a static layer.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from floodkd.config import load_config, region_config
from floodkd.errors import InputError
from floodkd.grid import RegionGrid
from floodkd.outputs import check_outputs
from floodkd.predict.bands import BandSpec
from floodkd.predict.cog import cog_band_writer
from floodkd.reference.water import ReferenceSettings
from floodkd.reference.waterline import BEYOND_M, WaterlineArchive

__all__ = ["add_arguments", "run", "write_waterline"]

log = logging.getLogger(__name__)
BLOCKSIZE = 512  # GDAL's COG default


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="workflow config YAML")
    parser.add_argument("--region", required=True, help="region name in the config")
    parser.add_argument("--teacher", required=True,
                        help="teacher folder (holding teacher.safetensors) or the file itself")
    parser.add_argument("--cube", required=True, help="the region's cube.zarr")
    parser.add_argument("--out", required=True, help="results/<region>/waterline.tif")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if present)")


def run(args: argparse.Namespace) -> None:
    import torch
    from tqdm import tqdm

    from floodkd.distill.cli import teacher_weights
    from floodkd.distill.data import open_cube
    from floodkd.distill.holdout_cli import holdout_document
    from floodkd.models.checkpoint import load_checkpoint
    from floodkd.models.teacher import RadarTeacher
    from floodkd.predict.teacher import teacher_tiling
    from floodkd.reference.series import radar_passes, teacher_pass_maps

    config = load_config(args.config)
    grid = RegionGrid.from_config(config, args.region)
    check_outputs(config, args.config, replaced=[args.out], cubes=True,
                  inputs=[args.cube, args.teacher])
    cube = open_cube(args.cube, required=("vv_db", "vh_db", "radar_present", "water_level_m"))
    if not grid.same_as(RegionGrid.from_dataset(cube)):
        raise InputError(args.cube, "the cube is not on the region grid of the config",
                         "rerun `floodkd align` for this region with this config")
    times = cube["time"].values
    passes = radar_passes(cube)
    target = region_config(config, args.region)["role"] == "target"
    before = holdout_document(config, args.region)["train_before"] if target else None
    if before is not None:
        passes = [t for t in passes if times[t] < np.datetime64(before, "ns")]
    teacher, meta = load_checkpoint(RadarTeacher, teacher_weights(args.teacher))
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    teacher.to(device)
    tile_px, overlap_px = teacher_tiling(meta, teacher, config["predict"]["overlap_px"])
    settings = ReferenceSettings.from_config(config)
    archive = WaterlineArchive(grid.shape)
    maps = teacher_pass_maps(cube, teacher, tile_px, overlap_px,
                             int(config["predict"]["mc_samples"]), device, passes)
    for t, probability in tqdm(maps, total=len(passes), unit="pass", desc="waterline"):
        archive.add(t, probability, settings.water_probability)
    level, above = archive.level(
        lambda ts, rows: cube["water_level_m"].isel(time=ts, y=rows).values,
        settings.min_valid_passes)
    if not np.isfinite(level).any():
        log.warning("%s: no pixel has %d valid radar passes before the held-out period (%d "
                    "passes), so the waterline is unknown everywhere and the student reads "
                    "the DEM alone", args.region, settings.min_valid_passes, len(passes))
    tags = {"REGION": args.region, "RADAR_PASSES": str(len(passes)),
            "SOURCE": "the teacher's map of each radar pass "
            + (f"before the held-out period ({before})" if before else "of the cube"),
            "RULE": f"the gauge level that best splits the passes with P(water) >= "
            f"{settings.water_probability:g} from the others; never wet: highest level + "
            f"{BEYOND_M:g} m, always wet: lowest - {BEYOND_M:g} m; unknown under "
            f"{settings.min_valid_passes} valid passes"}
    write_waterline(args.out, level, above, grid, tags)
    log.info("wrote %s from %d passes: %d px known", args.out, len(passes),
             int(np.isfinite(level).sum()))


def write_waterline(path: str | Path, level: np.ndarray, above: np.ndarray, grid: RegionGrid,
                    tags: dict[str, str]) -> Path:
    """The layer as a two-band float32 COG on the region grid, atomically: the level in
    metres (nodata where NaN) and 1 where the pixel was never seen wet (its level lies above
    band 1), else 0."""
    bands = [BandSpec("waterline_m", "m", "water level at which the radar archive sees the "
                      "pixel flood"),
             BandSpec("waterline_above", "1", "1: never seen wet, the level lies above "
                      "waterline_m; 0: seen to change (or always wet)", overview_resampling="mode")]
    with cog_band_writer(path, bands, tags=tags, crs=grid.crs.to_wkt(),
                         transform=grid.transform, shape=grid.shape,
                         blocksize=BLOCKSIZE) as writer:
        writer.write_rows(0, {"waterline_m": level.astype(np.float32),
                              "waterline_above": above.astype(np.float32)})
    return Path(path)
