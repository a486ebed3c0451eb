"""Tiny hand-made rasters, regions and configs for the ingest tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import yaml
from rasterio.transform import from_origin

import floodkd.cli

# A 10 m UTM 31N grid near lon 3.0 E, lat 45.1 N; the region bbox holds it with margin.
UTM_CRS = "EPSG:32631"
UTM_TRANSFORM = from_origin(500000.0, 5000000.0, 10.0, 10.0)
REGION_BBOX = [2.9, 45.0, 3.1, 45.2]


@pytest.fixture
def write_raster() -> Callable[..., Path]:
    """Write ``data`` (band, y, x) as a GeoTIFF with optional CRS, nodata, names and tags."""

    def write(
        path: Path,
        data: np.ndarray,
        crs: str | None = UTM_CRS,
        transform=UTM_TRANSFORM,
        nodata: float | None = None,
        descriptions: list[str] | None = None,
        tags: dict[str, str] | None = None,
        units: list[str] | None = None,
    ) -> Path:
        data = np.asarray(data)
        if data.ndim == 2:
            data = data[np.newaxis]
        count, height, width = data.shape
        with rasterio.open(
            path, "w", driver="GTiff", width=width, height=height, count=count,
            dtype=data.dtype, crs=crs, transform=transform, nodata=nodata,
        ) as dst:
            dst.write(data)
            if descriptions:
                dst.descriptions = tuple(descriptions)
            if units:
                dst.units = tuple(units)
            if tags:
                dst.update_tags(**tags)
        return path

    return write


@pytest.fixture
def make_region() -> Callable[..., dict[str, Any]]:
    """A validated-looking region block with one modality's inputs."""

    def make(modality: str, glob: str | Path, **options: Any) -> dict[str, Any]:
        return {
            "role": "target",
            "bbox": list(REGION_BBOX),
            "crs": None,
            "synthetic": False,
            "inputs": {modality: {"glob": str(glob), **options}},
        }

    return make


@pytest.fixture
def run_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple]:
    """Run ``floodkd ingest <modality>`` on a config with one region; return (rc, stderr, out).

    The schema requires sar and terrain inputs; they point at an empty folder unless given.
    """

    def run(modality: str, inputs: dict[str, Any]) -> tuple[int, str, Path]:
        unused = str(tmp_path / "nothing-here" / "*.tif")
        region = {
            "role": "target",
            "bbox": list(REGION_BBOX),
            "inputs": {"sar": {"glob": unused}, "terrain": {"glob": unused}, **inputs},
        }
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({"regions": {"coast": region}}))
        out = tmp_path / "results" / "coast" / "ingest" / modality
        capsys.readouterr()  # drop anything printed before
        code = floodkd.cli.main(
            ["ingest", modality, "--config", str(config), "--region", "coast", "--out", str(out)]
        )
        return code, capsys.readouterr().err, out

    return run
