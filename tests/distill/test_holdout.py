"""The held-out period no training phase may see: ``floodkd holdout`` and the teacher's
cut-off at the earliest held-out start of the target regions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from floodkd.cli import main
from floodkd.distill import student_training, teacher_training
from floodkd.distill.holdout_cli import holdout_document, read_train_before
from floodkd.distill.teacher_training import train_teacher
from floodkd.errors import InputError
from floodkd.models.checkpoint import load_checkpoint
from floodkd.models.teacher import RadarTeacher
from tests.distill.conftest import TIMES
from tests.distill.test_train import tiny_config

HALF_DAY = np.timedelta64(12, "h")  # tiny_config's radar window


def _as_target(config: dict, name: str) -> dict:
    return {**config, "regions": {name: {**config["regions"][name], "role": "target"}}}


def test_holdout_file_names_the_period_and_the_training_cut_off(synthetic_region, tmp_path):
    config = _as_target(tiny_config(synthetic_region.results_dir, "unused", synthetic_region.name),
                        synthetic_region.name)
    document = holdout_document(config, synthetic_region.name)
    # radar passes 0, 1, 3, 5, 6: the last quarter (2) is held out, from pass 5 on; training
    # passes must also stay a radar window away from it. Only the cut-off is written: the
    # teacher reruns when it moves, not when a new date joins the period
    assert document == {"region": synthetic_region.name,
                        "train_before": str((TIMES[5] - HALF_DAY).astype("datetime64[s]"))}
    config_path = tmp_path / "config.yaml"
    config_path.write_text(json.dumps(config))
    out = tmp_path / "holdout.json"
    assert main(["holdout", "--config", str(config_path), "--region", synthetic_region.name,
                 "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == document
    later = tmp_path / "later.json"
    later.write_text(json.dumps({"train_before": "2030-01-01T00:00:00"}))
    assert read_train_before([str(out), str(later)]) == np.datetime64(document["train_before"])
    assert read_train_before([]) is None
    later.write_text(json.dumps({"train_before": "2030-13-01"}))
    with pytest.raises(InputError, match="not a floodkd holdout file"):
        read_train_before([str(later)])
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(InputError, match="not a floodkd holdout file"):
        read_train_before([str(bad)])


def test_teacher_sees_no_pass_from_the_cut_off_on(synthetic_region, tmp_path, monkeypatch):
    config = tiny_config(synthetic_region.results_dir, synthetic_region.name, "unused")
    used: set[int] = set()
    original = teacher_training.CubeTileDataset

    def spying_dataset(cube_path, tiles, samples, size, *args, **kwargs):
        used.update(t for _, t in samples)
        return original(cube_path, tiles, samples, size, *args, **kwargs)

    monkeypatch.setattr(teacher_training, "CubeTileDataset", spying_dataset)
    train_teacher(config, tmp_path / "teacher", TIMES[3])
    assert used == {0, 1}  # the passes before day 3, for training (0) and validation (1)
    _, meta = load_checkpoint(RadarTeacher, tmp_path / "teacher" / "teacher.safetensors")
    assert meta["trained_before"] == str(TIMES[3].astype("datetime64[s]"))


def test_distill_refuses_a_teacher_trained_into_the_held_out_period(caplog):
    start = np.datetime64("2024-06-01T00:00:00")
    student_training._check_teacher_cutoff({"trained_before": "2024-05-01T00:00:00"}, "t", start)
    with pytest.raises(InputError, match="after this region's held-out period starts"):
        student_training._check_teacher_cutoff({"trained_before": "2024-07-01T00:00:00"}, "t",
                                               start)
    student_training._check_teacher_cutoff({}, "t", start)
    assert "records no training cut-off" in caplog.text
