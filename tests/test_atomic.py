"""Atomic outputs: a failed write leaves nothing at the final path, a good one replaces it."""

import pytest

from floodkd.atomic import atomic_dir, atomic_path


def test_atomic_path_moves_into_place_on_success(tmp_path):
    final = tmp_path / "out" / "map.tif"
    with atomic_path(final) as tmp:
        assert tmp.suffix == ".tif" and tmp.parent == final.parent
        tmp.write_text("done")
    assert final.read_text() == "done"
    assert list(final.parent.iterdir()) == [final]


def test_atomic_path_leaves_nothing_on_failure_and_keeps_the_old_file(tmp_path):
    final = tmp_path / "map.tif"
    final.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert final.read_text() == "old"
    assert list(tmp_path.iterdir()) == [final]


def test_atomic_path_replaces_a_folder_store(tmp_path):
    final = tmp_path / "cube.zarr"
    (final / "old").mkdir(parents=True)
    with atomic_path(final) as tmp:
        (tmp / "new").mkdir(parents=True)
    assert [p.name for p in final.iterdir()] == ["new"]


def test_atomic_dir_removes_partial_folder_on_failure(tmp_path):
    final = tmp_path / "ingest" / "sar"
    with pytest.raises(ValueError), atomic_dir(final) as tmp:
        (tmp / "scene.tif").write_text("partial")
        raise ValueError("bad scene")
    assert not final.exists()
    assert list(final.parent.iterdir()) == []
