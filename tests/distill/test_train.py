"""Teacher training, distillation + EWC ensemble, resume and the held-out passes."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from floodkd.config import validate_config
from floodkd.distill import calibration as calibration_module
from floodkd.distill import student_training
from floodkd.distill.calibration import Calibration, calibrate, water_probability
from floodkd.distill.data import collate
from floodkd.distill.inference import StudentEnsemble
from floodkd.distill.loop import Phase, run_phase
from floodkd.distill.samples import teacher_samples
from floodkd.distill.settings import TrainingConfig, training_settings
from floodkd.distill.student_training import distill_region
from floodkd.distill.teacher_training import train_teacher
from floodkd.errors import InputError
from floodkd.evaluate.metrics import binary_scores
from floodkd.models.channels import TEACHER_CHANNELS
from floodkd.models.checkpoint import load_checkpoint
from floodkd.models.teacher import RadarTeacher
from tests.distill.conftest import SPLITS, TIMES

TINY_MODELS = {
    "teacher": {"image_size": 16, "hidden_size": 16, "num_hidden_layers": 1,
                "num_attention_heads": 2, "intermediate_size": 32},
    "student": {"base_width": 8, "temporal_dim": 8, "temporal_heads": 2},
}


def tiny_config(results_dir: Path, source: str, target: str, **training) -> dict:
    region = {"bbox": [0, 0, 1, 1], "synthetic": True,
              "inputs": {"sar": {"glob": "s1/*.tif"}, "terrain": {"glob": "dem/*.tif"}}}
    return validate_config({
        "results_dir": str(results_dir),
        "regions": {source: {**region, "role": "source"},
                    target: {**region, "role": "target",
                             "truth": f"{results_dir}/{target}/truth/*.tif"}},
        "align": {"time_window_days": 0.5},
        "models": TINY_MODELS,
        "training": {"teacher_epochs": 1, "teacher_members": 1, "distill_epochs": 1,
                     "finetune_epochs": 1, "ensemble_members": 2, "batch_size": 8, **training},
        "evaluate": {"mc_samples": 2},
    })


@pytest.fixture(scope="module")
def trained_teacher(synthetic_region, tmp_path_factory) -> tuple[dict, Path]:
    """A 1-epoch teacher on the toy region (as source and target at once)."""
    config = tiny_config(synthetic_region.results_dir, synthetic_region.name, "unused")
    out = tmp_path_factory.mktemp("teacher")
    train_teacher(config, out)
    return config, out


def test_train_teacher_writes_loadable_checkpoint(trained_teacher, synthetic_region):
    config, out = trained_teacher
    teacher, meta = load_checkpoint(RadarTeacher, out / "teacher.safetensors")
    assert teacher.config.hidden_size == 16
    assert meta["source_regions"] == ["toy"]
    # val IoU is the checkpoint's own on the val samples (train and val tiles, passes 5, 6)
    val_tiles = [i for i, split in enumerate(SPLITS) if split in ("train", "val")]
    batch = collate([_sample(synthetic_region, p, t) for p in val_tiles for t in (5, 6)])
    with torch.no_grad():
        water = teacher(batch["teacher_image"])[0].argmax(1) == 1
    labelled = batch["label"] != 255
    own = binary_scores(water.numpy(), (batch["label"] == 1).numpy(), labelled.numpy())
    assert meta["metrics"]["val"]["val_iou"] == pytest.approx(own["iou"], abs=1e-6)
    # train and val tiles (5 + 2) at the radar passes before the held-out ones (0, 1, 3)
    assert meta["metrics"]["train_samples"] == 7 * 3
    assert meta["metrics"]["val_samples"] == 7 * 2  # the held-out passes 5, 6
    # toy radar: water -20 dB, land -8 dB, 1 dB speckle; Otsu splits them all but perfectly
    assert meta["metrics"]["val"]["val_otsu_iou"] > 0.99
    assert (out / "member-0" / "teacher_log.csv").read_text().splitlines()[0].startswith("epoch,")
    assert not (out / "checkpoints").exists()  # resume state removed once finished
    logits, _ = teacher(torch.zeros(1, len(TEACHER_CHANNELS), 16, 16))
    assert logits.shape == (1, 2, 16, 16)


def test_teacher_members_are_the_teachers_of_successive_seeds(trained_teacher, tmp_path):
    """Two members: the one-ViT teachers of seeds 0 and 1, weight for weight, each with its
    own log, and the checkpoint averages their P(water)."""
    config, one_dir = trained_teacher
    train_teacher({**config, "training": {**config["training"], "teacher_members": 2}},
                  tmp_path / "pair")
    train_teacher({**config, "training": {**config["training"], "seed": 1}}, tmp_path / "seed1")
    pair, meta = load_checkpoint(RadarTeacher, tmp_path / "pair" / "teacher.safetensors")
    assert pair.config.members == 2 and pair.feature_channels == 32
    assert len(meta["metrics"]["epochs_run"]) == 2
    for member, one in zip(pair.members, (one_dir, tmp_path / "seed1"), strict=True):
        single, _ = load_checkpoint(RadarTeacher, one / "teacher.safetensors")
        for name, tensor in single.members[0].state_dict().items():
            torch.testing.assert_close(member.state_dict()[name], tensor, rtol=0, atol=0)
    assert (tmp_path / "pair" / "member-1" / "teacher_log.csv").is_file()
    image = torch.randn(2, len(TEACHER_CHANNELS), 16, 16)
    with torch.no_grad():
        logits, features = pair(image)
        expected = torch.stack([torch.softmax(m(image)[0], 1) for m in pair.members]).mean(0)
    torch.testing.assert_close(torch.softmax(logits, 1), expected)
    assert features.shape == (2, 32, 4, 4)


def test_distill_writes_ensemble_and_never_uses_held_out(trained_teacher, synthetic_region,
                                                         tmp_path, monkeypatch):
    config, teacher_dir = trained_teacher
    config = {**config, "regions": {"toy": {**config["regions"]["toy"], "role": "target"}}}
    used_times: set[int] = set()
    original = student_training.CubeTileDataset

    def spying_dataset(cube_path, tiles, samples, size, cache_mb=0.0, label_tiles=None,
                       **kwargs):
        used_times.update(t for _, t in samples)
        return original(cube_path, tiles, samples, size, cache_mb, label_tiles, **kwargs)

    monkeypatch.setattr(student_training, "CubeTileDataset", spying_dataset)
    fits, fit = [], calibration_module.fit_calibration

    def spying_fit(logits, labels, **kwargs):
        fits.append((logits, labels, fit(logits, labels, **kwargs)))
        return fits[-1][2]

    monkeypatch.setattr(calibration_module, "fit_calibration", spying_fit)
    out = tmp_path / "student"
    document = distill_region(config, "toy", teacher_dir / "teacher.safetensors", out)

    # 5 passes, a quarter (rounded up: 2) held out from the first of them, less 0.5 day
    expected_held = [str(t)[:19] for t in TIMES[5:].astype("datetime64[s]")]
    assert document["holdout_times"] == expected_held
    assert used_times and used_times.isdisjoint({5, 6, 7})
    saved = json.loads((out / "student.json").read_text())
    assert saved["holdout_times"] == expected_held
    # the saved calibration is the fit on the calibration pixels, and minimises their NLL
    assert len(fits) == 1
    logits, labels, fitted = fits[0]
    assert (saved["temperature"], saved["water_bias"]) == (fitted.temperature, fitted.bias)

    def nll(t, b):
        mean = water_probability(torch.as_tensor(logits).double(), t, b).mean(0)
        truth = torch.as_tensor(labels).double()
        return float(-(truth * mean.log() + (1 - truth) * (1 - mean).log()).mean())

    t, b = fitted.temperature, fitted.bias
    assert nll(t, b) <= min(nll(t * 1.2, b), nll(t / 1.2, b), nll(t, b + 0.2), nll(t, b - 0.2))
    calibration = saved["metrics"]["calibration"]
    assert calibration["holdout"]["hidden_pixels"] > 0 and saved["samples"]["calibration"] > 0
    assert sum(calibration["pixels_per_class"]) == calibration["pixels"] > 0
    # the teacher's maps of the hidden blocks join the hand labels held out there
    assert 0 < calibration["hand_labelled_pixels"] < calibration["pixels"]
    for name in ("member-0", "member-1", "no_ewc-0", "no_ewc-1", "labels_only"):
        assert (out / f"{name}.safetensors").is_file() and (out / f"{name}.json").is_file()
    assert (out / "finetune-1_log.csv").is_file()
    assert not (out / "checkpoints").exists()

    ensemble = StudentEnsemble.load(out)
    assert len(ensemble.members) == 2
    assert ensemble.calibration == Calibration(saved["temperature"], saved["water_bias"])
    batch = collate([_sample(synthetic_region, 0, 0), _sample(synthetic_region, 4, 3)])
    samples = ensemble.predict_probabilities(batch, mc_samples=3)
    assert samples.shape == (6, 2, 16, 16)
    assert samples.std(0).max() > 0  # MC dropout gives spread
    single = ensemble.predict_probabilities(batch, mc_samples=0)
    assert single.shape == (2, 2, 16, 16)
    with torch.no_grad():  # each member's softmax(logits / T), as the maps use them
        logits = torch.stack([m(batch["student_image"], batch["presence"],
                                batch["gauge_history"])[0] for m in ensemble.members])
    expected = torch.sigmoid((logits[:, :, 1] - logits[:, :, 0]) / saved["temperature"]
                             + saved["water_bias"]).numpy()
    np.testing.assert_allclose(single, expected, atol=1e-6)
    np.testing.assert_allclose(single, ensemble.predict_probabilities(batch, 0))


def _sample(region, tile_pos, t):
    from floodkd.distill.data import CubeTileDataset, read_tiles

    tiles = read_tiles(region.tiles_path)
    return CubeTileDataset(region.cube_path, tiles, [(tile_pos, t)], (16, 16))[0]


class _Counter(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.tensor([3.0]))


def _toy_phase(epochs: int, calls: list[int], fail_at_epoch: int | None = None) -> Phase:
    model = _Counter()
    batches = [{"x": torch.tensor([float(i)])} for i in range(4)]
    loader = DataLoader(batches, batch_size=2, shuffle=True, collate_fn=collate,
                        generator=torch.Generator().manual_seed(0))

    def step(batch, global_step, _total):
        epoch = global_step // len(loader)
        if fail_at_epoch is not None and epoch == fail_at_epoch:
            raise KeyboardInterrupt  # an interruption in the middle of an epoch
        calls.append(epoch)
        loss = ((model.weight - batch["x"]) ** 2).mean()
        return loss, {"total": float(loss)}

    return Phase("toy", model, loader, step, lambda: {}, epochs, lr=0.1)


def test_resume_continues_from_saved_epoch(tmp_path):
    settings = TrainingConfig(patience=100)
    first_calls: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        run_phase(_toy_phase(4, first_calls, fail_at_epoch=2), settings, torch.device("cpu"),
                  tmp_path / "state", tmp_path, "same-settings")
    assert sorted(set(first_calls)) == [0, 1]
    saved = json.loads((tmp_path / "state" / "toy.json").read_text())
    assert saved["epoch"] == 2

    resumed_calls: list[int] = []
    history = run_phase(_toy_phase(4, resumed_calls), settings, torch.device("cpu"),
                        tmp_path / "state", tmp_path, "same-settings")
    assert sorted(set(resumed_calls)) == [2, 3]  # epochs 0-1 were not redone
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    # the same run without interruption ends with identical weights (deterministic resume)
    shutil.rmtree(tmp_path / "state")
    straight = _toy_phase(4, [])
    run_phase(straight, settings, torch.device("cpu"), tmp_path / "fresh", tmp_path, "x")
    resumed_phase = _toy_phase(4, [])
    run_phase(resumed_phase, settings, torch.device("cpu"), tmp_path / "fresh", tmp_path, "x")
    assert torch.equal(straight.model.weight, resumed_phase.model.weight)
    rows = (tmp_path / "toy_log.csv").read_text().splitlines()
    assert len(rows) == 5


def test_resume_ignores_state_of_other_settings(tmp_path):
    settings = TrainingConfig(patience=100)
    run_phase(_toy_phase(2, []), settings, torch.device("cpu"), tmp_path, tmp_path, "old")
    calls: list[int] = []
    history = run_phase(_toy_phase(2, calls), settings, torch.device("cpu"), tmp_path, tmp_path,
                        "new")
    assert sorted(set(calls)) == [0, 1] and len(history) == 2


def test_unknown_training_key_is_an_input_error():
    with pytest.raises(InputError, match="epochz"):
        training_settings({"training": {"epochz": 3}})


def test_teacher_samples_split_train_and_val_tiles_in_time():
    """Regression: the teacher was trained on train tiles only; on the demo coast those are
    all sea, so it never saw dry land and scored val IoU 0.05. Train and val tiles are now
    split in time; test tiles are never used."""
    import pandas as pd

    tiles = pd.DataFrame({"split": ["train", "val", "test", "train"]})
    radar = np.array([1, 1, 0, 1, 1], bool)
    held = np.array([0, 0, 0, 1, 1], bool)
    labelled = np.ones((4, 5), int)
    labelled[3, 1] = 0  # an unlabelled pair is never a teacher sample
    train, val = teacher_samples(tiles, radar, labelled, held)
    assert sorted(train) == [(0, 0), (0, 1), (1, 0), (1, 1), (3, 0)]
    assert sorted(val) == [(0, 3), (0, 4), (1, 3), (1, 4), (3, 3), (3, 4)]
    # nothing held out: the spatial split stands
    train, val = teacher_samples(tiles, radar, labelled, np.zeros(5, bool))
    assert {tile for tile, _ in train} == {0, 3} and {tile for tile, _ in val} == {1}


class _ConstantStudent(nn.Module):
    """Logits (B, 2, H, W) of a fixed margin: water logit = margin, dry = 0."""

    def __init__(self, margin: float):
        super().__init__()
        self.margin = margin

    def forward(self, image, presence, history, mc_dropout=False):
        logits = torch.zeros(image.shape[0], 2, *image.shape[-2:])
        logits[:, 1] = self.margin
        return logits, None


def _label_batch(labels: torch.Tensor) -> dict[str, torch.Tensor]:
    n = labels.shape[0]
    return {"student_image": torch.zeros(n, 1, *labels.shape[-2:]),
            "presence": torch.ones(n, 3), "gauge_history": torch.zeros(n, 1, 1),
            "label": labels, "valid": torch.ones_like(labels, dtype=torch.bool)}


def test_calibration_with_one_class_keeps_temperature_one():
    """Regression: 722 dry-only validation pixels fitted T = 0.10 (the NLL of a one-class
    set falls without bound as T -> 0), sharpening rather than calibrating the map."""
    labels = torch.zeros(1, 30, 30, dtype=torch.long)  # 900 dry, no water
    result = calibrate([_ConstantStudent(-1.0)], [_label_batch(labels)],
                                    torch.device("cpu"))
    assert result["temperature"] == 1.0 and "note" in result
    assert result["pixels_per_class"] == [900, 0]


def test_calibration_fits_when_both_classes_are_there():
    labels = torch.zeros(1, 20, 20, dtype=torch.long)
    labels[0, :, :5] = 1  # a quarter water; a margin of -4 is over-confident for the rest
    result = calibrate([_ConstantStudent(-4.0)], [_label_batch(labels)],
                                    torch.device("cpu"))
    # the fitted sigmoid(-4 / T + b) should approach the water share 0.25
    fitted = float(water_probability(torch.tensor([0.0, -4.0]), result["temperature"],
                                     result["bias"]))
    assert fitted == pytest.approx(0.25, abs=0.01)
    assert result["ece_after"] < result["ece_before"]


class _ThresholdTeacher(nn.Module):
    """Calls water where the first teacher channel is below -15 (dB)."""

    def forward(self, image):
        water = (image[:, 0] < -15).float() * 8 - 4
        return torch.stack([torch.zeros_like(water), water], 1), None


def test_calibration_takes_the_teachers_map_where_there_is_no_label():
    labels = torch.full((1, 10, 10), 255, dtype=torch.long)
    labels[0, 0, :] = 0  # a row of hand-labelled dry land
    batch = _label_batch(labels)
    vv = torch.full((1, len(TEACHER_CHANNELS), 10, 10), -8.0)
    vv[0, 0, 5:] = -20.0  # the southern half is water to the teacher
    batch.update(teacher_image=vv, radar_present=torch.ones(1),
                 radar_valid=torch.ones(1, 10, 10, dtype=torch.bool))
    batch["radar_valid"][0, :, 9] = False  # no radar there: no target at all
    result = calibrate([_ConstantStudent(-1.0)], [batch], torch.device("cpu"),
                       _ThresholdTeacher())
    assert result["hand_labelled_pixels"] == 10
    assert result["pixels"] == 10 + 9 * 9  # the labelled row, then radar-valid pixels
    assert result["pixels_per_class"] == [10 + 4 * 9, 5 * 9]
    without_teacher = calibrate([_ConstantStudent(-1.0)], [batch], torch.device("cpu"))
    assert without_teacher["pixels"] == 10 and "note" in without_teacher


def test_calibration_counts_a_pixel_seen_by_overlapping_tiles_once():
    labels = torch.zeros(2, 10, 10, dtype=torch.long)
    labels[:, :, :2] = 1
    batch = _label_batch(labels)
    # the same tile twice at one time, then shifted by one column: 100 + 10 new pixels
    batch["window"] = torch.tensor([[0, 0, 10, 10], [0, 1, 10, 10]])
    batch["time_index"] = torch.tensor([4, 4])
    result = calibrate([_ConstantStudent(-1.0)], [batch], torch.device("cpu"))
    assert result["pixels"] == 110
    # the shifted tile's water (its columns 0-1) lies on columns 1-2: column 2 is new water
    assert result["pixels_per_class"] == [90, 20]


def test_source_samples_skip_test_tiles_and_the_target_held_out_period(synthetic_region):
    from floodkd.distill.data import read_tiles
    from floodkd.distill.samples import held_out_start, source_samples
    from tests.distill.conftest import RADAR, SPLITS

    tiles = read_tiles(synthetic_region.tiles_path)
    held = np.zeros(TIMES.size, bool)
    held[5:] = True  # the target's held-out times
    start = held_out_start(TIMES, held, window_days=0.5)
    assert start == TIMES[5] - np.timedelta64(12, "h")
    pairs = source_samples(tiles, RADAR, TIMES, start)
    train_val = [i for i, split in enumerate(SPLITS) if split != "test"]
    # every train/val tile at the radar passes 0, 1, 3 (passes 5 and 6 are in the held period)
    assert sorted(pairs) == sorted((p, t) for p in train_val for t in (0, 1, 3))
    # nothing held out: every radar pass of the train/val tiles, still no test tile
    assert held_out_start(TIMES, np.zeros(TIMES.size, bool), 0.5) is None
    assert sorted(source_samples(tiles, RADAR, TIMES, None)) == sorted(
        (p, int(t)) for p in train_val for t in np.flatnonzero(RADAR))


def test_distill_learns_on_source_train_val_passes_before_the_held_out_period(
        trained_teacher, synthetic_region, tmp_path, monkeypatch):
    from tests.distill.conftest import SPLITS, write_region

    config, teacher_dir = trained_teacher
    results = tmp_path / "results"
    results.mkdir()
    (results / "toy").symlink_to(synthetic_region.results_dir / "toy")
    write_region(results, "coast", seed=2)
    config = tiny_config(results, "toy", "coast", source_epochs=1)
    used: dict[str, set[tuple[int, int]]] = defaultdict(set)
    original = student_training.CubeTileDataset

    def spying_dataset(cube_path, tiles, samples, *args, **kwargs):
        used[Path(cube_path).parent.name].update(samples)
        return original(cube_path, tiles, samples, *args, **kwargs)

    monkeypatch.setattr(student_training, "CubeTileDataset", spying_dataset)
    out = tmp_path / "student"
    document = distill_region(config, "coast", teacher_dir / "teacher.safetensors", out)

    test_tiles = {i for i, split in enumerate(SPLITS) if split == "test"}
    assert used["toy"] and not {p for p, _ in used["toy"]} & test_tiles
    # the target holds out times 5-7 (less 0.5 day): the source gives passes 0, 1, 3 only
    assert {t for _, t in used["toy"]} == {0, 1, 3}
    assert {t for _, t in used["coast"]}.isdisjoint({5, 6, 7})
    record = document["source_distillation"]
    assert record["samples"] == len(used["toy"]) == 7 * 3  # 5 train + 2 val tiles
    assert record["regions"]["toy"]["times"] == [str(t)[:19] for t in
                                                 TIMES[[0, 1, 3]].astype("datetime64[s]")]
    assert (out / "source-0_log.csv").is_file() and "source-1" in document["history"]

    off = tiny_config(results, "toy", "coast", distill_on_sources=False)
    used.clear()
    document = distill_region(off, "coast", teacher_dir / "teacher.safetensors",
                              tmp_path / "off")
    assert "toy" not in used and document["source_distillation"]["samples"] == 0
