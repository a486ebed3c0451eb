"""What the sensors see: Sentinel-1 backscatter and Sentinel-2 reflectance with clouds.

Radar is drawn from published class-conditional C-band backscatter, not from numbers picked
for the demo (docs/radar-physics.md gives the sources): land covers by their VV/VH level and
incidence-angle slope, open water by the CMOD5.N (VV) and C-2PO (VH) wind models, so calm
water is a mirror and wind roughens it towards land; flooded trees and towns brighten by
double bounce; speckle (ENL 4.4, shared by neighbouring pixels as the GRDH's 20 m
resolution cell spans two 10 m pixels) multiplies signal plus thermal noise, and the noise is then
subtracted as the standard preprocessing does. Optical is as honest: thin cloud edges slip
through the scene classification and shadows hide the ground beside the clouds.
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
    "IW_INCIDENCE_DEG",
    "grdh_speckle",
    "cmod5n_vv",
    "c2po_vh",
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
# Sentinel-1 IW GRDH (ESA Sentinel-1 Product Definition, S1-RS-MDA-52-7440): equivalent
# number of looks, incidence angles across the swath, and the noise-equivalent sigma0 range
# of the IW sub-swaths (specified <= -22 dB; Torres et al. 2012, RSE 120:9-24).
ENL = 4.4
# IW GRDH resolves 20 m x 22 m (range x azimuth) on a 10 m pixel grid (same source): each
# resolution cell spans about two pixels each way, so neighbouring pixels share speckle.
GRDH_RESOLUTION_PX = (20.0 / 10.0, 22.0 / 10.0)
IW_INCIDENCE_DEG = (30.0, 45.0)
NESZ_DB = (-26.0, -22.0)
REFERENCE_INCIDENCE_DEG = 38.0
# Noise subtraction can leave a pixel with no power; keep it finite, below any real target.
POWER_FLOOR_DB = -40.0

# Dry covers: (VV dB, VH dB) at 38 deg incidence and the slope d sigma0 / d theta (dB/deg).
# Levels: Veloso et al. 2017 (RSE 199:415, crops), Baghdadi et al. 2016 (Remote Sens.
# 8:920, bare soil), forest volume scattering near gamma0 flat in angle (slope = d/dtheta of
# 10 log10 cos theta), Gade et al. 2014 (ECSS 140:32, intertidal flats). Slopes: Mladenova
# et al. 2013 (IEEE TGRS 51:1791): steep for surface scattering, gentle for volume.
_DRY_DB = {
    Cover.MUDFLAT: ((-15.0, -23.5), -0.25),  # smooth wet sediment: surface scattering
    Cover.CROPLAND: ((-11.0, -17.5), -0.15),
    Cover.VEGETATION: ((-7.5, -13.0), -0.06),  # canopy volume scattering
    Cover.URBAN: ((-5.0, -12.0), -0.10),  # plus the double-bounce hot spots below
    Cover.BARE: ((-13.0, -21.0), -0.22),
}
# Flooded covers that are not open water (Tsyganskaya et al. 2018, IJRS 39:2255; Pulvirenti
# et al. 2016, IEEE TGRS 54:1532): trunk-water and wall-water double bounce brighten VV by
# 2-3 dB and leave VH about as it was; crops with stems above the water darken part way.
_FLOODED_DB = {
    Cover.CROPLAND: ((-16.0, -24.0), -0.20),
    Cover.VEGETATION: ((-4.5, -13.5), -0.06),
    Cover.URBAN: ((-2.5, -11.5), -0.10),
}
# Facades that face the radar are corner reflectors: the brightest fifth of a town's pixels.
_DOUBLE_BOUNCE_DB = (6.0, 4.0)
_DOUBLE_BOUNCE_TEXTURE = 0.85  # texture above this (~20% of a unit-normal field)
# Flood water on land is sheltered by dikes, trees and short fetch: Bragg waves there grow
# under a fraction of the open-sea wind.
FLOODWATER_WIND_FACTOR = 0.5
# CMOD5.N is fitted to winds of about 2 m/s and more; calmer water is held there, which puts
# it at -23 to -26 dB VV at 38 deg, where flood-mapping studies find calm water.
MIN_WIND_M_S = 2.0

# CMOD5.N, the C-band VV geophysical model function for 10 m equivalent neutral wind
# (Hersbach, Stoffelen & de Haan 2007, JGR 112:C03006; neutral coefficients of Verhoef et al.
# 2008, OSI SAF report SAF/OSI/CDOP/KNMI/TEC/TN/165), coefficients c1..c28.
_CMOD5N = np.array([
    -0.6878, -0.7957, 0.3380, -0.1728, 0.0000, 0.0040, 0.1103, 0.0159, 6.7329, 2.7713,
    -2.2885, 0.4971, -0.7250, 0.0450, 0.0066, 0.3222, 0.0120, 22.7000, 2.0813, 3.0000,
    8.3659, -3.3428, 1.3236, 6.2437, 2.3893, 0.3249, 4.1590, 1.6930])
# C-2PO, the C-band cross-polarised ocean model (Zhang & Perrie 2012, BAMS 93:531):
# sigma0_VH = 0.580 U10 - 35.652 dB, independent of incidence angle.
_C2PO = (0.580, -35.652)

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


def cmod5n_vv(wind_m_s: np.ndarray, relative_direction_deg: np.ndarray | float,
              incidence_deg: float) -> np.ndarray:
    """Open-water VV sigma0 (linear) from CMOD5.N.

    ``relative_direction_deg`` is the wind direction minus the radar look azimuth (0 =
    upwind, the brightest), ``incidence_deg`` the local incidence angle.
    """
    c = np.concatenate([[0.0], _CMOD5N])  # c[1]..c[28] as the paper numbers them
    v = np.maximum(np.asarray(wind_m_s, np.float64), 0.0)
    x = (incidence_deg - 40.0) / 25.0
    cos_phi = np.cos(np.deg2rad(relative_direction_deg))
    # isotropic term B0
    a0 = c[1] + c[2] * x + c[3] * x**2 + c[4] * x**3
    a1, a2 = c[5] + c[6] * x, c[7] + c[8] * x
    gamma, s0 = c[9] + c[10] * x + c[11] * x**2, c[12] + c[13] * x
    s = a2 * v
    a3 = 1.0 / (1.0 + np.exp(-np.maximum(s, s0)))
    low = s < s0  # weak winds: the logistic is continued by a power law towards zero
    a3 = np.where(low, a3 * (np.maximum(s, 1e-9) / s0) ** (s0 * (1.0 - a3)), a3)
    b0 = a3**gamma * 10.0 ** (a0 + a1 * v)
    # upwind-downwind term B1
    b1 = c[14] * (1.0 + x) - c[15] * v * (0.5 + x - np.tanh(4.0 * (x + c[16] + c[17] * v)))
    b1 = b1 / (np.exp(0.34 * (v - c[18])) + 1.0)
    # upwind-crosswind term B2
    v0 = c[21] + c[22] * x + c[23] * x**2
    d1, d2 = c[24] + c[25] * x + c[26] * x**2, c[27] + c[28] * x
    y0, pn = c[19], c[20]
    y = v / v0 + 1.0
    y = np.where(y < y0, y0 - (y0 - 1.0) / pn
                 + (y - 1.0) ** pn / (pn * (y0 - 1.0) ** (pn - 1.0)), y)
    b2 = (-d1 + d2 * y) * np.exp(-y)
    return b0 * (1.0 + b1 * cos_phi + b2 * (2.0 * cos_phi**2 - 1.0)) ** 1.6


def c2po_vh(wind_m_s: np.ndarray) -> np.ndarray:
    """Open-water VH sigma0 (linear) from C-2PO."""
    slope, offset = _C2PO
    return 10.0 ** ((slope * np.maximum(np.asarray(wind_m_s, np.float64), 0.0) + offset) / 10.0)


def _cell_weights() -> np.ndarray:
    """Weights [a, 1 - 2a, a] along one axis whose squares sum to ENL**-0.5, so averaging
    single-look intensity with them in both axes gives ENL looks. Their equivalent width
    1 / sum(w**2) is 2.1 pixels: the GRDH resolution cell (GRDH_RESOLUTION_PX)."""
    per_axis = ENL**-0.5
    a = (4.0 - np.sqrt(16.0 - 24.0 * (1.0 - per_axis))) / 12.0  # 6a^2 - 4a + 1 = per_axis
    return np.array([a, 1.0 - 2.0 * a, a])


def grdh_speckle(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Unit-mean speckle as a GRDH pixel has it: ENL looks and correlated with its
    neighbours over the resolution cell. Single-look (exponential) intensity is averaged
    over each pixel's 3 x 3 neighbourhood with the separable weights of _cell_weights;
    leading axes of ``shape`` (e.g. polarisations) are independent draws."""
    weights = _cell_weights()
    speckle = rng.exponential(1.0, size=shape)
    for axis in (-2, -1):
        speckle = ndimage.correlate1d(speckle, weights, axis=axis, mode="wrap")
    return speckle


