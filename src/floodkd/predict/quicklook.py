"""Small PNG quicklooks of maps for reports.

One PNG shows one or more panels of the same grid side by side: a continuous band on a colour
ramp with a colour bar, or a band of bit flags with a legend of the flag sums present, coloured
by the raster's own colour table. A ramp panel may draw classes of a categorical raster over the
ramp in their own colours, each with a legend entry (the extent's sea and reference water over
the probability: their P says nothing about flooding). Each panel has easting/northing ticks
in km of the map's CRS, a scale bar, a north arrow and a legend entry for nodata; the title
names the region, the scenario, its date and the CRS, and a credit line says what the map was
made from. All of it comes from the rasters' tags, so the picture says what the files say.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and cluster nodes

import numpy as np  # noqa: E402
import rasterio  # noqa: E402
from matplotlib.colors import LinearSegmentedColormap, ListedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402
from rasterio.crs import CRS  # noqa: E402
from rasterio.warp import transform as transform_points  # noqa: E402

from floodkd.atomic import atomic_path  # noqa: E402
from floodkd.errors import InputError  # noqa: E402
from floodkd.predict.style import hex_rgb  # noqa: E402

__all__ = [
    "NODATA_COLOUR",
    "ClassOverlay",
    "RampPanel",
    "FlagPanel",
    "PanelData",
    "nice_scale_length_m",
    "map_caption",
    "grid_north_angle_deg",
    "quicklook_figure",
    "overview_shape",
    "write_quicklook",
]

NODATA_COLOUR = "#d9d9d9"  # light grey: no data / outside the region
NODATA_LABEL = "no data / outside region"
# the tags (written by floodkd.predict.tiled.provenance_tags) the title and credit rest on
CAPTION_TAGS = ("REGION", "SCENARIO", "SCENARIO_DATETIME", "FLOODKD_VERSION", "SYNTHETIC")


@dataclass(frozen=True)
class ClassOverlay:
    """Classes of a categorical raster on the panel's grid, drawn over its ramp: ``classes``
    are (value, label, hex colour); other values leave the ramp visible."""

    cog_path: Path
    band: int
    classes: Sequence[tuple[int, str, str]]


@dataclass(frozen=True)
class RampPanel:
    """A continuous band drawn on a colour ramp over ``value_range``, with the classes of
    ``overlay`` over it."""

    cog_path: Path
    band: int
    label: str
    value_range: tuple[float, float]
    ramp: Sequence[tuple[float, str]]
    overlay: ClassOverlay | None = None


@dataclass(frozen=True)
class FlagPanel:
    """A band of integer bit flags; ``label_of(value)`` names a flag sum in the legend."""

    cog_path: Path
    band: int
    label: str
    label_of: Callable[[int], str]


@dataclass(frozen=True)
class PanelData:
    """What a panel draws: its values (masked where nodata), the raster's colour table and
    the values of a ramp panel's overlay (same shape)."""

    panel: RampPanel | FlagPanel
    values: np.ma.MaskedArray
    colours: Mapping[int, tuple[int, int, int, int]]
    overlay: np.ndarray | None = None


def nice_scale_length_m(extent_m: float) -> float:
    """A round length (1, 2 or 5 x 10^k m) near a fifth of ``extent_m``, for the scale bar."""
    target = extent_m / 5.0
    magnitude = 10.0 ** np.floor(np.log10(target))
    for step in (5.0, 2.0, 1.0):
        if step * magnitude <= target:
            return float(step * magnitude)
    return float(magnitude)


def map_caption(tags: Mapping[str, str], crs_text: str) -> tuple[str, str]:
    """(subtitle, credit) from a map's tags: scenario, date and CRS; version and data source."""
    date = datetime.fromisoformat(tags["SCENARIO_DATETIME"]).strftime("%Y-%m-%d")
    subtitle = f"scenario {tags['SCENARIO']}, {date}; {crs_text}"
    source = ("synthetic demo data" if tags["SYNTHETIC"] == "true"
              else "contains modified Copernicus Sentinel data")
    return subtitle, f"floodkd {tags['FLOODKD_VERSION']}; {source}"


def grid_north_angle_deg(crs: CRS, x: float, y: float) -> float:
    """Clockwise angle from the map's up (grid north) to true north at (x, y), in degrees."""
    (lon,), (lat,) = transform_points(crs, "EPSG:4326", [x], [y])
    step = 0.01  # degrees of latitude: short enough to be straight on any projection
    (x1,), (y1,) = transform_points("EPSG:4326", crs, [lon], [min(lat + step, 89.99)])
    return float(np.degrees(np.arctan2(x1 - x, y1 - y)))


