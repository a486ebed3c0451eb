"""Training: the radar teacher on source regions, then the student ensemble on a target region.

Read top to bottom: settings, device and seeds, resumable epochs (``run_phase``), the teacher
(``train_teacher``), and the student (``distill_region``): per ensemble member distillation
from the teacher on the source regions' radar passes (train/val tiles, before the target's
held-out period: storms the target's own passes lack), then on the target's passes (with
the source passes replayed), EWC fine-tuning on local labels, then a labels-only reference
model and temperature calibration on the validation tiles.

Every phase saves model + optimizer state after each epoch (safetensors + JSON, under
``<out>/checkpoints/``) and resumes from it when rerun with the same settings; the folder is
removed once the stage has written its outputs.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import logging
import math
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset
from tqdm import tqdm

from floodkd.atomic import atomic_path
from floodkd.config import region_config
from floodkd.distill.calibration import expected_calibration_error, fit_temperature
from floodkd.distill.data import (
    TERRAIN_VARIABLES,
    CubeTileDataset,
    RegionData,
    augment_batch,
    calibration_holdout,
    collate,
    holdout_mask,
    label_class_counts,
    labelled_pixels,
    open_region,
    padded_size,
    select_samples,
)
from floodkd.distill.ewc import EWC, fisher_diagonal
from floodkd.distill.losses import (
    IGNORE_LABEL,
    DistillWeights,
    distillation_loss,
    task_loss,
    temperature_at,
)
from floodkd.errors import InputError
from floodkd.evaluate.baselines import otsu_threshold_db
from floodkd.evaluate.metrics import binary_scores
from floodkd.models.channels import NORMALISATION
from floodkd.models.checkpoint import load_checkpoint, save_checkpoint
from floodkd.models.student import FloodStudent, Projection, StudentConfig
from floodkd.models.teacher import RadarTeacher, TeacherConfig
from floodkd.settings import Settings, settings_from_config

__all__ = [
    "TrainingConfig",
    "ModelSettings",
    "training_settings",
    "model_settings",
    "pick_device",
    "seed_everything",
    "run_phase",
    "train_teacher",
    "teacher_samples",
    "distill_region",
    "source_samples",
    "STUDENT_FILE",
    "iso_times",
]

log = logging.getLogger(__name__)

STUDENT_FILE = "student.json"
STATE_DIR = "checkpoints"
MIN_CALIBRATION_PIXELS = 50  # of each class, to fit a temperature at all


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
    ewc_weight: float = 100.0
    kd_weight: float = 0.5
    feature_weight: float = 0.3
    task_weight: float = 0.2
    t_start: float = 5.0
    t_end: float = 1.0
    holdout_fraction: float = 0.25  # last share of the target's radar passes kept for evaluation
    calibration_fraction: float = 0.3  # share of the target's usable labels kept to calibrate
    calibration_block_px: int = 16  # side of the spatial blocks that share is drawn in
    fisher_batches: int = 16
    seed: int = 0
    num_workers: int = 0
    sample_cache_mb: float = 512.0  # keep a region's samples in memory when they fit
    augment: bool = True  # random flips/rotations of training tiles
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


def _to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
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
        batches = tqdm(phase.loader, desc=f"{phase.name} {epoch + 1}/{phase.epochs}",
                       leave=False, disable=None)
        for i, batch in enumerate(batches):
            if phase.augment:
                batch = augment_batch(batch)
            batch = _to_device(batch, device)
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
        log.info("%s", ", ".join(f"{k}={v:.4g}" for k, v in row.items()))
        save_state(state_path, model, best, optimizer,
                   {"fingerprint": fingerprint, "epoch": epoch + 1, "history": history,
                    "best_loss": best_loss, "stale": stale})
        _write_log(log_dir / f"{phase.name}_log.csv", history)
    model.load_state_dict(best)
    model.eval()
    return history


def _loader(dataset: Dataset, settings: TrainingConfig, shuffle: bool) -> DataLoader:
    generator = torch.Generator().manual_seed(settings.seed) if shuffle else None
    return DataLoader(dataset, batch_size=settings.batch_size, shuffle=shuffle,
                      generator=generator, num_workers=settings.num_workers, collate_fn=collate)


def _fingerprint(*parts: Any) -> str:
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


def _sample_counts(counts: np.ndarray, samples: list[tuple[int, int]]) -> np.ndarray:
    return np.array([counts[tile, t] for tile, t in samples]).reshape(-1, 2)


# ---------------------------------------------------------------- teacher


def _teacher_scores(teacher: nn.Module, loader: DataLoader, device: torch.device,
                    class_weights: torch.Tensor) -> dict[str, float]:
    """Validation loss and water IoU/F1 of the teacher over the loader's labelled pixels,
    and the IoU of an Otsu threshold on VV (per time, over the same pixels) to compare."""
    losses, preds, truths = [], [], []
    vv_by_time: dict[int, list[np.ndarray]] = defaultdict(list)
    truth_by_time: dict[int, list[np.ndarray]] = defaultdict(list)
    vv_offset, vv_scale = NORMALISATION["vv_db"]
    for batch in loader:
        batch = _to_device(batch, device)
        with autocast(device):
            logits, _ = teacher(batch["teacher_image"])
        losses.append(float(task_loss(logits.float(), batch["label"], class_weights.to(device))))
        labelled = batch["label"] != 255
        preds.append((logits.argmax(1) == 1)[labelled].cpu().numpy())
        truths.append((batch["label"] == 1)[labelled].cpu().numpy())
        scored = (labelled & batch["radar_valid"]).cpu().numpy()
        vv_db = batch["teacher_image"][:, 0].float().cpu().numpy() * vv_scale + vv_offset
        for i, t in enumerate(batch["time_index"].tolist()):
            vv_by_time[t].append(vv_db[i][scored[i]])
            truth_by_time[t].append((batch["label"][i] == 1).cpu().numpy()[scored[i]])
    if not losses:
        return {}
    pred, truth = np.concatenate(preds), np.concatenate(truths)
    scores = binary_scores(pred, truth, np.ones_like(pred))
    otsu_pred, otsu_truth = [], []
    for t, parts in vv_by_time.items():
        vv = np.concatenate(parts)
        if vv.size and np.ptp(vv) > 0:
            otsu_pred.append(vv < otsu_threshold_db(vv))
            otsu_truth.append(np.concatenate(truth_by_time[t]))
    otsu = (binary_scores(np.concatenate(otsu_pred), np.concatenate(otsu_truth),
                          np.ones(sum(p.size for p in otsu_pred), bool))["iou"]
            if otsu_pred else float("nan"))
    return {"val_loss": float(np.mean(losses)), "val_iou": scores["iou"], "val_f1": scores["f1"],
            "val_otsu_iou": otsu}


def teacher_samples(tiles, radar: np.ndarray, labelled_pixels: np.ndarray, held: np.ndarray
                    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Labelled radar (tile, time) pairs of a source region for the teacher: (train, val).

    The train and val tiles are split in time: train = both at the passes before the
    held-out ones, val = both at the held-out (last) passes. Why not the spatial split alone:
    blocks of a small region can split it by land cover (on the demo coast all train tiles
    are sea and all val tiles land), so a teacher trained on train tiles never sees dry land
    and its validation measures that gap, not radar skill. A source region only trains the
    teacher; its test tiles are never used. With no held-out pass, the spatial split is kept.
    """
    radar, held = np.asarray(radar, bool), np.asarray(held, bool)
    if not held[radar].any() or not (radar & ~held).any():
        return (select_samples(tiles, ["train"], radar, labelled_pixels, "labels"),
                select_samples(tiles, ["val"], radar, labelled_pixels, "labels"))
    both = ["train", "val"]
    return (select_samples(tiles, both, radar & ~held, labelled_pixels, "labels"),
            select_samples(tiles, both, radar & held, labelled_pixels, "labels"))


