"""Small PNG quicklooks of a map for reports: colour ramp, colour bar and a scale bar."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and cluster nodes

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import rasterio  # noqa: E402
from matplotlib.colors import LinearSegmentedColormap  # noqa: E402

from floodkd.atomic import atomic_path  # noqa: E402

__all__ = ["nice_scale_length_m", "write_quicklook"]


def nice_scale_length_m(extent_m: float) -> float:
    """A round length (1, 2 or 5 x 10^k m) near a fifth of ``extent_m``, for the scale bar."""
    target = extent_m / 5.0
    magnitude = 10.0 ** np.floor(np.log10(target))
    for step in (5.0, 2.0, 1.0):
        if step * magnitude <= target:
            return float(step * magnitude)
    return float(magnitude)


def write_quicklook(
    cog_path: str | Path,
    png_path: str | Path,
    *,
    band: int,
    title: str,
    colour_label: str,
    value_range: tuple[float, float],
    ramp: Sequence[tuple[float, str]],
    max_px: int = 800,
) -> Path:
    """Render ``band`` of a projected raster (metres) as a PNG, read from its overviews."""
    png_path = Path(png_path)
    with rasterio.open(cog_path) as src:
        # read at most max_px across: GDAL serves this from the overviews
        shrink = max(src.width / max_px, src.height / max_px, 1.0)
        out_shape = (max(int(src.height / shrink), 1), max(int(src.width / shrink), 1))
        values = src.read(band, out_shape=out_shape, masked=True)
        left, bottom, right, top = src.bounds
    cmap = LinearSegmentedColormap.from_list("ramp", list(ramp))
    cmap = cmap.with_extremes(bad=(0.0, 0.0, 0.0, 0.0))
    fig, ax = plt.subplots(figsize=(6, 6 * out_shape[0] / out_shape[1] + 0.6), dpi=100)
    image = ax.imshow(values, cmap=cmap, vmin=value_range[0], vmax=value_range[1],
                      extent=(left, right, bottom, top), interpolation="nearest")
    fig.colorbar(image, ax=ax, label=colour_label, shrink=0.8)
    _scale_bar(ax, left, right, bottom, top)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)
    return png_path


def _scale_bar(ax: plt.Axes, left: float, right: float, bottom: float, top: float) -> None:
    """A black-and-white bar in the lower left, labelled in m or km."""
    length = nice_scale_length_m(right - left)
    x0 = left + 0.05 * (right - left)
    y0 = bottom + 0.05 * (top - bottom)
    height = 0.015 * (top - bottom)
    ax.add_patch(plt.Rectangle((x0, y0), length / 2, height, facecolor="black"))
    ax.add_patch(plt.Rectangle((x0 + length / 2, y0), length / 2, height, facecolor="white",
                               edgecolor="black"))
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    ax.text(x0 + length / 2, y0 + 2 * height, label, ha="center", va="bottom", fontsize=8)
