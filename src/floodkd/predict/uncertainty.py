"""Predictive uncertainty of P(flood) from samples (ensemble members x MC-dropout draws).

All entropies are in nats (natural logarithm) of the binary flood / no-flood outcome.

- ``std``: standard deviation of the sampled probabilities.
- ``entropy``: predictive (total) entropy H(mean p).
- ``mutual_information``: the epistemic part, H(mean p) - mean H(p) (>= 0); it vanishes when
  all samples agree, whatever their value.

For tiled inference the statistics are built from weighted sums of per-tile moments
(mean p, mean p^2, mean H(p)). The blended result is then exactly the statistics of the
weight-mixture of the overlapping tiles' sample sets, so it stays consistent (MI >= 0,
std >= 0) and reduces to the plain sample statistics where only one tile covers a pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import entr

__all__ = [
    "binary_entropy",
    "UncertaintyMaps",
    "sample_statistics",
    "tile_moments",
    "statistics_from_moments",
    "MOMENT_NAMES",
]

# the per-pixel quantities averaged over samples that tiles contribute (weighted) to a pixel
MOMENT_NAMES = ("mean_p", "mean_p_squared", "mean_entropy_nats")



def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in nats of a Bernoulli(p) outcome, elementwise; 0 at p = 0 and p = 1.

    ``scipy.special.entr`` (-x log x, 0 at 0) in two passes instead of clipped logs: this
    runs over every sample of every tile.
    """
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    entropy = entr(p)
    entropy += entr(1.0 - p)
    return entropy


@dataclass(frozen=True)
class UncertaintyMaps:
    """Per-pixel probability and uncertainty (arrays of the same 2-D shape)."""

    probability: np.ndarray
    std: np.ndarray
    entropy_nats: np.ndarray
    mutual_information_nats: np.ndarray


def tile_moments(samples: np.ndarray) -> np.ndarray:
    """(3, h, w) moments of (S, h, w) probability samples in [0, 1]: mean p, mean p^2,
    mean H(p). Sums in float64 straight from the samples' dtype, without a float64 copy."""
    samples = np.asarray(samples)
    if samples.ndim != 3 or samples.shape[0] < 1:
        raise ValueError(f"samples must be (S, h, w) with S >= 1, got shape {samples.shape}")
    count = samples.shape[0]
    moments = np.empty((len(MOMENT_NAMES),) + samples.shape[1:], dtype=np.float64)
    np.sum(samples, axis=0, dtype=np.float64, out=moments[0])
    np.einsum("shw,shw->hw", samples, samples, dtype=np.float64, out=moments[1])
    moments[2] = 0.0
    for sample in samples:  # one (h, w) sample at a time: no (S, h, w) temporaries
        moments[2] += binary_entropy(sample)
    moments /= count
    return moments


def statistics_from_moments(moments: np.ndarray) -> UncertaintyMaps:
    """Probability, std, entropy and mutual information from (3, h, w) moments."""
    mean_p = np.clip(moments[0], 0.0, 1.0)
    variance = np.maximum(moments[1] - np.square(mean_p), 0.0)
    entropy = binary_entropy(mean_p)
    # rounding can push H(mean) - mean H a hair below zero where samples agree
    mutual_information = np.maximum(entropy - moments[2], 0.0)
    return UncertaintyMaps(mean_p, np.sqrt(variance), entropy, mutual_information)


def sample_statistics(samples: np.ndarray) -> UncertaintyMaps:
    """The statistics of (S, h, w) probability samples of one window."""
    return statistics_from_moments(tile_moments(samples))
