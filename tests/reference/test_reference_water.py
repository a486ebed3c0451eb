"""Reference water: the rule on a hand-made series of passes, the teacher counted over a toy
cube's passes, a user's raster checked against the region grid, and the stage end to end."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
import torch
from pyproj import Transformer
from rio_cogeo.cogeo import cog_validate
from torch import nn

from floodkd.cli import main
from floodkd.config import validate_config
from floodkd.distill.data import cube_pass_land_level_db, open_cube
from floodkd.errors import InputError
from floodkd.grid import RegionGrid
from floodkd.models.channels import NORMALISATION, TEACHER_CHANNELS
from floodkd.models.teacher import RadarTeacher, RadarViT, TeacherConfig
from floodkd.predict.teacher import teacher_window_predictor
from floodkd.reference.series import teacher_water_counts
from floodkd.reference.water import (
    NOT_REFERENCE,
    REFERENCE,
    UNKNOWN,
    ReferenceSettings,
    WaterCounts,
    read_reference_raster,
    reference_water_mask,
)
from tests.distill import conftest as cube_helpers
from tests.distill.untrained import write_teacher

GFM_LIKE = ReferenceSettings(water_probability=0.5, min_water_fraction=0.9, min_valid_passes=10)


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> cube_helpers.SyntheticRegion:
    """The toy region (5 radar passes, a level rising every day), read only."""
    return cube_helpers.write_region(tmp_path_factory.mktemp("results"), "tgt", seed=1)


def test_reference_water_of_a_hand_made_series():
    # 12 passes over 6 pixels; NaN: the pass did not see the pixel (edge of swath, nodata)
    passes = np.zeros((12, 1, 6), np.float32)
    passes[:, 0, 0] = 0.9  # water in 12 of 12
    passes[:9, 0, 1] = 0.8  # water in 9 of the 10 passes that saw it: 90%
    passes[10:, 0, 1] = np.nan
    passes[:8, 0, 2] = 0.7  # 8 of 10 valid passes: 80%, not reference
    passes[10:, 0, 2] = np.nan
    passes[:5, 0, 3] = 0.6  # 5 of 10: a pixel that floods often is still not reference
    passes[10:, 0, 3] = np.nan
    passes[:, 0, 4] = 0.5  # P exactly at water_probability counts as water ...
    passes[9:, 0, 4] = np.nan  # ... but 9 valid passes are too few to judge: unknown
    passes[:, 0, 5] = 0.49  # just below: dry in every pass
    counts = WaterCounts.zeros((1, 6))
    for probability in passes:
        counts.add(0, probability, GFM_LIKE.water_probability)
    np.testing.assert_array_equal(counts.valid, [[12, 10, 10, 10, 9, 12]])
    np.testing.assert_array_equal(counts.water, [[12, 9, 8, 5, 9, 0]])
    assert counts.passes == 12
    mask = reference_water_mask(counts, GFM_LIKE)
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, [[REFERENCE, REFERENCE, NOT_REFERENCE, NOT_REFERENCE,
                                          UNKNOWN, NOT_REFERENCE]])


def test_counts_add_bands_of_rows():
    counts = WaterCounts.zeros((4, 2))
    counts.add(2, np.array([[0.9, np.nan], [0.1, 0.7]]), 0.5)
    np.testing.assert_array_equal(counts.valid, [[0, 0], [0, 0], [1, 0], [1, 1]])
    np.testing.assert_array_equal(counts.water, [[0, 0], [0, 0], [1, 0], [0, 1]])


def test_settings_defaults_come_from_the_schema():
    config = validate_config({"regions": {"r": {"role": "target", "bbox": [0, 0, 1, 1],
                                                "inputs": {"sar": {"glob": "s1/*.tif"}}}}})
    assert ReferenceSettings.from_config(config) == GFM_LIKE
    assert "90%" in GFM_LIKE.rule() and "fewer than 10" in GFM_LIKE.rule()


class DarkIsWater(nn.Module):
    """A stand-in teacher: water where VV is dark (the toy cube's water is -20 dB, land -8)."""

    config = SimpleNamespace(patch_size=4, image_size=16)
    members = property(lambda self: [self])  # a teacher of one ViT

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, None]:
        water = -10.0 * image[:, 0]  # normalised VV: (vv + 15) / 10
        return torch.stack([torch.zeros_like(water), water], 1), None


