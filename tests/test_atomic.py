"""Atomic outputs: a failed write leaves nothing at the final path, a good one replaces it,
and nothing floodkd did not write is ever replaced."""

import os
import subprocess
import sys

import pytest

from floodkd.atomic import (
    LEDGER_DIR,
    atomic_dir,
    atomic_path,
    remove_outputs,
    remove_stale_temps,
    scratch_dir,
)
from floodkd.errors import InputError


def _visible(folder):
    return sorted(p.name for p in folder.iterdir() if p.name != LEDGER_DIR)


def test_atomic_path_moves_into_place_on_success(tmp_path):
    final = tmp_path / "out" / "map.tif"
    with atomic_path(final) as tmp:
        assert tmp.suffix == ".tif" and tmp.parent == final.parent
        tmp.write_text("done")
    assert final.read_text() == "done"
    assert _visible(final.parent) == ["map.tif"]
    assert (final.parent / LEDGER_DIR / "map.tif.json").is_file()


def test_atomic_path_leaves_nothing_on_failure_and_keeps_the_old_file(tmp_path):
    final = tmp_path / "map.tif"
    with atomic_path(final) as tmp:
        tmp.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert final.read_text() == "old"
    assert _visible(tmp_path) == ["map.tif"]


def test_an_output_of_ours_is_replaced(tmp_path):
    final = tmp_path / "map.tif"
    for text in ("first", "second"):
        with atomic_path(final) as tmp:
            tmp.write_text(text)
    assert final.read_text() == "second"


def test_atomic_path_replaces_a_folder_store_of_ours(tmp_path):
    final = tmp_path / "cube.zarr"
    with atomic_path(final) as tmp:
        (tmp / "old").mkdir(parents=True)
        (tmp / "old" / "0.0").write_text("chunk")
    with atomic_path(final) as tmp:
        (tmp / "new").mkdir(parents=True)
    assert [p.name for p in final.iterdir()] == ["new"]
    assert _visible(tmp_path) == ["cube.zarr"]  # the old store moved aside is gone too


def test_a_file_not_written_by_floodkd_is_refused_and_kept(tmp_path):
    final = tmp_path / "map.tif"
    final.write_text("the user's own map")
    with pytest.raises(InputError, match="was not written by floodkd"), atomic_path(final):
        pytest.fail("the block must not run")
    assert final.read_text() == "the user's own map"
    assert _visible(tmp_path) == ["map.tif"]


def test_a_folder_not_written_by_floodkd_is_refused_and_kept(tmp_path):
    final = tmp_path / "cube.zarr"
    (final / "keep").mkdir(parents=True)
    with pytest.raises(InputError, match="was not written by floodkd"), atomic_dir(final):
        pytest.fail("the block must not run")
    assert (final / "keep").is_dir()


def test_an_empty_folder_is_replaced(tmp_path):
    final = tmp_path / "sar"
    final.mkdir()
    with atomic_dir(final) as tmp:
        (tmp / "scenes.csv").write_text("when,file\n")
    assert _visible(final) == ["scenes.csv"]


def test_an_output_replaced_by_the_user_is_refused(tmp_path):
    final = tmp_path / "map.tif"
    with atomic_path(final) as tmp:
        tmp.write_text("ours")
    final.unlink()
    final.write_text("theirs, under our name")  # a new file: another inode than the ledger's
    with pytest.raises(InputError, match="was not written by floodkd"), atomic_path(final):
        pass
    assert final.read_text() == "theirs, under our name"


def test_a_folder_of_ours_with_a_user_file_added_is_refused(tmp_path):
    final = tmp_path / "ingest"
    with atomic_dir(final) as tmp:
        (tmp / "scene.tif").write_text("ours")
    (final / "notes.txt").write_text("the user's notes")
    with pytest.raises(InputError, match=r"1 file\(s\) floodkd did not write \(notes.txt\)"):
        with atomic_dir(final):
            pass
    assert (final / "notes.txt").read_text() == "the user's notes"
    assert (final / "scene.tif").read_text() == "ours"


def test_atomic_dir_removes_partial_folder_on_failure(tmp_path):
    final = tmp_path / "ingest" / "sar"
    with pytest.raises(ValueError), atomic_dir(final) as tmp:
        (tmp / "scene.tif").write_text("partial")
        raise ValueError("bad scene")
    assert not final.exists()
    assert list(tmp_path.iterdir()) == []  # the parent folder it created is gone too


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_temps_of_a_killed_run_are_removed_and_nothing_else(tmp_path):
    final = tmp_path / "cube.zarr"
    with atomic_path(final) as tmp:
        tmp.mkdir()
        live_name = tmp.name
    dead = live_name.replace(f"-{os.getpid()}-", f"-{_dead_pid()}-")
    (tmp_path / dead).mkdir()  # a store left by a kill -9
    alive = tmp_path / live_name  # a temp of this very process: still running
    alive.mkdir()
    keep = [tmp_path / ".cube.abc.zarr", tmp_path / ".tiles.floodkd-tmp-x.parquet",
            tmp_path / "notes.txt"]  # names floodkd does not make for this output
    for path in keep:
        path.write_text("keep")
    assert remove_stale_temps(final) == [tmp_path / dead]
    assert alive.exists() and all(path.exists() for path in keep)


def test_scratch_dir_is_removed_and_checks_the_final_path(tmp_path):
    final = tmp_path / "flood.tif"
    with scratch_dir(final) as scratch:
        (scratch / "band.tif").write_text("x")
    assert not scratch.exists()
    final.write_text("not ours")
    with pytest.raises(InputError), scratch_dir(final):
        pass


def test_remove_outputs_keeps_what_is_not_ours(tmp_path):
    folder = tmp_path / "checkpoints"
    with atomic_path(folder / "phase.safetensors") as tmp:
        tmp.write_text("state")
    (folder / "mine.txt").write_text("the user's")
    remove_outputs(folder)
    assert _visible(folder) == ["mine.txt"]
    (folder / "mine.txt").unlink()
    with atomic_path(folder / "phase.safetensors") as tmp:
        tmp.write_text("state")
    remove_outputs(folder)
    assert not folder.exists()
