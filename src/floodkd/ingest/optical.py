"""Optical ingest (Sentinel-2 L2A/L1C style): DN -> reflectance, cloud/shadow masks, indices.

Output (docs/data-contracts.md, "Ingest"): ``<time>_reflectance.tif`` (float32, bands present
of B02 B03 B04 B08 B11 B12, then NDWI and MNDWI; reflectance 0..1, NaN nodata),
``<time>_masks.tif`` (uint8 clear, cloud, shadow as 0/1, 255 nodata) and ``scenes.csv``.
Clouds come from the SCL band where the file has one, else from a spectral test.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from floodkd.errors import InputError
from floodkd.ingest.rasters import (
    Raster,
    check_unique_times,
    input_files,
    nodata_mask,
    parse_time,
    read_raster,
    time_from_tags,
    time_iso,
    time_stamp,
    write_csv,
    write_geotiff,
)
from floodkd.ingest.times import listed_time
from floodkd.region import region_outline

__all__ = [
    "ingest",
    "find_bands",
    "dn_to_reflectance",
    "scl_masks",
    "spectral_cloud",
    "normalised_difference",
    "DnScaling",
]

log = logging.getLogger(__name__)

REFLECTANCE_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
REQUIRED_BANDS = ("B02", "B03", "B04", "B08")  # NDWI and the visible/NIR cloud tests need these
SPECTRAL_TEST_BANDS = REQUIRED_BANDS + ("B11",)
MASK_NAMES = ("clear", "cloud", "shadow")
MASK_NODATA = 255

# Sentinel-2 L2A Scene Classification (SCL) values (ESA, Sen2Cor product specification).
SCL_NODATA = (0, 1)  # no data; saturated or defective: no usable reflectance
SCL_SHADOW = (3,)  # cloud shadows
SCL_CLOUD = (8, 9, 10)  # cloud medium and high probability, thin cirrus
SCL_CLEAR = (2, 4, 5, 6, 7, 11)  # dark area, vegetation, bare soil, water, unclassified, snow

# Since processing baseline 04.00 (25 Jan 2022) L1C/L2A DN carry an offset of -1000:
# reflectance = (DN + offset) / quantification (ESA S2 MSI product notice).
BASELINE_WITH_OFFSET = 400
BASELINE_OFFSET_DN = -1000.0
QUANTIFICATION_DN = 10000.0
_OFFSET_TAGS = ("BOA_ADD_OFFSET", "RADIO_ADD_OFFSET")
_QUANTIFICATION_TAGS = ("QUANTIFICATION_VALUE", "BOA_QUANTIFICATION_VALUE",
                        "L2A_BOA_QUANTIFICATION_VALUE", "L1C_TOA_QUANTIFICATION_VALUE")
_S2_NAME_TIME = re.compile(r"MSIL(?:1C|2A)_(\d{8}T\d{6})_", re.I)
_S2_BASELINE = re.compile(r"MSIL(?:1C|2A)_\d{8}T\d{6}_N(\d{4})_", re.I)
_TIME_TAGS = ("ACQUISITION_START_TIME", "PRODUCT_START_TIME",
              "DATATAKE_1_DATATAKE_SENSING_START", "SENSING_TIME")
_FALLBACK_TIME_TAGS = ("TIFFTAG_DATETIME",)  # the file's creation time by definition
# "B02", "b2", "B02_10m", "B8A (865 nm)"; "SCL", "SCL_20m"
_BAND_NAME = re.compile(r"^\s*B0?(\d{1,2})(A?)(?![0-9A-Z])", re.I)
_SCL_NAME = re.compile(r"^\s*SCL(?![0-9A-Z])", re.I)

# Spectral cloud test for files without SCL, after Fmask's potential-cloud-pixel tests
# (Zhu & Woodcock 2012, Remote Sens. Environ. 118:83-94; Zhu et al. 2015, RSE 159:269-277
# for Sentinel-2). Sentinel-2 has no thermal band, so Fmask's temperature test is left out.
# A blue brightness test (as in simple S2 cloud screens) guards bright soil and towns.
CLOUD_MIN_BLUE = 0.2  # clouds are bright in blue; water and vegetation are < 0.1
CLOUD_MIN_SWIR = 0.03  # Fmask basic test: SWIR2 > 0.03 (B11 when B12 is absent)
CLOUD_MAX_NDVI = 0.8  # Fmask basic test
CLOUD_MAX_NDSI = 0.8  # Fmask basic test: snow has NDSI > 0.8, clouds much less
CLOUD_MAX_WHITENESS = 0.7  # Fmask whiteness: flat visible spectrum
CLOUD_HOT_OFFSET = 0.08  # Fmask haze-optimised transform: blue - 0.5 red - 0.08 > 0
CLOUD_MIN_NIR_SWIR1 = 0.75  # Fmask: NIR/SWIR1 > 0.75 rejects bright rock and sand


@dataclass(frozen=True)
class DnScaling:
    """reflectance = DN * gain + bias, and where the rule came from (for the log)."""

    gain: float
    bias: float
    source: str


def find_bands(raster: Raster) -> dict[str, int]:
    """Band index (0-based) of each of B02..B12 and SCL found by band description."""
    found: dict[str, int] = {}
    for index, description in enumerate(raster.descriptions):
        text = description or ""
        match = _BAND_NAME.match(text)
        if match:
            name = f"B{match[1]}A".upper() if match[2] else f"B{int(match[1]):02d}"
        elif _SCL_NAME.match(text):
            name = "SCL"
        else:
            continue
        found.setdefault(name, index)
    missing = [name for name in REQUIRED_BANDS if name not in found]
    if missing:
        described = ", ".join(f"{d!r}" for d in raster.descriptions)
        raise InputError(
            raster.path,
            f"bands {', '.join(missing)} not found (band descriptions: {described})",
            "give each band its Sentinel-2 name as description (B02, B03, B04, B08, B11, "
            "B12, SCL), e.g. with gdal_edit.py or rasterio",
        )
    return found


def _tag_number(raster: Raster, band: int, names: tuple[str, ...]) -> float | None:
    """A numeric tag of ``band`` (band tags first, then dataset tags), else None."""
    band_tags = {key.upper(): value for key, value in raster.band_tags[band].items()}
    for name in names:
        value = band_tags.get(name) or raster.tag(name)
        if value is None:
            continue
        try:
            return float(value)
        except ValueError as error:
            raise InputError(raster.path, f"tag {name}='{value}' is not a number",
                             f"fix or remove the {name} tag") from error
    return None


def dn_scaling(raster: Raster, band: int) -> DnScaling:
    """How to turn ``band``'s values into reflectance.

    In order: BOA/RADIO_ADD_OFFSET and QUANTIFICATION_VALUE tags; a GDAL scale/offset; a
    float band taken as reflectance already; the processing baseline in an S2 file name
    (N0400 and later carry an offset of -1000); otherwise DN / 10000.
    """
    offset = _tag_number(raster, band, _OFFSET_TAGS)
    quantification = _tag_number(raster, band, _QUANTIFICATION_TAGS)
    if offset is not None or quantification is not None:
        q = quantification or QUANTIFICATION_DN
        return DnScaling(1.0 / q, (offset or 0.0) / q, "tags")
    scale, add = raster.scales[band], raster.offsets[band]
    if (scale, add) != (1.0, 0.0):
        return DnScaling(scale, add, "GDAL scale/offset")
    if np.issubdtype(raster.data.dtype, np.floating):
        return DnScaling(1.0, 0.0, "float reflectance")
    baseline = _S2_BASELINE.search(raster.path.name)
    if baseline and int(baseline[1]) >= BASELINE_WITH_OFFSET:
        return DnScaling(1.0 / QUANTIFICATION_DN, BASELINE_OFFSET_DN / QUANTIFICATION_DN,
                         f"baseline N{baseline[1]}")
    return DnScaling(1.0 / QUANTIFICATION_DN, 0.0, "no offset")


def dn_to_reflectance(dn: np.ndarray, scaling: DnScaling, missing: np.ndarray) -> np.ndarray:
    """Reflectance from DN, NaN where ``missing``; small negatives (dark water noise) -> 0."""
    # float32 keeps a full 10980 x 10980 tile of six bands within a few GB
    reflectance = dn.astype(np.float32) * np.float32(scaling.gain) + np.float32(scaling.bias)
    reflectance = np.clip(reflectance, 0.0, None)
    reflectance[missing] = np.nan
    return reflectance


def normalised_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a - b) / (a + b), NaN where the sum is zero or an input is NaN."""
    total = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, (a - b) / total, np.nan)