class SeesItsInput(nn.Module):
    """A stand-in teacher that keeps the last image it was given."""

    config = SimpleNamespace(patch_size=4, image_size=16)
    members = property(lambda self: [self])

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, None]:
        self.image = image
        return torch.zeros(image.shape[0], 2, *image.shape[2:]), None


def test_each_vit_of_the_teacher_gives_its_own_draws(toy):
    """A teacher of two ViTs and 2 draws: 4 samples, each ViT's apart (so the spread holds
    their disagreement), whose mean is the teacher's own P(water)."""
    cube = open_cube(toy.cube_path, required=("vv_db", "vh_db", "radar_present"))
    t = int(np.flatnonzero(cube_helpers.RADAR)[-1])
    config = TeacherConfig(image_size=16, patch_size=4, hidden_size=16, num_hidden_layers=1,
                           num_attention_heads=2, intermediate_size=16, dropout=0.0)
    torch.manual_seed(0)
    teacher = RadarTeacher(config, members=[RadarViT(config), RadarViT(config)]).eval()
    seen = []
    teacher.members[0].register_forward_hook(lambda _m, args, _out: seen.append(args[0]))
    samples, _ = teacher_window_predictor(cube, t, teacher, mc_samples=2)(0, 0, 8, 8)
    assert samples.shape == (4, 8, 8)
    np.testing.assert_array_equal(samples[0], samples[1])  # no dropout: one ViT's draws agree
    assert np.abs(samples[0] - samples[2]).max() > 1e-3
    with torch.no_grad():
        expected = torch.softmax(teacher(seen[0][:1])[0], 1)[0, 1].numpy()
    np.testing.assert_allclose(samples.mean(0), expected, atol=1e-6)


def test_a_mapped_window_is_seen_against_its_whole_pass_land_level(toy):
    cube = open_cube(toy.cube_path, required=("vv_db", "vh_db", "radar_present"))
    teacher, t = SeesItsInput(), int(np.flatnonzero(cube_helpers.RADAR)[-1])
    teacher_window_predictor(cube, t, teacher, mc_samples=1)(0, 0, 8, 8)  # a corner of sea
    assert toy.truth[t][:8, :8].all()
    level = cube_pass_land_level_db(cube, t)
    assert level[0] == pytest.approx(-8.0, abs=0.5)  # the toy's land (-8 dB), not its sea
    offset, scale = NORMALISATION["vv_minus_land_db"]
    seen = teacher.image[0, TEACHER_CHANNELS.index("vv_minus_land_db")].numpy() * scale + offset
    vv = cube["vv_db"].isel(time=t).values[:8, :8]
    np.testing.assert_allclose(seen, vv - level[0], atol=1e-4)


def test_teacher_counts_every_radar_pass_of_a_cube(toy):
    cube = open_cube(toy.cube_path, required=("vv_db", "vh_db", "radar_present"))
    counts = teacher_water_counts(cube, DarkIsWater(), tile_px=16, overlap_px=4, mc_samples=2,
                                  water_probability=0.5)
    radar = cube_helpers.RADAR
    np.testing.assert_array_equal(counts.valid, np.full(counts.valid.shape, radar.sum()))
    np.testing.assert_array_equal(counts.water, toy.truth[radar].sum(0))
    # the level rises every day, so water in every pass is the water of the first pass
    mask = reference_water_mask(counts, ReferenceSettings(0.5, 0.9, int(radar.sum())))
    np.testing.assert_array_equal(mask, toy.truth[0])


def _grid() -> RegionGrid:
    from affine import Affine
    from odc.geo.geobox import GeoBox

    transform = Affine(cube_helpers.RES_M, 0, cube_helpers.ORIGIN[0], 0, -cube_helpers.RES_M,
                       cube_helpers.ORIGIN[1])
    return RegionGrid(GeoBox((cube_helpers.SIZE_PX,) * 2, transform, cube_helpers.CRS))


