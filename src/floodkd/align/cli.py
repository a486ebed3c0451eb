"""``floodkd align``: regrid a region's ingested modalities into one datacube and a tile index."""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
from dask.diagnostics import ProgressBar

from floodkd.align.cube import AlignSettings, build_cube, write_outputs
from floodkd.config import load_config, region_config
from floodkd.errors import InputError
from floodkd.grid import RegionGrid
from floodkd.outputs import check_outputs

__all__ = ["add_arguments", "run", "dask_scheduler", "scheduler_address", "SCHEDULER_VARIABLE"]

log = logging.getLogger(__name__)

# the scheduler address when the config leaves align.dask_scheduler unset, e.g. exported by
# the batch job that started the cluster
SCHEDULER_VARIABLE = "FLOODKD_DASK_SCHEDULER"
CONNECT_TIMEOUT_S = 5
# how long a failed run waits for the workers' running tasks before removing its temp store
DRAIN_TIMEOUT_S = 60


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="workflow config YAML")
    parser.add_argument("--region", required=True, help="region name in the config")
    parser.add_argument("--cube", required=True, type=Path, help="output Zarr datacube")
    parser.add_argument("--tiles", required=True, type=Path, help="output GeoParquet tile index")


@contextlib.contextmanager
def dask_scheduler(address: str | None, threads: int) -> Iterator[None]:
    """A distributed client when a scheduler address is given, else local threads."""
    if not address:  # the progress bar goes to the rule's log, like every long stage's
        with dask.config.set(scheduler="threads", num_workers=max(threads, 1)), ProgressBar():
            yield
        return
    from distributed import Client  # imported only when a cluster is used

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as error:
        raise InputError(
            address, f"no Dask scheduler answered within {CONNECT_TIMEOUT_S} s ({error})",
            f"start the scheduler, correct align.dask_scheduler or ${SCHEDULER_VARIABLE}, or "
            "leave both unset to regrid on this machine") from None
    with client:
        log.info("dask: distributed scheduler at %s", address)
        with dask.config.set(scheduler=functools.partial(_get_then_drain, client)):
            yield


def _get_then_drain(client: Any, dsk: Any, keys: Any, **kwargs: Any) -> Any:
    """``client.get``; on failure, first wait until the workers finish the tasks of this graph
    they are running, so none writes a chunk into the temporary store after its removal."""
    try:
        return client.get(dsk, keys, **kwargs)
    except BaseException:
        ours = set(dsk.keys())
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline and any(
                key in ours for keys_ in client.processing().values() for key in keys_):
            time.sleep(0.2)
        raise


def scheduler_address(config: dict[str, Any]) -> str | None:
    """``align.dask_scheduler`` from the config, else the environment variable, else None."""
    return config["align"].get("dask_scheduler") or os.environ.get(SCHEDULER_VARIABLE) or None


def run(args: argparse.Namespace) -> None:
    config = load_config(args.config)
    grid = RegionGrid.from_config(config, args.region)
    settings = AlignSettings.from_config(config)
    # absolute paths in every task, so workers of a cluster find the files from any folder
    ingest_dir = (Path(config["results_dir"]) / args.region / "ingest").resolve()
    check_outputs(config, args.config, replaced=[args.cube, args.tiles], inputs=[ingest_dir])
    log.info("grid %s, %s px at %g m", grid.crs.to_epsg(), grid.shape, grid.resolution)
    model = region_config(config, args.region).get("model", "student")
    ds = build_cube(ingest_dir, grid, settings, model)  # validates every input before any write
    with dask_scheduler(scheduler_address(config), args.threads):
        write_outputs(ds, grid, settings, args.cube.resolve(), args.tiles.resolve())
