"""Platt scaling (temperature and water bias) and expected calibration error."""

import math

import numpy as np
import pytest
import torch

from floodkd.distill.calibration import (
    expected_calibration_error,
    fit_calibration,
    water_probability,
)


def fit_temperature(logits, labels):
    return fit_calibration(logits, labels).temperature


def _overconfident(n=4000, seed=0):
    """Labels drawn from a true P(water); logits that are 3x too sharp."""
    generator = torch.Generator().manual_seed(seed)
    true_margin = torch.randn(n, generator=generator) * 1.5
    labels = (torch.rand(n, generator=generator) < torch.sigmoid(true_margin)).long()
    logits = torch.stack([torch.zeros(n), 3.0 * true_margin], dim=1)
    return logits, labels


def test_fit_on_overconfident_logits_gives_t_above_one_and_lowers_ece():
    logits, labels = _overconfident()
    temperature = fit_temperature(logits, labels)
    assert temperature == pytest.approx(3.0, rel=0.2)
    before = expected_calibration_error(torch.softmax(logits, 1)[:, 1], labels)
    after = expected_calibration_error(torch.softmax(logits / temperature, 1)[:, 1], labels)
    assert after < before / 2


def test_fit_ignores_unlabelled():
    logits, labels = _overconfident(n=1000)
    padded_logits = torch.cat([logits, 50 * torch.randn(500, 2)])
    padded_labels = torch.cat([labels, torch.full((500,), 255)])
    assert fit_temperature(padded_logits, padded_labels) == pytest.approx(
        fit_temperature(logits, labels), rel=1e-4)
    with pytest.raises(ValueError, match="no labelled"):
        fit_temperature(torch.zeros(2, 2), torch.full((2,), 255))


def test_ece_hand_computed():
    prob = np.array([0.1, 0.1, 0.9, 0.9])
    labels = np.array([0, 0, 1, 0])
    # bin of 0.1: mean p 0.1, water 0 -> gap 0.1; bin of 0.9: gap |0.9 - 0.5| = 0.4
    assert expected_calibration_error(prob, labels, bins=10) == pytest.approx(
        0.5 * 0.1 + 0.5 * 0.4)
    # bins weighted by their share of pixels: 3 of 4 in the bin of 0.2 (gap |0.2 - 1/3|),
    # 1 of 4 in the bin of 0.8 (gap |0.8 - 0|)
    unequal = expected_calibration_error(np.array([0.2, 0.2, 0.2, 0.8]),
                                         np.array([1, 0, 0, 0]), bins=10)
    assert unequal == pytest.approx(0.75 * (1 / 3 - 0.2) + 0.25 * 0.8)
    assert expected_calibration_error(np.array([0.0, 1.0]), np.array([0, 1])) == 0.0
    assert math.isnan(expected_calibration_error(np.array([0.3]), np.array([255])))


def test_ensemble_fit_matches_single_model_for_identical_members():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 3, (400, 2))
    labels = (rng.random(400) < 1 / (1 + np.exp(-(logits[:, 1] - logits[:, 0]) / 3))).astype(int)
    single = fit_temperature(logits, labels)
    ensemble = fit_temperature(np.stack([logits, logits, logits]), labels)
    assert ensemble == pytest.approx(single, rel=1e-4)
    assert single > 1.5  # logits three times too sharp


def test_ensemble_fit_is_for_the_mean_probability():
    # two over-confident members that disagree: their mean probability is already soft, so
    # the temperature for the mean differs from the one for each member alone
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 600)
    signal = np.where(labels == 1, 1.0, -1.0) + rng.normal(0, 1.5, 600)
    member_a = np.stack([-4 * signal, 4 * signal], axis=1) / 2
    member_b = member_a + rng.normal(0, 4, member_a.shape)
    joint = fit_temperature(np.stack([member_a, member_b]), labels)
    alone = fit_temperature(member_b, labels)
    assert joint != pytest.approx(alone, rel=0.05)


