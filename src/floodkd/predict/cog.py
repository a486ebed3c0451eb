"""Stream row bands into Cloud-Optimized GeoTIFFs with per-band overview resampling.

Each band is first written, band of rows by band of rows, into its own tiled, uncompressed
GeoTIFF in a scratch folder (raw bytes: the final COG's compression is the only one), and
gets its internal overviews from GDAL with the resampling that fits it (average for
continuous values, nearest for bit flags). A VRT then stacks the bands and
carries their names, units, scale/offset, a colour table and the provenance tags, and GDAL's
GTiff driver copies it, overviews included (``COPY_SRC_OVERVIEWS``), into the final COG. rio-cogeo
and GDAL's COG driver only know one resampling for all bands, hence the per-band intermediates;
the GTiff driver rather than the COG driver because only it writes band-interleaved files with
GDAL < 3.11 (reading one band then decompresses only that band). The result is a valid COG
(tiled, overviews, IFDs before the data). The final file appears atomically, only after the COG
is complete.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.shutil import copy as gdal_copy
from rasterio.windows import Window as RioWindow
from rio_cogeo.utils import get_maximum_overview_level

from floodkd.atomic import atomic_path, scratch_dir
from floodkd.predict.bands import BandSpec
from floodkd.predict.style import hex_rgb

__all__ = ["BandSpec", "NODATA", "BYTE_NODATA", "CogBandWriter", "cog_band_writer"]

NODATA = -9999.0  # finite, so every GIS honours it (NaN nodata trips some tools)
BYTE_NODATA = 255  # nodata of uint8 (class and flag) layers
COMPRESSION = "DEFLATE"
# zlib's fast level: writes a third quicker than GDAL's default 6 for files about 1% larger
# (the demo's observed maps: 492 against 487 kB; benchmarks/predict.py at 2048 px)
DEFLATE_LEVEL = 3
# the TIFF predictor that fits the data type: floating point (3) or horizontal differencing (2)
PREDICTORS = {"float32": 3, "uint8": 2}
VRT_TYPES = {"float32": "Float32", "uint8": "Byte"}
MIN_VRT_OVERVIEW_PX = 128


class CogBandWriter:
    """Receives (row_off, {band name: (rows, width) array}) for every band of rows."""

    def __init__(self, datasets: Mapping[str, rasterio.io.DatasetWriter], width: int,
                 dtype: str = "float32", nodata: float = NODATA):
        self._datasets = datasets
        self._width = width
        self._dtype = dtype
        self._nodata = nodata
        self.rows_written = 0

    def write_rows(self, row_off: int, bands: Mapping[str, np.ndarray]) -> None:
        """Write rows ``row_off .. row_off + n`` of every band; NaN becomes nodata (float
        arrays may be given for integer files: NaN marks their nodata too; integer arrays
        are written as they are)."""
        for name, dataset in self._datasets.items():
            values = np.asarray(bands[name])
            if values.ndim != 2 or values.shape[1] != self._width:
                raise ValueError(
                    f"band {name}: rows must be (n, {self._width}), got {values.shape}"
                )
            if np.issubdtype(values.dtype, np.floating):
                values = np.where(np.isfinite(values), values, self._nodata)
            values = values.astype(self._dtype, copy=False)
            window = RioWindow(0, row_off, self._width, values.shape[0])
            dataset.write(values, 1, window=window)
        self.rows_written += next(iter(bands.values())).shape[0]


@contextmanager
def cog_band_writer(
    final_path: str | Path,
    bands: Sequence[BandSpec],
    *,
    crs: str,
    transform: Affine,
    shape: tuple[int, int],
    tags: Mapping[str, str],
    blocksize: int = 512,
    dtype: str = "float32",
    colours: Mapping[int, str] | None = None,
) -> Iterator[CogBandWriter]:
    """Open a streaming writer for a COG at ``final_path`` (written when the block ends).

    ``crs`` is any string GDAL understands (WKT, ``EPSG:xxxx``). ``dtype`` is float32 (nodata
    -9999) or uint8 (nodata 255); ``colours`` (value -> hex colour) embeds a colour table in a
    one-band uint8 file. Nothing exists at ``final_path`` unless the block completes and the
    COG is written: an exception inside the block (e.g. inference failing halfway) removes all
    scratch files.
    """
    final_path = Path(final_path)
    if dtype not in VRT_TYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {sorted(VRT_TYPES)}")
    if colours and (dtype != "uint8" or len(bands) != 1):
        raise ValueError("a colour table needs a one-band uint8 file")
    nodata = NODATA if dtype == "float32" else BYTE_NODATA
    rows, cols = shape
    profile = {
        "driver": "GTiff", "width": cols, "height": rows, "count": 1, "dtype": dtype,
        "crs": crs, "transform": transform, "nodata": nodata, "tiled": True,
        "blockxsize": blocksize, "blockysize": blocksize, "BIGTIFF": "IF_SAFER",
        # scratch only, uncompressed: the final COG's DEFLATE is then the one compression
        # of the data (compressing the scratch too, even with ZSTD level 1, cost as much
        # again and its decompression more); it needs the raw bytes on disk for a while
        "compress": "NONE",
    }
    with scratch_dir(final_path) as scratch:
        band_paths = {band.name: scratch / f"{band.name}.tif" for band in bands}
        with ExitStack() as stack:
            datasets = {
                name: stack.enter_context(rasterio.open(path, "w", **profile))
                for name, path in band_paths.items()
            }
            writer = CogBandWriter(datasets, cols, dtype, nodata)
            yield writer
        if writer.rows_written != rows:
            raise RuntimeError(f"{final_path}: wrote {writer.rows_written} of {rows} rows")
        factors = _overview_factors(rows, cols, blocksize)
        for band in bands:
            with rasterio.open(band_paths[band.name], "r+") as dataset:
                dataset.build_overviews(factors, Resampling[band.overview_resampling])
        vrt_path = scratch / "stack.vrt"
        vrt_path.write_text(_stack_vrt(bands, band_paths, crs, transform, shape, tags,
                                       dtype, nodata, colours or {}))
        with atomic_path(final_path) as tmp_cog:
            gdal_copy(
                str(vrt_path), str(tmp_cog), driver="GTiff", TILED="YES", BLOCKXSIZE=blocksize,
                BLOCKYSIZE=blocksize, INTERLEAVE="BAND", COPY_SRC_OVERVIEWS="YES",
                COMPRESS=COMPRESSION, ZLEVEL=DEFLATE_LEVEL, PREDICTOR=PREDICTORS[dtype],
                BIGTIFF="IF_SAFER", NUM_THREADS="ALL_CPUS",
            )
            with rasterio.open(tmp_cog) as written:
                if written.overviews(1) != factors:  # the VRT hid an overview level
                    raise RuntimeError(f"{final_path}: overviews {written.overviews(1)} "
                                       f"instead of {factors}")


def _overview_factors(rows: int, cols: int, blocksize: int) -> list[int]:
    """Powers of two until the coarsest overview fits in about one block (as rio-cogeo does).

    Levels whose smaller side falls under ``MIN_VRT_OVERVIEW_PX`` are left out: GDAL's VRT
    exposes no virtual overview smaller than that, so the COG driver would not see them.
    With the default 512 px blocks the coarsest level is >= 256 px and nothing is lost.
    """
    levels = range(1, get_maximum_overview_level(cols, rows, blocksize) + 1)
    return [2**level for level in levels if min(rows, cols) // 2**level >= MIN_VRT_OVERVIEW_PX]


def _stack_vrt(
    bands: Sequence[BandSpec],
    band_paths: Mapping[str, Path],
    crs: str,
    transform: Affine,
    shape: tuple[int, int],
    tags: Mapping[str, str],
    dtype: str = "float32",
    nodata: float = NODATA,
    colours: Mapping[int, str] = {},  # noqa: B006 (read only)
) -> str:
    """A VRT stacking the single-band files, with band names, units, scale/offset, tags and
    the colour table of a paletted band.

    The GTiff driver copies this metadata into the TIFF's GDAL_METADATA tag and the colour
    table into the TIFF's own colour map.
    """
    rows, cols = shape
    geotransform = ",".join(repr(float(v)) for v in transform.to_gdal())
    dataset_tags = "".join(
        f"<MDI key={quoteattr(str(key))}>{escape(str(value))}</MDI>" for key, value in tags.items()
    )
    band_xml = []
    for index, band in enumerate(bands, start=1):
        band_tags = {
            "long_name": band.description,
            "units": band.unit,
            "overview_resampling": band.overview_resampling,
        }
        band_md = "".join(
            f"<MDI key={quoteattr(k)}>{escape(v)}</MDI>" for k, v in band_tags.items()
        )
        band_xml.append(
            f'<VRTRasterBand dataType="{VRT_TYPES[dtype]}" band="{index}">'
            f"<Description>{escape(band.name)}</Description>"
            f"<Metadata>{band_md}</Metadata>"
            f"<NoDataValue>{nodata!r}</NoDataValue>"
            f"{_colour_table_xml(colours)}"
            f"<UnitType>{escape(band.unit)}</UnitType>"
            f"<Offset>{band.offset!r}</Offset><Scale>{band.scale!r}</Scale>"
            f"<SimpleSource><SourceFilename relativeToVRT=\"0\">"
            f"{escape(str(band_paths[band.name]))}</SourceFilename><SourceBand>1</SourceBand>"
            f'<SrcRect xOff="0" yOff="0" xSize="{cols}" ySize="{rows}"/>'
            f'<DstRect xOff="0" yOff="0" xSize="{cols}" ySize="{rows}"/></SimpleSource>'
            "</VRTRasterBand>"
        )
    return (
        f'<VRTDataset rasterXSize="{cols}" rasterYSize="{rows}">'
        f"<SRS>{escape(crs)}</SRS><GeoTransform>{geotransform}</GeoTransform>"
        f"<Metadata>{dataset_tags}</Metadata>{''.join(band_xml)}</VRTDataset>"
    )


def _colour_table_xml(colours: Mapping[int, str]) -> str:
    """A VRT colour table of 256 entries: the given values' colours, transparent elsewhere."""
    if not colours:
        return ""
    entries = []
    for value in range(256):
        hex_colour = colours.get(value)
        if hex_colour is None:
            entries.append('<Entry c1="0" c2="0" c3="0" c4="0"/>')
            continue
        red, green, blue = hex_rgb(hex_colour)
        entries.append(f'<Entry c1="{red}" c2="{green}" c3="{blue}" c4="255"/>')
    return f"<ColorInterp>Palette</ColorInterp><ColorTable>{''.join(entries)}</ColorTable>"