def _write(path, array, transform, crs="EPSG:32631", nodata=None):
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[1], height=array.shape[0],
                       count=1, dtype="uint8", crs=crs, transform=transform,
                       nodata=nodata) as dst:
        dst.write(array, 1)
    return path


def test_a_user_raster_must_lie_on_the_region_grid(tmp_path):
    grid = _grid()
    layer = np.zeros(grid.shape, np.uint8)
    layer[:, :10] = 1
    layer[0, 0] = 200  # its nodata: unknown
    path = _write(tmp_path / "water.tif", layer, grid.transform, nodata=200)
    read = read_reference_raster(path, grid)
    assert read[0, 0] == UNKNOWN and (read[1:, :10] == REFERENCE).all() and (
        read[:, 10:] == NOT_REFERENCE).all()
    shifted = _write(tmp_path / "shifted.tif", layer,
                     grid.transform * grid.transform.translation(1, 0))
    with pytest.raises(InputError, match=r"shifted.tif: the reference water raster is not on "
                       r"the region grid .*Fix: warp it onto the region grid \(48 x 48 px\), "
                       r"e.g. gdalwarp -t_srs EPSG:32631 -te 500000 5799520 500480 5800000 "
                       r"-tr 10 10 -r mode"):
        read_reference_raster(shifted, grid)
    other_crs = _write(tmp_path / "wgs84.tif", layer, grid.transform, crs="EPSG:32632")
    with pytest.raises(InputError, match="wgs84.tif: the reference water raster is not on"):
        read_reference_raster(other_crs, grid)
    layer[5, 5] = 7  # and 200, now that no nodata says what it is
    with pytest.raises(InputError, match=r"classes.tif: holds values \[7, 200\] besides 0 "
                       r"\(not reference water\) and 1"):
        read_reference_raster(_write(tmp_path / "classes.tif", layer, grid.transform), grid)


def _config(tmp_path, results, **region_keys):
    """A config whose region grid is the toy cube's: its outline is the cube's square, 1 m
    inside (the grid snaps outwards to whole pixels)."""
    to_lonlat = Transformer.from_crs(cube_helpers.CRS, "EPSG:4326", always_xy=True)
    west, north = cube_helpers.ORIGIN
    east, south = west + cube_helpers.SIZE_PX * cube_helpers.RES_M, north - (
        cube_helpers.SIZE_PX * cube_helpers.RES_M)
    corners = [to_lonlat.transform(x, y) for x, y in ((west + 1, south + 1), (east - 1, south + 1),
                                                      (east - 1, north - 1), (west + 1, north - 1))]
    outline = tmp_path / "outline.geojson"
    outline.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {},
        "geometry": {"type": "Polygon", "coordinates": [[*corners, corners[0]]]}}]}))
    config = {"results_dir": str(results),
              "regions": {"tgt": {"role": "target", "area_file": str(outline),
                                  "crs": cube_helpers.CRS, "inputs": {"sar": {"glob": "s1/*.tif"}},
                                  **region_keys}},
              "predict": {"mc_samples": 2},
              "reference_water": {"min_valid_passes": 5}}
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(config))
    return path


def test_the_stage_writes_a_cog_on_the_grid_from_the_teacher(toy, tmp_path):
    teacher = write_teacher(tmp_path / "teacher" / "teacher.safetensors")
    config = _config(tmp_path, toy.results_dir)
    out = tmp_path / "reference_water.tif"
    args = ["reference-water", "--config", str(config), "--region", "tgt", "--teacher",
            str(teacher.parent), "--cube", str(toy.cube_path), "--out", str(out),
            "--threads", "1"]
    assert main(args) == 0
    assert cog_validate(str(out))[0]
    with rasterio.open(out) as src:
        assert (src.dtypes[0], src.nodata, src.descriptions) == ("uint8", 255, ("reference_water",))
        assert src.crs == rasterio.crs.CRS.from_string(cube_helpers.CRS)
        assert src.transform == _grid().transform and src.shape == _grid().shape
        tags = src.tags()
        first = src.read(1)
    assert tags["RADAR_PASSES"] == str(cube_helpers.RADAR.sum()) and tags["REGION"] == "tgt"
    assert "fewer than 5 valid passes" in tags["RULE"]
    assert set(np.unique(first)) <= {NOT_REFERENCE, REFERENCE}  # every pixel seen 5 times
    assert main(args) == 0  # again: the same weights and cube give the same layer
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1), first)


