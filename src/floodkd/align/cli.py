"""``floodkd align``: regrid a region's ingested modalities into one datacube and a tile index."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import dask
from dask.diagnostics import ProgressBar

from floodkd.align.cube import AlignSettings, build_cube, write_outputs
from floodkd.config import load_config, region_config
from floodkd.grid import RegionGrid

__all__ = ["add_arguments", "run", "dask_scheduler"]

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="workflow config YAML")
    parser.add_argument("--region", required=True, help="region name in the config")
    parser.add_argument("--cube", required=True, type=Path, help="output Zarr datacube")
    parser.add_argument("--tiles", required=True, type=Path, help="output GeoParquet tile index")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="threads of the local Dask scheduler (default: all cores)")


@contextlib.contextmanager
def dask_scheduler(address: str | None, threads: int) -> Iterator[None]:
    """A distributed client when the config names a scheduler address, else local threads."""
    if address:
        from distributed import Client  # imported only when a cluster is used

        with Client(address) as client:
            log.info("dask: distributed scheduler at %s", address)
            with dask.config.set(scheduler=client):
                yield
    else:  # the progress bar goes to the rule's log, like every long stage's
        with dask.config.set(scheduler="threads", num_workers=max(threads, 1)), ProgressBar():
            yield


def run(args: argparse.Namespace) -> None:
    config = load_config(args.config)
    grid = RegionGrid.from_config(config, args.region)
    settings = AlignSettings.from_config(config)
    ingest_dir = Path(config["results_dir"]) / args.region / "ingest"
    log.info("grid %s, %s px at %g m", grid.crs.to_epsg(), grid.shape, grid.resolution)
    model = region_config(config, args.region).get("model", "student")
    ds = build_cube(ingest_dir, grid, settings, model)  # validates every input before any write
    with dask_scheduler(config["align"].get("dask_scheduler"), args.threads):
        write_outputs(ds, grid, settings, args.cube, args.tiles)