def quicklook_figure(
    panels: Sequence[PanelData],
    *,
    title: str,
    bounds: tuple[float, float, float, float],
    crs_text: str,
    north_angle_deg: float,
    tags: Mapping[str, str],
) -> Figure:
    """The quicklook of ``panels`` (same grid, ``bounds`` in metres) as a matplotlib Figure."""
    left, bottom, right, top = bounds
    rows, cols = panels[0].values.shape
    # a map about 4.6 inches wide, beside its colour bar or legend
    fig = Figure(figsize=(6.4 * len(panels), 4.6 * rows / cols + 1.2), dpi=100,
                 layout="constrained")  # room for the titles, colour bar and legends
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, data in zip(axes, panels, strict=True):
        if isinstance(data.panel, RampPanel):
            _draw_ramp(fig, ax, data, bounds)
        else:
            _draw_flags(ax, data, bounds)
        _km_ticks(ax)
        _scale_bar(ax, left, right, bottom, top)
        _north_arrow(ax, left, right, bottom, top, north_angle_deg)
        ax.set_title(data.panel.label, fontsize=10)
    subtitle, credit = map_caption(tags, crs_text)
    fig.suptitle(f"{tags['REGION']}: {title}\n{subtitle}", fontsize=11)
    fig.supxlabel(credit, x=0.99, ha="right", fontsize=7, color="0.35")
    return fig


def write_quicklook(
    png_path: str | Path,
    panels: Sequence[RampPanel | FlagPanel],
    *,
    title: str,
    max_px: int = 800,
) -> Path:
    """Render ``panels`` (rasters of one projected grid in metres) as one PNG.

    Every raster is read at the first one's ``overview_shape``: a map larger than ``max_px``
    across is drawn from one of its overviews, never read at full resolution. The title,
    date, CRS and credit come from the first raster's tags (see ``CAPTION_TAGS``).
    """
    png_path = Path(png_path)
    with rasterio.open(panels[0].cog_path) as src:
        bounds, crs, tags = tuple(src.bounds), src.crs, src.tags()
        _check_readable(panels[0].cog_path, crs, tags)
        grid, out_shape = (src.height, src.width), overview_shape(src, max_px)
    data = [_read_panel(panel, grid, out_shape) for panel in panels]
    left, bottom, right, top = bounds
    epsg = crs.to_epsg()
    crs_text = f"EPSG:{epsg}" if epsg else crs.to_string()
    fig = quicklook_figure(
        data, title=title, bounds=bounds, crs_text=crs_text, tags=tags,
        north_angle_deg=grid_north_angle_deg(crs, (left + right) / 2, (bottom + top) / 2))
    with atomic_path(png_path) as tmp:
        # the layout runs in the draw that finds the tight box; matplotlib turns it off for
        # the draw that renders (checked by the tests: one layout pass per quicklook)
        fig.savefig(tmp, format="png", bbox_inches="tight")
    return png_path


