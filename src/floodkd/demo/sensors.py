"""What the sensors see: Sentinel-1 backscatter and Sentinel-2 reflectance with clouds.

Both are made honest on purpose: wind roughens open water until it looks like land,
flooded trees brighten instead of darkening, speckle is strong (ENL ~4.4), thin cloud edges
slip through the scene classification and shadows hide the ground beside the clouds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from floodkd.demo.fields import fbm
from floodkd.demo.terrain import Cover

__all__ = [
    "RADAR_NODATA",
    "ENL",
    "OPTICAL_BANDS",
    "SCL",
    "radar_sigma0_db",
    "swath_edge_nodata",
    "surface_reflectance",
    "CloudScene",
    "cloud_scene",
    "observed_reflectance",
    "scene_classification",
    "reflectance_to_dn",
]

RADAR_NODATA = -9999.0
ENL = 4.4  # equivalent number of looks of Sentinel-1 IW GRDH

# Mean sigma0 (VV dB, VH dB) by cover when dry, and by what water does to each cover.
_SIGMA0_DRY_DB = {
    Cover.SEA: (-20.0, -27.0),
    Cover.MUDFLAT: (-14.0, -22.0),
    Cover.CROPLAND: (-11.0, -17.5),
    Cover.VEGETATION: (-7.5, -13.0),
    Cover.URBAN: (2.0, -6.0),  # double bounce between walls and ground
    Cover.BARE: (-12.5, -20.5),
}
_SIGMA0_WET_DB = {
    Cover.SEA: (-20.0, -27.0),
    Cover.MUDFLAT: (-20.0, -27.0),
    Cover.CROPLAND: (-17.0, -24.0),  # stems still poke out of the water
    Cover.VEGETATION: (-4.5, -14.5),  # trunk-water double bounce: flooded trees brighten
    Cover.URBAN: (2.5, -6.0),
    Cover.BARE: (-20.0, -27.0),
}

OPTICAL_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
# Bottom-of-atmosphere reflectance spectra (B02 B03 B04 B08 B11 B12).
_REFLECTANCE = {
    "water": (0.065, 0.085, 0.070, 0.030, 0.012, 0.008),  # turbid coastal water, NDWI > 0
    "flooded_vegetation": (0.040, 0.065, 0.045, 0.140, 0.060, 0.030),
    Cover.MUDFLAT: (0.080, 0.100, 0.115, 0.150, 0.160, 0.120),  # wet mud
    Cover.CROPLAND: (0.045, 0.085, 0.065, 0.300, 0.220, 0.120),
    Cover.VEGETATION: (0.030, 0.060, 0.035, 0.360, 0.180, 0.080),
    Cover.URBAN: (0.120, 0.130, 0.150, 0.200, 0.250, 0.220),
    Cover.BARE: (0.110, 0.140, 0.170, 0.230, 0.310, 0.260),
}
_CLOUD_REFLECTANCE = np.array([0.55, 0.55, 0.56, 0.58, 0.40, 0.28], np.float32)
_CIRRUS_REFLECTANCE = np.array([0.25, 0.25, 0.25, 0.26, 0.22, 0.18], np.float32)


class SCL:
    """Sentinel-2 L2A scene classification codes used by the demo."""

    NO_DATA = 0
    CLOUD_SHADOW = 3
    VEGETATION = 4
    NOT_VEGETATED = 5
    WATER = 6
    CLOUD_MEDIUM = 8
    CLOUD_HIGH = 9
    CIRRUS = 10


def radar_sigma0_db(
    cover: np.ndarray,
    water: np.ndarray,
    texture: np.ndarray,
    crop_offset_db: float,
    wind_speed_m_s: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """One Sentinel-1 pass: (2, y, x) float32 VV and VH sigma0 in dB with speckle.

    ``texture`` is a static field (zero mean, unit std) that makes each field and grove
    differ; ``crop_offset_db`` moves cropland with the crop calendar; above ~4 m/s wind,
    capillary waves brighten patches of open water towards land-like values.
    """
    shape = cover.shape
    mean_db = np.zeros((2, *shape), np.float32)
    for klass in Cover:
        for table, where in ((_SIGMA0_DRY_DB, ~water), (_SIGMA0_WET_DB, water)):
            cells = (cover == klass) & where
            mean_db[0][cells], mean_db[1][cells] = table[klass]
    land_like = ~water | (cover == Cover.VEGETATION) | (cover == Cover.URBAN)
    mean_db += np.where(land_like, 1.2, 0.6) * texture
    mean_db[:, (cover == Cover.CROPLAND) & ~water] += crop_offset_db
    mean_db += 0.4 * fbm(shape, 2.5, rng)  # soil moisture and look-angle changes per pass

    open_water = water & ~land_like
    roughness = np.clip((wind_speed_m_s - 4.0) / 6.0, 0.0, 1.0)  # 0 calm .. 1 at 10 m/s
    if roughness > 0:
        gusts = fbm(shape, 3.2, rng)
        patch = gusts > np.quantile(gusts, 1.0 - 0.7 * roughness)
        boost = roughness * np.clip(gusts - np.quantile(gusts, 1.0 - 0.7 * roughness), 0, 1)
        mean_db[0][open_water & patch] += (11.0 * (0.4 + 0.6 * boost))[open_water & patch]
        mean_db[1][open_water & patch] += (7.0 * (0.4 + 0.6 * boost))[open_water & patch]

    power = 10.0 ** (mean_db / 10.0)
    power *= rng.gamma(ENL, 1.0 / ENL, size=power.shape)  # multiplicative speckle
    noise_floor = 10.0 ** (-25.0 / 10.0)  # VH sits near the noise-equivalent sigma0
    power[1] += noise_floor * rng.gamma(ENL, 1.0 / ENL, size=shape)
    return (10.0 * np.log10(power)).astype(np.float32)


def swath_edge_nodata(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A ragged strip of no-data columns at one side, as at the edge of an IW swath."""
    height, width = shape
    depth = np.clip(rng.integers(1, 4) + np.round(np.cumsum(rng.normal(0, 0.4, height))), 0, 6)
    columns = np.arange(width)[None, :]
    edge = columns < depth[:, None].astype(int)
    return edge if rng.random() < 0.5 else edge[:, ::-1]