def train_teacher(config: dict[str, Any], out_dir: str | Path) -> dict[str, Any]:
    """Train the radar teacher on the labelled radar passes of all ``source`` regions.

    Writes ``out_dir/teacher.safetensors`` + ``teacher.json`` (model config, training
    settings, metrics, source regions) and ``teacher_log.csv``. Returns the metrics.
    """
    out_dir = Path(out_dir)
    settings, models = training_settings(config), model_settings(config)
    sources = [name for name, r in config["regions"].items() if r["role"] == "source"]
    if not sources:
        raise InputError("config", "no region has role 'source'",
                         "mark the data-rich region(s) with labels as role: source")
    device = pick_device(settings.device)
    seed_everything(settings.seed)
    regions = [open_region(config.get("results_dir", "results"), name,
                           ["vv_db", "vh_db", "radar_present", "label", *TERRAIN_VARIABLES])
               for name in sources]
    teacher = RadarTeacher(models.teacher, models.teacher_pretrained_dir)
    size = padded_size([r.tiles for r in regions], teacher.config.patch_size)
    train_sets, val_sets, train_counts = [], [], []
    window_days = float(config.get("align", {}).get("time_window_days", 3))
    for region in regions:
        counts = label_class_counts(region.cube, region.tiles)
        radar = region.cube["radar_present"].values.astype(bool)
        held = holdout_mask(region.cube["time"].values, radar, settings.holdout_fraction,
                            window_days)
        train_pairs, val_pairs = teacher_samples(region.tiles, radar, counts.sum(-1), held)
        for samples, sets in ((train_pairs, train_sets), (val_pairs, val_sets)):
            sets.append(CubeTileDataset(region.cube_path, region.tiles, samples, size,
                                        settings.sample_cache_mb))
        train_counts.append(_sample_counts(counts, train_pairs))
    train_set, val_set = ConcatDataset(train_sets), ConcatDataset(val_sets)
    if len(train_set) == 0:
        raise InputError(regions[0].cube_path, "no labelled radar pass on any train tile of "
                         f"the source regions {sources}",
                         "add labels for the source region's radar passes and rerun align")
    class_weights = class_weights_from_counts(np.concatenate(train_counts))
    log.info("teacher: %d train and %d val samples from %s on %s", len(train_set), len(val_set),
             sources, device)
    val_loader = _loader(val_set, settings, shuffle=False)

    def step(batch, _step, _total):
        logits, _ = teacher(batch["teacher_image"])
        loss = task_loss(logits.float(), batch["label"], class_weights.to(device))
        return loss, {"total": loss.item()}

    phase = Phase("teacher", teacher, _loader(train_set, settings, shuffle=True), step,
                  lambda: _teacher_scores(teacher, val_loader, device, class_weights),
                  settings.teacher_epochs, settings.teacher_lr, settings.augment)
    fingerprint = _fingerprint(asdict(settings), asdict(models), sources, len(train_set))
    history = run_phase(phase, settings, device, out_dir / STATE_DIR, out_dir, fingerprint)
    with torch.no_grad():
        final = _teacher_scores(teacher, val_loader, device, class_weights)
    metrics = {"val": final, "epochs_run": len(history), "train_samples": len(train_set),
               "val_samples": len(val_set), "class_weights": class_weights.tolist()}
    meta = {"training": asdict(settings), "source_regions": sources, "metrics": metrics,
            "history": history, "device": str(device), "tile_size_px": list(size)}
    save_checkpoint(teacher.cpu(), out_dir / "teacher.safetensors", meta)
    shutil.rmtree(out_dir / STATE_DIR, ignore_errors=True)
    return metrics


