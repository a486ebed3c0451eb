"""The ``training`` and ``models`` config blocks as settings dataclasses.

The defaults live here and only here: the schema checks types and ranges, the dataclasses
fill in what a config leaves out.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from floodkd.errors import InputError
from floodkd.models.student import StudentConfig
from floodkd.models.teacher import TeacherConfig
from floodkd.settings import Settings, settings_from_config

__all__ = ["TrainingConfig", "ModelSettings", "training_settings", "model_settings"]


@dataclass(frozen=True)
class TrainingConfig(Settings):
    """The ``training`` block of the config. Defaults fit the demo on 2 CPU cores."""

    teacher_epochs: int = 30
    distill_epochs: int = 10
    finetune_epochs: int = 5
    batch_size: int = 8
    teacher_lr: float = 1e-3
    student_lr: float = 2e-3
    weight_decay: float = 1e-4
    patience: int = 6  # epochs without a better validation loss before stopping
    ensemble_members: int = 3
    # ViTs the teacher averages, each trained as the one-ViT teacher of seed + k: one ViT's
    # map of an unseen coast depends on its training draw (docs/student-limits.md)
    teacher_members: int = 3
    ewc_weight: float = 100.0
    kd_weight: float = 0.5
    feature_weight: float = 0.3
    task_weight: float = 0.2
    t_start: float = 5.0
    t_end: float = 1.0
    holdout_fraction: float = 0.25  # last share of the target's radar passes kept for evaluation
    calibration_fraction: float = 0.3  # share of the target's usable labels kept to calibrate
    calibration_block_px: int = 16  # side of the spatial blocks that share is drawn in
    # share of the train/val tiles' unlabelled area hidden from all training, in blocks too,
    # where the teacher's map of every usable pass joins the labels to calibrate on
    calibration_area_fraction: float = 0.1
    fisher_batches: int = 16
    seed: int = 0
    num_workers: int = 0
    # (tile, time) pairs per training epoch, drawn at random each epoch; 0 = all of them
    samples_per_epoch: int = 256
    # keep a region's samples (or else the cube chunks they lie in) in memory when they fit;
    # else they are spilled once to a temporary folder (TMPDIR); 0: read every window each time
    sample_cache_mb: float = 512.0
    augment: bool = True  # random flips/rotations of training tiles
    radiometric_randomisation: bool = True  # teacher tiles redrawn as other S1 products
    distill_on_sources: bool = True  # distil on the source regions' passes before the target's
    source_epochs: int = 5  # epochs of that source phase, per ensemble member
    source_replay: bool = True  # keep the source passes in the target distillation too
    device: str = "auto"  # auto (CUDA when present), cpu, cuda


@dataclass(frozen=True)
class ModelSettings:
    """The ``models`` block: teacher and student sizes, an optional local pretrained ViT."""

    teacher: TeacherConfig
    student: StudentConfig
    teacher_pretrained_dir: str | None = None


def training_settings(config: dict[str, Any]) -> TrainingConfig:
    """The training settings of a loaded config (defaults for keys it leaves out)."""
    return settings_from_config(TrainingConfig, config, "training")


def model_settings(config: dict[str, Any]) -> ModelSettings:
    """The model sizes of a loaded config (``models: {teacher: {...}, student: {...}}``)."""
    block = dict(config.get("models") or {})
    unknown = sorted(set(block) - {f.name for f in fields(ModelSettings)})
    if unknown:
        raise InputError("config", f"unknown keys {unknown} in the 'models' block",
                         "correct the key; config/README.md lists them")
    try:
        teacher = TeacherConfig.from_dict(block.get("teacher") or {})
        student = StudentConfig.from_dict(block.get("student") or {})
    except ValueError as error:
        raise InputError("config", f"models block: {error}", "correct the key") from error
    return ModelSettings(teacher, student, block.get("teacher_pretrained_dir"))

