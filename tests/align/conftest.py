"""A small aligned region shared by the align tests (built once per session)."""

from __future__ import annotations

import pytest
import xarray as xr

from floodkd.cli import main
from tests.align import fakes


@pytest.fixture(scope="session")
def aligned(tmp_path_factory) -> dict:
    """Run ``floodkd align`` on the full hand-made region; return paths and the cube."""
    root = tmp_path_factory.mktemp("aligned")
    config = fakes.make_region(root)
    out = root / "results" / fakes.REGION
    cube, tiles = out / "cube.zarr", out / "tiles.parquet"
    rc = main(["align", "--config", str(config), "--region", fakes.REGION, "--cube", str(cube),
               "--tiles", str(tiles), "--threads", "2"])
    assert rc == 0
    return {"root": root, "config": config, "cube": cube, "tiles": tiles,
            "ds": xr.open_zarr(cube, decode_coords="all").load()}