# ---------------------------------------------------------------- student


@dataclass
class TargetSamples:
    """The target region's sample lists, held-out times excluded from all of them."""

    distill_train: list[tuple[int, int]]
    distill_val: list[tuple[int, int]]
    labelled_train: list[tuple[int, int]]
    labelled_val: list[tuple[int, int]]
    class_weights: torch.Tensor
    distill_label_tiles: list[int] | None = None  # tiles whose labels distillation may use
    calibration: list[tuple[int, int]] | None = None  # pairs holding calibration pixels
    calibration_pixels: np.ndarray | None = None  # (y, x) bool: labels kept to calibrate on


def target_samples(region: RegionData, held_out: np.ndarray, calibration_fraction: float = 0.0,
                   block_px: int = 16, seed: int = 0) -> TargetSamples:
    """Distillation pairs (radar passes of train and val tiles) and labelled pairs (any time;
    train tiles to learn from, val tiles to validate on), plus the calibration pairs.

    Distillation needs no labels, so the val tiles' radar passes (outside the held-out times)
    join it: spatial blocks of a small region can leave the train tiles nearly all sea, and a
    student distilled there alone never sees the teacher's view of land. Their labels stay
    hidden from training (``distill_label_tiles``); test tiles are never used.

    Calibration: ``calibration_fraction`` of the labelled pixels of the train and val tiles
    at usable times, in spatial blocks (``calibration_holdout``), is hidden from every
    training and validation set and kept to fit the temperature on; a validation split
    alone can hold one class only (on the demo target its labels are all held-out times).
    """
    usable = ~held_out
    pool = region.tiles[region.tiles["split"].isin(["train", "val"])]
    calibration_pixels = calibration_holdout(
        labelled_pixels(region.cube, pool, usable), calibration_fraction, block_px, seed)
    counts = label_class_counts(region.cube, region.tiles, ~calibration_pixels)
    calibration_counts = label_class_counts(region.cube, region.tiles, calibration_pixels)
    labelled = counts.sum(-1)
    radar = region.cube["radar_present"].values.astype(bool) & ~held_out
    labelled_train = select_samples(region.tiles, ["train"], usable, labelled, "labels")
    return TargetSamples(
        distill_train=select_samples(region.tiles, ["train", "val"], radar, labelled, "any"),
        distill_val=select_samples(region.tiles, ["val"], radar, labelled, "any"),
        labelled_train=labelled_train,
        labelled_val=select_samples(region.tiles, ["val"], usable, labelled, "labels"),
        class_weights=class_weights_from_counts(_sample_counts(counts, labelled_train)),
        distill_label_tiles=[int(p) for p in
                             np.flatnonzero(region.tiles["split"].to_numpy() == "train")],
        calibration=select_samples(region.tiles, ["train", "val"], usable,
                                   calibration_counts.sum(-1), "labels"),
        calibration_pixels=calibration_pixels,
    )