def surface_reflectance(
    cover: np.ndarray, water: np.ndarray, texture: np.ndarray
) -> np.ndarray:
    """Cloud-free BOA reflectance (6, y, x) float32 from cover and water."""
    out = np.zeros((len(OPTICAL_BANDS), *cover.shape), np.float32)
    for klass in Cover:
        cells = (cover == klass) & ~water
        if klass != Cover.SEA:
            out[:, cells] = np.array(_REFLECTANCE[klass], np.float32)[:, None]
    flooded_trees = water & (cover == Cover.VEGETATION)
    out[:, water & ~flooded_trees] = np.array(_REFLECTANCE["water"], np.float32)[:, None]
    out[:, flooded_trees] = np.array(_REFLECTANCE["flooded_vegetation"], np.float32)[:, None]
    out *= (1.0 + 0.12 * texture)[None]  # field to field and turbidity differences
    return out


@dataclass(frozen=True)
class CloudScene:
    """Per-pixel cloud opacity (0..1), cirrus opacity and shadow, on the 10 m grid."""

    cloud_opacity: np.ndarray
    cirrus_opacity: np.ndarray
    shadow: np.ndarray


def cloud_scene(
    shape: tuple[int, int],
    cloud_fraction: float,
    shadow_offset_px: tuple[int, int],
    cirrus: bool,
    rng: np.random.Generator,
) -> CloudScene:
    """Fractal clouds covering ``cloud_fraction`` of the scene (opacity >= 0.3) with shadows.

    Opacity rises from 0 at a thin fringe to 1 in the cores; the shadow is the cloud shape
    displaced by ``shadow_offset_px`` (rows, cols), away from the sun.
    """
    field = fbm(shape, 3.3, rng)
    if cloud_fraction <= 0:
        opacity = np.zeros(shape, np.float32)
    else:
        threshold = np.quantile(field, 1.0 - min(cloud_fraction, 1.0))
        opacity = np.clip(0.3 + (field - threshold) * 0.9, 0.0, 1.0).astype(np.float32)
    cirrus_opacity = np.zeros(shape, np.float32)
    if cirrus:
        veil = fbm(shape, 2.8, rng)
        cirrus_opacity = np.clip((veil - 0.3) * 0.25, 0.0, 0.3).astype(np.float32)
    dy, dx = shadow_offset_px
    shadow = ndimage.shift((opacity > 0.2).astype(np.uint8), (dy, dx), order=0, cval=0) > 0
    return CloudScene(opacity, cirrus_opacity, shadow & (opacity < 0.2))


def observed_reflectance(surface: np.ndarray, clouds: CloudScene) -> np.ndarray:
    """Top-of-canopy reflectance as L2A reports it under clouds, cirrus and shadow."""
    shaded = np.where(clouds.shadow[None], surface * 0.35, surface)
    veil = clouds.cirrus_opacity[None]
    with_cirrus = (1 - veil) * shaded + veil * _CIRRUS_REFLECTANCE[:, None, None]
    alpha = clouds.cloud_opacity[None]
    return ((1 - alpha) * with_cirrus + alpha * _CLOUD_REFLECTANCE[:, None, None]).astype(
        np.float32
    )


def scene_classification(
    cover: np.ndarray, water: np.ndarray, clouds: CloudScene
) -> np.ndarray:
    """An SCL layer as Sen2Cor would write it, including its blind spot for thin cloud."""
    scl = np.full(cover.shape, SCL.NOT_VEGETATED, np.uint8)
    vegetated = (cover == Cover.CROPLAND) | (cover == Cover.VEGETATION)
    scl[vegetated & ~water] = SCL.VEGETATION
    scl[water] = SCL.WATER
    scl[clouds.shadow] = SCL.CLOUD_SHADOW
    scl[clouds.cirrus_opacity > 0.12] = SCL.CIRRUS
    scl[clouds.cloud_opacity >= 0.3] = SCL.CLOUD_MEDIUM
    scl[clouds.cloud_opacity >= 0.65] = SCL.CLOUD_HIGH
    return scl


def reflectance_to_dn(reflectance: np.ndarray) -> np.ndarray:
    """Processing baseline >= 04.00 digital numbers: DN = reflectance * 10000 + 1000."""
    dn = np.round(reflectance * 10000.0 + 1000.0)
    return np.clip(dn, 1, 65535).astype(np.uint16)
