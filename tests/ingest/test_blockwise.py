"""Block-wise ingest (a whole scene window is never in memory) gives the whole-window result."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform_bounds
from rasterio.windows import from_bounds

from floodkd.errors import InputError
from floodkd.ingest import rasters, sar
from floodkd.region import region_outline
from tests.ingest.conftest import UTM_CRS, UTM_TRANSFORM

S1_NAME = "S1A_IW_GRDH_1SDV_20210304T050607_20210304T050632_036852_045486_1A2B.tif"
# a region cutting the 300 x 260 px scene, so the window has offsets and ragged edges
REGION_UTM = (500000 + 530.0, 5000000 - 2410.0, 500000 + 2390.0, 5000000 - 270.0)


def _scene(tmp_path, write_raster, swapped=False):
    rng = np.random.default_rng(3)
    vv = rng.gamma(4.0, 0.025, (260, 300)).astype(np.float32)  # linear power, ~-10 dB
    vh = (vv * rng.uniform(0.1, 0.3, vv.shape)).astype(np.float32)
    vv[:40, :50] = 0.0  # swath edge
    data = np.stack([vh, vv] if swapped else [vv, vh])
    return write_raster(tmp_path / "in" / S1_NAME, data, descriptions=["VV", "VH"])


def _region(make_region, tmp_path):
    west, south, east, north = transform_bounds(UTM_CRS, "EPSG:4326", *REGION_UTM)
    region = make_region("sar", tmp_path / "in" / "S1*.tif", unit="linear")
    region["bbox"] = [west, south, east, north]
    return region


def _ingest(region, out):
    out.mkdir()
    sar.ingest(region, out)
    with rasterio.open(out / "20210304T050607.tif") as src:
        return src.read(), src.transform


@pytest.fixture
def scene_dir(tmp_path, write_raster):
    (tmp_path / "in").mkdir()
    _scene(tmp_path, write_raster)
    return tmp_path


def test_block_wise_sar_equals_the_whole_window(scene_dir, make_region, monkeypatch):
    region = _region(make_region, scene_dir)
    whole, transform = _ingest(region, scene_dir / "whole")  # one block: the whole window
    monkeypatch.setattr(rasters, "BLOCK_PX", 50)  # ragged blocks, off the sample grid
    monkeypatch.setattr(rasters, "SAMPLE_PX", 500)  # the checks read a sparse sample
    blocks, block_transform = _ingest(region, scene_dir / "blocks")
    assert block_transform == transform
    np.testing.assert_array_equal(blocks, whole)
    # and the whole window is the region plus the margin, in dB
    with rasterio.open(scene_dir / "in" / S1_NAME) as src:
        window = rasters._region_window(src, region_outline(region))
        expected = src.read(window=window)
        assert 0 < window.col_off and 0 < window.row_off  # the region cuts the scene
    assert whole.shape == expected.shape
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(whole, np.where(expected > 0, 10 * np.log10(expected),
                                                   np.nan), rtol=1e-6)
    assert from_bounds(*REGION_UTM, transform=UTM_TRANSFORM).width < whole.shape[2]


def test_block_samples_are_one_regular_grid(scene_dir, make_region, monkeypatch):
    monkeypatch.setattr(rasters, "SAMPLE_PX", 700)
    region = _region(make_region, scene_dir)
    samples = {}
    for block_px in (None, 50, 36):  # not multiples of the sample step
        monkeypatch.setattr(rasters, "BLOCK_PX", block_px or 4096)
        with rasters.region_blocks(scene_dir / "in" / S1_NAME, region_outline(region)) as scene:
            out = scene_dir / f"sample_{block_px}.tif"
            samples[block_px] = sar.write_scene_db(scene, {"VV": 0, "VH": 1}, "linear", out, {})
            height, width = scene.info.height, scene.info.width
    reference = np.sort(samples[None], axis=1)
    assert 0.5 * 700 < reference.shape[1] <= 700  # at most SAMPLE_PX, about as many
    for block_px in (50, 36):
        np.testing.assert_array_equal(np.sort(samples[block_px], axis=1), reference)
    assert height * width > 700


def test_a_swapped_scene_is_refused_from_the_sample(tmp_path, write_raster, make_region,
                                                    monkeypatch):
    (tmp_path / "in").mkdir()
    _scene(tmp_path, write_raster, swapped=True)
    monkeypatch.setattr(rasters, "BLOCK_PX", 48)
    monkeypatch.setattr(rasters, "SAMPLE_PX", 500)
    with pytest.raises(InputError, match="swapped"):
        _ingest(_region(make_region, tmp_path), tmp_path / "out")
