"""``floodkd predict``: the student ensemble over a whole region, written as maps.

The edge of the stage: reads the config, the cube and the student ensemble, builds the
``predict_window`` callable the tiled engine needs, and writes one scenario's maps.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from floodkd.config import load_config, region_config
from floodkd.errors import InputError
from floodkd.models.checkpoint import weights_sha256
from floodkd.outputs import check_outputs
from floodkd.predict import climate_scenario
from floodkd.predict.extent import ExtentInputs, ExtentSettings
from floodkd.predict.tiled import (
    CONTEXT_CELLS,
    INPUT_FLAGS,
    MapProvenance,
    context_window,
    count_tiles,
    mirror_pad,
    write_scenario_maps,
)

__all__ = ["add_arguments", "run", "resolve_scenario", "checkpoint_sha256", "input_flags",
           "window_reader"]

log = logging.getLogger(__name__)
OBSERVED = "observed"
MEMBER_GLOB = "member-*.safetensors"  # the distilled ensemble that the maps come from


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="workflow config YAML")
    parser.add_argument("--region", required=True, help="region name in the config")
    parser.add_argument("--scenario", default=OBSERVED,
                        help="scenario from predict.scenarios (default: observed)")
    parser.add_argument("--model", choices=("student", "teacher"), default=None,
                        help="what maps the region (default: regions.<name>.model in config)")
    parser.add_argument("--student", help="folder of member-<k>.safetensors (model student)")
    parser.add_argument("--teacher", help="folder of teacher.safetensors (model teacher)")
    parser.add_argument("--cube", required=True, help="the region's cube.zarr")
    parser.add_argument("--out", required=True, help="maps folder, e.g. results/<region>/maps")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if present)")
    parser.add_argument("--risk", help="results/<region>/risk, for climate scenarios")
    parser.add_argument("--reference-water",
                        help="results/<region>/reference_water.tif (floodkd reference-water): "
                        "its permanent water is class 2 of the extent, not flood")
    parser.add_argument("--waterline",
                        help="results/<region>/waterline.tif (floodkd waterline): the student "
                        "reads the radar archive's flooding levels; the one it was distilled "
                        "with")


def resolve_scenario(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The water-level override of a scenario: {} (observed), an offset or an absolute level,
    or a climate scenario (floodkd.predict.climate_scenario)."""
    scenarios = config.get("predict", {}).get("scenarios", {})
    if name == OBSERVED and name not in scenarios:
        return {}
    if name not in scenarios:
        known = ", ".join(sorted({OBSERVED, *scenarios}))
        raise InputError("config", f"unknown scenario '{name}'",
                         f"use one of: {known}, or add it under predict.scenarios")
    spec = dict(scenarios[name] or {})
    if climate_scenario.is_climate(spec):
        return spec
    keys = set(spec) & {"water_level_offset_m", "water_level_m"}
    if len(keys) > 1 or set(spec) - keys:
        raise InputError("config", f"predict.scenarios.{name} has keys {sorted(spec)}",
                         "give exactly one of water_level_offset_m or water_level_m (metres)")
    return {key: float(value) for key, value in spec.items()}


def checkpoint_sha256(student_dir: Path) -> str:
    """sha256 over the ensemble members' names and tensor hashes (sorted by name), for
    provenance: identical for identical weights (``models.checkpoint.weights_sha256``)."""
    files = sorted(student_dir.glob(MEMBER_GLOB))
    if not files:
        raise InputError(student_dir, "no *.safetensors files", "run `floodkd distill` first")
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.name}:{weights_sha256(path)}\n".encode())
    return digest.hexdigest()


def input_flags(window: Any, presence: dict[str, bool]) -> np.ndarray:
    """Per-pixel bit flags of the inputs the prediction rests on (see INPUT_FLAGS)."""
    elevation = np.asarray(window["elevation_m"].values)
    flags = np.where(np.isfinite(elevation), INPUT_FLAGS["terrain"], 0).astype(np.uint16)
    if presence.get("optical") and "clear_sky" in window:
        clear = np.nan_to_num(np.asarray(window["clear_sky"].values, np.float32)) == 1
        flags |= np.where(clear, INPUT_FLAGS["optical_clear"], 0).astype(np.uint16)
    if presence.get("gauge"):
        flags |= INPUT_FLAGS["gauge"]
    if presence.get("gcm"):
        flags |= INPUT_FLAGS["gcm"]
    return flags