def source_samples(tiles, radar: np.ndarray, times: np.ndarray,
                   before: np.datetime64 | None) -> list[tuple[int, int]]:
    """Radar (tile, time) pairs of a source region for the student's source phase.

    Train and val tiles only (a source region's test tiles are never used), at radar passes
    strictly before ``before`` (the start of the target's held-out period, less the radar
    window), so nothing from the time the target is evaluated on reaches the student.
    """
    time_ok = np.asarray(radar, bool).copy()
    if before is not None:
        time_ok &= np.asarray(times, dtype="datetime64[ns]") < np.datetime64(before, "ns")
    return select_samples(tiles, ["train", "val"], time_ok)


def held_out_start(times: np.ndarray, held_out: np.ndarray,
                   window_days: float) -> np.datetime64 | None:
    """The first held-out time of the target less the radar window; None if none is held."""
    held = np.asarray(times, dtype="datetime64[ns]")[np.asarray(held_out, bool)]
    if held.size == 0:
        return None
    return held.min() - np.timedelta64(int(window_days * 86400), "s")


@dataclass
class SourceData:
    """The source regions' part of distillation: one dataset, its class weights, a record."""

    dataset: Dataset
    class_weights: torch.Tensor
    record: dict[str, Any]


def open_sources(config: dict[str, Any], target: str) -> list[RegionData]:
    """The cubes and tiles of every ``source`` region other than ``target``."""
    return [open_region(config.get("results_dir", "results"), name,
                        ["vv_db", "vh_db", "radar_present", "label", *TERRAIN_VARIABLES])
            for name, r in config["regions"].items() if r["role"] == "source" and name != target]


