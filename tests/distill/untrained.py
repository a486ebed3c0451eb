"""Untrained (randomly initialised) teacher and student checkpoints written like the real
ones, so the stages downstream of training run in seconds on known weights."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from floodkd.models.checkpoint import save_checkpoint
from floodkd.models.student import FloodStudent, StudentConfig
from floodkd.models.teacher import RadarTeacher, TeacherConfig

TINY_STUDENT = {"base_width": 8, "temporal_dim": 8, "temporal_heads": 2}
TINY_TEACHER = {"image_size": 16, "hidden_size": 16, "num_hidden_layers": 1,
                "num_attention_heads": 2, "intermediate_size": 32}


def write_teacher(path: Path, seed: int = 0) -> Path:
    """A random tiny teacher at ``path`` (``teacher.safetensors`` + JSON)."""
    torch.manual_seed(seed)
    save_checkpoint(RadarTeacher(TeacherConfig(**TINY_TEACHER)), path, {"seed": seed})
    return path


def write_student_dir(out: Path, temperature: float, holdout_times: list[str],
                      members: int = 2, seed: int = 0, water_bias: float = 0.0) -> Path:
    """A ``floodkd distill``-like folder: random members for every variant and student.json
    with the given calibration (``temperature``, ``water_bias``) and held-out times (ISO, to
    the second)."""
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[str]] = {"distilled": [], "no_ewc": [], "labels_only": []}
    for k in range(members):
        torch.manual_seed(seed + k)
        model = FloodStudent(StudentConfig(**TINY_STUDENT))
        for variant, name in (("distilled", f"member-{k}"), ("no_ewc", f"no_ewc-{k}")):
            save_checkpoint(model, out / f"{name}.safetensors", {"variant": variant})
            files[variant].append(f"{name}.safetensors")
    save_checkpoint(model, out / "labels_only.safetensors", {"variant": "labels_only"})
    files["labels_only"].append("labels_only.safetensors")
    document = {"files": files, "temperature": temperature, "water_bias": water_bias,
                "holdout_times": holdout_times}
    (out / "student.json").write_text(json.dumps(document))
    return out
