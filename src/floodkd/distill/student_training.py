"""The student's training on a target region: the distillation phases, EWC and the reference.

Read top to bottom: ``distill_region`` opens the data (``open_student_run``), then trains
each ensemble member (``train_member``): distillation from the teacher on the source
regions' radar passes (train/val tiles, before the target's held-out period: storms the
target's own passes lack), then on the target's passes (the source passes replayed), then
EWC fine-tuning on local labels. Then the labels-only reference (``train_labels_only``)
and Platt calibration on the calibration hold-out (``calibration.calibrate``).

Every phase resumes from its saved state (``loop.run_phase``); the state folder is removed
once the stage has written its outputs.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from floodkd.atomic import atomic_path, remove_outputs
from floodkd.config import region_config
from floodkd.distill.calibration import calibrate
from floodkd.distill.data import (
    TERRAIN_VARIABLES,
    CubeTileDataset,
    RegionData,
    holdout_mask,
    label_class_counts,
    open_region,
    padded_size,
    time_window_days,
)
from floodkd.distill.ewc import EWC, fisher_diagonal
from floodkd.distill.loop import (
    STATE_DIR,
    Phase,
    autocast,
    class_weights_from_counts,
    iso_times,
    make_loader,
    pick_device,
    run_phase,
    sample_counts,
    seed_everything,
    settings_fingerprint,
    to_device,
)
from floodkd.distill.losses import (
    IGNORE_LABEL,
    DistillWeights,
    distillation_loss,
    task_loss,
    temperature_at,
)
from floodkd.distill.samples import (
    TargetSamples,
    held_out_start,
    source_samples,
    target_samples,
)
from floodkd.distill.settings import (
    ModelSettings,
    TrainingConfig,
    model_settings,
    training_settings,
)
from floodkd.errors import InputError
from floodkd.models.checkpoint import load_checkpoint, save_checkpoint
from floodkd.models.student import FloodStudent, Projection
from floodkd.models.teacher import RadarTeacher

__all__ = ["STUDENT_FILE", "distill_region", "source_data", "SourceData"]

log = logging.getLogger(__name__)

STUDENT_FILE = "student.json"
CUBE_VARIABLES = ["vv_db", "vh_db", "radar_present", "label", *TERRAIN_VARIABLES]


# ---------------------------------------------------------------- source regions


@dataclass
class SourceData:
    """The source regions' part of distillation: one dataset, its class weights, a record."""

    dataset: Dataset
    class_weights: torch.Tensor
    record: dict[str, Any]


def open_sources(config: dict[str, Any], target: str) -> list[RegionData]:
    """The cubes and tiles of every ``source`` region other than ``target``."""
    return [open_region(config.get("results_dir", "results"), name, CUBE_VARIABLES)
            for name, r in config["regions"].items() if r["role"] == "source" and name != target]


def source_data(regions: list[RegionData], held_out_start_time: np.datetime64 | None,
                size: tuple[int, int], cache_mb: float) -> SourceData | None:
    """One dataset over the source regions' train/val radar passes (see ``source_samples``);
    None when there is no such pass. Labels of those tiles stay visible: the teacher was
    trained on them already, and they anchor the task loss at storm water levels."""
    sets, counts, record = [], [], {}
    for region in regions:
        radar = region.cube["radar_present"].values.astype(bool)
        times = region.cube["time"].values
        pairs = source_samples(region.tiles, radar, times, held_out_start_time)
        if not pairs:
            continue
        counts.append(sample_counts(label_class_counts(region.cube, region.tiles), pairs))
        sets.append(CubeTileDataset(region.cube_path, region.tiles, pairs, size, cache_mb,
                                    waterline=region.waterline))
        used_times = sorted({t for _, t in pairs})
        record[region.name] = {
            "samples": len(pairs),
            "tiles": sorted({str(region.tiles["tile_id"].iloc[p]) for p, _ in pairs}),
            "times": iso_times(times[used_times])}
    if not sets:
        return None
    return SourceData(ConcatDataset(sets), class_weights_from_counts(np.concatenate(counts)),
                      record)


# ---------------------------------------------------------------- losses


def _student_forward(student: FloodStudent, batch: dict[str, torch.Tensor]):
    return student(batch["student_image"], batch["presence"], batch["gauge_history"])