def apply_scenario(window: Any, scenario: dict[str, float]) -> Any:
    """The window with the scenario's water level: an offset shifts the observed field and the
    gauge histories; an absolute level sets the field everywhere and ends each history at it
    (a history with no observations becomes flat at that level)."""
    if not scenario:
        return window
    window = window.copy()
    if "water_level_offset_m" in scenario:
        if not np.isfinite(window["water_level_m"].values).any():
            raise InputError("scenario", "water_level_offset_m needs an observed water level, "
                             "and this date has none (no tide input or no gauge value)",
                             "give an absolute water_level_m for this scenario instead")
        shift = scenario["water_level_offset_m"]
        window["water_level_m"] = window["water_level_m"] + shift
        if "gauge_history_m" in window:
            window["gauge_history_m"] = window["gauge_history_m"] + shift
    else:
        level = scenario["water_level_m"]
        window["water_level_m"] = xr.full_like(window["water_level_m"], level)
        if "gauge_history_m" in window:
            history = window["gauge_history_m"]
            ended = history - history.isel(lag=-1) + level
            window["gauge_history_m"] = ended.fillna(level)
    window["gauge_present"] = window["gauge_present"] * 0 + 1  # the level is now known
    return window


def window_reader(cube: xr.Dataset, time_index: int) -> Callable[[int, int, int, int], xr.Dataset]:
    """read(row_off, col_off, height, width): ``distill.data.read_window`` of what the
    student is made of (its channels, the presence flags and the gauge histories; no radar,
    no labels) at ``time_index`` over that pixel window.

    Give it the cube opened without dask (``open_cube(path, dask=False)``): each read then
    indexes the Zarr arrays, which fetch only the chunks the window touches, with no task
    graph built and run per window (about 5x faster per window on the test cube)."""
    from floodkd.distill.data import STUDENT_VARIABLES, read_window

    def read(row_off: int, col_off: int, height: int, width: int) -> xr.Dataset:
        return read_window(cube, time_index, row_off, col_off, height, width, STUDENT_VARIABLES)

    return read


def student_window_predictor(
    cube: Any, time_index: int, ensemble: Any, scenario: dict[str, float], mc_samples: int,
    multiple: int,
) -> Callable[[int, int, int, int], tuple[np.ndarray, np.ndarray]]:
    """predict_window over the cube at one time: (S, h, w) samples of P(flood), input flags.

    Each tile is predicted with ``CONTEXT_CELLS`` cells of the student's coarsest grid around
    it (``tiled.context_window``: the cube where it goes on, mirrored beyond the region's
    edge), so that the convolutions' zero padding never touches the map: without it the
    first and last rows and columns of a region differ from their neighbours even where the
    inputs do not. Windows are read by ``window_reader``: the student's variables only,
    straight from Zarr when ``cube`` is opened without dask (as ``run`` opens it)."""
    import torch

    from floodkd.distill.data import PRESENCE_FLAGS, collate, sample_tensors

    shape = (cube.sizes["y"], cube.sizes["x"])
    margin = CONTEXT_CELLS * multiple
    read = window_reader(cube, time_index)

    def predict_window(row_off: int, col_off: int, height: int, width: int):
        context = context_window(row_off, col_off, height, width, shape, margin, multiple)
        r0, c0, h, w = context.read
        window = apply_scenario(read(r0, c0, h, w), scenario)
        sample = sample_tensors(window, (h, w), context.read, time_index)
        sample["student_image"] = torch.from_numpy(
            mirror_pad(sample["student_image"].numpy(), context.pad))
        samples = ensemble.predict_probabilities(collate([sample]), mc_samples)  # (S, 1, H, W)
        samples = np.asarray(samples.detach().cpu() if hasattr(samples, "detach") else samples,
                             dtype=np.float32)[:, 0, margin:margin + height, margin:margin + width]
        tile = window.isel(y=slice(row_off - r0, row_off - r0 + height),
                           x=slice(col_off - c0, col_off - c0 + width))
        presence = {m: bool(tile[f].values) if f in tile else False
                    for m, f in PRESENCE_FLAGS.items()}
        flags = input_flags(tile, presence)
        samples[:, (flags & INPUT_FLAGS["terrain"]) == 0] = np.nan  # no terrain: no prediction
        return samples, flags

    return predict_window


