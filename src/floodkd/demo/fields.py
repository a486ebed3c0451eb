"""Random streams and fractal fields shared by the demo generators."""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["stream", "fbm", "fbm_1d", "field_parcels"]


def stream(seed: int, *keys: object) -> np.random.Generator:
    """An independent random stream for one named component (e.g. ``"demo-source", "s1", 3``).

    Keyed by name rather than by call order, so adding a file never changes the others.
    """
    key = "/".join(str(k) for k in keys).encode()
    return np.random.default_rng([seed, zlib.crc32(key)])


def fbm(shape: tuple[int, int], beta: float, rng: np.random.Generator) -> np.ndarray:
    """A fractal Brownian field by spectral synthesis: power spectrum ~ 1/f**beta.

    Returns float32 with zero mean and unit standard deviation. beta ~ 2 is rough,
    beta ~ 3.5 gives the smooth billows of cumulus fields.
    """
    height, width = shape
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    freq = np.hypot(fy, fx)
    freq[0, 0] = 1.0  # the mean is removed below; avoid dividing by zero
    amplitude = freq ** (-beta / 2.0)
    amplitude[0, 0] = 0.0
    noise = rng.standard_normal((height, fx.shape[1])) + 1j * rng.standard_normal(
        (height, fx.shape[1])
    )
    field = np.fft.irfft2(noise * amplitude, s=shape)
    field -= field.mean()
    return (field / (field.std() or 1.0)).astype(np.float32)


def fbm_1d(length: int, beta: float, rng: np.random.Generator) -> np.ndarray:
    """A 1-D fractal profile (zero mean, unit std), e.g. the wiggle of a coastline."""
    freq = np.fft.rfftfreq(length)
    freq[0] = 1.0
    amplitude = freq ** (-beta / 2.0)
    amplitude[0] = 0.0
    spectrum = (rng.standard_normal(freq.size) + 1j * rng.standard_normal(freq.size)) * amplitude
    profile = np.fft.irfft(spectrum, n=length)
    profile -= profile.mean()
    return profile / (profile.std() or 1.0)


def field_parcels(shape: tuple[int, int], span_px: tuple[int, int],
                  rng: np.random.Generator) -> np.ndarray:
    """Rectangular field parcels: an int32 id per cell. Bands of rows ``span_px`` (low,
    high) cells deep are cut into parcels ``span_px`` cells wide, each band with its own
    cuts, so the boundaries do not line up into one grid (as fields along a road do)."""
    height, width = shape
    band = _runs(height, span_px, rng)
    ids = np.empty(shape, np.int32)
    for b in range(int(band.max()) + 1):
        rows = band == b
        ids[rows] = b * width + _runs(width, span_px, rng)[None, :]
    return ids


def _runs(length: int, span: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """0, 0, 1, 1, 1, 2, ... : consecutive runs of random lengths in [low, high)."""
    ends = np.cumsum(rng.integers(span[0], span[1], size=length // span[0] + 2))
    return np.searchsorted(ends, np.arange(length), side="right")