def source_data(regions: list[RegionData], held_out_start_time: np.datetime64 | None,
                size: tuple[int, int], cache_mb: float) -> SourceData | None:
    """One dataset over the source regions' train/val radar passes (see ``source_samples``);
    None when there is no such pass. Labels of those tiles stay visible: the teacher was
    trained on them already, and they anchor the task loss at storm water levels."""
    sets, counts, record = [], [], {}
    for region in regions:
        name = region.name
        radar = region.cube["radar_present"].values.astype(bool)
        times = region.cube["time"].values
        pairs = source_samples(region.tiles, radar, times, held_out_start_time)
        if not pairs:
            continue
        counts.append(_sample_counts(label_class_counts(region.cube, region.tiles), pairs))
        sets.append(CubeTileDataset(region.cube_path, region.tiles, pairs, size, cache_mb))
        used_times = sorted({t for _, t in pairs})
        record[name] = {"samples": len(pairs),
                        "tiles": sorted({str(region.tiles["tile_id"].iloc[p]) for p, _ in pairs}),
                        "times": iso_times(times[used_times])}
    if not sets:
        return None
    return SourceData(ConcatDataset(sets), class_weights_from_counts(np.concatenate(counts)),
                      record)


def _student_forward(student: FloodStudent, batch: dict[str, torch.Tensor]):
    return student(batch["student_image"], batch["presence"], batch["gauge_history"])


