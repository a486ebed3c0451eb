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

from floodkd.predict.bands import BandSpec

__all__ = [
    "binary_entropy",
    "UncertaintyMaps",
    "sample_statistics",
    "tile_moments",
    "statistics_from_moments",
    "MOMENT_NAMES",
    "UNCERTAINTY_BANDS",
]

# the bands of a map's uncertainty COG, in order
UNCERTAINTY_BANDS = (
    BandSpec("std", "1", "standard deviation of P(flood) over ensemble members x MC dropout"),
    BandSpec("entropy", "nat", "predictive entropy of the mean P(flood), natural log"),
    BandSpec("mutual_information", "nat",
             "epistemic uncertainty: entropy of the mean minus mean entropy, natural log"),
)

TINY = np.finfo(np.float64).tiny  # floor of the log's argument, so that 0 log 0 is 0

# the per-pixel quantities averaged over samples that tiles contribute (weighted) to a pixel
MOMENT_NAMES = ("mean_p", "mean_p_squared", "mean_entropy_nats")


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in nats of a Bernoulli(p) outcome, elementwise; 0 at p = 0 and p = 1."""
    p = np.array(p, dtype=np.float64)  # a copy the maths may overwrite
    return _binary_entropy_into(p, np.empty_like(p))


def _binary_entropy_into(p: np.ndarray, out: np.ndarray) -> np.ndarray:
    """H(p) of float64 ``p`` into ``out`` (same shape); ``p`` is overwritten.

    -(p log p + q log q) with each log taken of max(x, tiny), so that 0 log 0 = 0: numpy's
    SIMD log runs at twice the speed of ``scipy.special.entr``'s scalar loop, and this runs
    over every sample of every tile."""
    np.clip(p, 0.0, 1.0, out=p)
    q = np.subtract(1.0, p)
    np.maximum(p, TINY, out=out)
    np.log(out, out=out)
    out *= p  # p log p
    np.maximum(q, TINY, out=p)
    np.log(p, out=p)
    p *= q  # q log q
    out += p
    np.negative(out, out=out)
    out += 0.0  # -0.0 at p = 0 and 1 becomes 0.0
    return out


@dataclass(frozen=True)
class UncertaintyMaps:
    """Per-pixel probability and uncertainty (arrays of the same 2-D shape)."""

    probability: np.ndarray
    std: np.ndarray
    entropy_nats: np.ndarray
    mutual_information_nats: np.ndarray


def tile_moments(samples: np.ndarray) -> np.ndarray:
    """(3, h, w) moments of (S, h, w) probability samples in [0, 1]: mean p, mean p^2,
    mean H(p). Sums in float64 straight from the samples' dtype, without a float64 copy of
    the samples: besides the result, three (h, w) float64 buffers at a time serve every
    sample."""
    samples = np.asarray(samples)
    if samples.ndim != 3 or samples.shape[0] < 1:
        raise ValueError(f"samples must be (S, h, w) with S >= 1, got shape {samples.shape}")
    count = samples.shape[0]
    moments = np.empty((len(MOMENT_NAMES),) + samples.shape[1:], dtype=np.float64)
    np.sum(samples, axis=0, dtype=np.float64, out=moments[0])
    np.einsum("shw,shw->hw", samples, samples, dtype=np.float64, out=moments[1])
    moments[2] = 0.0
    p, entropy = np.empty(samples.shape[1:]), np.empty(samples.shape[1:])
    for sample in samples:  # one (h, w) sample at a time: no (S, h, w) temporaries
        p[...] = sample
        moments[2] += _binary_entropy_into(p, entropy)
    moments /= count
    return moments


def statistics_from_moments(moments: np.ndarray) -> UncertaintyMaps:
    """Probability, std, entropy and mutual information from (3, h, w) moments (left as
    they are). Each map is computed in its own output array, with no other temporaries."""
    mean_p = np.clip(moments[0], 0.0, 1.0)
    std = np.square(mean_p)
    np.subtract(moments[1], std, out=std)
    np.maximum(std, 0.0, out=std)  # the variance, which rounding can push below zero
    np.sqrt(std, out=std)
    entropy = binary_entropy(mean_p)
    # rounding can push H(mean) - mean H a hair below zero where samples agree
    mutual_information = np.subtract(entropy, moments[2])
    np.maximum(mutual_information, 0.0, out=mutual_information)
    return UncertaintyMaps(mean_p, std, entropy, mutual_information)


def sample_statistics(samples: np.ndarray) -> UncertaintyMaps:
    """The statistics of (S, h, w) probability samples of one window."""
    return statistics_from_moments(tile_moments(samples))
