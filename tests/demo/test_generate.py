"""Determinism, the command line and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from floodkd.cli import main
from floodkd.demo import generate_demo
from floodkd.errors import InputError


def _arrays(root: Path) -> dict[str, np.ndarray]:
    """Every raster's pixels and every tide record's values, by relative path."""
    out = {}
    for path in sorted(root.rglob("*.tif")):
        with rasterio.open(path) as src:
            out[str(path.relative_to(root))] = src.read()
    for path in sorted(root.glob("*/tide/*")):
        out[str(path.relative_to(root))] = path.read_bytes()
    return out


def test_same_seed_gives_identical_arrays_and_another_seed_differs(demo_dir, manifest, tmp_path):
    seed, size_px = manifest["seed"], manifest["size_px"]
    again = tmp_path / "again"
    assert main(["demo", "--out", str(again), "--seed", str(seed),
                 "--size", str(size_px)]) == 0
    first, second = _arrays(demo_dir), _arrays(again)
    assert first.keys() == second.keys()
    for name in first:
        assert np.array_equal(first[name], second[name]), name

    other = generate_demo(tmp_path / "other", seed=seed + 1, size_px=size_px)
    assert other["regions"]["demo-source"]["radar_dates"] != manifest["regions"][
        "demo-source"]["radar_dates"]
    third = _arrays(tmp_path / "other")
    dem = "demo-source/dem/dem.tif"
    assert not np.array_equal(first[dem], third[dem])


def test_too_small_a_size_is_refused_and_nothing_is_written(tmp_path):
    with pytest.raises(InputError, match="--size 32 or more"):
        generate_demo(tmp_path / "demo", size_px=16)
    assert not (tmp_path / "demo").exists()


def test_out_must_be_a_folder(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("not a folder")
    assert main(["demo", "--out", str(target)]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert target.read_text() == "not a folder"
