"""``floodkd reference-water --config C --region R --teacher T --cube results/R/cube.zarr
--out results/R/reference_water.tif``: the region's reference (permanent) water layer.

From the user's raster where ``regions.<name>.reference_water`` names one (checked against
the region grid), else from the teacher over every radar pass of the cube
(``floodkd.reference.water``). Written as a uint8 COG: 1 reference water, 0 not, 255 unknown.
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
from floodkd.predict.cog import BandSpec, cog_band_writer
from floodkd.reference.water import (
    NOT_REFERENCE,
    REFERENCE,
    UNKNOWN,
    ReferenceSettings,
    read_reference_raster,
    reference_water_mask,
)

__all__ = ["add_arguments", "run", "write_reference_water"]

log = logging.getLogger(__name__)
BLOCKSIZE = 512  # GDAL's COG default
CLASS_NAMES = {NOT_REFERENCE: "not reference water", REFERENCE: "reference water",
               UNKNOWN: "unknown: too few valid radar passes, or nodata in the user raster"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="workflow config YAML")
    parser.add_argument("--region", required=True, help="region name in the config")
    parser.add_argument("--teacher", help="teacher folder (holding teacher.safetensors) or the "
                        "file itself; not read when the region names a reference water raster")
    parser.add_argument("--cube", required=True, help="the region's cube.zarr")
    parser.add_argument("--out", required=True, help="results/<region>/reference_water.tif")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if present)")


def run(args: argparse.Namespace) -> None:
    config = load_config(args.config)
    region = region_config(config, args.region)
    grid = RegionGrid.from_config(config, args.region)
    user_raster = region.get("reference_water")
    teacher_inputs = [args.teacher] if args.teacher and not user_raster else []
    check_outputs(config, args.config, replaced=[args.out], cubes=True,
                  inputs=[args.cube, *teacher_inputs])
    tags = {"REGION": args.region, "SYNTHETIC": str(bool(region.get("synthetic"))).lower()}
    if user_raster:
        mask = read_reference_raster(user_raster, grid)
        tags["SOURCE"] = f"user raster {user_raster} (regions.{args.region}.reference_water)"
    else:
        mask, passes = _from_teacher(config, args, grid)
        settings = ReferenceSettings.from_config(config)
        tags.update(SOURCE="the teacher over every radar pass of the cube",
                    RULE=settings.rule(), RADAR_PASSES=str(passes))
        if not (mask != UNKNOWN).any():
            log.warning("%s: no pixel has %d valid radar passes (the cube has %d), so the "
                        "reference water is unknown everywhere and evaluation counts all water "
                        "as flood; ingest more passes, lower reference_water.min_valid_passes "
                        "or name a raster in regions.%s.reference_water", args.region,
                        settings.min_valid_passes, passes, args.region)
    write_reference_water(args.out, mask, grid, tags)
    log.info("wrote %s: %d px reference water, %d px unknown", args.out,
             int((mask == REFERENCE).sum()), int((mask == UNKNOWN).sum()))


def _from_teacher(config: dict, args: argparse.Namespace,
                  grid: RegionGrid) -> tuple[np.ndarray, int]:
    import torch
    from tqdm import tqdm

    from floodkd.distill.cli import teacher_weights
    from floodkd.distill.data import open_cube
    from floodkd.models.checkpoint import load_checkpoint
    from floodkd.models.teacher import RadarTeacher
    from floodkd.predict.teacher import teacher_tiling
    from floodkd.reference.series import radar_passes, teacher_water_counts

    if args.teacher is None:
        raise InputError("command line", f"region '{args.region}' names no reference water "
                         "raster, so the teacher maps it: --teacher is needed",
                         "pass --teacher results/teacher, or set "
                         f"regions.{args.region}.reference_water")
    cube = open_cube(args.cube, required=("vv_db", "vh_db", "radar_present"))
    if not grid.same_as(RegionGrid.from_dataset(cube)):
        raise InputError(args.cube, "the cube is not on the region grid of the config",
                         "rerun `floodkd align` for this region with this config")
    teacher, meta = load_checkpoint(RadarTeacher, teacher_weights(args.teacher))
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    teacher.to(device)
    tile_px, overlap_px = teacher_tiling(meta, teacher, config["predict"]["overlap_px"])
    settings = ReferenceSettings.from_config(config)
    passes = radar_passes(cube)
    with tqdm(total=len(passes), unit="pass", desc="reference water") as progress:
        counts = teacher_water_counts(cube, teacher, tile_px, overlap_px,
                                      int(config["predict"]["mc_samples"]),
                                      settings.water_probability, device,
                                      on_pass=lambda _t: progress.update())
    return reference_water_mask(counts, settings), len(passes)


def write_reference_water(path: str | Path, mask: np.ndarray, grid: RegionGrid,
                          tags: dict[str, str]) -> Path:
    """The layer as a uint8 COG on the region grid (overviews by mode), atomically."""
    path = Path(path)
    classes = {f"CLASS_{value}": name for value, name in CLASS_NAMES.items()}
    band = BandSpec("reference_water", "class", ", ".join(
        f"{value} {name}" for value, name in CLASS_NAMES.items()), overview_resampling="mode")
    with cog_band_writer(path, [band], tags={**tags, **classes}, dtype="uint8",
                         crs=grid.crs.to_wkt(), transform=grid.transform, shape=grid.shape,
                         blocksize=BLOCKSIZE) as writer:
        writer.write_rows(0, {"reference_water": mask.astype(np.uint8)})
    return path
