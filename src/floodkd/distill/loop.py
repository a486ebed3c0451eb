"""The training loop every phase shares: device, seeds, resumable epochs, loaders.

``run_phase`` trains one ``Phase`` with early stopping on validation loss; it saves model +
optimizer state after each epoch (safetensors + JSON) and resumes from it when rerun with
the same settings (the same fingerprint).
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import logging
import math
from collections import defaultdict
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from floodkd.atomic import atomic_path
from floodkd.distill.data import augment_batch, collate
from floodkd.distill.settings import TrainingConfig
from floodkd.errors import InputError

__all__ = [
    "STATE_DIR",
    "Phase",
    "pick_device",
    "seed_everything",
    "autocast",
    "to_device",
    "run_phase",
    "make_loader",
    "settings_fingerprint",
    "class_weights_from_counts",
    "sample_counts",
    "iso_times",
]

log = logging.getLogger(__name__)

STATE_DIR = "checkpoints"  # per-phase resume state, removed once a stage has its outputs


# ---------------------------------------------------------------- device, seeds, autocast


def pick_device(name: str = "auto") -> torch.device:
    """CUDA when present (or asked for), else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("config", "training.device is cuda but no GPU is visible",
                         "set training.device to auto or cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) and numpy; deterministic cuDNN."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def autocast(device: torch.device):
    """bf16 autocast on GPU (fast, no loss scaling needed); full precision on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def _phase_seed(seed: int, name: str, epoch: int) -> int:
    digest = hashlib.sha256(f"{seed}/{name}/{epoch}".encode()).hexdigest()
    return int(digest[:8], 16)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


# ---------------------------------------------------------------- resumable epochs


@dataclass
class Phase:
    """One training phase: what to train, on what, with which step and validation."""

    name: str
    model: nn.Module
    loader: DataLoader
    step: Callable[[dict[str, torch.Tensor], int, int], tuple[torch.Tensor, dict[str, float]]]
    validate: Callable[[], dict[str, float]]
    epochs: int
    lr: float
    augment: bool = False  # random flips/rotations of each training batch


def save_state(path: Path, model: nn.Module, best: dict[str, torch.Tensor],
               optimizer: torch.optim.Optimizer, meta: dict[str, Any]) -> None:
    """Model, best-so-far weights and optimizer state as safetensors; the rest as JSON.

    The JSON is written last: a state without its JSON is incomplete and is ignored.
    """
    tensors = {f"model/{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"best/{k}": v.detach().cpu().contiguous() for k, v in best.items()})
    optim = optimizer.state_dict()
    for index, values in optim["state"].items():
        for key, value in values.items():
            tensors[f"optim/{index}/{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    document = {**meta, "param_groups": optim["param_groups"]}
    json_path = path.with_suffix(".json")
    if json_path.exists():
        json_path.unlink()  # the pair is inconsistent until both are written again
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps(document, indent=1))


def load_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
               fingerprint: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
    """Restore a phase saved by ``save_state`` with the same settings; None if there is none."""
    json_path = path.with_suffix(".json")
    if not (path.exists() and json_path.exists()):
        return None
    meta = json.loads(json_path.read_text())
    if meta.get("fingerprint") != fingerprint:
        log.info("ignoring %s: saved with other settings", path)
        return None
    tensors = load_file(str(path))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")})
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best/")}
    state: dict[int, dict[str, torch.Tensor]] = defaultdict(dict)
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, index, name = key.split("/", 2)
            state[int(index)][name] = value
    optimizer.load_state_dict({"state": dict(state), "param_groups": meta["param_groups"]})
    return meta, best


def _write_log(path: Path, history: list[dict[str, float]]) -> None:
    columns = list(dict.fromkeys(k for row in history for k in row))
    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)


def run_phase(phase: Phase, settings: TrainingConfig, device: torch.device, state_dir: Path,
              log_dir: Path, fingerprint: str) -> list[dict[str, float]]:
    """Train ``phase`` for up to ``phase.epochs`` epochs with early stopping on validation loss.

    Saves state after every epoch and resumes from it; logs a CSV row per epoch to
    ``log_dir/<name>_log.csv``. Leaves the best weights in ``phase.model``; returns the
    per-epoch history.
    """
    model = phase.model.to(device)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=phase.lr,
        weight_decay=settings.weight_decay)
    state_path = state_dir / f"{phase.name}.safetensors"
    history: list[dict[str, float]] = []
    best = copy.deepcopy(model.state_dict())
    best_loss, stale, start = math.inf, 0, 0
    resumed = load_state(state_path, model, optimizer, fingerprint)
    if resumed is not None:
        meta, best = resumed
        history, best_loss, stale, start = (meta["history"], meta["best_loss"], meta["stale"],
                                            meta["epoch"])
        log.info("%s: resuming after epoch %d", phase.name, start)
    steps_per_epoch = max(len(phase.loader), 1)
    total_steps = phase.epochs * steps_per_epoch
    for epoch in range(start, phase.epochs):
        if stale >= settings.patience:
            break
        torch.manual_seed(_phase_seed(settings.seed, phase.name, epoch))
        if phase.loader.generator is not None:
            phase.loader.generator.manual_seed(_phase_seed(settings.seed, phase.name, -epoch))
        model.train()
        sums: dict[str, float] = defaultdict(float)
        # shown in log files too: floodkd --log turns each update into a line of its own
        batches = tqdm(phase.loader, desc=f"{phase.name} {epoch + 1}/{phase.epochs}",
                       leave=False)
        for i, batch in enumerate(batches):
            if phase.augment:
                batch = augment_batch(batch)
            batch = to_device(batch, device)
            with autocast(device):
                loss, parts = phase.step(batch, epoch * steps_per_epoch + i, total_steps)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            for key, value in parts.items():
                sums[key] += value
        row = {"epoch": epoch + 1, **{f"train_{k}": v / steps_per_epoch for k, v in sums.items()}}
        model.eval()
        with torch.no_grad():
            row.update(phase.validate())
        monitored = row.get("val_loss", row.get("train_total", math.inf))
        if monitored < best_loss:
            best_loss, stale = monitored, 0
            best = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        history.append(row)
        log.info("%s epoch %d/%d: %s", phase.name, epoch + 1, phase.epochs,
                 ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"))
        save_state(state_path, model, best, optimizer,
                   {"fingerprint": fingerprint, "epoch": epoch + 1, "history": history,
                    "best_loss": best_loss, "stale": stale})
        _write_log(log_dir / f"{phase.name}_log.csv", history)
    model.load_state_dict(best)
    model.eval()
    return history


class BudgetSampler(Sampler[int]):
    """Epochs of at most ``budget`` indices (0: all) that walk on through one shuffled order
    and reshuffle when it runs out: a long record costs no more per epoch, and every sample
    is seen once in each ceil(n / budget) epochs."""

    def __init__(self, n: int, budget: int, seed: int):
        self.n, self.budget = n, min(budget, n) if budget else n
        self.generator = torch.Generator().manual_seed(seed)
        self.order: list[int] = []

    def __len__(self) -> int:
        return self.budget

    def __iter__(self):
        epoch = []
        while len(epoch) < self.budget:
            if not self.order:
                self.order = torch.randperm(self.n, generator=self.generator).tolist()
            epoch.append(self.order.pop())
        return iter(epoch)


def make_loader(dataset: Dataset, settings: TrainingConfig, shuffle: bool) -> DataLoader:
    """Batches of ``dataset``: in order, or shuffled in epochs of at most
    ``settings.samples_per_epoch`` samples (``BudgetSampler``)."""
    sampler = BudgetSampler(len(dataset), settings.samples_per_epoch, settings.seed) \
        if shuffle else None
    return DataLoader(dataset, batch_size=settings.batch_size, sampler=sampler,
                      num_workers=settings.num_workers, collate_fn=collate)


def settings_fingerprint(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def class_weights_from_counts(counts: np.ndarray) -> torch.Tensor:
    """Inverse square-root frequency weights (dry, water), mean 1: a rare class is not
    ignored, yet a 95/5 imbalance does not make the common class nearly free to get wrong."""
    totals = np.asarray(counts, dtype=np.float64).reshape(-1, 2).sum(0)
    if (totals == 0).any():
        return torch.ones(2)
    weights = 1.0 / np.sqrt(totals)
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def sample_counts(counts: np.ndarray, samples: list[tuple[int, int]]) -> np.ndarray:
    return np.array([counts[tile, t] for tile, t in samples]).reshape(-1, 2)


def iso_times(times: np.ndarray) -> list[str]:
    """ISO 8601 UTC times to the second, as stored in the JSON outputs."""
    return [str(t) for t in np.datetime_as_string(np.asarray(times, "datetime64[s]"), unit="s")]