def overview_shape(src: rasterio.io.DatasetReader, max_px: int) -> tuple[int, int]:
    """(rows, cols) to read ``src`` at for a picture at most ``max_px`` across: its own
    shape if that fits, else the shape of its finest overview that fits (GDAL then hands
    over the overview's pixels as stored), else ``max_px`` across (GDAL reads the nearest
    overview and resamples it)."""
    if max(src.height, src.width) <= max_px:
        return src.height, src.width
    for factor in sorted(src.overviews(1)):
        # GDAL rounds an overview's size up (DIV_ROUND_UP in its overview builders)
        shape = (-(-src.height // factor), -(-src.width // factor))
        if max(shape) <= max_px:
            return shape
    shrink = max(src.height, src.width) / max_px
    return max(int(src.height / shrink), 1), max(int(src.width / shrink), 1)


def _read_panel(panel: RampPanel | FlagPanel, grid: tuple[int, int],
                out_shape: tuple[int, int]) -> PanelData:
    """A panel's band (and a ramp panel's overlay) at ``out_shape``, refused unless its
    raster has the quicklook's ``grid`` shape."""
    with rasterio.open(panel.cog_path) as src:
        _check_grid(panel.cog_path, src, grid)
        values = src.read(panel.band, out_shape=out_shape, masked=True)
        colours = src.colormap(panel.band) if isinstance(panel, FlagPanel) else {}
    overlay = None
    if isinstance(panel, RampPanel) and panel.overlay is not None:
        with rasterio.open(panel.overlay.cog_path) as src:
            _check_grid(panel.overlay.cog_path, src, grid)
            overlay = src.read(panel.overlay.band, out_shape=out_shape)
    return PanelData(panel, values, colours, overlay)


def _check_readable(path: Path, crs: CRS | None, tags: Mapping[str, str]) -> None:
    if crs is None or not crs.is_projected:
        raise InputError(path, f"the map's CRS is {crs}, not a projected one in metres",
                         "write the map on the region's projected (UTM) grid")
    missing = [tag for tag in CAPTION_TAGS if tag not in tags]
    if missing:
        raise InputError(path, f"the map lacks the tags {', '.join(missing)}",
                         "write it with floodkd.predict.write_scenario_maps")


def _check_grid(path: Path, src: rasterio.io.DatasetReader, grid: tuple[int, int]) -> None:
    if (src.height, src.width) != grid:
        raise InputError(path, f"is {src.height} x {src.width} px, the quicklook's first "
                         f"map {grid[0]} x {grid[1]} px",
                         "write both with floodkd.predict.write_scenario_maps")


def _draw_ramp(fig: Figure, ax, data: PanelData,
               bounds: tuple[float, float, float, float]) -> None:
    left, bottom, right, top = bounds
    panel = data.panel
    cmap = LinearSegmentedColormap.from_list("ramp", list(panel.ramp)).with_extremes(
        bad=NODATA_COLOUR)
    image = ax.imshow(data.values, cmap=cmap, vmin=panel.value_range[0],
                      vmax=panel.value_range[1], extent=(left, right, bottom, top),
                      interpolation="nearest")
    fig.colorbar(image, ax=ax, label=panel.label, shrink=0.8)
    handles = []
    if data.overlay is not None:
        # RGBA, transparent where the value is none of the overlay's classes
        rgba = np.zeros((*data.overlay.shape, 4))
        for value, label, colour in panel.overlay.classes:
            drawn = data.overlay == value
            if drawn.any():
                rgba[drawn] = (*(c / 255 for c in hex_rgb(colour)), 1.0)
                handles.append(Patch(facecolor=colour, edgecolor="0.5", label=label))
        ax.imshow(rgba, extent=(left, right, bottom, top), interpolation="nearest")
    handles.append(Patch(facecolor=NODATA_COLOUR, edgecolor="0.5", label=NODATA_LABEL))
    ax.legend(handles=handles, loc="lower right", fontsize=7, framealpha=0.8)


def _draw_flags(ax, data: PanelData, bounds: tuple[float, float, float, float]) -> None:
    """Flag sums in the raster's colour table, with a legend of the sums present."""
    left, bottom, right, top = bounds
    present = [int(v) for v in np.unique(data.values.compressed())]
    colour_of = {v: tuple(c / 255 for c in data.colours.get(v, (128, 128, 128, 255)))
                 for v in present}
    # index image: 0 = nodata, i + 1 = present[i]
    index = np.zeros(data.values.shape, dtype=np.uint8)
    for i, value in enumerate(present):
        index[(data.values.data == value) & ~np.ma.getmaskarray(data.values)] = i + 1
    cmap = ListedColormap([NODATA_COLOUR] + [colour_of[v] for v in present])
    ax.imshow(index, cmap=cmap, vmin=0, vmax=len(present), extent=(left, right, bottom, top),
              interpolation="nearest")
    handles = [Patch(facecolor=colour_of[v], edgecolor="0.5",
                     label=f"{v}: {data.panel.label_of(v)}") for v in present]
    handles.append(Patch(facecolor=NODATA_COLOUR, edgecolor="0.5", label=NODATA_LABEL))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7,
              title="flag sum: inputs", title_fontsize=7)


def _km_ticks(ax) -> None:
    """Easting/northing ticks of the map's CRS, labelled in km."""
    km = FuncFormatter(lambda value, _: f"{value / 1000:g}")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(4, steps=[1, 2, 5, 10]))
        axis.set_major_formatter(km)
    ax.tick_params(labelsize=7)
    ax.set_xlabel("easting (km)", fontsize=8)
    ax.set_ylabel("northing (km)", fontsize=8)


def _scale_bar(ax, left: float, right: float, bottom: float, top: float) -> None:
    """A black-and-white bar in the lower left, labelled in m or km."""
    length = nice_scale_length_m(right - left)
    x0 = left + 0.05 * (right - left)
    y0 = bottom + 0.05 * (top - bottom)
    height = 0.015 * (top - bottom)
    ax.add_patch(Rectangle((x0, y0), length / 2, height, facecolor="black"))
    ax.add_patch(Rectangle((x0 + length / 2, y0), length / 2, height, facecolor="white",
                           edgecolor="black"))
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    ax.text(x0 + length / 2, y0 + 2 * height, label, ha="center", va="bottom", fontsize=8)


def _north_arrow(ax, left: float, right: float, bottom: float, top: float,
                 angle_deg: float) -> None:
    """An arrow to true north in the upper right (equal aspect, so angles are true)."""
    length = 0.08 * (top - bottom)
    tip_x = right - 0.07 * (right - left)
    tip_y = top - 0.05 * (top - bottom)
    angle = np.radians(angle_deg)
    tail = (tip_x - length * np.sin(angle), tip_y - length * np.cos(angle))
    ax.annotate("", xy=(tip_x, tip_y), xytext=tail,
                arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.5})
    ax.text(tail[0], tail[1] - 0.01 * (top - bottom), "N", ha="center", va="top",
            fontsize=9, fontweight="bold")
