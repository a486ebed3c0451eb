"""Radar-only mapping on a real file: a crop of Sen1Floods11 chip Spain_7370579 (CC BY 4.0,
see tests/data/sen1floods11/README.md) goes through ingest, align and predict --model teacher
with nothing but radar (plus its times table) in the config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import xarray as xr
import yaml
from rio_cogeo.cogeo import cog_validate

from floodkd.cli import main
from floodkd.grid import RegionGrid
from floodkd.models.checkpoint import save_checkpoint
from floodkd.models.teacher import RadarTeacher, TeacherConfig
from floodkd.predict.extent import EXTENT_CLASSES, REFERENCE_WATER
from floodkd.predict.style import hex_rgb
from floodkd.reference.cli import write_reference_water

FIXTURE = Path(__file__).parents[1] / "data" / "sen1floods11"
S1 = "Spain_7370579_crop_S1Hand.tif"
LABEL = "Spain_7370579_crop_LabelHand.tif"
REGION = "valencia-chip"
# inside the crop's footprint (lon -0.7761..-0.7704, lat 38.1058..38.1116)
BBOX = [-0.7758, 38.1061, -0.7707, 38.1113]


@pytest.fixture(scope="module")
def mapped(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("real")
    region = {"role": "target", "model": "teacher", "bbox": BBOX,
              "inputs": {"sar": {"glob": str(FIXTURE / S1),
                                 "times": {S1: "2019-09-17T06:00:00Z"}},
                         "labels": {"glob": str(FIXTURE / LABEL),
                                    "times": {LABEL: "2019-09-17T06:00:00Z"},
                                    "values": {"water": 1, "dry": 0, "nodata": -1}}}}
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump({"results_dir": str(root / "results"),
                                      "regions": {REGION: region},
                                      "predict": {"mc_samples": 3}}))
    base = root / "results" / REGION
    for modality in ("sar", "labels"):
        assert main(["ingest", modality, "--config", str(config), "--region", REGION,
                     "--out", str(base / "ingest" / modality)]) == 0
    assert main(["align", "--config", str(config), "--region", REGION, "--cube",
                 str(base / "cube.zarr"), "--tiles", str(base / "tiles.parquet"),
                 "--threads", "1"]) == 0
    torch.manual_seed(0)
    teacher = RadarTeacher(TeacherConfig(hidden_size=16, num_hidden_layers=1,
                                         num_attention_heads=2, intermediate_size=16,
                                         dropout=0.3))
    teacher_dir = root / "teacher"
    save_checkpoint(teacher, teacher_dir / "teacher.safetensors", {"tile_size_px": [32, 32]})
    # reference water: the top third of the grid
    grid = RegionGrid.from_dataset(xr.open_zarr(base / "cube.zarr"))
    reference = np.zeros(grid.shape, np.uint8)
    reference[: grid.shape[0] // 3] = 1
    write_reference_water(base / "reference_water.tif", reference, grid, {})
    args = ["predict", "--config", str(config), "--region", REGION, "--teacher",
            str(teacher_dir), "--cube", str(base / "cube.zarr"), "--out", str(base / "maps"),
            "--reference-water", str(base / "reference_water.tif")]
    assert main(args) == 0  # the model comes from the region's config block
    return {"config": config, "base": base, "args": args}


def test_the_real_pass_lands_in_the_cube_once_with_its_label(mapped):
    cube = xr.open_zarr(mapped["base"] / "cube.zarr").load()
    assert cube.sizes["time"] == 1
    assert str(cube["time"].values[0])[:19] == "2019-09-17T06:00:00"
    vv = cube["vv_db"].isel(time=0).values
    assert np.isfinite(vv).mean() > 0.95 and -30 < np.nanmedian(vv) < -5
    label = cube["label"].isel(time=0).values
    assert set(np.unique(label)) <= {0, 1, 255} and 0.1 < (label == 1).mean() < 0.7
    assert cube["elevation_m"].isnull().all()  # no DEM was given


def test_radar_only_maps_are_valid_cogs_with_mc_dropout_uncertainty(mapped):
    maps = mapped["base"] / "maps"
    for kind in ("probability", "uncertainty", "inputs_used"):
        path = maps / f"flood_{kind}_observed.tif"
        is_valid, errors, _ = cog_validate(path, quiet=True)
        assert is_valid, errors
        for suffix in (".qml", ".stac.json"):
            assert (maps / f"flood_{kind}_observed{suffix}").is_file()
    for kind in ("probability", "uncertainty"):
        assert (maps / f"flood_{kind}_observed.png").is_file()
    with rasterio.open(maps / "flood_probability_observed.tif") as src:
        assert src.crs.to_epsg() == 32630  # the UTM zone of lon -0.77
        probability = src.read(1, masked=True).filled(np.nan)
        tags = src.tags()
    inside = np.isfinite(probability)
    assert inside.mean() > 0.8
    assert (probability[inside] >= 0).all() and (probability[inside] <= 1).all()
    assert tags["SCENARIO_DATETIME"].startswith("2019-09-17T06:00:00")
    assert tags["MODEL"] == "teacher"
    with rasterio.open(maps / "flood_uncertainty_observed.tif") as src:
        std = src.read(src.descriptions.index("std") + 1, masked=True).filled(np.nan)
    with rasterio.open(maps / "flood_inputs_used_observed.tif") as src:
        flags = src.read(1)
    assert np.nanmax(std) > 0  # MC dropout draws differ
    assert set(np.unique(flags[inside]).astype(int)) == {16}  # radar only
    assert (~inside).any()
    assert set(np.unique(flags[~inside]).astype(int)) == {255}  # nodata where P is
    item = json.loads((maps / "flood_probability_observed.stac.json").read_text())
    assert item["properties"]["datetime"].startswith("2019-09-17T06:00:00")


def test_the_radar_only_quicklook_draws_the_reference_water(mapped):
    from PIL import Image

    maps = mapped["base"] / "maps"
    with rasterio.open(maps / "flood_extent_observed.tif") as src:
        classes = src.read(1)
    top = classes[: classes.shape[0] // 3]
    assert set(np.unique(top)) <= {REFERENCE_WATER, 255} and (top == REFERENCE_WATER).any()
    assert REFERENCE_WATER not in classes[classes.shape[0] // 3 :]
    with Image.open(maps / "flood_probability_observed.png") as image:
        rgb = np.asarray(image.convert("RGB"))
    colour = hex_rgb(EXTENT_CLASSES[REFERENCE_WATER][1])
    assert np.all(rgb == colour, axis=-1).sum() > 5_000  # a third of the map, not the legend


def test_water_level_scenarios_are_refused_for_the_teacher(mapped, capsys):
    settings = yaml.safe_load(mapped["config"].read_text())
    settings["predict"]["scenarios"] = {"observed": {}, "surge": {"water_level_offset_m": 1.0}}
    mapped["config"].write_text(yaml.safe_dump(settings))
    args = [*mapped["args"], "--scenario", "surge"]
    args[args.index("--out") + 1] = str(mapped["base"] / "maps-surge")
    assert main(args) == 2
    assert "does not read" in capsys.readouterr().err
    assert not (mapped["base"] / "maps-surge" / "flood_probability_surge.tif").exists()
