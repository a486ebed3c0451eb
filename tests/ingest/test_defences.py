"""Defence register ingest: protected areas with crests, in lon/lat; bad registers refused."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box

from floodkd.errors import InputError
from floodkd.ingest.defences import read_defences
from tests.ingest.conftest import UTM_CRS

# two protected areas near lon 3.0 E, lat 45.1 N (inside REGION_BBOX), in UTM 31N metres
POLDER = box(500000.0, 4994000.0, 500500.0, 4994400.0)
TOWN = box(500600.0, 4994000.0, 500900.0, 4994300.0)


def _register(path, crest=("4.2", "3.1"), column="crest_m", crs=UTM_CRS):
    frame = gpd.GeoDataFrame({"name": ["polder", "town"], column: list(crest)},
                             geometry=[POLDER, TOWN], crs=crs)
    frame.to_file(path, layer="defences", driver="GPKG")
    return path


def test_ingest_writes_the_areas_in_lonlat_with_their_crests(tmp_path, run_cli):
    register = _register(tmp_path / "register.gpkg", column="kruinhoogte")
    code, err, out = run_cli("defences", {"defences": {"glob": str(register),
                                                       "crest_column": "kruinhoogte"}})
    assert code == 0, err
    areas = gpd.read_file(out / "defences.gpkg")
    assert areas.crs.to_epsg() == 4326
    np.testing.assert_allclose(areas["crest_m"], [4.2, 3.1], rtol=1e-6)
    back = areas.to_crs(UTM_CRS)
    np.testing.assert_allclose(back.area, [POLDER.area, TOWN.area], rtol=1e-6)
    assert back.geometry[0].symmetric_difference(POLDER).area < 1.0  # m2: the same place


@pytest.mark.parametrize(("crest", "column", "crs", "message"), [
    (("4.2", "3.1"), "height", UTM_CRS, r"column 'crest_m' \(config inputs.defences.crest_column"),
    (("4.2", "high"), "crest_m", UTM_CRS, r"feature \d+: 'high'"),
    (("4.2", "310"), "crest_m", UTM_CRS, "outside -5 to 30 m"),
    (("4.2", "3.1"), "crest_m", None, "no CRS"),
])
def test_a_bad_register_is_refused_with_its_fix(tmp_path, crest, column, crs, message):
    register = _register(tmp_path / "register.gpkg", crest, column, crs)
    with pytest.raises(InputError, match=message) as error:
        read_defences(register, "crest_m")
    assert str(register) in str(error.value)


def test_a_register_away_from_the_region_is_refused(tmp_path, run_cli):
    register = tmp_path / "far.gpkg"
    gpd.GeoDataFrame({"crest_m": [4.0]}, geometry=[box(10.0, 10.0, 10.1, 10.1)],
                     crs="EPSG:4326").to_file(register, driver="GPKG")
    code, err, out = run_cli("defences", {"defences": {"glob": str(register)}})
    assert code != 0 and "far.gpkg" in err and not out.exists()