def run(args: argparse.Namespace) -> None:
    import torch
    from tqdm import tqdm

    from floodkd.distill.data import open_cube, with_waterline
    from floodkd.distill.inference import StudentEnsemble
    from floodkd.grid import RegionGrid
    from floodkd.region import region_outline

    config = load_config(args.config)
    region = region_config(config, args.region)
    scenario = resolve_scenario(config, args.scenario)
    climate = climate_scenario.is_climate(scenario)
    if (args.model or region.get("model", "student")) == "teacher":
        if climate:
            raise InputError("config", f"scenario '{args.scenario}' is a storm that has not "
                             f"happened, and region '{args.region}' maps with the radar "
                             "teacher alone, which can only map a radar pass",
                             "map it with the student (regions.<name>.model: student, needs "
                             "terrain), or map only observed for this region")
        from floodkd.predict import teacher

        return teacher.run(args, config)
    if args.student is None:
        raise InputError("command line", "the student model needs --student",
                         "pass --student results/<region>/student, or --model teacher")
    settings = config["predict"]
    student_dir, cube_path = Path(args.student), Path(args.cube)
    check_outputs(config, args.config, folders=[args.out], cubes=True,
                  inputs=[student_dir, cube_path, *([args.risk] if climate else []),
                          *([args.reference_water] if args.reference_water else []),
                          *([args.waterline] if args.waterline else [])])
    model_sha256 = checkpoint_sha256(student_dir)
    cube = with_waterline(open_cube(cube_path), args.waterline)
    grid = RegionGrid.from_config(config, args.region)
    cube_grid = RegionGrid.from_dataset(cube)
    if not grid.same_as(cube_grid):
        raise InputError(cube_path, "the cube is not on the region grid of the config",
                         "rerun `floodkd align` for this region with this config")
    time_index = cube.sizes["time"] - 1  # the latest date: the observed state
    when = pd.Timestamp(cube["time"].values[time_index]).tz_localize(None).to_pydatetime()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    ensemble = StudentEnsemble.load(student_dir, device=device)
    if args.waterline is None and ensemble.members[0].config.reads_waterline:
        log.warning("%s: no --waterline, so the student anchors every pixel on the DEM, as "
                    "for a region without a radar archive; pass --waterline "
                    "results/%s/waterline.tif (floodkd waterline) to map as it was distilled",
                    student_dir, args.region)
    multiple = 2 ** ensemble.members[0].config.depth
    # offsets are numbers; a climate scenario also names its experiment
    bands, extra = {}, {f"scenario_{k}": f"{v:g}" if isinstance(v, int | float) else str(v)
                        for k, v in scenario.items()}
    if climate:
        predict_window, bands, extra = climate_scenario.predictor_for(
            config, scenario, args.risk, cube, time_index, ensemble, grid,
            int(settings["mc_samples"]), multiple)
    else:  # windows read straight from Zarr (see window_reader)
        predict_window = student_window_predictor(
            with_waterline(open_cube(cube_path, dask=False), args.waterline), time_index,
            ensemble, scenario, int(settings["mc_samples"]), multiple)
    provenance = MapProvenance(
        region=args.region, scenario=args.scenario,
        scenario_datetime=when.replace(tzinfo=UTC),
        # the STAC window: the cube's times, which the map rests on
        inputs_window=(pd.Timestamp(cube["time"].values[0]).tz_localize(None).to_pydatetime()
                       .replace(tzinfo=UTC), when.replace(tzinfo=UTC)),
        model_sha256=model_sha256,
        input_files=[str(cube_path), *([str(args.waterline)] if args.waterline else []),
                     *map(str, sorted(student_dir.glob(MEMBER_GLOB)))],
        synthetic=bool(region.get("synthetic", False)),
        extra=extra,
    )
    total = count_tiles(grid.shape, int(settings["tile_px"]), int(settings["overlap_px"]))
    log.info("predicting %s x %s px of %s, scenario %s, %d tiles on %s",
             *grid.shape, args.region, args.scenario, total, device)
    with tqdm(total=total, unit="tile", desc=f"predict {args.scenario}") as progress:
        written = write_scenario_maps(
            grid, predict_window, args.out, provenance, outline_lonlat=region_outline(region),
            tile_px=int(settings["tile_px"]), overlap_px=int(settings["overlap_px"]),
            on_tile=lambda _window: progress.update(), **bands,
            extent=ExtentInputs(cube["elevation_m"], ExtentSettings.from_config(config),
                                args.reference_water),
        )
    extent = written.extent
    log.info("wrote %s, %s, %s, %s and %s at %s", written.probability, written.uncertainty,
             extent.extent, extent.polygons, extent.likelihood,
             datetime.now(UTC).isoformat(timespec="seconds"))
