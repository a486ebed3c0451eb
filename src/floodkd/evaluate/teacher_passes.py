"""The teacher's map of each radar pass that evaluation scores, one GeoTIFF band per pass.

Written by a stage of its own (``floodkd teacher-passes``), so that evaluation scores the teacher
without building it: the ViT and ``transformers`` are then loaded where the teacher runs,
and a rerun of ``floodkd evaluate`` (new truth, new students, new settings) starts in a few
seconds. The passes and tiles are evaluation's own (``evaluation_plan``), each stitched as
evaluation stitches a model's tiles; the held-out period is cut as distillation cuts it.

The file: float32 P(water) on the region grid, -9999 where the pass has no data or no tile
covers a pixel; each band's description is its pass time (ISO 8601), so QGIS shows which
pass a band is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio

from floodkd.atomic import atomic_path
from floodkd.errors import InputError
from floodkd.grid import RegionGrid

__all__ = ["write_teacher_passes", "read_teacher_passes"]

NODATA = -9999.0


def write_teacher_passes(path: str | Path, bands: list[np.ndarray], names: list[str],
                         grid: RegionGrid, region_name: str) -> Path:
    """``bands`` (P(water), NaN for nodata) on ``grid`` as one GeoTIFF band each, named by
    ``names``, written atomically at ``path`` (returned)."""
    height, width = grid.shape
    profile = {"driver": "GTiff", "width": width, "height": height, "count": max(len(bands), 1),
               "dtype": "float32", "crs": grid.crs, "transform": grid.transform,
               "nodata": NODATA, "tiled": True, "blockxsize": 256, "blockysize": 256,
               "compress": "DEFLATE", "predictor": 3}
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.update_tags(REGION=region_name, PASSES=str(len(bands)),
                        CONTENT="the teacher's P(water) of each radar pass evaluation scores")
        for band, (values, name) in enumerate(zip(bands, names, strict=True), start=1):
            dst.write(np.where(np.isfinite(values), values, NODATA).astype(np.float32), band)
            dst.set_band_description(band, name)
        if not bands:  # a GeoTIFF has at least one band: an empty one, named nothing
            dst.write(np.full((height, width), NODATA, np.float32), 1)
    return Path(path)


def read_teacher_passes(path: str | Path, grid: RegionGrid,
                        times: dict[int, str]) -> dict[int, np.ndarray]:
    """The teacher's map (float64, NaN where nodata) at each of ``times`` (index -> ISO
    time), from a ``floodkd teacher-passes`` file on ``grid``."""
    try:
        with rasterio.open(path) as src:
            if (src.height, src.width) != grid.shape or not src.transform.almost_equals(
                    grid.transform):
                raise InputError(path, f"the teacher's pass maps are {src.height} x {src.width}"
                                 f" px on another grid than the cube's {grid.shape}",
                                 "rerun `floodkd teacher-passes` for this region")
            band_of = {name: band for band, name in enumerate(src.descriptions, start=1)}
            missing = [time for time in times.values() if time not in band_of]
            if missing:
                raise InputError(path, f"no teacher map of the radar pass(es) {missing[:3]} "
                                 "that evaluation scores", "rerun `floodkd teacher-passes` "
                                 "for this region with the same config")
            return {t: np.where(values == NODATA, np.nan, values).astype(np.float64)
                    for t, values in ((t, src.read(band_of[time])) for t, time in times.items())}
    except rasterio.errors.RasterioIOError as error:
        raise InputError(path, f"cannot read the teacher's pass maps ({error})",
                         "run `floodkd teacher-passes` for this region") from error