def test_ensemble_calibration_minimises_nll_of_the_mean_probability():
    # The maps show the members' mean of sigmoid(margin / T + b): the fit must minimise the
    # NLL of that mean, not the members' mean log-probability (a geometric mean, which
    # punishes disagreement and picks a different T).
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 800)
    signal = np.where(labels == 1, 1.0, -1.0) + rng.normal(0, 1.0, 800)
    member_a = np.stack([-3 * signal, 3 * signal], axis=1)
    member_b = np.stack([3 * signal, -3 * signal], axis=1) * 0.3 + rng.normal(0, 2, (800, 2))
    logits = torch.as_tensor(np.stack([member_a, member_b]), dtype=torch.float64)

    def nll_of_mean(temperature, bias):
        mean = water_probability(logits, temperature, bias).mean(0)
        truth = torch.as_tensor(labels, dtype=torch.float64)
        return float(-(truth * mean.log() + (1 - truth) * (1 - mean).log()).mean())

    fitted = fit_calibration(logits, labels)
    t, b = fitted.temperature, fitted.bias
    best = nll_of_mean(t, b)
    for other in ((t * 1.1, b), (t / 1.1, b), (t, b + 0.1), (t, b - 0.1)):
        assert best <= nll_of_mean(*other)
    # the mean over members is what is fitted: the geometric mean's optimum differs
    grid = np.exp(np.linspace(np.log(0.1), np.log(20), 200))
    geometric = [float(-torch.log_softmax(logits / g, -1).mean(0)[
        torch.arange(800), torch.as_tensor(labels)].mean()) for g in grid]
    assert grid[int(np.argmin(geometric))] != pytest.approx(t, rel=0.05)


def test_bias_moves_a_cautious_model_towards_water():
    # a model whose margins are right in spread but 1.5 too low (it distilled a cautious
    # teacher): temperature alone cannot fix it, the bias does
    generator = torch.Generator().manual_seed(1)
    true_margin = torch.randn(6000, generator=generator) * 2
    labels = (torch.rand(6000, generator=generator) < torch.sigmoid(true_margin)).long()
    logits = torch.stack([torch.zeros(6000), true_margin - 1.5], dim=1)
    fitted = fit_calibration(logits, labels)
    assert fitted.bias == pytest.approx(1.5, abs=0.25)
    assert fitted.temperature == pytest.approx(1.0, abs=0.15)
    before = expected_calibration_error(water_probability(logits), labels)
    after = expected_calibration_error(
        water_probability(logits, fitted.temperature, fitted.bias), labels)
    assert after < before / 3


def test_water_probability_is_the_softmax_without_calibration():
    logits = torch.randn(3, 5, 2)
    torch.testing.assert_close(water_probability(logits), torch.softmax(logits, -1)[..., 1])
    torch.testing.assert_close(water_probability(logits, 2.0, 0.0),
                               torch.softmax(logits / 2.0, -1)[..., 1])


def test_confidently_wrong_pixels_still_pull_the_temperature_up():
    # every margin is +-40 (P = 0 or 1 in float64) and a fifth of the water calls are dry:
    # only a fit in log space feels those pixels and softens P at +40 to about 0.8
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (2000,), generator=generator)
    margin = torch.where(labels == 1, 40.0, -40.0)
    wrong = (torch.rand(2000, generator=generator) < 0.2) & (labels == 0)
    margin[wrong] = 40.0
    logits = torch.stack([torch.zeros_like(margin), margin], -1)[None].repeat(2, 1, 1)
    calibration = fit_calibration(logits, labels)
    assert calibration.temperature > 2.0
    raw = water_probability(logits).mean(0).numpy()
    fitted = water_probability(logits, calibration.temperature, calibration.bias).mean(0)
    after = expected_calibration_error(fitted.numpy(), labels.numpy())
    assert after < 0.02 < expected_calibration_error(raw, labels.numpy())
