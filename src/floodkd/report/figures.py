"""The report's figures as PNG files: the reliability diagram and the training curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from floodkd.atomic import atomic_path  # noqa: E402

__all__ = ["reliability_diagram", "training_curves"]

_DPI = 110


def _save(figure: plt.Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=_DPI, bbox_inches="tight")
    plt.close(figure)
    return Path(path)


def reliability_diagram(reliability: dict[str, list[dict]], path: str | Path,
                        title: str) -> Path:
    """Observed water fraction against mean P(flood) per bin, before and after calibration,
    over the pixel count per bin. ``reliability`` maps a label to ``reliability_bins`` rows."""
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(5, 6), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], color="0.6", linestyle="--", label="perfectly calibrated")
    width = None
    for (label, bins), marker in zip(reliability.items(), "os^", strict=False):
        filled = [b for b in bins if b["pixels"]]
        top.plot([b["mean_probability"] for b in filled], [b["observed_fraction"] for b in filled],
                 marker=marker, label=label.replace("_", " "))
        width = bins[0]["upper"] - bins[0]["lower"]
        bottom.bar([b["lower"] for b in bins], [b["pixels"] for b in bins], width=width,
                   align="edge", alpha=0.5, label=label.replace("_", " "))
    top.set(ylabel="observed flooded fraction", xlim=(0, 1), ylim=(0, 1), title=title)
    top.legend(loc="upper left", fontsize="small")
    bottom.set(xlabel="predicted P(flood)" + (f" (bins of {width:g})" if width else ""),
               ylabel="pixels", yscale="log")
    return _save(figure, Path(path))


def training_curves(histories: dict[str, list[dict[str, float]]], path: str | Path,
                    title: str) -> Path:
    """Loss per epoch of every training phase and ensemble member: one panel per phase kind
    (teacher, source, distill, finetune ...), training loss solid, validation loss dashed."""
    kinds = list(dict.fromkeys(name.rsplit("-", 1)[0] for name in histories))
    figure, axes = plt.subplots(1, max(len(kinds), 1), figsize=(4 * max(len(kinds), 1), 3.4),
                                squeeze=False, layout="constrained")
    for axis, kind in zip(axes[0], kinds, strict=False):
        for name, rows in histories.items():
            if name.rsplit("-", 1)[0] != kind or not rows:
                continue
            epochs = [row["epoch"] for row in rows]
            line, = axis.plot(epochs, [row.get("train_total", float("nan")) for row in rows],
                              marker=".", label=f"{name} train")
            if any("val_loss" in row for row in rows):
                axis.plot(epochs, [row.get("val_loss", float("nan")) for row in rows],
                          marker=".", linestyle="--", color=line.get_color(),
                          label=f"{name} validation")
        axis.set(title=kind, xlabel="epoch", ylabel="loss")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.legend(fontsize="x-small")
    figure.suptitle(title)
    return _save(figure, Path(path))
