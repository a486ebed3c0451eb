"""Tile layout, blending weights and the uncertainty statistics on hand-made samples, and
bit for bit those of the plain formulas on random ones."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import entr

from floodkd.predict.blending import ramp_1d, tile_windows
from floodkd.predict.uncertainty import (
    MOMENT_NAMES,
    binary_entropy,
    sample_statistics,
    statistics_from_moments,
    tile_moments,
)


def test_tile_windows_cover_with_full_tiles_and_overlap():
    rows = tile_windows((100, 100), 32, 8)
    assert [w.col_off for w in rows[0]] == [0, 24, 48, 68]
    rows = tile_windows((20, 100), 32, 8)
    assert len(rows) == 1 and rows[0][0].height == 20  # clipped to a short grid
    assert all(w.width == 32 for w in rows[0])


def test_tile_windows_without_overlap_and_bad_overlap():
    assert [w.col_off for w in tile_windows((64, 100), 64, 0)[0]] == [0, 36]
    with pytest.raises(ValueError, match="overlap"):
        tile_windows((100, 100), 64, 64)


def test_weights_strictly_positive_and_smooth():
    ramp = ramp_1d(64, 16)
    assert ramp.min() > 0 and ramp.max() == 1.0
    assert np.all(np.diff(ramp[:17]) > 0)  # rises monotonically over the overlap
    assert np.allclose(ramp, ramp[::-1])


def test_all_equal_samples_have_no_spread_and_no_mutual_information():
    samples = np.full((6, 3, 4), 0.3)
    stats = sample_statistics(samples)
    np.testing.assert_allclose(stats.probability, 0.3)
    np.testing.assert_allclose(stats.std, 0.0, atol=1e-6)
    np.testing.assert_allclose(stats.mutual_information_nats, 0.0, atol=1e-12)
    # predictive entropy of p = 0.3 in nats
    expected = -(0.3 * np.log(0.3) + 0.7 * np.log(0.7))
    np.testing.assert_allclose(stats.entropy_nats, expected)


def test_disagreeing_samples_known_answer():
    # two members certain in opposite directions: mean 0.5, std 0.5, H = ln 2, all epistemic
    samples = np.array([0.0, 1.0]).reshape(2, 1, 1)
    stats = sample_statistics(samples)
    np.testing.assert_allclose(stats.std, 0.5)
    np.testing.assert_allclose(stats.entropy_nats, np.log(2))
    np.testing.assert_allclose(stats.mutual_information_nats, np.log(2), atol=1e-9)
    # two members both at 0.5: same total entropy, but all aleatoric
    calm = sample_statistics(np.full((2, 1, 1), 0.5))
    np.testing.assert_allclose(calm.entropy_nats, np.log(2))
    np.testing.assert_allclose(calm.mutual_information_nats, 0.0, atol=1e-12)


def test_binary_entropy_limits():
    np.testing.assert_allclose(binary_entropy(np.array([0.0, 1.0])), 0.0, atol=1e-9)


def _reference_statistics(samples: np.ndarray) -> tuple[np.ndarray, ...]:
    """The statistics written the plain way, in float64, one temporary after another."""
    values = samples.astype(np.float64)

    def x_log_x(x):  # 0 log 0 = 0
        return np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0)), 0.0)

    def entropy(p):
        p = np.clip(p, 0.0, 1.0)
        return -(x_log_x(p) + x_log_x(1.0 - p)) + 0.0

    mean_p = values.sum(axis=0) / len(values)
    mean_p_squared = (values * values).sum(axis=0) / len(values)
    mean_entropy = sum(entropy(sample) for sample in values) / len(values)
    probability = np.clip(mean_p, 0.0, 1.0)
    std = np.sqrt(np.maximum(mean_p_squared - probability**2, 0.0))
    total = entropy(probability)
    return (mean_p, mean_p_squared, mean_entropy,
            probability, std, total, np.maximum(total - mean_entropy, 0.0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("count", [1, 2, 12])
def test_statistics_are_bitwise_those_of_the_plain_formulas(dtype, count):
    rng = np.random.default_rng(count)
    samples = rng.random((count, 37, 53)).astype(dtype)
    samples[:, :4] = rng.choice([0.0, 1.0, 0.5], (count, 4, 53))  # the entropy's limits
    samples[:, 4] = samples[0, 4]  # samples that agree: MI rounds to about 0
    moments = tile_moments(samples)
    stats = sample_statistics(samples)
    got = (*moments, stats.probability, stats.std, stats.entropy_nats,
           stats.mutual_information_nats)
    for name, value, expected in zip(
            (*MOMENT_NAMES, "probability", "std", "entropy", "mutual_information"), got,
            _reference_statistics(samples), strict=True):
        assert value.dtype == np.float64, name
        np.testing.assert_array_equal(value, expected, err_msg=name)  # bit for bit
    before = moments.copy()
    statistics_from_moments(moments)
    np.testing.assert_array_equal(moments, before)  # the moments are left as they are


def test_binary_entropy_leaves_its_input_and_keeps_nan():
    p = np.array([[0.25, np.nan], [-0.5, 1.5]], dtype=np.float32)
    kept = p.copy()
    entropy = binary_entropy(p)
    np.testing.assert_array_equal(p, kept)
    assert entropy.dtype == np.float64 and np.isnan(entropy[0, 1])
    np.testing.assert_array_equal(entropy[1], 0.0)  # clipped to 0 and 1
    assert entropy[0, 0] == pytest.approx(entr(0.25) + entr(0.75), rel=1e-15)
