"""Folder manifests: equal for equal content wherever and whenever written, different (and
naming the entry) for any changed byte."""

import json
import os

import pytest

from floodkd.atomic import LEDGER_DIR
from floodkd.cli import main
from floodkd.errors import InputError
from floodkd.manifest import folder_manifest


def _store(folder, value=b"\x01\x02"):
    (folder / "vv_db").mkdir(parents=True)
    (folder / "vv_db" / "0.0").write_bytes(value)
    (folder / "vv_db" / ".zarray").write_text('{"chunks": [1]}')
    (folder / ".zattrs").write_text("{}")
    return folder


def test_same_content_elsewhere_and_later_gives_the_same_manifest(tmp_path):
    first, second = _store(tmp_path / "a.zarr"), _store(tmp_path / "b.zarr")
    os.utime(second / "vv_db" / "0.0", (0, 0))
    (second / ".snakemake_timestamp").write_text("")  # Snakemake's mark of a folder output
    (second / LEDGER_DIR).mkdir()  # floodkd's bookkeeping of inodes and times
    (second / LEDGER_DIR / "vv_db.json").write_text('{"identity": [1, 2, 3]}')
    assert folder_manifest(first) == folder_manifest(second)
    assert folder_manifest(first)["files"] == 3
    assert folder_manifest(first)["bytes"] == 2 + len('{"chunks": [1]}') + 2


def test_one_changed_byte_changes_the_digest_of_its_entry_only(tmp_path):
    before = folder_manifest(_store(tmp_path / "a.zarr"))
    after = folder_manifest(_store(tmp_path / "b.zarr", value=b"\x01\x03"))
    assert before["sha256"] != after["sha256"]
    assert [k for k in before["entries"] if before["entries"][k] != after["entries"][k]] == [
        "vv_db"]


def test_a_renamed_file_changes_the_manifest(tmp_path):
    before = folder_manifest(_store(tmp_path / "a.zarr"))
    moved = _store(tmp_path / "b.zarr")
    (moved / "vv_db" / "0.0").rename(moved / "vv_db" / "0.1")
    assert folder_manifest(moved)["sha256"] != before["sha256"]


def test_the_cli_writes_json_and_refuses_a_missing_folder(tmp_path, capsys):
    store = _store(tmp_path / "cube.zarr")
    assert main(["manifest", str(store), "--out", str(tmp_path / "cube.manifest.json")]) == 0
    written = json.loads((tmp_path / "cube.manifest.json").read_text())
    assert written == folder_manifest(store)
    assert main(["manifest", str(tmp_path / "nope"), "--out", str(tmp_path / "m.json")]) == 2
    assert "nope: is not a folder" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()
    with pytest.raises(InputError, match="run the stage that writes it first"):
        folder_manifest(tmp_path / "cube.manifest.json")
