"""Outputs only ever go to paths the stage owns: inputs, their parents, the working folder
and anything floodkd did not write are refused, and nothing is touched."""

from __future__ import annotations

import pytest

from tests.reliability.conftest import SOURCE, TARGET, changes, snapshot

INGEST = ("ingest", "--config", "config.yaml", "--region", TARGET)


@pytest.mark.parametrize(
    ("modality", "out", "message"),
    [
        ("sar", f"data/demo/{TARGET}/s1", "is an input of this stage"),
        ("sar", f"data/demo/{TARGET}/s1/", "is an input of this stage"),
        ("terrain", "data/demo", "is a parent of input"),
        ("terrain", "data", "is a parent of input"),
        ("terrain", ".", "is the working folder"),
        ("terrain", "..", "or a parent of it"),
        ("gcm", "config.yaml", "is an input of this stage"),
        ("tide", f"data/demo/{TARGET}/region.geojson", "is an input of this stage"),
        ("terrain", "results", "is or holds the results folder"),
        ("terrain", f"results/{SOURCE}", "is or holds the results folder"),
    ],
    ids=["input-folder", "input-folder-slash", "data-demo", "data", "cwd", "cwd-parent",
         "config", "area-file", "results-root", "other-region"],
)
def test_ingest_refuses_outputs_over_inputs(workdir, floodkd_cli, modality, out, message):
    before = snapshot(workdir.parent)
    code, err = floodkd_cli(*INGEST[:1], modality, *INGEST[1:], "--out", out)
    assert code == 2
    assert message in err and "Fix:" in err
    assert changes(before, snapshot(workdir.parent)) == []


def test_align_refuses_the_region_folder_as_cube(workdir, floodkd_cli):
    code, err = floodkd_cli(*INGEST[:1], "terrain", *INGEST[1:],
                            "--out", f"results/{TARGET}/ingest/terrain")
    assert code == 0, err
    (workdir / "results" / TARGET / "student").mkdir()
    (workdir / "results" / TARGET / "student" / "member-0.safetensors").write_text("weights")
    before = snapshot(workdir)
    code, err = floodkd_cli("align", "--config", "config.yaml", "--region", TARGET,
                            "--cube", f"results/{TARGET}", "--tiles", f"results/{TARGET}/t.parquet")
    assert code == 2
    assert f"results/{TARGET}: is a parent of input" in err and "ingest" in err
    assert changes(before, snapshot(workdir)) == []


def test_align_refuses_an_ingest_folder_as_cube(workdir, floodkd_cli):
    code, err = floodkd_cli(*INGEST[:1], "terrain", *INGEST[1:],
                            "--out", f"results/{TARGET}/ingest/terrain")
    assert code == 0, err
    before = snapshot(workdir)
    code, err = floodkd_cli("align", "--config", "config.yaml", "--region", TARGET,
                            "--cube", f"results/{TARGET}/ingest/terrain",
                            "--tiles", f"results/{TARGET}/tiles.parquet")
    assert code == 2 and "lies inside input" in err
    assert changes(before, snapshot(workdir)) == []


def test_a_folder_not_written_by_floodkd_is_never_replaced(workdir, floodkd_cli):
    mine = workdir / "my-maps"
    mine.mkdir()
    (mine / "notes.txt").write_text("field notes")
    before = snapshot(workdir)
    code, err = floodkd_cli(*INGEST[:1], "terrain", *INGEST[1:], "--out", "my-maps")
    assert code == 2
    assert "my-maps: exists and was not written by floodkd" in err
    assert changes(before, snapshot(workdir)) == []


def test_rerun_replaces_our_own_output_atomically(workdir, floodkd_cli):
    out = f"results/{TARGET}/ingest/terrain"
    assert floodkd_cli(*INGEST[:1], "terrain", *INGEST[1:], "--out", out)[0] == 0
    first = snapshot(workdir / out)
    before = snapshot(workdir)
    code, err = floodkd_cli(*INGEST[:1], "terrain", *INGEST[1:], "--out", out)
    assert code == 0, err
    assert set(snapshot(workdir / out)) == set(first)
    assert changes(before, snapshot(workdir), out, f"results/{TARGET}/ingest/.floodkd-outputs") \
        == []
    assert not [p for p in (workdir / out).parent.iterdir() if "floodkd-tmp" in p.name]


def test_our_output_with_a_user_file_inside_is_not_replaced(workdir, floodkd_cli):
    out = workdir / "results" / TARGET / "ingest" / "terrain"
    assert floodkd_cli(*INGEST[:1], "terrain", *INGEST[1:], "--out", str(out))[0] == 0
    (out / "notes.txt").write_text("my notes on the DEM")
    before = snapshot(workdir)
    code, err = floodkd_cli(*INGEST[:1], "terrain", *INGEST[1:], "--out", str(out))
    assert code == 2
    assert "1 file(s) floodkd did not write (notes.txt)" in err
    assert changes(before, snapshot(workdir)) == []


def test_demo_does_not_replace_a_data_folder_with_user_files(workdir, floodkd_cli):
    (workdir / "data" / "demo" / "notes.txt").write_text("notes")
    before = snapshot(workdir)
    code, err = floodkd_cli("demo", "--out", "data/demo", "--size", "32")
    assert code == 2 and "data/demo: exists and was not written by floodkd" in err
    code, err = floodkd_cli("demo", "--out", ".", "--size", "32")
    assert code == 2 and "is the working folder" in err
    assert changes(before, snapshot(workdir)) == []


@pytest.mark.parametrize("stage", ["predict", "evaluate", "distill"])
def test_model_stages_refuse_outputs_over_their_inputs(workdir, floodkd_cli, stage):
    student = workdir / "results" / TARGET / "student"
    student.mkdir(parents=True)
    (student / "member-0.safetensors").write_text("weights")
    before = snapshot(workdir)
    common = ("--config", "config.yaml", "--region", TARGET)
    args = {
        "predict": ("--student", str(student), "--cube", f"results/{TARGET}/cube.zarr"),
        "evaluate": ("--teacher-passes", f"results/{TARGET}/teacher_passes.tif", "--student",
                     str(student)),
        "distill": ("--teacher", "results/teacher"),
    }[stage]
    for out, message in ((str(student), "is an input of this stage")
                         if stage != "distill" else (f"results/{TARGET}", "is a parent of input"),
                         (f"data/demo/{TARGET}", "is a parent of input"),
                         (f"results/{TARGET}/cube.zarr", "is an input of this stage"),
                         (f"results/{TARGET}/cube.zarr/maps", "lies inside input")):
        code, err = floodkd_cli(stage, *common, *args, "--out", out)
        assert code == 2, (out, err)
        assert message in err, err
    assert changes(before, snapshot(workdir)) == []
