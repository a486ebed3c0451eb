"""The radar teacher's training on the labelled radar passes of the source regions."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader

from floodkd.atomic import remove_outputs
from floodkd.distill.data import (
    TERRAIN_VARIABLES,
    CubeTileDataset,
    holdout_mask,
    label_class_counts,
    open_region,
    padded_size,
    time_window_days,
)
from floodkd.distill.loop import (
    STATE_DIR,
    Phase,
    autocast,
    class_weights_from_counts,
    make_loader,
    pick_device,
    run_phase,
    sample_counts,
    seed_everything,
    settings_fingerprint,
    to_device,
)
from floodkd.distill.losses import task_loss
from floodkd.distill.radiometry import randomise_radiometry
from floodkd.distill.samples import teacher_samples
from floodkd.distill.settings import TrainingConfig, model_settings, training_settings
from floodkd.errors import InputError
from floodkd.evaluate.baselines import otsu_threshold_db
from floodkd.evaluate.metrics import binary_scores
from floodkd.models.channels import NORMALISATION
from floodkd.models.checkpoint import save_checkpoint
from floodkd.models.teacher import RadarTeacher, RadarViT

__all__ = ["train_teacher"]

log = logging.getLogger(__name__)


def _teacher_scores(teacher: nn.Module, loader: DataLoader, device: torch.device,
                    class_weights: torch.Tensor) -> dict[str, float]:
    """Validation loss and water IoU/F1 of the teacher over the loader's labelled pixels,
    and the IoU of an Otsu threshold on VV (per time, over the same pixels) to compare."""
    losses, preds, truths = [], [], []
    vv_by_time: dict[int, list[np.ndarray]] = defaultdict(list)
    truth_by_time: dict[int, list[np.ndarray]] = defaultdict(list)
    vv_offset, vv_scale = NORMALISATION["vv_db"]
    for batch in loader:
        batch = to_device(batch, device)
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


def _train_member(member: RadarViT, settings: TrainingConfig, train_set, val_loader: DataLoader,
                   class_weights: torch.Tensor, device: torch.device, state_dir: Path,
                   log_dir: Path, fingerprint: str) -> list[dict[str, float]]:
    """Train one ViT of the teacher with early stopping on the validation loss (its best
    weights stay in ``member``); returns the per-epoch history."""

    def step(batch, _step, _total):
        image = batch["teacher_image"]
        if settings.radiometric_randomisation:  # learn the physics, not the source's levels
            image = randomise_radiometry(image, batch["label"], batch["radar_valid"],
                                         batch["land_level_db"])
        logits, _ = member(image)
        loss = task_loss(logits.float(), batch["label"], class_weights.to(device))
        return loss, {"total": loss.item()}

    phase = Phase("teacher", member, make_loader(train_set, settings, shuffle=True), step,
                  lambda: _teacher_scores(member, val_loader, device, class_weights),
                  settings.teacher_epochs, settings.teacher_lr, settings.augment)
    return run_phase(phase, settings, device, state_dir, log_dir, fingerprint)


def train_teacher(config: dict[str, Any], out_dir: str | Path,
                  train_before: np.datetime64 | None = None) -> dict[str, Any]:
    """Train the radar teacher on the labelled radar passes of all ``source`` regions.

    Only passes before ``train_before`` (the earliest held-out start of the target regions,
    ``floodkd holdout``) count, for training and validation alike, so the teacher never
    sees the period a student is judged on.

    Writes ``out_dir/teacher.safetensors`` + ``teacher.json`` (model config, training
    settings, metrics, source regions) and each member's ``member-<k>/teacher_log.csv``.
    Returns the metrics.
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
    first = RadarViT(models.teacher, models.teacher_pretrained_dir)
    size = padded_size([r.tiles for r in regions], first.config.patch_size)
    train_sets, val_sets, train_counts = [], [], []
    window_days = time_window_days(config)
    for region in regions:
        counts = label_class_counts(region.cube, region.tiles)
        radar = region.cube["radar_present"].values.astype(bool)
        if train_before is not None:
            radar &= region.cube["time"].values < np.datetime64(train_before, "ns")
        held = holdout_mask(region.cube["time"].values, radar, settings.holdout_fraction,
                            window_days)
        train_pairs, val_pairs = teacher_samples(region.tiles, radar, counts.sum(-1), held)
        for samples, sets in ((train_pairs, train_sets), (val_pairs, val_sets)):
            sets.append(CubeTileDataset(region.cube_path, region.tiles, samples, size,
                                        settings.sample_cache_mb, student=False))
        train_counts.append(sample_counts(counts, train_pairs))
    train_set, val_set = ConcatDataset(train_sets), ConcatDataset(val_sets)
    if len(train_set) == 0 and train_before is not None:
        raise InputError(regions[0].cube_path, "no labelled radar pass of the source regions "
                         f"{sources} before {train_before}, where the target regions' held-out "
                         "periods start", "add earlier labelled source passes, or lower "
                         "training.holdout_fraction so the targets hold out less")
    if len(train_set) == 0:
        raise InputError(regions[0].cube_path, "no labelled radar pass on any train tile of "
                         f"the source regions {sources}",
                         "add labels for the source region's radar passes and rerun align")
    class_weights = class_weights_from_counts(np.concatenate(train_counts))
    log.info("teacher: %d train and %d val samples from %s on %s", len(train_set), len(val_set),
             sources, device)
    val_loader = make_loader(val_set, settings, shuffle=False)
    trained_before = None if train_before is None else str(np.datetime64(train_before, "s"))
    fingerprint = settings_fingerprint(asdict(settings), asdict(models), sources, len(train_set),
                                       trained_before)
    members, histories = [], []
    for k in range(settings.teacher_members):
        # member k is the one-ViT teacher of seed + k: its own weights, tiles and dropout
        member_settings = replace(settings, seed=settings.seed + k)
        if k:
            seed_everything(member_settings.seed)
        member = first if k == 0 else RadarViT(models.teacher, models.teacher_pretrained_dir)
        histories.append(_train_member(member, member_settings, train_set, val_loader,
                                       class_weights, device, out_dir / STATE_DIR / f"member-{k}",
                                       out_dir / f"member-{k}", fingerprint))
        members.append(member)
    teacher = RadarTeacher(models.teacher, members=members)
    with torch.no_grad():
        final = _teacher_scores(teacher, val_loader, device, class_weights)
    metrics = {"val": final, "epochs_run": [len(h) for h in histories],
               "train_samples": len(train_set),
               "val_samples": len(val_set), "class_weights": class_weights.tolist()}
    meta = {"training": asdict(settings), "source_regions": sources,
            "trained_before": trained_before, "metrics": metrics,
            "history": histories, "device": str(device), "tile_size_px": list(size)}
    save_checkpoint(teacher.cpu(), out_dir / "teacher.safetensors", meta)
    for k in range(len(members)):  # kept until every member is trained, for a resume
        remove_outputs(out_dir / STATE_DIR / f"member-{k}")
    remove_outputs(out_dir / STATE_DIR)
    return metrics
