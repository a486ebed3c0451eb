"""The trained student ensemble at inference: calibrated flood probability samples.

``StudentEnsemble.load(student_dir)`` reads ``student.json`` and the member checkpoints;
``predict_probabilities(batch, mc_samples)`` returns one calibrated P(flood) map per member
and MC-dropout draw, from which the map stage takes the mean (probability) and the spread
(uncertainty).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from floodkd.distill.calibration import Calibration, ensemble_logits, water_probability
from floodkd.distill.loop import autocast, pick_device
from floodkd.distill.student_training import STUDENT_FILE
from floodkd.errors import InputError
from floodkd.models.checkpoint import load_checkpoint
from floodkd.models.student import FloodStudent

__all__ = ["StudentEnsemble", "VARIANTS"]

# distilled: the final, fine-tuned and calibrated ensemble; no_ewc: the same members before
# EWC fine-tuning; labels_only: the reference trained on the sparse labels alone
VARIANTS = ("distilled", "no_ewc", "labels_only")
INPUT_KEYS = ("student_image", "presence", "gauge_history")


@dataclass
class StudentEnsemble:
    """Ensemble members, their calibration and the device they run on."""

    members: list[FloodStudent]
    calibration: Calibration
    device: torch.device

    @classmethod
    def load(cls, student_dir: str | Path, variant: str = "distilled",
             device: str | torch.device | None = None) -> StudentEnsemble:
        """Load a ``floodkd distill`` output folder. Only the ``distilled`` variant is
        calibrated; the others keep their raw softmax (as they were trained)."""
        student_dir = Path(student_dir)
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        document_path = student_dir / STUDENT_FILE
        if not document_path.is_file():
            raise InputError(document_path, "the student description does not exist",
                             "run `floodkd distill` for this region first")
        try:
            document = json.loads(document_path.read_text())
            files = document["files"][variant]
            calibration = (Calibration(float(document["temperature"]),
                                       float(document.get("water_bias", 0.0)))
                           if variant == "distilled" else Calibration())
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise InputError(document_path, f"not a floodkd student description ({error})",
                             "rerun `floodkd distill` for this region") from error
        if not files:
            raise InputError(document_path, f"lists no {variant} members",
                             "rerun `floodkd distill` for this region")
        device = pick_device() if device is None else torch.device(device)
        members = [load_checkpoint(FloodStudent, student_dir / name)[0].to(device)
                   for name in files]
        return cls(members, calibration, device)

    def sample_logits(self, batch: Mapping[str, torch.Tensor | np.ndarray],
                      mc_samples: int = 0) -> torch.Tensor:
        """Uncalibrated logits (S, B, 2, H, W), S = members x max(mc_samples, 1).

        ``batch`` holds ``student_image`` (B, C, H, W), ``presence`` (B, 3) and
        ``gauge_history`` (B, G, L) as produced by the cube dataset. ``mc_samples`` >= 1
        draws that many dropout masks per member; 0 runs each member once, dropout off.
        """
        inputs = {k: torch.as_tensor(batch[k]).float().to(self.device) for k in INPUT_KEYS}
        draws = max(int(mc_samples), 1)
        with torch.no_grad(), autocast(self.device):
            logits = [ensemble_logits(self.members, inputs, mc_dropout=mc_samples >= 1)
                      for _ in range(draws)]
        return torch.cat(logits).float()

    def calibrated(self, logits: torch.Tensor,
                   calibration: Calibration | None = None) -> np.ndarray:
        """P(flood) (S, B, H, W) float32 of logits (S, B, 2, H, W) under the ensemble's
        calibration (or ``calibration``, e.g. ``Calibration()`` for the raw softmax)."""
        calibration = self.calibration if calibration is None else calibration
        return water_probability(logits, calibration.temperature, calibration.bias,
                                 dim=2).cpu().numpy()

    def predict_probabilities(self, batch: Mapping[str, torch.Tensor | np.ndarray],
                              mc_samples: int = 0) -> np.ndarray:
        """Calibrated P(flood) samples (S, B, H, W) float32; see ``sample_logits``."""
        return self.calibrated(self.sample_logits(batch, mc_samples))
