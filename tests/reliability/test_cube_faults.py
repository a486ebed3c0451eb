"""A cube that lost or damaged a chunk, and a grid too large to build, are refused with the
store, the variable (or the grid size) and the fix, and nothing is written (issue 14, item 5).
"""

from __future__ import annotations

import json
import shutil

import yaml

from tests.reliability.conftest import CUBE, MAPS, STUDENT, TARGET, TILES, changes, snapshot

PREDICT = ("predict", "--config", "config.yaml", "--region", TARGET, "--student", STUDENT,
           "--cube", CUBE, "--out", MAPS)
FIX = "Fix: rerun `floodkd align` for this region, which rewrites the whole cube"


def _n_times(work) -> int:
    """How many times the demo target's cube holds (predict maps the latest)."""
    return json.loads((work / CUBE / "time" / ".zarray").read_text())["shape"][0]


def _refused(work, floodkd_cli, *args) -> str:
    before = snapshot(work)
    code, err = floodkd_cli(*args)
    assert code == 2, err
    assert changes(before, snapshot(work)) == []
    return err


def test_the_aligned_cube_has_every_chunk_checksummed(aligned, floodkd_cli):
    # the premise of the faults below: all-missing chunks are written too, behind a CRC32
    chunks = sorted(p.name for p in (aligned / CUBE / "b04").iterdir()
                    if not p.name.startswith("."))
    assert chunks == [f"{t}.0.0" for t in sorted(range(_n_times(aligned)), key=str)]
    assert '"id": "crc32"' in (aligned / CUBE / "b04" / ".zarray").read_text()
    code, err = floodkd_cli(*PREDICT)
    assert code == 0, err


def test_a_missing_chunk_is_refused_naming_store_and_variable(aligned, floodkd_cli):
    (aligned / CUBE / "vv_db" / "3.0.0").unlink()
    err = _refused(aligned, floodkd_cli, *PREDICT)
    assert (f"{CUBE}: variable 'vv_db' lacks 1 of its {_n_times(aligned)} chunks (e.g. "
            "vv_db/3.0.0), which "
            f"would read as missing values. {FIX}") in err


def test_a_missing_terrain_chunk_is_refused(aligned, floodkd_cli):
    (aligned / CUBE / "elevation_m" / "0.0").unlink()
    err = _refused(aligned, floodkd_cli, *PREDICT)
    assert f"{CUBE}: variable 'elevation_m' lacks 1 of its 1 chunks (e.g. elevation_m/0.0)" in err


def test_a_corrupt_chunk_is_refused_naming_store_variable_and_chunk(aligned, floodkd_cli):
    last = _n_times(aligned) - 1
    chunk = aligned / CUBE / "b04" / f"{last}.0.0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: it may still decompress, into wrong values
    chunk.write_bytes(bytes(data))
    err = _refused(aligned, floodkd_cli, *PREDICT)
    assert f"{CUBE}: chunk b04/{last}.0.0 of variable 'b04' is corrupt (" in err
    assert FIX in err and "Traceback" not in err


def test_a_truncated_chunk_is_refused(aligned, floodkd_cli):
    chunk = aligned / CUBE / "elevation_m" / "0.0"
    chunk.write_bytes(chunk.read_bytes()[:20])
    err = _refused(aligned, floodkd_cli, *PREDICT)
    assert f"{CUBE}: chunk elevation_m/0.0 of variable 'elevation_m' is corrupt (" in err
    assert FIX in err


def test_a_cube_whose_variable_folder_was_lost_is_refused(aligned, floodkd_cli):
    # the store still lists the variable (consolidated metadata) but its chunks are gone
    for chunk in (aligned / CUBE / "hand_m").iterdir():
        if not chunk.name.startswith("."):
            chunk.unlink()
    err = _refused(aligned, floodkd_cli, *PREDICT)
    assert f"{CUBE}: variable 'hand_m' lacks 1 of its 1 chunks" in err


def test_a_grid_above_the_limit_is_refused_before_any_work(aligned, floodkd_cli):
    config = yaml.safe_load((aligned / "config.yaml").read_text())
    config["grid"]["resolution_m"] = 0.001  # metres: the value meant 1 km, or a typo
    (aligned / "config.yaml").write_text(yaml.safe_dump(config))
    shutil.rmtree(aligned / CUBE)  # align would otherwise have it to replace
    err = _refused(aligned, floodkd_cli, "align", "--config", "config.yaml", "--region", TARGET,
                   "--cube", CUBE, "--tiles", TILES)
    assert "config: grid.resolution_m 0.001 gives a " in err
    assert "pixels), above grid.max_pixels (100,000,000). Fix: check grid.resolution_m" in err


def test_a_lower_max_pixels_refuses_the_demo_grid(aligned, floodkd_cli):
    config = yaml.safe_load((aligned / "config.yaml").read_text())
    config["grid"]["max_pixels"] = 1000  # the demo target is 34 x 34 = 1,156 px
    (aligned / "config.yaml").write_text(yaml.safe_dump(config))
    err = _refused(aligned, floodkd_cli, *PREDICT)
    assert ("config: grid.resolution_m 10 gives a 34 x 34 px grid (1,156 pixels), above "
            "grid.max_pixels (1,000)") in err
