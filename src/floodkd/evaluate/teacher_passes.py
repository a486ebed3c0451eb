"""The teacher's map of each radar pass that evaluation scores, one GeoTIFF band per pass.

Written by a stage of its own (``floodkd teacher-passes``), so that evaluation scores the teacher
without building it: the ViT and ``transformers`` are then loaded where the teacher runs,
and a rerun of ``floodkd evaluate`` (new truth, new students, new settings) starts in a few
seconds. The passes and tiles are evaluation's own (``evaluation_plan``), each stitched as
evaluation stitches a model's tiles; the held-out period is cut as distillation cuts it.

The file: float32 P(water) on the region grid, -9999 where the pass has no data or no tile
covers a pixel; each band's description is its pass time (ISO 8601), so QGIS shows which
pass a band is. Bands are written and read one at a time: memory holds one pass, however
many there are.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS

from floodkd.atomic import atomic_path
from floodkd.errors import InputError
from floodkd.grid import RegionGrid

__all__ = ["write_teacher_passes", "teacher_pass_bands", "read_teacher_pass"]

NODATA = -9999.0


def write_teacher_passes(path: str | Path, bands: Iterable[np.ndarray], names: list[str],
                         grid: RegionGrid, region_name: str) -> Path:
    """``bands`` (P(water), NaN for nodata; one per name, each consumed as it is written) on
    ``grid`` as one GeoTIFF band each, named by ``names``, written atomically at ``path``
    (returned). Without names the file has one empty band, named nothing."""
    height, width = grid.shape
    profile = {"driver": "GTiff", "width": width, "height": height, "count": max(len(names), 1),
               "dtype": "float32", "crs": grid.crs, "transform": grid.transform,
               "nodata": NODATA, "tiled": True, "blockxsize": 256, "blockysize": 256,
               "compress": "DEFLATE", "predictor": 3}
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.update_tags(REGION=region_name, PASSES=str(len(names)),
                        CONTENT="the teacher's P(water) of each radar pass evaluation scores")
        for band, (values, name) in enumerate(zip(bands, names, strict=True), start=1):
            dst.write(np.where(np.isfinite(values), values, NODATA).astype(np.float32), band)
            dst.set_band_description(band, name)
        if not names:  # a GeoTIFF has at least one band
            dst.write(np.full((height, width), NODATA, np.float32), 1)
    return Path(path)


def teacher_pass_bands(path: str | Path, grid: RegionGrid,
                       times: dict[int, str]) -> dict[int, int]:
    """The band of a ``floodkd teacher-passes`` file on ``grid`` that holds each of
    ``times`` (index -> ISO time): checked before evaluation starts, read per pass later."""
    with _open(path) as src:
        if (src.crs != CRS.from_wkt(grid.crs.to_wkt()) or (src.height, src.width) != grid.shape
                or not src.transform.almost_equals(grid.transform)):
            raise InputError(path, f"the teacher's pass maps ({src.crs}, {src.height} x "
                             f"{src.width} px) lie on another grid than the cube's "
                             f"{grid.shape}", "rerun `floodkd teacher-passes` for this region")
        band_of = {name: band for band, name in enumerate(src.descriptions, start=1)}
    missing = [time for time in times.values() if time not in band_of]
    if missing:
        raise InputError(path, f"no teacher map of the radar pass(es) {missing[:3]} that "
                         "evaluation scores", "rerun `floodkd teacher-passes` for this region "
                         "with the same config")
    return {t: band_of[time] for t, time in times.items()}


def read_teacher_pass(path: str | Path, band: int) -> np.ndarray:
    """One pass map of a ``floodkd teacher-passes`` file: float64, NaN where nodata."""
    with _open(path) as src:
        values = src.read(band)
    return np.where(values == NODATA, np.nan, values).astype(np.float64)


def _open(path: str | Path) -> rasterio.DatasetReader:
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as error:
        raise InputError(path, f"cannot read the teacher's pass maps ({error})",
                         "run `floodkd teacher-passes` for this region") from error
