"""Which (tile, time) pairs each training phase may use, held-out times excluded.

Pure selection over the tile index and the cube's flags: the teacher's pairs of a source
region, the target's distillation / labelled / calibration pairs, and the source regions'
pairs for the student's source phase.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from floodkd.distill.data import (
    RegionData,
    calibration_holdout,
    label_class_counts,
    labelled_pixels,
    select_samples,
    whole_blocks,
)
from floodkd.distill.loop import class_weights_from_counts, sample_counts

__all__ = ["teacher_samples", "TargetSamples", "target_samples", "tile_area",
           "calibration_pairs", "source_samples",
           "held_out_start"]


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
    calibration_pixels: np.ndarray | None = None  # (y, x) bool: hidden to calibrate on


def target_samples(region: RegionData, held_out: np.ndarray, calibration_fraction: float = 0.0,
                   block_px: int = 16, seed: int = 0, calibration_area_fraction: float = 0.0,
                   max_calibration_pairs: int = 0) -> TargetSamples:
    """Distillation pairs (radar passes of train and val tiles) and labelled pairs (any time;
    train tiles to learn from, val tiles to validate on), plus the calibration pairs.

    Distillation needs no labels, so the val tiles' radar passes (outside the held-out times)
    join it: spatial blocks of a small region can leave the train tiles nearly all sea, and a
    student distilled there alone never sees the teacher's view of land. Their labels stay
    hidden from training (``distill_label_tiles``); test tiles are never used.

    Calibration: ``calibration_fraction`` of the labelled pixels of the train and val tiles
    at usable times, and ``calibration_area_fraction`` of their unlabelled area, each in
    spatial blocks (``calibration_holdout``), are hidden from every training and validation
    set (labels and the teacher's targets alike) and kept to calibrate on: the labels where
    there are any, else the teacher's map of each usable radar pass. Labels of one past flood
    alone are a few hundred pixels of one day; the teacher's maps add every water level the
    record's passes saw. ``max_calibration_pairs`` (0: all) caps the calibration pairs by a
    seeded random choice, so its cost does not grow with the record.
    """
    usable = ~held_out
    pool = region.tiles[region.tiles["split"].isin(["train", "val"])]
    labelled_area = labelled_pixels(region.cube, pool, usable)
    pool_area = tile_area(pool, labelled_area.shape)
    held_labels = calibration_holdout(labelled_area, calibration_fraction, block_px, seed)
    held_area = calibration_holdout(pool_area & ~labelled_area, calibration_area_fraction,
                                    block_px, seed + 1)
    # the rest of each chosen block is hidden too, so no pixel the teacher's targets reach
    # in training borders a calibration pixel inside a block; labelled pixels stay as
    # calibration_fraction chose them (the labels are the scarcest data a target has)
    unlabelled_blocks = whole_blocks(held_labels | held_area, block_px) & pool_area
    calibration_pixels = held_labels | (unlabelled_blocks & ~labelled_area)
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
        class_weights=class_weights_from_counts(sample_counts(counts, labelled_train)),
        distill_label_tiles=[int(p) for p in
                             np.flatnonzero(region.tiles["split"].to_numpy() == "train")],
        calibration=calibration_pairs(region.tiles, calibration_pixels, radar,
                                      usable, calibration_counts.sum(-1),
                                      max_calibration_pairs, seed),
        calibration_pixels=calibration_pixels,
    )


def tile_area(tiles, shape: tuple[int, int]) -> np.ndarray:
    """(y, x) bool on the region grid: the pixels inside one of ``tiles``."""
    area = np.zeros(shape, dtype=bool)
    for tile in tiles.itertuples():
        area[tile.row_off:tile.row_off + tile.height, tile.col_off:tile.col_off + tile.width] = 1
    return area


def calibration_pairs(tiles, calibration_pixels: np.ndarray, radar: np.ndarray,
                      usable: np.ndarray, calibration_labels: np.ndarray, limit: int = 0,
                      seed: int = 0) -> list[tuple[int, int]]:
    """(tile, time) pairs of the train and val tiles holding calibration pixels: every pair
    with calibration labels, and the usable radar passes (the teacher's map), of which a
    seeded random choice when there are more than ``limit`` (0: no limit) pairs in all."""
    labelled = select_samples(tiles, ["train", "val"], usable, calibration_labels, "labels")
    held_tiles = {p for p, tile in enumerate(tiles.itertuples()) if calibration_pixels[
        tile.row_off:tile.row_off + tile.height, tile.col_off:tile.col_off + tile.width].any()}
    passes = sorted({pair for pair in select_samples(tiles, ["train", "val"], radar & usable)
                     if pair[0] in held_tiles} - set(labelled))
    room = max(limit - len(labelled), 0)
    if limit > 0 and room < len(passes):
        chosen = np.random.default_rng(seed).choice(len(passes), room, replace=False)
        passes = [passes[i] for i in chosen]
    return sorted(set(labelled) | set(passes))


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
