"""The student's window reader: the arrays of the dask path, read straight from Zarr (a cube
opened without dask) with no dask graph run."""

from __future__ import annotations

import numpy as np
import xarray as xr
from dask.callbacks import Callback

from floodkd.distill.data import open_cube, read_window
from floodkd.predict.cli import window_reader
from tests.distill import conftest as cube_helpers

NOT_FOR_THE_STUDENT = {"vv_db", "vh_db", "radar_present", "label"}


class _Computations(Callback):
    """Counts the dask graphs run inside the block."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def _start(self, dsk):
        self.count += 1


def test_window_reader_reads_what_read_window_reads_without_dask(tmp_path):
    region = cube_helpers.write_region(tmp_path / "results", "toy", seed=4)
    cube = open_cube(region.cube_path)
    store = open_cube(region.cube_path, dask=False)
    size = cube_helpers.SIZE_PX
    # the whole grid, windows across chunk borders (16 px chunks) and one in a corner
    windows = [(0, 0, size, size), (5, 7, 20, 33), (40, 30, 8, 18)]
    for t in (0, 3, cube.sizes["time"] - 1):
        read = window_reader(store, t)
        for window in windows:
            with _Computations() as direct:
                got = read(*window)
            with _Computations() as through_dask:
                expected = read_window(cube, t, *window)
            assert direct.count == 0 and through_dask.count > 0
            assert set(got.data_vars) == set(expected.data_vars) - NOT_FOR_THE_STUDENT
            xr.testing.assert_identical(got, expected[list(got.data_vars)])
            for name in got.data_vars:
                assert isinstance(got[name].data, np.ndarray), name
    assert set(got.data_vars) >= {"elevation_m", "clear_sky", "gauge_history_m",
                                  "optical_present"}