def _kd_mask(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return batch["valid"] & batch["radar_valid"] & (batch["radar_present"][:, None, None] > 0)


def _mean_loss(loader: DataLoader, device: torch.device,
               loss_fn: Callable[[dict[str, torch.Tensor]], torch.Tensor]) -> dict[str, float]:
    losses = []
    for batch in loader:
        batch = _to_device(batch, device)
        with autocast(device):
            losses.append(float(loss_fn(batch)))
    return {"val_loss": float(np.mean(losses))} if losses else {}


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
    region = open_region(config.get("results_dir", "results"), region_name,
                         ["vv_db", "vh_db", "radar_present", "label", *TERRAIN_VARIABLES])
    teacher, teacher_meta = load_checkpoint(RadarTeacher, teacher_path)
    teacher.to(device).eval().requires_grad_(False)
    times = region.cube["time"].values
    radar = region.cube["radar_present"].values.astype(bool)
    window_days = float(config.get("align", {}).get("time_window_days", 3))
    held_out = holdout_mask(times, radar, settings.holdout_fraction, window_days)
    samples = target_samples(region, held_out, settings.calibration_fraction,
                             settings.calibration_block_px, settings.seed)
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

    training_pixels = ~samples.calibration_pixels

    def dataset(pairs, label_tiles=None, label_pixels=training_pixels):
        return CubeTileDataset(region.cube_path, region.tiles, pairs, size,
                               settings.sample_cache_mb, label_tiles, label_pixels=label_pixels)

    loaders = {
        "distill": _loader(dataset(samples.distill_train, samples.distill_label_tiles),
                           settings, shuffle=True),
        "distill_val": _loader(dataset(samples.distill_val), settings, shuffle=False),
        "labelled": _loader(dataset(samples.labelled_train), settings, shuffle=True),
        "labelled_val": _loader(dataset(samples.labelled_val), settings, shuffle=False),
        "fisher": _loader(dataset(samples.distill_train), settings, shuffle=False),
        "calibration": _loader(
            dataset(samples.calibration, label_pixels=samples.calibration_pixels),
            settings, shuffle=False),
    }
    if sources is not None:
        loaders["source"] = _loader(sources.dataset, settings, shuffle=True)
        if settings.source_replay:
            # the source passes stay in the target phase, so storms are not forgotten there
            loaders["distill"] = _loader(ConcatDataset([loaders["distill"].dataset,
                                                        sources.dataset]), settings, shuffle=True)
    class_weights = samples.class_weights.to(device)
    source_weights = sources.class_weights.to(device) if sources is not None else None
    weights = DistillWeights(settings.kd_weight, settings.feature_weight, settings.task_weight)
    fingerprint = _fingerprint(asdict(settings), asdict(models), teacher_meta.get("history"),
                               region_name, samples.distill_train, samples.labelled_train,
                               sources.record if sources is not None else None)
    state_dir = out_dir / STATE_DIR
    log.info("distil %s on %s: %d radar and %d labelled train samples; held out %d of %d times",
             region_name, device, len(samples.distill_train), len(samples.labelled_train),
             int(held_out.sum()), times.size)

    def teacher_outputs(batch):
        with torch.no_grad():
            logits, features = teacher(batch["teacher_image"])
        return logits.float(), features.float()

    def distill_loss(student, projection, batch, temperature, label_weights=class_weights):
        t_logits, t_features = teacher_outputs(batch)
        logits, features = _student_forward(student, batch)
        return distillation_loss(logits.float(), t_logits, projection(features).float(),
                                 t_features, batch["label"], temperature, weights,
                                 label_weights, _kd_mask(batch))

    def labels_loss(student, batch):
        logits, _ = _student_forward(student, batch)
        return task_loss(logits.float(), batch["label"], class_weights)

    history: dict[str, Any] = {}
    files: dict[str, list[str]] = {"distilled": [], "no_ewc": [], "labels_only": []}
    members = []
    for k in range(settings.ensemble_members):
        seed = settings.seed + k
        seed_everything(seed)
        student = FloodStudent(models.student)
        projection = Projection(models.student.feature_channels, teacher.config.hidden_size)
        pair = nn.ModuleDict({"student": student, "projection": projection})

        def distill_step(batch, step, total, student=student, projection=projection):
            temperature = temperature_at(step, total, settings.t_start, settings.t_end)
            return distill_loss(student, projection, batch, temperature)

        def distill_val(student=student):
            # the labelled val pixels: the val tiles' radar is distilled on, their labels not
            return _mean_loss(loaders["labelled_val"], device, lambda b: labels_loss(student, b))

        member_settings = _with_seed(settings, seed)
        if sources is not None:
            # first the source regions' passes (storms included), so the student learns how
            # water spreads with level, terrain and gauges before it adapts to the target
            def source_step(batch, step, total, student=student, projection=projection):
                temperature = temperature_at(step, total, settings.t_start, settings.t_end)
                return distill_loss(student, projection, batch, temperature, source_weights)

            history[f"source-{k}"] = run_phase(
                Phase(f"source-{k}", pair, loaders["source"], source_step, distill_val,
                      settings.source_epochs, settings.student_lr, settings.augment),
                member_settings, device, state_dir, out_dir, fingerprint)
        history[f"distill-{k}"] = run_phase(
            Phase(f"distill-{k}", pair, loaders["distill"], distill_step, distill_val,
                  settings.distill_epochs, settings.student_lr, settings.augment),
            member_settings, device, state_dir, out_dir, fingerprint)
        files["no_ewc"].append(f"no_ewc-{k}.safetensors")
        save_checkpoint(student.cpu(), out_dir / files["no_ewc"][-1],
                        {"variant": "no_ewc", "member": k, "seed": seed})
        student.to(device)

        # EWC: the Fisher of the distilled task, after distillation: the NLL of the teacher's
        # hard labels. (The KL itself is flat at its optimum and gives a near-zero Fisher.)
        def fisher_loss(model, batch):
            batch = _to_device(batch, device)
            t_logits, _ = teacher_outputs(batch)
            targets = torch.where(_kd_mask(batch), t_logits.argmax(1), IGNORE_LABEL)
            logits, _ = _student_forward(model, batch)
            return task_loss(logits.float(), targets)

        fisher_batches = _take(loaders["fisher"], settings.fisher_batches)
        ewc = EWC(student, fisher_diagonal(student, fisher_batches, fisher_loss),
                  settings.ewc_weight)

        def finetune_step(batch, _step, _total, student=student, ewc=ewc):
            task = labels_loss(student, batch)
            penalty = ewc.penalty(student)
            total = task + penalty
            return total, {"task": task.item(), "ewc": penalty.item(), "total": total.item()}

        def finetune_val(student=student):
            return _mean_loss(loaders["labelled_val"], device, lambda b: labels_loss(student, b))

        history[f"finetune-{k}"] = run_phase(
            Phase(f"finetune-{k}", student, loaders["labelled"], finetune_step, finetune_val,
                  settings.finetune_epochs, settings.student_lr, settings.augment),
            member_settings, device, state_dir, out_dir, fingerprint)
        files["distilled"].append(f"member-{k}.safetensors")
        save_checkpoint(student.cpu(), out_dir / files["distilled"][-1],
                        {"variant": "distilled", "member": k, "seed": seed})
        members.append(student.to(device))

    # the reference: same architecture and epoch budget, sparse labels only
    seed_everything(settings.seed)
    labels_only = FloodStudent(models.student)

    def labels_only_step(batch, _step, _total):
        loss = labels_loss(labels_only, batch)
        return loss, {"total": loss.item()}

    history["labels_only"] = run_phase(
        Phase("labels_only", labels_only, loaders["labelled"], labels_only_step,
              lambda: _mean_loss(loaders["labelled_val"], device,
                                 lambda b: labels_loss(labels_only, b)),
              settings.distill_epochs + settings.finetune_epochs, settings.student_lr,
              settings.augment),
        settings, device, state_dir, out_dir, fingerprint)
    files["labels_only"].append("labels_only.safetensors")
    save_checkpoint(labels_only.cpu(), out_dir / "labels_only.safetensors",
                    {"variant": "labels_only", "seed": settings.seed})

    calibration = calibrate(members, loaders["calibration"], device)
    calibration["holdout"] = {"fraction": settings.calibration_fraction,
                              "block_px": settings.calibration_block_px,
                              "labelled_pixels": int(samples.calibration_pixels.sum()),
                              "samples": len(samples.calibration)}
    document = {
        "region": region_name,
        "student_config": models.student.to_dict(),
        "teacher": {"path": str(teacher_path), "config": teacher.config.to_dict()},
        "training": asdict(settings),
        "files": files,
        "temperature": calibration["temperature"],
        "holdout_times": iso_times(times[held_out]),
        "training_times": iso_times(times[~held_out]),
        "tile_size_px": list(size),
        "source_distillation": (
            {"regions": sources.record, "samples": len(sources.dataset),
             "epochs": settings.source_epochs, "replayed_in_target_phase": settings.source_replay}
            if sources is not None
            else {"regions": {}, "samples": 0, "epochs": 0,
                  "note": "off (training.distill_on_sources)" if not settings.distill_on_sources
                  else "no source region with radar passes on train/val tiles"}),
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
    shutil.rmtree(state_dir, ignore_errors=True)
    return document


def iso_times(times: np.ndarray) -> list[str]:
    """ISO 8601 UTC times to the second, as stored in the JSON outputs."""
    return [str(t) for t in np.datetime_as_string(np.asarray(times, "datetime64[s]"), unit="s")]


def _with_seed(settings: TrainingConfig, seed: int) -> TrainingConfig:
    return TrainingConfig(**{**asdict(settings), "seed": seed})


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


# ---------------------------------------------------------------- calibration


def ensemble_logits(members: Iterable[FloodStudent], batch: dict[str, torch.Tensor],
                    mc_dropout: bool = False) -> torch.Tensor:
    """(members, B, 2, H, W) logits of each member for one batch (float32)."""
    outputs = []
    for member in members:
        logits, _ = member(batch["student_image"], batch["presence"], batch["gauge_history"],
                           mc_dropout=mc_dropout)
        outputs.append(logits.float())
    return torch.stack(outputs)


def _pixel_keys(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, H, W) int64: one key per (time, region row, region column) of each padded pixel."""
    _, height, width = batch["label"].shape
    rows = batch["window"][:, 0, None, None] + torch.arange(height, device=batch["label"].device
                                                             )[None, :, None]
    cols = batch["window"][:, 1, None, None] + torch.arange(width, device=batch["label"].device
                                                             )[None, None, :]
    span = 1 << 20  # larger than any region's rows or columns
    return (batch["time_index"][:, None, None] * span + rows) * span + cols


def calibrate(members: list[FloodStudent], loader: DataLoader,
              device: torch.device) -> dict[str, Any]:
    """Fit the temperature on held-out labelled pixels, for the members' mean of
    softmax(logits / T) that the maps use (dropout off here; the maps add MC draws).

    Overlapping tiles see a pixel more than once: when batches carry ``window`` and
    ``time_index`` each (time, pixel) counts once. With no labelled pixel, or fewer than
    ``MIN_CALIBRATION_PIXELS`` of a class, the temperature stays 1 and the reason is recorded.
    """
    logits_list, labels_list, keys_list = [], [], []
    with torch.no_grad():
        for batch in loader:
            batch = _to_device(batch, device)
            with autocast(device):
                member_logits = ensemble_logits(members, batch)  # (S, B, 2, H, W)
            labelled = (batch["label"] != 255) & batch["valid"]
            logits_list.append(member_logits.permute(0, 1, 3, 4, 2)[:, labelled].float().cpu())
            labels_list.append(batch["label"][labelled].cpu())
            if "window" in batch and "time_index" in batch:
                keys_list.append(_pixel_keys(batch)[labelled].cpu())
    if not logits_list or sum(len(x) for x in labels_list) == 0:
        return {"temperature": 1.0, "pixels": 0, "pixels_per_class": [0, 0],
                "note": "no held-out labelled pixel: temperature left at 1"}
    logits, labels = torch.cat(logits_list, dim=1), torch.cat(labels_list)
    if len(keys_list) == len(logits_list):
        _, first = np.unique(torch.cat(keys_list).numpy(), return_index=True)
        logits, labels = logits[:, first], labels[first]
    per_class = torch.bincount(labels.long(), minlength=2)[:2]
    if int(per_class.min()) < MIN_CALIBRATION_PIXELS:
        # one class only (e.g. 722 dry pixels on the demo target): the NLL falls as T -> 0
        # without bound, so a fit would only sharpen the map, never calibrate it
        probs = torch.softmax(logits, -1)[..., 1].mean(0).numpy()
        ece = expected_calibration_error(probs, labels.numpy())
        return {"temperature": 1.0, "pixels": int(labels.numel()),
                "pixels_per_class": per_class.tolist(), "ece_before": ece, "ece_after": ece,
                "note": f"fewer than {MIN_CALIBRATION_PIXELS} held-out labelled pixels of "
                        "a class: temperature left at 1"}
    temperature = fit_temperature(logits, labels)
    before = torch.softmax(logits, -1)[..., 1].mean(0).numpy()
    after = torch.softmax(logits / temperature, -1)[..., 1].mean(0).numpy()
    return {"temperature": temperature, "pixels": int(labels.numel()),
            "pixels_per_class": per_class.tolist(),
            "ece_before": expected_calibration_error(before, labels.numpy()),
            "ece_after": expected_calibration_error(after, labels.numpy())}
