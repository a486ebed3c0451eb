"""Quicklooks: PNGs of a sensible size whose title, CRS, date and credit are the map's tags,
drawn from an overview of a large map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from matplotlib.layout_engine import ConstrainedLayoutEngine
from PIL import Image
from rasterio.crs import CRS

from floodkd.errors import InputError
from floodkd.predict import quicklook
from floodkd.predict.cog import BandSpec, cog_band_writer
from floodkd.predict.quicklook import (
    NODATA_COLOUR,
    NODATA_LABEL,
    ClassOverlay,
    FlagPanel,
    PanelData,
    RampPanel,
    grid_north_angle_deg,
    map_caption,
    overview_shape,
    quicklook_figure,
    write_quicklook,
)

RAMP = ((0.0, "#ffffff"), (1.0, "#08306b"))
SEA_COLOUR, REFERENCE_COLOUR = "#80cdc1", "#01665e"
WATER = [(3, "sea", SEA_COLOUR), (2, "reference water", REFERENCE_COLOUR),
         (4, "low confidence", "#fdae61")]
TAGS = {"REGION": "mekong-demo", "SCENARIO": "observed",
        "SCENARIO_DATETIME": "2024-01-05T06:00:00+00:00", "FLOODKD_VERSION": "0.3.1",
        "SYNTHETIC": "true"}
# 200 x 300 px of 10 m in UTM 48N
TRANSFORM = Affine(10.0, 0.0, 400000.0, 0.0, -10.0, 1500000.0)


def _write(path: Path, values: np.ndarray, *, nodata, tags=TAGS, colours=None,
           crs="EPSG:32648") -> Path:
    profile = {"driver": "GTiff", "height": values.shape[0], "width": values.shape[1],
               "count": 1, "dtype": values.dtype.name, "crs": crs, "transform": TRANSFORM,
               "nodata": nodata}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values, 1)
        dst.update_tags(**tags)
        if colours:
            dst.write_colormap(1, colours)
    return path


@pytest.fixture
def rasters(tmp_path):
    rows, cols = np.mgrid[0:200, 0:300]
    prob = (cols / 300.0).astype("float32")
    prob[:, :20] = np.nan  # outside the region
    flags = np.where(cols < 150, 10, 14).astype("uint8")
    flags[:, :20] = 255
    colours = {10: (200, 0, 0, 255), 14: (0, 0, 200, 255)}
    return (_write(tmp_path / "p.tif", prob, nodata=np.nan),
            _write(tmp_path / "f.tif", flags, nodata=255, colours=colours))


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]


def test_caption_says_scenario_date_crs_and_credit():
    assert map_caption(TAGS, "EPSG:32648") == (
        "scenario observed, 2024-01-05; EPSG:32648", "floodkd 0.3.1; synthetic demo data")
    real = TAGS | {"SYNTHETIC": "false", "SCENARIO": "rcp85"}
    assert map_caption(real, "EPSG:32631") == (
        "scenario rcp85, 2024-01-05; EPSG:32631",
        "floodkd 0.3.1; contains modified Copernicus Sentinel data")


def test_north_is_up_on_the_central_meridian_and_tilted_off_it():
    utm48 = CRS.from_epsg(32648)  # central meridian 105 E
    assert grid_north_angle_deg(utm48, 500000.0, 1500000.0) == pytest.approx(0.0, abs=1e-6)
    # west of the central meridian in the north, true north lies clockwise of grid north
    west = grid_north_angle_deg(utm48, 300000.0, 1500000.0)
    assert 0.1 < west < 1.0
    assert grid_north_angle_deg(utm48, 700000.0, 1500000.0) == pytest.approx(-west, rel=0.01)


def test_figure_draws_tags_ticks_legends_and_flag_sums(rasters):
    prob_path, flag_path = rasters
    values = np.ma.masked_invalid(np.linspace(0, 1, 12, dtype="float32").reshape(3, 4))
    values[0, 0] = np.ma.masked
    flags = np.ma.masked_equal(np.array([[10, 14, 14, 255]] * 3, dtype="uint8"), 255)
    ramp = RampPanel(prob_path, 1, "std of P(flood)", (0.0, 0.5), RAMP)
    panels = [PanelData(ramp, values, {}),
              PanelData(FlagPanel(flag_path, 1, "inputs used", lambda v: f"sum{v}"), flags,
                        {10: (200, 0, 0, 255), 14: (0, 0, 200, 255)})]
    fig = quicklook_figure(panels, title="uncertainty", bounds=(400000.0, 1498000.0,
                           403000.0, 1500000.0), crs_text="EPSG:32648", north_angle_deg=0.5,
                           tags=TAGS)
    texts = _texts(fig)
    assert fig._suptitle.get_text() == (
        "mekong-demo: uncertainty\nscenario observed, 2024-01-05; EPSG:32648")
    assert "floodkd 0.3.1; synthetic demo data" in texts
    ramp_ax, flag_ax = fig.axes[:2]
    assert [ramp_ax.get_title(), flag_ax.get_title()] == ["std of P(flood)", "inputs used"]
    assert ramp_ax.get_xlabel() == "easting (km)" and ramp_ax.get_ylabel() == "northing (km)"
    fig.canvas.draw()  # tick labels exist once drawn
    assert ramp_ax.get_xlim() == (400000.0, 403000.0)  # the map's CRS, in metres
    for ticks, labels in ((ramp_ax.get_xticks(), ramp_ax.get_xticklabels()),
                          (ramp_ax.get_yticks(), ramp_ax.get_yticklabels())):
        assert [t.get_text() for t in labels] == [f"{v / 1000:g}" for v in ticks]  # in km
    assert "N" in texts and "500 m" in texts  # north arrow, scale bar
    ramp_legend = [t.get_text() for t in ramp_ax.get_legend().get_texts()]
    flag_legend = [t.get_text() for t in flag_ax.get_legend().get_texts()]
    assert ramp_legend == [NODATA_LABEL]
    assert flag_legend == ["10: sum10", "14: sum14", NODATA_LABEL]
    colours = [tuple(p.get_facecolor()) for p in flag_ax.get_legend().get_patches()]
    assert colours[:2] == [(200 / 255, 0.0, 0.0, 1.0), (0.0, 0.0, 200 / 255, 1.0)]


def test_write_quicklook_writes_a_small_png_of_two_panels(rasters, tmp_path):
    prob_path, flag_path = rasters
    one = write_quicklook(tmp_path / "one.png",
                          [RampPanel(prob_path, 1, "P(flood)", (0.0, 1.0), RAMP)],
                          title="flood probability")
    two = write_quicklook(tmp_path / "two.png",
                          [RampPanel(prob_path, 1, "std", (0.0, 0.5), RAMP),
                           FlagPanel(flag_path, 1, "inputs used", str)], title="uncertainty")
    for png in (one, two):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert 10_000 < png.stat().st_size < 400_000
    with Image.open(one) as a, Image.open(two) as b:
        assert 400 <= a.width <= 1000 and 300 <= a.height <= 900
        assert b.width > 1.6 * a.width  # two panels side by side
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["one.png", "two.png"]


def test_write_quicklook_refuses_maps_without_the_caption_tags(tmp_path):
    bare = _write(tmp_path / "bare.tif", np.zeros((10, 10), "float32"), nodata=np.nan,
                  tags={"REGION": "x"})
    with pytest.raises(InputError, match="bare.tif.*SCENARIO, SCENARIO_DATETIME"):
        write_quicklook(tmp_path / "q.png", [RampPanel(bare, 1, "P", (0.0, 1.0), RAMP)],
                        title="t")
    assert not (tmp_path / "q.png").exists()


@pytest.fixture
def extent_classes(tmp_path) -> Path:
    """Classes on the grid of ``rasters``: sea in the east (cols 240..), reference water in a
    block of the north, no low confidence, nodata where P is."""
    rows, cols = np.mgrid[0:200, 0:300]
    classes = np.where(cols >= 240, 3, 0).astype("uint8")
    classes[(rows < 40) & (cols >= 100) & (cols < 160)] = 2
    classes[:, :20] = 255
    return _write(tmp_path / "extent.tif", classes, nodata=255)


def _pixels_of(png: Path, colour: str) -> np.ndarray:
    with Image.open(png) as image:
        rgb = np.asarray(image.convert("RGB"))
    return np.all(rgb == tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5)), axis=-1)


def test_overlay_draws_sea_and_reference_water_over_the_ramp_with_legend_entries(
        rasters, extent_classes, tmp_path):
    prob_path, _ = rasters
    plain = write_quicklook(tmp_path / "plain.png",
                            [RampPanel(prob_path, 1, "P(flood)", (0.0, 1.0), RAMP)], title="P")
    overlaid = write_quicklook(tmp_path / "overlaid.png", [RampPanel(
        prob_path, 1, "P(flood)", (0.0, 1.0), RAMP, ClassOverlay(extent_classes, 1, WATER))],
        title="P")
    sea, plain_sea = _pixels_of(overlaid, SEA_COLOUR), _pixels_of(plain, SEA_COLOUR)
    reference = _pixels_of(overlaid, REFERENCE_COLOUR)
    # a fifth of the map's width is sea, about 460 x 300 px drawn: thousands of pixels, not
    # just the legend's patch; without the overlay the ramp has none of its colour
    assert sea.sum() > 15_000 and plain_sea.sum() == 0
    assert reference.sum() > 3_000 and _pixels_of(plain, REFERENCE_COLOUR).sum() == 0
    sea_cols = np.flatnonzero(sea.sum(axis=0) > 100)  # the map's columns drawn as sea
    reference_cols = np.flatnonzero(reference.sum(axis=0) > 30)
    assert sea_cols.min() > reference_cols.max()  # sea east of the reference water

    values = np.ma.masked_invalid(np.full((200, 300), 0.5, "float32"))
    with rasterio.open(extent_classes) as src:
        overlay = src.read(1)
    panel = RampPanel(prob_path, 1, "P(flood)", (0.0, 1.0), RAMP,
                      ClassOverlay(extent_classes, 1, WATER))
    fig = quicklook_figure([PanelData(panel, values, {}, overlay)], title="P",
                           bounds=(400000.0, 1498000.0, 403000.0, 1500000.0),
                           crs_text="EPSG:32648", north_angle_deg=0.0, tags=TAGS)
    legend = fig.axes[0].get_legend()
    # the classes present, in the overlay's order; low confidence is absent, so not listed
    assert [t.get_text() for t in legend.get_texts()] == ["sea", "reference water",
                                                          NODATA_LABEL]
    assert [p.get_facecolor()[:3] for p in legend.get_patches()][:2] == [
        tuple(int(c[i : i + 2], 16) / 255 for i in (1, 3, 5))
        for c in (SEA_COLOUR, REFERENCE_COLOUR)]


def test_an_overlay_of_another_grid_is_refused(rasters, tmp_path):
    prob_path, _ = rasters
    other = _write(tmp_path / "other.tif", np.zeros((20, 30), "uint8"), nodata=255)
    with pytest.raises(InputError, match="other.tif.*20 x 30 px, the quicklook's first map 200"):
        write_quicklook(tmp_path / "q.png", [RampPanel(
            prob_path, 1, "P", (0.0, 1.0), RAMP, ClassOverlay(other, 1, WATER))], title="t")
    assert not (tmp_path / "q.png").exists()


def _cog(path: Path, values: np.ndarray, band: BandSpec, dtype: str) -> Path:
    """``values`` as a COG with overviews, as the maps are written (blocks of 128 px)."""
    with cog_band_writer(path, [band], crs="EPSG:32648", transform=TRANSFORM,
                         shape=values.shape, tags=TAGS, blocksize=128, dtype=dtype) as writer:
        writer.write_rows(0, {band.name: values})
    return path


def test_a_large_map_is_drawn_from_an_overview_in_its_colours(tmp_path, monkeypatch):
    """512 x 768 px with max_px 300: drawn from the overview of a quarter of the size (its
    pixels as stored), P = 0 and P = 1 in the ramp's end colours, sea over them in its own,
    with one layout pass."""
    rows, cols = np.mgrid[0:512, 0:768]
    prob = np.where(cols < 384, 0.0, 1.0).astype("float32")
    prob[:, :64] = np.nan  # outside the region
    classes = np.where((rows >= 256) & (cols >= 640), 3, 0).astype("uint8")  # sea, SE corner
    prob_path = _cog(tmp_path / "p.tif", prob, BandSpec("flood_probability", "1", "P"),
                     "float32")
    extent_path = _cog(tmp_path / "e.tif", classes,
                       BandSpec("extent", "class", "classes", overview_resampling="nearest"),
                       "uint8")
    with rasterio.open(prob_path) as src:
        shape = overview_shape(src, 300)
    with rasterio.open(prob_path, overview_level=1) as overview:  # factor 4
        assert shape == (overview.height, overview.width) == (128, 192)
        stored = overview.read(1, masked=True)

    drawn, layouts = [], []
    figure = quicklook.quicklook_figure
    monkeypatch.setattr(quicklook, "quicklook_figure",
                        lambda panels, **kw: drawn.extend(panels) or figure(panels, **kw))
    execute = ConstrainedLayoutEngine.execute
    monkeypatch.setattr(ConstrainedLayoutEngine, "execute",
                        lambda self, fig: layouts.append(fig) or execute(self, fig))
    ends = ((0.0, "#e31a1c"), (1.0, "#1f78b4"))  # no white: the page around is white
    png = write_quicklook(tmp_path / "q.png", [RampPanel(
        prob_path, 1, "P(flood)", (0.0, 1.0), ends, ClassOverlay(extent_path, 1, WATER))],
        title="P", max_px=300)
    assert len(layouts) == 1
    (panel,) = drawn
    assert panel.values.shape == panel.overlay.shape == (128, 192)
    np.testing.assert_array_equal(panel.values, stored)  # the overview, not resampled
    np.testing.assert_array_equal(panel.values.mask, stored.mask)
    assert set(np.unique(panel.overlay)) == {0, 3}
    # about 460 x 300 px of map: 0, 1, nodata and sea each cover thousands of pixels
    dry, wet = _pixels_of(png, "#e31a1c"), _pixels_of(png, "#1f78b4")
    nodata, sea = _pixels_of(png, NODATA_COLOUR), _pixels_of(png, SEA_COLOUR)
    assert min(dry.sum(), wet.sum(), nodata.sum(), sea.sum()) > 3_000
    columns = [np.flatnonzero(mask.sum(axis=0) > 100) for mask in (nodata, dry, wet, sea)]
    for west, east in zip(columns, columns[1:], strict=False):
        assert west.mean() < east.mean()  # nodata, P 0, P 1, sea from west to east
