"""Segmentation scores and uncertainty AUROC on hand-made examples."""

import math

import numpy as np
import pytest

from floodkd.evaluate.metrics import (
    binary_scores,
    flood_scores,
    reliability_bins,
    uncertainty_error_auroc,
)


def test_binary_scores_hand_computed_4x4():
    truth = np.array([[1, 1, 0, 0],
                      [1, 1, 0, 0],
                      [0, 0, 0, 0],
                      [0, 0, 0, 1]], bool)
    pred = np.array([[1, 1, 1, 0],
                     [1, 0, 0, 0],
                     [0, 0, 0, 0],
                     [0, 0, 1, 1]], bool)
    valid = np.ones((4, 4), bool)
    valid[3] = [True, True, False, True]  # the fp at (3, 2) is not scored
    scores = binary_scores(pred, truth, valid)
    # tp: (0,0) (0,1) (1,0) (3,3) = 4; fp: (0,2) = 1; fn: (1,1) = 1; tn = 15 - 6 = 9
    assert (scores["tp"], scores["fp"], scores["fn"], scores["tn"]) == (4, 1, 1, 9)
    assert scores["pixels"] == 15
    assert scores["iou"] == pytest.approx(4 / 6)
    assert scores["f1"] == pytest.approx(8 / 10)
    assert scores["precision"] == pytest.approx(4 / 5)
    assert scores["recall"] == pytest.approx(4 / 5)


def test_flood_scores_leave_reference_water_out():
    # a river (column 0) is reference water; the flood is the water beside it
    truth = np.array([[1, 1, 1, 0],
                      [1, 1, 0, 0],
                      [1, 0, 0, 0],
                      [1, 0, 0, 1]], bool)
    pred = np.array([[1, 1, 1, 1],
                     [0, 1, 0, 0],
                     [1, 0, 1, 0],
                     [1, 0, 0, 0]], bool)
    reference = np.zeros((4, 4), bool)
    reference[:, 0] = True  # pred missed (1, 0): a miss of permanent water, not of flood
    reference[0, 3] = True  # a false alarm on reference water: not a flood false alarm
    valid = np.ones((4, 4), bool)
    valid[2, 2] = False  # the false alarm at (2, 2) is not scored
    every = binary_scores(pred, truth, valid)
    assert (every["tp"], every["fp"], every["fn"]) == (6, 1, 2)  # fp (0, 3); fn (1, 0) (3, 3)
    flood = flood_scores(pred, truth, reference, valid)
    # flood truth: (0,1) (0,2) (1,1) (3,3); flood pred: (0,1) (0,2) (1,1)
    assert (flood["tp"], flood["fp"], flood["fn"], flood["tn"]) == (3, 0, 1, 11)
    assert flood["pixels"] == 15  # reference water is still scored, as neither class
    assert flood["iou"] == 3 / 4
    assert flood["precision"] == 1.0 and flood["recall"] == 3 / 4
    # all water reference water: no flood anywhere, so flood IoU is undefined
    assert math.isnan(flood_scores(pred, truth, np.ones((4, 4), bool), valid)["iou"])


def test_binary_scores_tell_precision_from_recall():
    # every confusion count differs: tp 2, fp 3, fn 1, tn 7 ((2, 2) and (4, 2) not scored)
    truth = np.array([[1, 1, 1],
                      [0, 0, 0],
                      [0, 0, 0],
                      [0, 0, 0],
                      [0, 0, 1]], bool)
    pred = np.array([[1, 1, 0],
                     [1, 1, 1],
                     [0, 0, 1],
                     [0, 0, 0],
                     [0, 0, 0]], bool)
    valid = np.ones(truth.shape, bool)
    valid[2, 2] = valid[4, 2] = False
    scores = binary_scores(pred, truth, valid)
    assert (scores["tp"], scores["fp"], scores["fn"], scores["tn"]) == (2, 3, 1, 7)
    assert scores["pixels"] == 13
    assert scores["precision"] == pytest.approx(2 / 5)  # tp / (tp + fp)
    assert scores["recall"] == pytest.approx(2 / 3)  # tp / (tp + fn)
    assert scores["iou"] == pytest.approx(2 / 6)
    assert scores["f1"] == pytest.approx(4 / 8)


def test_undefined_scores_are_nan():
    empty = np.zeros((2, 2), bool)
    scores = binary_scores(empty, empty, np.ones((2, 2), bool))
    assert math.isnan(scores["iou"]) and scores["tn"] == 4


def test_auroc_perfect_inverted_tied_and_random():
    wrong = np.array([0, 0, 1, 0, 1, 1], bool)
    assert uncertainty_error_auroc(np.array([0.1, 0.2, 0.8, 0.3, 0.9, 0.7]), wrong) == 1.0
    assert uncertainty_error_auroc(np.array([0.9, 0.8, 0.1, 0.7, 0.2, 0.3]), wrong) == 0.0
    assert uncertainty_error_auroc(np.ones(6), wrong) == 0.5
    rng = np.random.default_rng(0)
    random = uncertainty_error_auroc(rng.random(20000), rng.random(20000) < 0.3)
    assert random == pytest.approx(0.5, abs=0.02)
    assert math.isnan(uncertainty_error_auroc(np.ones(3), np.zeros(3, bool)))


def test_reliability_bins_hand_computed():
    prob = np.array([0.05, 0.05, 0.15, 0.95, 0.95, 0.95, 1.0, np.nan])
    water = np.array([0, 1, 0, 1, 1, 0, 1, 1], bool)
    bins = reliability_bins(prob, water, bins=10)
    assert [b["pixels"] for b in bins] == [2, 1, 0, 0, 0, 0, 0, 0, 0, 4]  # NaN ignored, 1.0 last
    assert bins[0]["mean_probability"] == pytest.approx(0.05)
    assert bins[0]["observed_fraction"] == 0.5
    assert bins[9]["mean_probability"] == pytest.approx((0.95 * 3 + 1.0) / 4)
    assert bins[9]["observed_fraction"] == 0.75
    assert bins[2]["mean_probability"] is None and bins[2]["observed_fraction"] is None
    assert (bins[3]["lower"], bins[3]["upper"]) == (0.3, 0.4)