def radar_sigma0_db(
    cover: np.ndarray,
    water: np.ndarray,
    texture: np.ndarray,
    crop_offset_db: float,
    wind_m_s: float,
    incidence_deg: float,
    rng: np.random.Generator,
    open_water_share: np.ndarray | None = None,
) -> np.ndarray:
    """One Sentinel-1 pass: (2, y, x) float32 VV and VH sigma0 in dB with speckle.

    ``texture`` is a static field (zero mean, unit std) that makes each field and grove
    differ; ``crop_offset_db`` moves cropland with the crop calendar; ``wind_m_s`` is the
    10 m wind over open water, ``incidence_deg`` the pass's incidence angle.
    ``open_water_share`` (0..1 per cell) is the part of a flooded field's cell that is open
    water, the rest stubble or crop standing above it; without it a flooded field is all
    flooded crop.
    """
    shape = cover.shape
    tilt = incidence_deg - REFERENCE_INCIDENCE_DEG
    mean_db = np.zeros((2, *shape), np.float64)
    open_water = water.copy()
    for table, where in ((_DRY_DB, ~water), (_FLOODED_DB, water)):
        for klass, ((vv_db, vh_db), slope) in table.items():
            cells = (cover == klass) & where
            mean_db[0][cells], mean_db[1][cells] = vv_db + slope * tilt, vh_db + slope * tilt
            open_water &= ~cells
    land = ~open_water
    mean_db[:, land] += 1.2 * texture[land]
    towns = cover == Cover.URBAN
    for band in (0, 1):
        mean_db[band][towns & (texture > _DOUBLE_BOUNCE_TEXTURE)] += _DOUBLE_BOUNCE_DB[band]
    mean_db[:, (cover == Cover.CROPLAND) & ~water] += crop_offset_db
    mean_db[:, land] += 0.4 * fbm(shape, 2.5, rng)[land]  # soil moisture changes per pass
    power = 10.0 ** (mean_db / 10.0)

    # Open water: the wind field (gusts of +-25%) over the sea, sheltered on flooded land.
    wind = wind_m_s * np.clip(1.0 + 0.25 * fbm(shape, 3.2, rng), 0.0, None)
    wind = np.where(cover == Cover.SEA, wind, FLOODWATER_WIND_FACTOR * wind)
    wind = np.maximum(wind, MIN_WIND_M_S)
    direction = rng.uniform(0.0, 360.0) + 15.0 * fbm(shape, 3.5, rng)
    open_power = np.stack([cmod5n_vv(wind, direction, incidence_deg), c2po_vh(wind)])
    power[:, open_water] = open_power[:, open_water]
    if open_water_share is not None:
        # A flooded field is part open water, part stems above it; the part differs field
        # to field (depth, growth stage, harvested or not). Power adds by area between the
        # two published end members, so fields range from flooded crop to a mirror.
        fields = water & (cover == Cover.CROPLAND)
        share = open_water_share[fields]
        power[:, fields] = share * open_power[:, fields] + (1.0 - share) * power[:, fields]

    # Speckle multiplies signal plus thermal noise; preprocessing then subtracts the noise.
    noise = 10.0 ** (rng.uniform(*NESZ_DB) / 10.0)
    observed = (power + noise) * grdh_speckle(power.shape, rng) - noise
    observed = np.maximum(observed, 10.0 ** (POWER_FLOOR_DB / 10.0))
    return (10.0 * np.log10(observed)).astype(np.float32)


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
