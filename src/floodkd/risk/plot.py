"""The return-level plot: fitted levels with their interval and the observed maxima."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and cluster nodes

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from floodkd.atomic import atomic_path  # noqa: E402
from floodkd.risk.extremes import ExtremeSettings, StationFit  # noqa: E402

__all__ = ["write_return_level_plot"]


def write_return_level_plot(fits: list[StationFit], settings: ExtremeSettings, region: str,
                            path: str | Path, synthetic: bool = False) -> Path:
    """One panel per station: level against return period (log axis), written atomically."""
    fitted = [fit for fit in fits if fit.distribution is not None]
    figure, axes = plt.subplots(1, len(fitted), figsize=(6 * len(fitted), 4.5), squeeze=False)
    periods = np.asarray(settings.return_periods_years, float)
    curve = np.geomspace(1.0 / fitted[0].rate_per_year if fitted else 1.0,
                         periods.max() * 2, 60)
    for axis, fit in zip(axes[0], fitted, strict=True):
        lower, upper = fit.interval(curve, settings.confidence)
        axis.fill_between(curve, lower, upper, color="tab:blue", alpha=0.2,
                          label=f"{settings.confidence:.0%} bootstrap interval")
        axis.plot(curve, fit.levels(curve), color="tab:blue", label=fit.distribution)
        low, high = fit.interval(periods, settings.confidence)
        levels = fit.levels(periods)
        axis.errorbar(periods, levels, yerr=[levels - low, high - levels], fmt="o",
                      color="tab:red", capsize=4, label="configured return periods")
        axis.scatter(fit.peak_return_periods, fit.peaks_m, s=12, color="k",
                     label="observed maxima or storm peaks")
        axis.axvspan(fit.record_years, curve.max(), color="0.9", zorder=0,
                     label="beyond the record")
        axis.set_xscale("log")
        axis.set_xlabel("return period (years)")
        axis.set_ylabel("sea level (m, station datum)")
        axis.set_title(f"{fit.station}: {fit.record_years:.1f} years observed", fontsize=10)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7, loc="upper left")
    figure.suptitle(f"{region}: return levels" + (" (SYNTHETIC)" if synthetic else ""))
    figure.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)
    return path
