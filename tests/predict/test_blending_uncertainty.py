"""Tile layout, blending weights and the uncertainty statistics on hand-made samples."""

from __future__ import annotations

import numpy as np
import pytest

from floodkd.predict.blending import ramp_1d, tile_windows
from floodkd.predict.uncertainty import binary_entropy, sample_statistics


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