def _kd_mask(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Where the teacher's view may teach: valid radar (hidden pixels have none)."""
    return batch["valid"] & batch["radar_valid"] & (batch["radar_present"][:, None, None] > 0)


@dataclass
class StudentLosses:
    """The losses of every student phase, against a frozen teacher."""

    teacher: RadarTeacher
    weights: DistillWeights
    class_weights: torch.Tensor  # (dry, water) of the target's labelled training pixels

    def teacher_outputs(self, batch):
        with torch.no_grad():
            logits, features = self.teacher(batch["teacher_image"])
        return logits.float(), features.float()

    def distill(self, student: FloodStudent, projection: Projection, batch,
                temperature: float, label_weights: torch.Tensor | None = None) -> torch.Tensor:
        """KL to the softened teacher + feature alignment + task loss where labels exist."""
        t_logits, t_features = self.teacher_outputs(batch)
        logits, features = _student_forward(student, batch)
        weights = self.class_weights if label_weights is None else label_weights
        return distillation_loss(logits.float(), t_logits, projection(features).float(),
                                 t_features, batch["label"], temperature, self.weights,
                                 weights, _kd_mask(batch), batch.get("visible"))

    def labels(self, student: FloodStudent, batch) -> torch.Tensor:
        logits, _ = _student_forward(student, batch)
        return task_loss(logits.float(), batch["label"], self.class_weights)

    def teacher_nll(self, student: FloodStudent, batch) -> torch.Tensor:
        """The NLL of the teacher's hard labels where it sees radar: the distilled task
        whose Fisher EWC keeps (the KL itself is flat at its optimum, a near-zero Fisher)."""
        t_logits, _ = self.teacher_outputs(batch)
        targets = torch.where(_kd_mask(batch), t_logits.argmax(1), IGNORE_LABEL)
        logits, _ = _student_forward(student, batch)
        return task_loss(logits.float(), targets)


def _mean_loss(loader: DataLoader, device: torch.device,
               loss_fn: Callable[[dict[str, torch.Tensor]], torch.Tensor]) -> dict[str, float]:
    losses = []
    for batch in loader:
        batch = to_device(batch, device)
        with autocast(device):
            losses.append(float(loss_fn(batch)))
    return {"val_loss": float(np.mean(losses))} if losses else {}


# ---------------------------------------------------------------- one run


@dataclass
class StudentRun:
    """Everything the phases of one ``distill_region`` share."""

    settings: TrainingConfig
    models: ModelSettings
    device: torch.device
    out_dir: Path
    fingerprint: str
    loaders: dict[str, DataLoader]
    losses: StudentLosses
    sources: SourceData | None

    def run(self, phase: Phase, settings: TrainingConfig | None = None) -> list[dict[str, float]]:
        return run_phase(phase, settings or self.settings, self.device,
                         self.out_dir / STATE_DIR, self.out_dir, self.fingerprint)

    def labelled_val_loss(self, student: FloodStudent) -> dict[str, float]:
        """The validation loss of every phase: the labelled val pixels (the val tiles'
        radar is distilled on, their labels not)."""
        return _mean_loss(self.loaders["labelled_val"], self.device,
                          lambda b: self.losses.labels(student, b))


def _target_loaders(region: RegionData, samples: TargetSamples, sources: SourceData | None,
                    size: tuple[int, int], settings: TrainingConfig) -> dict[str, DataLoader]:
    """The loaders of every phase. Calibration pixels are hidden from all but ``calibration``."""
    training_pixels = ~samples.calibration_pixels

    def loader(pairs, shuffle, label_tiles=None, visible_pixels=training_pixels):
        dataset = CubeTileDataset(region.cube_path, region.tiles, pairs, size,
                                  settings.sample_cache_mb, label_tiles,
                                  visible_pixels=visible_pixels, waterline=region.waterline)
        return make_loader(dataset, settings, shuffle)

    loaders = {
        "distill": loader(samples.distill_train, True, samples.distill_label_tiles),
        "distill_val": loader(samples.distill_val, False),
        "labelled": loader(samples.labelled_train, True),
        "labelled_val": loader(samples.labelled_val, False),
        "fisher": loader(samples.distill_train, False),
        "calibration": loader(samples.calibration, False,
                              visible_pixels=samples.calibration_pixels),
    }
    if sources is not None:
        loaders["source"] = make_loader(sources.dataset, settings, shuffle=True)
        if settings.source_replay:
            # the source passes stay in the target phase, so storms are not forgotten there
            loaders["distill"] = make_loader(
                ConcatDataset([loaders["distill"].dataset, sources.dataset]), settings,
                shuffle=True)
    return loaders


def train_member(run: StudentRun, k: int) -> tuple[FloodStudent, dict[str, Any]]:
    """Ensemble member ``k``: source distillation (when there are sources), target
    distillation, then EWC fine-tuning on the local labels. Writes ``no_ewc-<k>`` (before
    fine-tuning) and ``member-<k>``; returns the member and the phases' histories."""
    settings, device, losses = run.settings, run.device, run.losses
    seed = settings.seed + k
    member_settings = TrainingConfig(**{**asdict(settings), "seed": seed})
    seed_everything(seed)
    student = FloodStudent(run.models.student)
    projection = Projection(run.models.student.feature_channels, losses.teacher.feature_channels)
    pair = nn.ModuleDict({"student": student, "projection": projection})
    history: dict[str, Any] = {}

    def distill_step(label_weights=None):
        def step(batch, i, total):
            temperature = temperature_at(i, total, settings.t_start, settings.t_end)
            return losses.distill(student, projection, batch, temperature, label_weights)
        return step

    if run.sources is not None:
        # first the source regions' passes (storms included), so the student learns how
        # water spreads with level, terrain and gauges before it adapts to the target
        history[f"source-{k}"] = run.run(Phase(
            f"source-{k}", pair, run.loaders["source"],
            distill_step(run.sources.class_weights.to(device)),
            lambda: run.labelled_val_loss(student), settings.source_epochs, settings.student_lr,
            settings.augment), member_settings)
    history[f"distill-{k}"] = run.run(Phase(
        f"distill-{k}", pair, run.loaders["distill"], distill_step(),
        lambda: run.labelled_val_loss(student), settings.distill_epochs, settings.student_lr,
        settings.augment), member_settings)
    save_checkpoint(student.cpu(), run.out_dir / f"no_ewc-{k}.safetensors",
                    {"variant": "no_ewc", "member": k, "seed": seed})
    student.to(device)

    # EWC: the Fisher of the distilled task, after distillation
    fisher_batches = [to_device(b, device)
                      for b in _take(run.loaders["fisher"], settings.fisher_batches)]
    ewc = EWC(student, fisher_diagonal(student, fisher_batches, losses.teacher_nll),
              settings.ewc_weight)

    def finetune_step(batch, _step, _total):
        task = losses.labels(student, batch)
        penalty = ewc.penalty(student)
        total = task + penalty
        return total, {"task": task.item(), "ewc": penalty.item(), "total": total.item()}

    history[f"finetune-{k}"] = run.run(Phase(
        f"finetune-{k}", student, run.loaders["labelled"], finetune_step,
        lambda: run.labelled_val_loss(student), settings.finetune_epochs, settings.student_lr,
        settings.augment), member_settings)
    save_checkpoint(student.cpu(), run.out_dir / f"member-{k}.safetensors",
                    {"variant": "distilled", "member": k, "seed": seed})
    return student.to(device), history


def train_labels_only(run: StudentRun) -> tuple[FloodStudent, list[dict[str, float]]]:
    """The reference: same architecture and epoch budget, the sparse labels only (and so
    blind to the waterline layer, which is the teacher's map of the radar archive)."""
    settings = run.settings
    seed_everything(settings.seed)
    model = FloodStudent(replace(run.models.student, reads_waterline=False))

    def step(batch, _step, _total):
        loss = run.losses.labels(model, batch)
        return loss, {"total": loss.item()}

    history = run.run(Phase(
        "labels_only", model, run.loaders["labelled"], step, lambda: run.labelled_val_loss(model),
        settings.distill_epochs + settings.finetune_epochs, settings.student_lr, settings.augment))
    save_checkpoint(model.cpu(), run.out_dir / "labels_only.safetensors",
                    {"variant": "labels_only", "seed": settings.seed})
    return model, history


# ---------------------------------------------------------------- the stage


def distill_region(config: dict[str, Any], region_name: str, teacher_path: str | Path,
                   out_dir: str | Path) -> dict[str, Any]:
    """Distil the teacher into an ensemble of students for one region, fine-tune with EWC,
    train the labels-only reference and calibrate; write ``out_dir`` (see the data contract).

    Returns the ``student.json`` document.
    """
    out_dir = Path(out_dir)
    settings, models = training_settings(config), model_settings(config)
    region_config(config, region_name)
    device = pick_device(settings.device)
    region = open_region(config.get("results_dir", "results"), region_name, CUBE_VARIABLES)
    teacher, teacher_meta = load_checkpoint(RadarTeacher, teacher_path)
    teacher.to(device).eval().requires_grad_(False)
    times = region.cube["time"].values
    radar = region.cube["radar_present"].values.astype(bool)
    window_days = time_window_days(config)
    held_out = holdout_mask(times, radar, settings.holdout_fraction, window_days)
    _check_teacher_cutoff(teacher_meta, teacher_path, held_out_start(times, held_out, window_days))
    samples = target_samples(region, held_out, settings.calibration_fraction,
                             settings.calibration_block_px, settings.seed,
                             settings.calibration_area_fraction, settings.samples_per_epoch)
    if not samples.distill_train:
        raise InputError(region.cube_path, "no radar pass on the train tiles outside the "
                         "held-out times", "lower training.holdout_fraction or add radar passes")
    if not samples.labelled_train:
        raise InputError(region.cube_path, "no labelled pixel on the train tiles outside the "
                         "held-out times", "add labels for the region or lower "
                         "training.holdout_fraction")
    multiple = math.lcm(teacher.config.patch_size, 2 ** models.student.depth)
    source_regions = open_sources(config, region_name) if settings.distill_on_sources else []
    size = padded_size([region.tiles, *(r.tiles for r in source_regions)], multiple)
    sources = source_data(source_regions, held_out_start(times, held_out, window_days), size,
                          settings.sample_cache_mb) if source_regions else None
    run = StudentRun(
        settings, models, device, out_dir,
        settings_fingerprint(asdict(settings), asdict(models), teacher_meta.get("history"),
                             region_name, samples.distill_train, samples.labelled_train,
                             sources.record if sources is not None else None),
        _target_loaders(region, samples, sources, size, settings),
        StudentLosses(teacher, DistillWeights(settings.kd_weight, settings.feature_weight,
                                              settings.task_weight),
                      samples.class_weights.to(device)),
        sources)
    log.info("distil %s on %s: %d radar and %d labelled train samples; held out %d of %d times",
             region_name, device, len(samples.distill_train), len(samples.labelled_train),
             int(held_out.sum()), times.size)

    history: dict[str, Any] = {}
    members = []
    for k in range(settings.ensemble_members):
        member, member_history = train_member(run, k)
        members.append(member)
        history.update(member_history)
    _, history["labels_only"] = train_labels_only(run)

    calibration = calibrate(members, run.loaders["calibration"], device, teacher)
    calibration["holdout"] = {"fraction": settings.calibration_fraction,
                              "area_fraction": settings.calibration_area_fraction,
                              "block_px": settings.calibration_block_px,
                              "hidden_pixels": int(samples.calibration_pixels.sum()),
                              "samples": len(samples.calibration)}
    k_range = range(settings.ensemble_members)
    document = {
        "region": region_name,
        "student_config": models.student.to_dict(),
        "teacher": {"path": str(teacher_path), "config": teacher.config.to_dict()},
        "training": asdict(settings),
        "files": {"distilled": [f"member-{k}.safetensors" for k in k_range],
                  "no_ewc": [f"no_ewc-{k}.safetensors" for k in k_range],
                  "labels_only": ["labels_only.safetensors"]},
        "temperature": calibration["temperature"],
        "water_bias": calibration["bias"],
        "holdout_times": iso_times(times[held_out]),
        "training_times": iso_times(times[~held_out]),
        "tile_size_px": list(size),
        "source_distillation": _source_record(sources, settings),
        "samples": {"distill_train": len(samples.distill_train),
                    "distill_val": len(samples.distill_val),
                    "labelled_train": len(samples.labelled_train),
                    "labelled_val": len(samples.labelled_val),
                    "calibration": len(samples.calibration)},
        "metrics": {"calibration": calibration,
                    "final_val_loss": {name: rows[-1].get("val_loss") if rows else None
                                       for name, rows in history.items()}},
        "history": history,
        "device": str(device),
    }
    with atomic_path(out_dir / STUDENT_FILE) as tmp:
        tmp.write_text(json.dumps(document, indent=2, default=_json_default))
    remove_outputs(out_dir / STATE_DIR)
    return document


def _check_teacher_cutoff(teacher_meta: dict[str, Any], teacher_path: str | Path,
                          start: np.datetime64 | None) -> None:
    """Refuse a teacher that trained on passes of this region's held-out period."""
    trained_before = teacher_meta.get("trained_before")
    if start is None:
        return
    if trained_before is None:
        log.warning("the teacher %s records no training cut-off: it may have seen passes "
                    "after %s, this region's held-out start (the workflow trains it with one)",
                    teacher_path, start)
    elif np.datetime64(trained_before, "s") > np.datetime64(start, "s"):
        raise InputError(teacher_path, f"the teacher trained on passes before "
                         f"{trained_before}, after this region's held-out period starts "
                         f"({np.datetime64(start, 's')})",
                         "retrain it with `floodkd train-teacher --holdout "
                         "results/<region>/holdout.json` (the workflow does)")


def _source_record(sources: SourceData | None, settings: TrainingConfig) -> dict[str, Any]:
    if sources is not None:
        return {"regions": sources.record, "samples": len(sources.dataset),
                "epochs": settings.source_epochs,
                "replayed_in_target_phase": settings.source_replay}
    return {"regions": {}, "samples": 0, "epochs": 0,
            "note": "off (training.distill_on_sources)" if not settings.distill_on_sources
            else "no source region with radar passes on train/val tiles"}


def _take(loader: DataLoader, n: int) -> list[dict[str, torch.Tensor]]:
    out = []
    for batch in loader:
        if len(out) == n:
            break
        out.append(batch)
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")