def scl_masks(scl: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(clear, cloud, shadow, nodata) boolean masks from Sen2Cor SCL classes."""
    nodata = np.isin(scl, SCL_NODATA)
    return np.isin(scl, SCL_CLEAR), np.isin(scl, SCL_CLOUD), np.isin(scl, SCL_SHADOW), nodata


def spectral_cloud(reflectance: dict[str, np.ndarray]) -> np.ndarray:
    """Cloud flag from reflectance alone (Fmask-like tests, see the constants above)."""
    blue, green, red = reflectance["B02"], reflectance["B03"], reflectance["B04"]
    nir, swir1 = reflectance["B08"], reflectance["B11"]
    swir2 = reflectance.get("B12", swir1)
    visible_mean = (blue + green + red) / 3.0
    with np.errstate(divide="ignore", invalid="ignore"):
        whiteness = (np.abs(blue - visible_mean) + np.abs(green - visible_mean)
                     + np.abs(red - visible_mean)) / visible_mean
        nir_swir1 = nir / swir1
    return (
        (blue > CLOUD_MIN_BLUE)
        & (swir2 > CLOUD_MIN_SWIR)
        & (normalised_difference(nir, red) < CLOUD_MAX_NDVI)
        & (normalised_difference(green, swir1) < CLOUD_MAX_NDSI)
        & (whiteness < CLOUD_MAX_WHITENESS)
        & (blue - 0.5 * red - CLOUD_HOT_OFFSET > 0)
        & (nir_swir1 > CLOUD_MIN_NIR_SWIR1)
    )


def scene_time(raster: Raster, times: dict[str, str]) -> datetime:
    """Sensing time from an S2 product name, a time tag, or the config table ``times``
    (TIFF's DateTime, often the export time, only after the table)."""
    match = _S2_NAME_TIME.search(raster.path.name)
    if match:
        return parse_time(match[1])
    tagged = time_from_tags(raster, _TIME_TAGS)
    if tagged is None:
        tagged = listed_time(raster.path, times, "optical")
    if tagged is None:
        tagged = time_from_tags(raster, _FALLBACK_TIME_TAGS)
    if tagged is None:
        raise InputError(
            raster.path,
            "cannot tell its sensing time: the name has no MSIL2A_/MSIL1C_<YYYYmmddTHHMMSS> and "
            f"there is no tag among {', '.join(_TIME_TAGS + _FALLBACK_TIME_TAGS)}",
            f"add it to config inputs.optical.times, e.g. times: {{{raster.path.name}: "
            "'2021-03-04T10:50:00Z'}, keep the ESA product name, or add the tag "
            "ACQUISITION_START_TIME=<ISO 8601 UTC>",
        )
    return tagged


@dataclass(frozen=True)
class Scene:
    """One optical scene after conversion, on its native grid."""

    reflectance: dict[str, np.ndarray]  # band name -> reflectance 0..1, NaN nodata
    clear: np.ndarray
    cloud: np.ndarray
    shadow: np.ndarray
    nodata: np.ndarray
    cloud_test: str  # "SCL" or "spectral"


def convert_scene(raster: Raster, product: str = "L2A") -> Scene:
    """Reflectance, masks and the cloud test used, for one optical raster.

    ``product`` "L1C" (top of atmosphere, no scene classification) always uses the
    spectral test; "L2A" uses the SCL band when the file has one.
    """
    bands = find_bands(raster)
    has_scl = product == "L2A" and "SCL" in bands
    if not has_scl:
        missing = [name for name in SPECTRAL_TEST_BANDS if name not in bands]
        if missing:
            raise InputError(
                raster.path,
                f"no SCL band, and the spectral cloud test also needs {', '.join(missing)}",
                "include the SCL band (Sentinel-2 L2A) or band B11 in the file",
            )
    nodata = np.zeros(raster.data.shape[1:], dtype=bool)
    reflectance: dict[str, np.ndarray] = {}
    for name in REFLECTANCE_BANDS:
        if name not in bands:
            continue
        dn = raster.data[bands[name]]
        missing = nodata_mask(dn, raster.nodata) | ~np.isfinite(dn)
        if not np.issubdtype(dn.dtype, np.floating):
            missing |= dn == 0  # Sentinel-2 DN 0 is no data in every band
        nodata |= missing
        reflectance[name] = dn_to_reflectance(dn, dn_scaling(raster, bands[name]), missing)
    if has_scl:
        clear, cloud, shadow, scl_nodata = scl_masks(raster.data[bands["SCL"]])
        nodata |= scl_nodata
    else:
        cloud = spectral_cloud(reflectance)
        shadow = np.zeros_like(cloud)  # the spectral test finds no shadows (see docstring)
        clear = ~cloud
    if nodata.all():
        raise InputError(raster.path, "the scene holds no valid pixels",
                         "check its nodata value or remove the file")
    _check_reflectance(raster.path, reflectance, nodata)
    for values in reflectance.values():
        values[nodata] = np.nan
    return Scene(reflectance, clear & ~nodata, cloud & ~nodata, shadow & ~nodata, nodata,
                 "SCL" if has_scl else "spectral")


def _check_reflectance(path: Path, reflectance: dict[str, np.ndarray], nodata: np.ndarray) -> None:
    """Refuse a scene whose reflectance is implausible: the DN scaling must be wrong."""
    values = np.concatenate([band[~nodata] for band in reflectance.values()])
    median = float(np.nanmedian(values))
    if not 0.001 <= median <= 1.0:
        raise InputError(
            path,
            f"reflectance after scaling has median {median:.4g}, outside the plausible 0.001..1",
            "check the BOA_ADD_OFFSET / QUANTIFICATION_VALUE tags or the band scale/offset; "
            "integer bands are read as DN/10000, float bands as reflectance",
        )


def indices(reflectance: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """NDWI (McFeeters 1996, green vs NIR) and, where B11 exists, MNDWI (Xu 2006, vs SWIR1)."""
    result = {"NDWI": normalised_difference(reflectance["B03"], reflectance["B08"])}
    if "B11" in reflectance:
        result["MNDWI"] = normalised_difference(reflectance["B03"], reflectance["B11"])
    return result


def _write_scene(out_dir: Path, raster: Raster, scene: Scene, time: datetime) -> tuple[str, str]:
    """Write the reflectance and mask GeoTIFFs of one scene; return their names."""
    layers = {**scene.reflectance, **indices(scene.reflectance)}
    reflectance_name = f"{time_stamp(time)}_reflectance.tif"
    masks_name = f"{time_stamp(time)}_masks.tif"
    tags = {"ACQUISITION_START_TIME": f"{time_iso(time)}Z", "SOURCE_FILE": str(raster.path),
            "CLOUD_TEST": scene.cloud_test}
    write_geotiff(
        out_dir / reflectance_name, np.stack(list(layers.values())).astype(np.float32),
        raster.crs, raster.transform, list(layers), nodata=np.nan,
        units=["1"] * len(layers), tags=tags,
    )
    masks = np.stack([scene.clear, scene.cloud, scene.shadow]).astype(np.uint8)
    masks[:, scene.nodata] = MASK_NODATA
    write_geotiff(out_dir / masks_name, masks, raster.crs, raster.transform, list(MASK_NAMES),
                  nodata=MASK_NODATA, tags=tags)
    return reflectance_name, masks_name


def ingest(region: dict[str, Any], out_dir: Path) -> None:
    """Read every optical file of ``region``; write reflectance, masks and scenes.csv."""
    outline = region_outline(region)
    rows: list[dict[str, Any]] = []
    times: dict[Path, datetime] = {}
    for path in input_files(region, "optical"):
        raster = read_raster(path, outline)
        time = scene_time(raster, region["inputs"]["optical"].get("times", {}))
        times[path] = time
        check_unique_times(times)
        scene = convert_scene(raster, region["inputs"]["optical"].get("product", "L2A"))
        reflectance_name, masks_name = _write_scene(out_dir, raster, scene, time)
        clear_fraction = float(scene.clear.sum() / (~scene.nodata).sum())
        rows.append({"time": time_iso(time), "file": reflectance_name, "masks_file": masks_name,
                     "clear_fraction": round(clear_fraction, 6), "source": str(path),
                     "cloud_test": scene.cloud_test})
        log.info("optical: %s -> %s (clear %.1f%%, %s)", path, reflectance_name,
                 100 * clear_fraction, scene.cloud_test)
    write_csv(out_dir / "scenes.csv", rows,
              ["time", "file", "masks_file", "clear_fraction", "source", "cloud_test"])
