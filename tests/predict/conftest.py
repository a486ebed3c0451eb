"""Tiny grids and deterministic predictors for the predict tests."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from affine import Affine
from odc.geo.geobox import GeoBox

from floodkd.grid import RegionGrid
from floodkd.predict import MapProvenance


def smooth_field(shape: tuple[int, int]) -> np.ndarray:
    """A spatially smooth P(flood) surface in (0.1, 0.9)."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    return 0.5 + 0.4 * np.sin(rows / 17.0) * np.cos(cols / 23.0)


class FieldPredictor:
    """predict_window over a known field: three samples (p, 0.9 p, 0.8 p), flags 8 | 2.

    Records every window it is asked for, so tests can check tile sizes.
    """

    def __init__(self, shape: tuple[int, int], fail_after: int | None = None):
        self.field = smooth_field(shape)
        self.windows: list[tuple[int, int, int, int]] = []
        self.fail_after = fail_after

    def __call__(self, row_off: int, col_off: int, height: int, width: int):
        if self.fail_after is not None and len(self.windows) >= self.fail_after:
            raise RuntimeError("simulated crash during inference")
        self.windows.append((row_off, col_off, height, width))
        base = self.field[row_off : row_off + height, col_off : col_off + width]
        samples = np.stack([base, 0.9 * base, 0.8 * base])
        return samples, np.full((height, width), 8 | 2, dtype=np.uint16)


@pytest.fixture
def grid() -> RegionGrid:
    """300 x 280 pixels of 10 m in UTM 31N (about 3 x 2.8 km near 52.3 N, 3.0 E)."""
    return RegionGrid(GeoBox((300, 280), Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5800000.0),
                             "EPSG:32631"))


@pytest.fixture
def provenance() -> MapProvenance:
    return MapProvenance(
        region="demo-target", scenario="observed",
        scenario_datetime=datetime(2024, 1, 5, 6, tzinfo=UTC), model_sha256="ab" * 32,
        input_files=["results/demo-target/cube.zarr"], synthetic=True,
    )


@pytest.fixture
def field_predictor() -> type[FieldPredictor]:
    """The FieldPredictor class (fixtures cannot be imported from conftest)."""
    return FieldPredictor
