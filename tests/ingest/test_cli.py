"""``floodkd ingest``: exit codes, messages, and no output folder when the input is bad."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rasterio.transform import from_origin

S1_NAME = "S1A_IW_GRDH_1SDV_20210304T050607_20210304T050632_036852_045486_1A2B.tif"


def _db_scene() -> np.ndarray:
    data = np.full((2, 32, 32), -12.0, dtype=np.float32)
    data[1] = -19.0
    return data


def test_good_input_exits_0_and_writes_scenes(tmp_path, write_raster, run_cli):
    write_raster(tmp_path / S1_NAME, _db_scene(), descriptions=["VV", "VH"])
    code, err, out = run_cli("sar", {"sar": {"glob": str(tmp_path / "*.tif")}})
    assert code == 0, err
    assert pd.read_csv(out / "scenes.csv")["file"].tolist() == ["20210304T050607.tif"]
    assert (out / "20210304T050607.tif").is_file()
    assert not list(out.parent.glob(".sar.*"))  # no temporary folder left beside it


def _no_crs(tmp_path, write_raster):
    write_raster(tmp_path / S1_NAME, _db_scene(), crs=None, descriptions=["VV", "VH"])


def _outside_region(tmp_path, write_raster):
    # the same 10 m grid in UTM zone 33N lies near lon 15 E, far east of the region
    write_raster(tmp_path / S1_NAME, _db_scene(), crs="EPSG:32633", descriptions=["VV", "VH"])


def _linear_stated_as_db(tmp_path, write_raster):
    write_raster(tmp_path / S1_NAME, np.full((2, 32, 32), 0.03, np.float32),
                 descriptions=["VV", "VH"])


def _truncated(tmp_path, write_raster):
    path = write_raster(tmp_path / S1_NAME, _db_scene(), descriptions=["VV", "VH"])
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])


@pytest.mark.parametrize(
    ("make_input", "message"),
    [
        (_no_crs, "has no CRS"),
        (_outside_region, "does not overlap the region"),
        (_linear_stated_as_db, "set inputs.sar.unit: linear"),
        (_truncated, "cannot read it as a raster"),
    ],
    ids=["no-crs", "outside-region", "wrong-unit", "truncated"],
)
def test_bad_sar_input_exits_2_with_message_and_no_output(tmp_path, write_raster, run_cli,
                                                          make_input, message):
    make_input(tmp_path, write_raster)
    code, err, out = run_cli("sar", {"sar": {"glob": str(tmp_path / "*.tif")}})
    assert code == 2
    assert message in err and S1_NAME in err and "Fix:" in err
    assert not out.exists()
    assert not list(out.parent.glob(".sar.*"))


def test_truncated_dem_is_refused_without_output(tmp_path, write_raster, run_cli):
    # without band descriptions GDAL keeps the header at the front: the file opens and only
    # reading its pixels fails, so this checks that the reader reads them
    path = write_raster(tmp_path / "dem.tif", np.arange(64 * 64, dtype=np.float32).reshape(64, 64),
                        crs="EPSG:4326", transform=from_origin(3.0, 45.1, 0.0001, 0.0001))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    code, err, out = run_cli("terrain", {"terrain": {"glob": str(tmp_path / "dem.tif")}})
    assert code == 2 and "dem.tif" in err and "truncated" in err
    assert not out.exists()


def test_glob_matching_nothing_names_glob_and_key(tmp_path, run_cli):
    pattern = str(tmp_path / "s1" / "*.tif")
    code, err, out = run_cli("sar", {"sar": {"glob": pattern}})
    assert code == 2 and pattern in err and "inputs.sar.glob" in err
    assert not out.exists()


def test_modality_missing_from_region_is_refused(tmp_path, run_cli):
    code, err, out = run_cli("optical", {})
    assert code == 2 and "has no inputs.optical" in err
    assert not out.exists()


def test_failed_rerun_keeps_previous_output(tmp_path, write_raster, run_cli):
    write_raster(tmp_path / S1_NAME, _db_scene(), descriptions=["VV", "VH"])
    assert run_cli("sar", {"sar": {"glob": str(tmp_path / "*.tif")}})[0] == 0
    _no_crs(tmp_path, write_raster)
    code, _, out = run_cli("sar", {"sar": {"glob": str(tmp_path / "*.tif")}})
    assert code == 2 and (out / "scenes.csv").is_file()