def test_the_stage_maps_the_water_of_every_pass_through_its_teacher(toy, tmp_path,
                                                                     monkeypatch):
    # a teacher that knows water: the level rises every day, so the water of all 5 passes is
    # the water of the first (as the unit test above), now through the CLI and the COG
    monkeypatch.setattr("floodkd.models.checkpoint.load_checkpoint",
                        lambda cls, path: (DarkIsWater(), {"tile_size_px": [16]}))
    teacher = write_teacher(tmp_path / "teacher" / "teacher.safetensors")
    out = tmp_path / "reference_water.tif"
    assert main(["reference-water", "--config", str(_config(tmp_path, toy.results_dir)),
                 "--region", "tgt", "--teacher", str(teacher.parent), "--cube",
                 str(toy.cube_path), "--out", str(out), "--threads", "1"]) == 0
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1), toy.truth[0])


def test_the_stage_takes_a_user_raster_instead_and_refuses_one_off_the_grid(toy, tmp_path,
                                                                          capsys):
    grid = _grid()
    layer = np.zeros(grid.shape, np.uint8)
    layer[:, :15] = 1
    user = _write(tmp_path / "gsw.tif", layer, grid.transform)
    out = tmp_path / "reference_water.tif"
    args = ["reference-water", "--config", str(_config(tmp_path, toy.results_dir,
                                                       reference_water=str(user))),
            "--region", "tgt", "--cube", str(toy.cube_path), "--out", str(out),
            "--threads", "1"]
    assert main(args) == 0  # no teacher needed
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1), layer)
        assert src.tags()["SOURCE"].startswith(f"user raster {user}")
    coarse = _write(tmp_path / "coarse.tif", layer[::2, ::2],
                    grid.transform * grid.transform.scale(2))
    args[2] = str(_config(tmp_path, toy.results_dir, reference_water=str(coarse)))
    out.unlink()
    assert main(args) == 2
    assert "coarse.tif: the reference water raster is not on the region grid" in (
        capsys.readouterr().err)
    assert not out.exists()


def test_a_pass_is_read_once_per_chunk_row_and_every_window_gets_its_own_pixels(
        toy, monkeypatch):
    cube = open_cube(toy.cube_path, required=("vv_db", "vh_db", "radar_present"))
    teacher, t = SeesItsInput(), int(np.flatnonzero(cube_helpers.RADAR)[0])
    loads = []
    original_load = type(cube).load

    def counting_load(self, *args, **kwargs):
        loads.append(dict(self.sizes))
        return original_load(self, *args, **kwargs)

    predict_window = teacher_window_predictor(cube, t, teacher, mc_samples=1)
    monkeypatch.setattr(type(cube), "load", counting_load)
    vv = cube["vv_db"].isel(time=t).values
    offset, scale = NORMALISATION["vv_db"]
    # tiles row by row as predict_row_bands asks for them, across the 16 px chunk rows
    windows = [(0, 0, 16, 16), (0, 12, 16, 16), (12, 0, 16, 16), (12, 12, 16, 16),
               (24, 28, 16, 20), (40, 0, 8, 48)]
    for row_off, col_off, height, width in windows:
        predict_window(row_off, col_off, height, width)
        seen = teacher.image[0, TEACHER_CHANNELS.index("vv_db"), :height, :width].numpy()
        np.testing.assert_allclose(seen * scale + offset,
                                   vv[row_off:row_off + height, col_off:col_off + width],
                                   atol=1e-4)
    # rows 0-16 across the width, then 12-32 (the tile reaches past the chunk row), 24-48
    assert [sizes["y"] for sizes in loads] == [16, 20, 24]
    assert all(sizes["x"] == cube.sizes["x"] for sizes in loads)
